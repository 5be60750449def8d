import { assert, assertEquals } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import {
  acceptBackoffMs,
  INCOMING_FIRST_BYTES_TIMEOUT_MS,
  isPeerFault,
  Listener,
  type ListenerError,
} from "../../lib/engine/listener.ts";
import { ConnectError } from "../../lib/engine/peer_conn.ts";
import { MAX_PENDING_HANDSHAKES } from "../../lib/limits.ts";
import { WireError } from "../../lib/wire/frame.ts";
import { encodeHandshake, type Handshake, reservedBits } from "../../lib/wire/handshake.ts";
import {
  CRYPTO_PLAINTEXT,
  CRYPTO_RC4,
  initiatorStep3,
  mseCiphers,
  publicKey,
  sharedSecret,
} from "../../lib/wire/mse.ts";

const infoHash = new Uint8Array(20).map((_, i) => i + 1);
const hex = Array.from(infoHash, (b) => b.toString(16).padStart(2, "0")).join("");
const theirs: Handshake = { reserved: reservedBits({ fast: true }), infoHash, peerId: new Uint8Array(20).fill(0x41) };

async function readSome(conn: Deno.Conn, want: number, ms = 3000): Promise<Uint8Array> {
  const out: number[] = [];
  const buf = new Uint8Array(4096);
  const deadline = Date.now() + ms;
  while (out.length < want && Date.now() < deadline) {
    const n = await conn.read(buf);
    if (n === null) break;
    out.push(...buf.subarray(0, n));
  }
  return new Uint8Array(out);
}

async function withListener(
  fn: (port: number, accepted: Promise<{ h: Handshake; leftover: Uint8Array }>) => Promise<void>,
) {
  const l = Listener.open(0);
  let resolve!: (v: { h: Handshake; leftover: Uint8Array }) => void;
  const accepted = new Promise<{ h: Handshake; leftover: Uint8Array }>((r) => (resolve = r));
  const conns: Deno.TcpConn[] = [];
  l.register(hex, (conn, h, leftover) => {
    conns.push(conn);
    resolve({ h, leftover });
    return true;
  });
  try {
    await fn(l.port, accepted);
  } finally {
    for (const c of conns) c.close();
    await l.close();
  }
}

Deno.test("Listener routes a plain handshake to its torrent with the bytes that followed", async () => {
  await withListener(async (port, accepted) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await c.write(new Uint8Array([...encodeHandshake(theirs), 0, 0, 0, 1, 2]));
      const got = await accepted;
      assertEquals(got.h.infoHash, infoHash);
      assertEquals(got.leftover, new Uint8Array([0, 0, 0, 1, 2]));
    } finally {
      c.close();
    }
  });
});

Deno.test("Listener accepts an MSE handshake, selects plaintext and routes the handshake inside it", async () => {
  await withListener(async (port, accepted) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const xa = 0x1f2e3d4c5b6a798807f6e5d4c3b2a1n;
      await c.write(new Uint8Array([...publicKey(xa), ...new Uint8Array(33).fill(9)])); // Ya, PadA
      const yb = await readSome(c, 96);
      const s = sharedSecret(yb.subarray(0, 96), xa);
      const ia = encodeHandshake(theirs);
      const after = new Uint8Array([0, 0, 0, 1, 2]); // an `interested`, in plaintext after the handshake
      await c.write(new Uint8Array([...initiatorStep3(s, infoHash, CRYPTO_PLAINTEXT | CRYPTO_RC4, ia), ...after]));
      // the receiver's step 4 follows its padding: find the encrypted verification constant
      const { b } = mseCiphers(s, infoHash);
      const vc = b.apply(new Uint8Array(8));
      const rest = await readSome(c, 14, 1000);
      const all = new Uint8Array([...yb.subarray(96), ...rest]);
      let at = -1;
      for (let i = 0; i + 8 <= all.length && at < 0; i++) if (vc.every((x, k) => all[i + k] === x)) at = i;
      assert(at >= 0, "no encrypted VC from the receiver");
      const select = b.apply(all.subarray(at + 8, at + 14));
      assertEquals(select, new Uint8Array([0, 0, 0, CRYPTO_PLAINTEXT, 0, 0]));
      const got = await accepted;
      assertEquals(got.h.peerId, theirs.peerId);
      assertEquals(got.leftover, after);
    } finally {
      c.close();
    }
  });
});

Deno.test("Listener drops an MSE handshake for a torrent it does not have", async () => {
  await withListener(async (port) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const xa = 0x1234567n;
      await c.write(publicKey(xa));
      const yb = await readSome(c, 96);
      const s = sharedSecret(yb.subarray(0, 96), xa);
      await c.write(initiatorStep3(s, new Uint8Array(20).fill(0xee), CRYPTO_PLAINTEXT, encodeHandshake(theirs)));
      const more = await readSome(c, 1, 2000);
      assertEquals(more.length, 0, "the listener should close without answering");
    } finally {
      c.close();
    }
  });
});

Deno.test("Listener accepts peers over IPv6 too", async () => {
  await withListener(async (port, accepted) => {
    let c: Deno.TcpConn;
    try {
      c = await Deno.connect({ hostname: "::1", port });
    } catch {
      return; // no IPv6 loopback on this machine: nothing to check
    }
    try {
      await c.write(encodeHandshake(theirs));
      const got = await accepted;
      assertEquals(got.h.infoHash, infoHash);
    } finally {
      c.close();
    }
  });
});

/** A client connection whose closing by the other side is noticed by a background reader. */
interface Watched {
  readonly conn: Deno.TcpConn;
  /** When the other side closed it (performance.now()), or null while it is open. */
  closedAt: number | null;
  readonly done: Promise<void>;
}

function watch(conn: Deno.TcpConn): Watched {
  const w: { conn: Deno.TcpConn; closedAt: number | null; done: Promise<void> } = {
    conn,
    closedAt: null,
    done: Promise.resolve(),
  };
  w.done = (async () => {
    const buf = new Uint8Array(4096);
    try {
      while ((await conn.read(buf)) !== null) { /* discard what the listener says (an MSE key) */ }
    } catch { /* reset, or closed by us */ }
    w.closedAt = performance.now();
  })();
  return w;
}

async function unwatch(ws: readonly Watched[]): Promise<void> {
  for (const w of ws) {
    try {
      w.conn.close();
    } catch { /* closed */ }
  }
  await Promise.all(ws.map((w) => w.done));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `cond` holds, checking every 10 ms; false after `ms`. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await sleep(10);
  return cond();
}

Deno.test("acceptBackoffMs() starts at 50 ms and doubles up to 1 s", () => {
  assertEquals([1, 2, 3, 4, 5, 6, 7, 1000].map(acceptBackoffMs), [50, 100, 200, 400, 800, 1000, 1000, 1000]);
});

Deno.test("isPeerFault() tells a peer's or the network's errors from bugs", async (t) => {
  const emfile = Object.assign(new Error("Too many open files (os error 24)"), { code: "EMFILE" });
  const rows: [string, unknown, boolean][] = [
    ["WireError", new WireError("bad-handshake", 0, "x"), true],
    ["ConnectError", new ConnectError("1.2.3.4:5", "timed out"), true],
    ["BadResource", new Deno.errors.BadResource("closed"), true],
    ["ConnectionReset", new Deno.errors.ConnectionReset("reset"), true],
    ["an OS error with an errno code", emfile, true],
    ["TypeError", new TypeError("x is undefined"), false],
    ["RangeError", new RangeError("offset"), false],
    ["a string", "oops", false],
  ];
  for (const [name, e, want] of rows) await t.step(name, () => assertEquals(isPeerFault(e), want));
});

Deno.test("Listener keeps pending handshakes bounded under a flood and still routes a real peer promptly", async () => {
  const errors: ListenerError[] = [];
  const l = Listener.open(0, { onError: (e) => errors.push(e) });
  const routed: Deno.TcpConn[] = [];
  l.register(hex, (conn) => {
    routed.push(conn);
    return true;
  });
  const flood: Watched[] = [];
  let real: Deno.TcpConn | null = null;
  let maxPending = 0;
  const sampler = setInterval(() => (maxPending = Math.max(maxPending, l.pending)), 2);
  try {
    const rand = seeded(7);
    for (let i = 0; i < 340; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: l.port });
      flood.push(watch(c));
      if (i % 17 === 5) await c.write(randomBytes(rand, 2000)); // garbage: no MSE sync within the padding
      else if (i % 17 === 7) await c.write(randomBytes(rand, 200)); // garbage that waits for more
      else if (i % 17 === 9) await c.write(encodeHandshake(theirs).subarray(0, 20)); // a protocol name, then silence
      maxPending = Math.max(maxPending, l.pending);
    }
    const start = performance.now();
    real = await Deno.connect({ hostname: "127.0.0.1", port: l.port });
    await real.write(new Uint8Array([...encodeHandshake(theirs), 0, 0, 0, 0]));
    assert(await until(() => routed.length === 1, 3000), "the real handshake was not routed");
    const took = performance.now() - start;
    assert(took < INCOMING_FIRST_BYTES_TIMEOUT_MS / 2, `routing took ${Math.round(took)} ms`);
    maxPending = Math.max(maxPending, l.pending);
    assert(maxPending <= MAX_PENDING_HANDSHAKES, `${maxPending} handshakes pending at once`);
    assert(l.evicted >= 340 - MAX_PENDING_HANDSHAKES - 20, `only ${l.evicted} evicted`);
    assert(await until(() => flood[0].closedAt !== null, 2000), "the oldest silent connection is still open");
    assertEquals(errors.map((e) => e.message), []);
    // the routed connection belongs to its torrent: still open, and it works
    await routed[0].write(new Uint8Array([9]));
    assertEquals(await readSome(real, 1, 2000), new Uint8Array([9]));
  } finally {
    clearInterval(sampler);
    real?.close();
    for (const c of routed) c.close();
    await unwatch(flood);
    await l.close();
  }
});

Deno.test("Listener cuts a slow or silent handshake at its deadline, and only that connection", async () => {
  const l = Listener.open(0, { firstBytesTimeoutMs: 300, handshakeTimeoutMs: 3000 });
  const routed: Deno.TcpConn[] = [];
  l.register(hex, (conn) => {
    routed.push(conn);
    return true;
  });
  const hs = encodeHandshake(theirs);
  const connect = async () => watch(await Deno.connect({ hostname: "127.0.0.1", port: l.port }));
  const trickle = async (w: Watched, from: number) => {
    for (let i = from; i < hs.length && w.closedAt === null; i++) {
      await sleep(100);
      try {
        await w.conn.write(hs.subarray(i, i + 1));
      } catch {
        return;
      }
    }
  };
  const start = performance.now();
  const silent = await connect();
  const slow = await connect(); // a byte every 100 ms: its first 20 bytes would take 2 s
  const headThenSlow = await connect(); // the protocol name at once, then a byte every 100 ms (6.8 s in all)
  await headThenSlow.conn.write(hs.subarray(0, 20));
  const real = await Deno.connect({ hostname: "127.0.0.1", port: l.port });
  const trickling = Promise.all([trickle(slow, 0), trickle(headThenSlow, 20)]);
  try {
    await real.write(hs);
    assert(await until(() => routed.length === 1, 2000), "the real handshake was not routed");
    assert(
      await until(() => silent.closedAt !== null && slow.closedAt !== null, 1500),
      "the silent or slow one is open",
    );
    assertEquals(headThenSlow.closedAt, null, "the first-bytes deadline is not the whole handshake's");
    assert(await until(() => headThenSlow.closedAt !== null, 5000), "the whole handshake has no deadline");
    const cut = (headThenSlow.closedAt ?? 0) - start;
    assert(cut > 2000 && cut < 6000, `the handshake deadline came after ${Math.round(cut)} ms`);
    // the routed peer is untouched by the others' deadlines
    await routed[0].write(new Uint8Array([7]));
    assertEquals(await readSome(real, 1, 2000), new Uint8Array([7]));
  } finally {
    real.close();
    for (const c of routed) c.close();
    await unwatch([silent, slow, headThenSlow]);
    await trickling;
    await l.close();
  }
});

Deno.test("Listener reports a throwing route as a bug, closes that connection and goes on", async () => {
  const errors: ListenerError[] = [];
  const l = Listener.open(0, { onError: (e) => errors.push(e) });
  const other = new Uint8Array(20).fill(0x77);
  const otherHex = Array.from(other, (b) => b.toString(16).padStart(2, "0")).join("");
  l.register(otherHex, () => {
    throw new TypeError("a bug in the torrent");
  });
  const routed: Deno.TcpConn[] = [];
  l.register(hex, (conn) => {
    routed.push(conn);
    return true;
  });
  const garbage = watch(await Deno.connect({ hostname: "127.0.0.1", port: l.port }));
  const buggy = watch(await Deno.connect({ hostname: "127.0.0.1", port: l.port }));
  const good = await Deno.connect({ hostname: "127.0.0.1", port: l.port });
  try {
    await garbage.conn.write(randomBytes(seeded(3), 2000));
    await buggy.conn.write(encodeHandshake({ ...theirs, infoHash: other }));
    assert(await until(() => garbage.closedAt !== null && buggy.closedAt !== null, 3000), "not closed");
    await good.write(encodeHandshake(theirs));
    assert(await until(() => routed.length === 1, 3000), "the next handshake was not routed");
    assertEquals(errors.map((e) => [e.code, (e.cause as Error).message]), [["bug", "a bug in the torrent"]]);
  } finally {
    good.close();
    for (const c of routed) c.close();
    await unwatch([garbage, buggy]);
    await l.close();
  }
});

Deno.test("Listener.close() closes the connections still in their handshake", async () => {
  const l = Listener.open(0);
  const w = watch(await Deno.connect({ hostname: "127.0.0.1", port: l.port }));
  try {
    assert(await until(() => l.pending === 1, 2000), "not accepted");
    await l.close();
    assert(await until(() => w.closedAt !== null, 2000), "still open after close()");
  } finally {
    await unwatch([w]);
  }
});

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number, ticksPerSecond: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from the 3rd on
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond; // utime and stime: fields 14 and 15
}

Deno.test({
  name: "Listener backs off when accept fails with EMFILE, reports it, and recovers",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const tck = new TextDecoder().decode((await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output()).stdout);
    const ticks = Number(tck.trim()) || 100;
    const logPath = await Deno.makeTempFile({ prefix: "btfetch-listener-" });
    const child = new Deno.Command("bash", {
      args: [
        "-c",
        'ulimit -n 64 && exec "$0" run -A --quiet "$1" "$2" "$3"',
        Deno.execPath(),
        new URL("./_listener_child.ts", import.meta.url).pathname,
        hex,
        logPath,
      ],
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdin: "piped",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const said = () => Deno.readTextFileSync(logPath).split("\n").filter((s) => s !== "");
    const flood: Deno.TcpConn[] = [];
    try {
      assert(await until(() => said().length > 0, 30_000), "the child did not start");
      const port = Number(said()[0].replace("port ", ""));
      for (let i = 0; i < 200; i++) flood.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      // descriptors run out after a few dozen connections; from then on accept fails with EMFILE
      const emfile = () => said().filter((s) => s === "error accept EMFILE").length;
      assert(await until(() => emfile() > 0, 5000), `no EMFILE reported: ${JSON.stringify(said())}`);
      const cpu0 = cpuSeconds(child.pid, ticks);
      const t0 = performance.now();
      await sleep(3000);
      const share = (cpuSeconds(child.pid, ticks) - cpu0) / ((performance.now() - t0) / 1000);
      assert(share < 0.2, `the listener used ${Math.round(share * 100)} % of a core while descriptors ran out`);
      // 50 ms doubling to 1 s: a handful of retries in 3 s, not thousands
      assert(emfile() < 20, `${emfile()} failed accepts reported`);
      for (const c of flood) c.close();
      flood.length = 0;
      const real = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await real.write(encodeHandshake(theirs));
        assert(await until(() => said().includes("routed"), 15_000), "no handshake routed after the flood");
      } finally {
        real.close();
      }
    } finally {
      for (const c of flood) c.close();
      await child.stdin.close();
      await child.status;
      await Deno.remove(logPath);
    }
  },
});
