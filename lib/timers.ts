/**
 * The runtime's timers, on the web platform's clock (`AbortSignal.timeout`) instead of the global `setTimeout`. Since
 * Deno 2.8 the global timers are `node:timers`, and the first call of one loads Node's timer, async-hook, error and
 * inspect modules: 8-15 ms on the main thread in a `get` (11-36 ms in a bare script), paid before the first DHT query
 * or connection can go out. A timer here costs a signal and a listener (about 6 µs to arm and clear, against about 4 µs
 * for the global pair once loaded), and keeps the process alive while it is armed, as the global ones do. A timer
 * cleared early holds about 600 bytes until its original due time.
 *
 * Handles are numbers, so a timer can be stored and cleared like the global ones; clearing an unknown, fired or
 * `undefined` handle does nothing. There is no unref: a timer that must not hold the process is cleared instead.
 * @module
 */

/** A timer handle, as {@linkcode setTimer} and {@linkcode setRepeat} return it. */
export type TimerHandle = number;

/** The longest delay a timer takes (the platform's 32-bit bound, about 24.8 days); longer ones are cut to it. */
export const MAX_DELAY_MS = 0x7fff_ffff;

interface Armed {
  readonly signal: AbortSignal;
  readonly fire: () => void;
}

const armed = new Map<TimerHandle, Armed>();
let nextHandle = 1;

/** `ms` as a delay the platform takes: whole milliseconds in [0, MAX_DELAY_MS]; NaN is 0. */
function delayOf(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(MAX_DELAY_MS, Math.ceil(ms));
}

function arm(handle: TimerHandle, ms: number, fire: () => void): void {
  const signal = AbortSignal.timeout(delayOf(ms));
  // a listener keeps the signal's timer referenced (the process waits for it); without one it would not
  signal.addEventListener("abort", fire, { once: true });
  armed.set(handle, { signal, fire });
}

/**
 * Calls `fn` once, `ms` from now (at least 0; fractions round up).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const fired = await new Promise<boolean>((resolve) => setTimer(() => resolve(true), 1));
 * eq(fired, true);
 * ```
 */
export function setTimer(fn: () => void, ms: number): TimerHandle {
  const handle = nextHandle++;
  arm(handle, ms, () => {
    armed.delete(handle);
    fn();
  });
  return handle;
}

/**
 * Calls `fn` every `ms` (at least 1 ms, as Node's `setInterval`) until cleared; each period starts when the previous
 * call runs, so the calls drift by their own lateness (a slow callback delays the next one, it does not queue
 * several).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * let calls = 0;
 * await new Promise<void>((resolve) => {
 *   const h = setRepeat(() => {
 *     if (++calls === 3) {
 *       clearTimer(h);
 *       resolve();
 *     }
 *   }, 1);
 * });
 * eq(calls, 3);
 * ```
 */
export function setRepeat(fn: () => void, ms: number): TimerHandle {
  const handle = nextHandle++;
  const every = Math.max(1, delayOf(ms)); // a 0 ms repeat would spin
  const tick = () => {
    arm(handle, every, tick); // before fn, so fn may clear it
    fn();
  };
  arm(handle, every, tick);
  return handle;
}

/** Stops a timer of {@linkcode setTimer} or {@linkcode setRepeat}; unknown, fired or `undefined` handles are ignored. */
export function clearTimer(handle: TimerHandle | undefined): void {
  if (handle === undefined) return;
  const a = armed.get(handle);
  if (a === undefined) return;
  armed.delete(handle);
  a.signal.removeEventListener("abort", a.fire);
}

/**
 * Resolves after `ms`, or at once when `signal` aborts (it never rejects).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const t0 = performance.now();
 * await sleep(60_000, AbortSignal.abort());
 * eq(performance.now() - t0 < 1000, true);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimer(handle);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const handle = setTimer(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
