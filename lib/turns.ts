/**
 * Fair turns for the event loop. Deno completes a socket read at once when its bytes are already there, without a
 * turn of the event loop, so a loop that reads a peer faster than it can process stays in microtasks for as long as
 * the peer keeps sending: timers, the piece writer's replies and other sockets wait the whole time (measured: 40–85 ms
 * with a fast loopback seeder, during which no verified piece came back and the piece budget ran dry). Read loops
 * call {@linkcode maybeYield} after each read; once every {@linkcode TURN_SLICE_MS} it hands them a promise that
 * settles after one real turn of the event loop (a message through a fresh `MessageChannel`: about 60 µs, where a
 * `setTimeout(0)` costs ~2 ms here), and every loop that asks meanwhile waits for the same turn.
 * @module
 */

/** How long read loops may run on without a turn of the event loop (ms). */
export const TURN_SLICE_MS = 4;

let pending: Promise<void> | null = null;
let lastTurn = performance.now();

/** A promise that settles after one real turn of the event loop, shared with every other caller meanwhile. */
export function nextTurn(): Promise<void> {
  return pending ??= new Promise<void>((resolve) => {
    // a fresh channel each time, closed once used: an open port would keep the process alive
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      ch.port2.close();
      pending = null;
      lastTurn = performance.now();
      resolve();
    };
    ch.port2.postMessage(null);
  });
}

/**
 * A promise to await before reading on when the event loop has had no forced turn for {@linkcode TURN_SLICE_MS},
 * else `null` (go on at once). Cheap to call after every read.
 */
export function maybeYield(now: number = performance.now()): Promise<void> | null {
  if (pending) return pending;
  if (now - lastTurn < TURN_SLICE_MS) return null;
  return nextTurn();
}
