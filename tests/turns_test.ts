import { assert, assertEquals } from "./_assert.ts";
import { maybeYield, TURN_SLICE_MS } from "../lib/turns.ts";
import { PeerConn } from "../lib/engine/peer_conn.ts";

/** Waits until `maybeYield` hands out a turn and takes it, so each test starts right after a turn. */
async function freshTurn(): Promise<void> {
  const until = performance.now() + 1000;
  while (performance.now() < until) {
    const t = maybeYield();
    if (t) return await t;
    await new Promise((r) => setTimeout(r, TURN_SLICE_MS));
  }
  throw new Error("no turn within 1 s");
}

Deno.test("maybeYield: nothing within a slice of the last turn, then one turn shared by every caller", async () => {
  await freshTurn();
  assertEquals(maybeYield(), null); // just had one
  const later = performance.now() + TURN_SLICE_MS;
  const a = maybeYield(later);
  const b = maybeYield(later);
  assert(a !== null, "a turn is due after a slice");
  assert(a === b, "callers in the same slice wait for the same turn");
  await a;
  assertEquals(maybeYield(), null);
});

Deno.test("maybeYield: a loop that never waits for IO still lets timers run", async () => {
  await freshTurn();
  let fired = 0;
  const timer = setInterval(() => fired++, 1);
  try {
    // like reads whose bytes are already there: every await settles at once, in microtasks only
    const until = performance.now() + 60;
    while (performance.now() < until) {
      await Promise.resolve();
      const t = maybeYield();
      if (t) await t;
    }
  } finally {
    clearInterval(timer);
  }
  assert(fired >= 3, `the timer fired ${fired} times in 60 ms of a busy loop`);
});

/** A child process that streams 16 KiB `piece` messages as fast as it can to 127.0.0.1:`port` for `ms` milliseconds. */
const SENDER = `
const [port, ms] = Deno.args.map(Number);
const conn = await Deno.connect({ hostname: "127.0.0.1", port });
const msg = new Uint8Array(4 + 9 + 16384);
new DataView(msg.buffer).setUint32(0, 9 + 16384);
msg[4] = 7;
const chunk = new Uint8Array(msg.length * 64);
for (let i = 0; i < 64; i++) chunk.set(msg, i * msg.length);
const until = performance.now() + ms;
try {
  while (performance.now() < until) {
    for (let off = 0; off < chunk.length;) off += await conn.write(chunk.subarray(off));
  }
} catch { /* the reader went away */ }
conn.close();
`;

Deno.test("PeerConn: a peer that sends faster than we read does not starve timers or a worker's replies", async () => {
  // a worker that echoes, like the piece writer handing pieces back
  const src = "self.onmessage = (e) => self.postMessage(e.data);";
  const worker = new Worker(URL.createObjectURL(new Blob([src], { type: "application/javascript" })), {
    type: "module",
  });
  await new Promise((r) => {
    worker.onmessage = r;
    worker.postMessage(0);
  });
  let echoes = 0;
  worker.onmessage = () => {
    echoes++;
    worker.postMessage(0);
  };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", SENDER, String(port), "400"],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const conn = await listener.accept();
  listener.close();
  const pc = new PeerConn(conn, { host: "127.0.0.1", port });
  let ticks = 0;
  let messages = 0;
  const timer = setInterval(() => ticks++, 2);
  try {
    worker.postMessage(0);
    echoes = 0;
    await pc.run({
      onMessage: () => {
        messages++; // and slower than the sender, so bytes are always waiting in the socket
        const until = performance.now() + 0.02;
        while (performance.now() < until) { /* work */ }
      },
      onDrain: () => {},
    });
  } finally {
    clearInterval(timer);
    worker.terminate();
    pc.close();
    await child.status;
  }
  assert(messages > 1000, `only ${messages} messages arrived`);
  // 400 ms of reading: with a turn of the event loop every few ms the worker answers about once a turn, where a loop
  // that hogs the thread lets through a handful
  assert(echoes >= 40, `the worker got ${echoes} replies through while ${messages} messages were read`);
  assert(ticks >= 20, `the 2 ms timer fired ${ticks} times while ${messages} messages were read`);
});
