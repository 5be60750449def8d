import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { makeTorrent } from "../_torrent.ts";
import { MAX_BLOCK_BYTES, MAX_MESSAGE_BYTES, MAX_PEER_QUEUED_REQUESTS } from "../../lib/limits.ts";
import type { Metainfo } from "../../lib/metainfo.ts";
import type { TimedEvent } from "../../lib/engine/events.ts";
import { FetchError } from "../../lib/engine/errors.ts";
import { runSession, type SessionOptions, type SessionResult } from "../../lib/engine/session.ts";
import { encodeHandshake, reservedBits } from "../../lib/wire/handshake.ts";
import { type Answer, FakePeer, gate, type LoggedReq, type Req, requestsFor, seeder, Wire } from "./_fake_peer.ts";

type PeerEvent = Extract<TimedEvent, { event: "peer" }>;
type DoneEvent = Extract<TimedEvent, { event: "done" }>;

const PIECE = 32 * 1024;

function payloadOf(seed: number, n: number): Uint8Array {
  return randomBytes(seeded(seed), n);
}

/** A single-file torrent of `pieces` pieces, the last one short. */
function single(seed: number, pieces = 24, name = "data.bin") {
  return makeTorrent({ name, pieceLength: PIECE, files: payloadOf(seed, (pieces - 1) * PIECE + 5000) });
}

interface Run {
  readonly events: TimedEvent[];
  readonly result: SessionResult;
  peerEvents(address: string): PeerEvent[];
  done(): DoneEvent;
}

/** Runs a session to the end with small limits, collecting events. */
async function fetchFrom(
  meta: Metainfo,
  outDir: string,
  peers: readonly FakePeer[],
  extra: Partial<SessionOptions> & { onEvent?: (e: TimedEvent) => void } = {},
): Promise<Run> {
  const events: TimedEvent[] = [];
  const result = await runSession({
    meta,
    outDir,
    peers: peers.map((p) => ({ host: "127.0.0.1", port: p.port })),
    port: null,
    useTorrentTrackers: false,
    stallTimeoutMs: 20_000,
    timeoutMs: 25_000,
    random: seeded(4242),
    ...extra,
    onEvent: (e) => {
      events.push(e);
      extra.onEvent?.(e);
    },
  });
  return {
    events,
    result,
    peerEvents: (address) =>
      events.filter((e): e is PeerEvent => e.event === "peer" && e.address === address && e.action !== "connected"),
    done: () => {
      const d = events.filter((e): e is DoneEvent => e.event === "done");
      assertEquals(d.length, 1);
      return d[0];
    },
  };
}

/** The bytes of `name` (a file, or files under a folder) under `outDir`, concatenated in torrent order. */
async function readBack(meta: Metainfo, outDir: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const f of meta.files) {
    if (f.padding) continue;
    const path = `${outDir}/${f.path.join("/")}`; // the path starts with the torrent name
    parts.push(await Deno.readFile(path));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  assertEquals(a.length, b.length, `${what}: length`);
  let diff = -1;
  for (let i = 0; i < a.length && diff < 0; i++) if (a[i] !== b[i]) diff = i;
  assertEquals(diff, -1, `${what}: first differing byte`);
}

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-engine-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Closes fake peers whatever happens. */
async function using<T>(peers: FakePeer[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    for (const p of peers) await p.close();
  }
}

Deno.test("runSession() fetches a torrent from one good seeder and reports it in `done`", async () => {
  const t = single(1);
  await withTemp(async (dir) => {
    const log: LoggedReq[] = [];
    const good = new FakePeer(seeder({ meta: t.meta, payload: t.payload, log }));
    const run = await using([good], () => fetchFrom(t.meta, dir, [good]));
    sameBytes(await readBack(t.meta, dir), t.payload, "file");
    const d = run.done();
    assertEquals(
      [d.complete, d.downloaded, d.verified, d.wasted, d.uploaded],
      [true, t.payload.length, t.payload.length, 0, 0],
    );
    assertEquals(run.result.complete, true);
    assertEquals(run.result.downloaded, t.payload.length);
    assertEquals(
      log.length,
      requestsFor(t.meta, t.meta.pieceCount > 0 ? [...Array(t.meta.pieceCount).keys()] : []).length,
    );
    assertEquals(d.peers.map((p) => [p.address, p.downloaded]), [[good.address, t.payload.length]]);
    const kinds = new Set(run.events.map((e) => e.event));
    for (const k of ["metadata", "resume", "peer", "complete", "file-complete", "done"]) {
      assert(kinds.has(k as never), k);
    }
  });
});

interface BadCase {
  readonly name: string;
  /** The bad peer's behaviour. */
  readonly bad: (t: ReturnType<typeof single>, log: LoggedReq[]) => (w: Wire) => Promise<void>;
  /** The peer event expected for it. */
  readonly action: "banned" | "disconnected";
  /** Set when the good seeder may serve at once (the bad peer is still dropped before the end). */
  readonly noGate?: boolean;
}

const garbage = randomBytes(seeded(31337), 512);

const badCases: BadCase[] = [
  {
    name: "(a) corrupt blocks: the peer is banned",
    bad: (t, log) => seeder({ meta: t.meta, payload: t.payload, log, answer: () => "corrupt" }),
    action: "banned",
  },
  {
    name: "(b1) a lying bitfield, requests never answered: dropped after the request time-out",
    bad: (t, log) => seeder({ meta: t.meta, payload: t.payload, log, answer: () => "ignore" }),
    action: "disconnected",
  },
  {
    name: "(b2) a lying have-all, every request rejected: dropped",
    bad: (t, log) =>
      seeder({ meta: t.meta, payload: t.payload, log, fast: true, haveAll: true, answer: () => "reject" }),
    action: "disconnected",
  },
  {
    name: "(c) stalls after unchoking and a few blocks: dropped after two time-outs",
    bad: (t, log) => seeder({ meta: t.meta, payload: t.payload, log, answer: (_r, n) => (n < 3 ? "serve" : "ignore") }),
    action: "disconnected",
  },
  {
    name: "(d) an oversized message: dropped",
    bad: (t) =>
      seeder({
        meta: t.meta,
        payload: t.payload,
        afterOpening: async (w) => {
          const prefix = new Uint8Array(8);
          new DataView(prefix.buffer).setUint32(0, MAX_MESSAGE_BYTES + 1);
          await w.sendRaw(prefix);
          return true;
        },
      }),
    action: "disconnected",
  },
  {
    name: "(e) garbage after the handshake: dropped",
    bad: (t) =>
      seeder({
        meta: t.meta,
        payload: t.payload,
        afterOpening: async (w) => {
          await w.sendRaw(garbage);
          return true;
        },
      }),
    action: "disconnected",
  },
  {
    name: "(e2) a malformed message after the handshake: dropped",
    bad: (t) =>
      seeder({
        meta: t.meta,
        payload: t.payload,
        afterOpening: async (w) => {
          await w.sendRaw(new Uint8Array([0, 0, 0, 3, 4, 0, 0, ...garbage.subarray(0, 64)])); // a 2-byte `have`
          return true;
        },
      }),
    action: "disconnected",
  },
];

Deno.test("runSession() completes with a good seeder beside a bad peer, and drops the bad peer", async (t) => {
  for (const c of badCases) {
    await t.step(c.name, async () => {
      const tor = single(2);
      await withTemp(async (dir) => {
        const badLog: LoggedReq[] = [];
        const bad = new FakePeer(c.bad(tor, badLog));
        const open = gate();
        // the good seeder waits for the bad peer to be dropped, so the drop is the session's doing, not shutdown's
        const good = new FakePeer(
          seeder({ meta: tor.meta, payload: tor.payload, gate: c.noGate ? undefined : open.promise }),
        );
        const started = performance.now();
        let run: Run;
        try {
          run = await using([bad, good], () =>
            fetchFrom(tor.meta, dir, [bad, good], {
              stallTimeoutMs: 28_000,
              timeoutMs: 29_000,
              onEvent: (e) => {
                if (e.event === "peer" && e.address === bad.address && e.action !== "connected") open.open();
              },
            }));
        } finally {
          open.open();
        }
        sameBytes(await readBack(tor.meta, dir), tor.payload, "file");
        const dropped = run.peerEvents(bad.address);
        assert(dropped.length > 0, "the bad peer was never dropped");
        assertEquals(dropped[0].action, c.action, `first drop: ${JSON.stringify(dropped[0])}`);
        assert(dropped[0].reason !== "shutting down", `dropped only at shutdown: ${JSON.stringify(dropped[0])}`);
        const d = run.done();
        assertEquals([d.complete, d.verified], [true, tor.payload.length]);
        console.log(
          `  ${c.name}: ${Math.round(performance.now() - started)} ms, ${badLog.length} requests to the bad peer, ` +
            `"${dropped[0].reason}"`,
        );
      });
    });
  }
});

Deno.test({
  name: "runSession() does not re-request a block from the peer that just rejected it",
  fn: async () => {
    const tor = single(11, 8);
    await withTemp(async (dir) => {
      const log: LoggedReq[] = [];
      const bad = new FakePeer(
        seeder({ meta: tor.meta, payload: tor.payload, log, fast: true, haveAll: true, answer: () => "reject" }),
      );
      await using([bad], async () => {
        await assertRejects(() => fetchFrom(tor.meta, dir, [bad], { timeoutMs: 2000 }), FetchError);
      });
      const blocks = requestsFor(tor.meta, [...Array(tor.meta.pieceCount).keys()]).length;
      assert(log.length <= 2 * blocks, `${log.length} requests for ${blocks} blocks in 2 s`);
    });
  },
});

Deno.test("runSession() uses the Fast extension: have-all, allowed-fast while choked, rejects re-requested", async () => {
  const t = single(3, 12);
  await withTemp(async (dir) => {
    const log: LoggedReq[] = [];
    const rejected = new Set<string>();
    const answer = (r: Req): Answer => {
      const k = `${r.index}/${r.begin}`;
      if (r.index % 3 === 1 && !rejected.has(k)) {
        rejected.add(k);
        return "reject";
      }
      return "serve";
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const later = new Promise((r) => (timer = setTimeout(r, 500)));
    const peer = new FakePeer(seeder({
      meta: t.meta,
      payload: t.payload,
      fast: true,
      extended: true,
      haveAll: true,
      allowedFast: [0, 5],
      gate: later,
      answer,
      log,
    }));
    try {
      const run = await using([peer], () => fetchFrom(t.meta, dir, [peer]));
      sameBytes(await readBack(t.meta, dir), t.payload, "file");
      assertEquals(run.done().complete, true);
      assertEquals(run.done().downloaded, t.payload.length);
      // while choked it asked only for allowed-fast pieces
      const choked = log.filter((r) => r.choked);
      assert(choked.length > 0, "no allowed-fast request while choked");
      assert(choked.every((r) => r.index === 0 || r.index === 5), JSON.stringify(choked));
      assert(rejected.size > 0);
    } finally {
      clearTimeout(timer);
    }
  });
});

Deno.test("runSession() fetches a multi-file torrent with an empty file and a short last piece", async () => {
  const rand = seeded(5);
  const t = makeTorrent({
    name: "multi",
    pieceLength: PIECE,
    files: [
      { path: ["a.bin"], data: randomBytes(rand, 40_000) },
      { path: ["empty.txt"], data: new Uint8Array(0) },
      { path: ["sub", "b.bin"], data: randomBytes(rand, 50_001) },
      { path: ["sub", "c.bin"], data: randomBytes(rand, 7) },
    ],
  });
  assertEquals(t.meta.pieceCount, 3);
  await withTemp(async (dir) => {
    const peer = new FakePeer(seeder({ meta: t.meta, payload: t.payload }));
    const run = await using([peer], () => fetchFrom(t.meta, dir, [peer]));
    assertEquals(run.done().complete, true);
    sameBytes(await readBack(t.meta, dir), t.payload, "files");
    assertEquals((await Deno.stat(`${dir}/multi/empty.txt`)).size, 0);
    assertEquals((await Deno.stat(`${dir}/multi/sub/c.bin`)).size, 7);
    assertEquals(run.done().downloaded, t.payload.length);
  });
});

Deno.test("runSession() resumes: a second run fetches nothing; --check refetches only a corrupted piece", async () => {
  const t = single(6, 10);
  await withTemp(async (dir) => {
    const log: LoggedReq[] = [];
    const peer = new FakePeer(seeder({ meta: t.meta, payload: t.payload, log }));
    await using([peer], async () => {
      const first = await fetchFrom(t.meta, dir, [peer]);
      assertEquals([first.done().complete, first.done().downloaded], [true, t.payload.length]);

      const second = await fetchFrom(t.meta, dir, [peer]);
      assertEquals([second.done().complete, second.done().downloaded, second.done().verified], [
        true,
        0,
        t.payload.length,
      ]);

      const path = `${dir}/${t.meta.name}`;
      const at = 4 * PIECE + 123; // piece 4
      const f = await Deno.open(path, { read: true, write: true });
      try {
        await f.seek(at, Deno.SeekMode.Start);
        await f.write(new Uint8Array([t.payload[at] ^ 0x5a]));
      } finally {
        f.close();
      }
      const later = new Date(Date.now() + 5000);
      await Deno.utime(path, later, later);
      log.length = 0;
      const third = await fetchFrom(t.meta, dir, [peer], { check: true });
      assertEquals([third.done().complete, third.done().downloaded], [true, PIECE]);
      assertEquals([...new Set(log.map((r) => r.index))], [4]);
      sameBytes(await readBack(t.meta, dir), t.payload, "file after repair");
    });
  });
});

// ---- protocol violations the session checks itself -------------------------------------------------------------

const violations: { name: string; opening: Uint8Array; fast?: boolean }[] = [
  // the torrent has 20 pieces: a bitfield is 3 bytes, the last 4 bits spare
  { name: "a bitfield of the wrong length", opening: new Uint8Array([0, 0, 0, 2, 5, 0xff]) },
  { name: "a bitfield with spare bits set", opening: new Uint8Array([0, 0, 0, 4, 5, 0xff, 0xff, 0xff]) },
  { name: "a have for a piece past the end", opening: new Uint8Array([0, 0, 0, 5, 4, 0, 0, 1, 0]) },
  { name: "have-all without the Fast extension", opening: new Uint8Array([0, 0, 0, 1, 14]) },
  { name: "reject without the Fast extension", opening: new Uint8Array([0, 0, 0, 13, 16, ...new Uint8Array(12)]) },
];

Deno.test({
  name: "runSession() drops a peer that breaks a rule the session checks, and completes from a good seeder",
  fn: async (t) => {
    for (const v of violations) {
      await t.step(v.name, async () => {
        const tor = single(7, 20);
        await withTemp(async (dir) => {
          const bad = new FakePeer(seeder({
            meta: tor.meta,
            payload: tor.payload,
            fast: v.fast,
            has: null,
            afterOpening: async (w) => await w.sendRaw(v.opening),
          }));
          const good = new FakePeer(seeder({ meta: tor.meta, payload: tor.payload }));
          const run = await using([bad, good], () => fetchFrom(tor.meta, dir, [bad, good]));
          sameBytes(await readBack(tor.meta, dir), tor.payload, "file");
          const dropped = run.peerEvents(bad.address);
          assert(dropped.length > 0 && dropped[0].reason !== "shutting down", JSON.stringify(dropped));
        });
      });
    }
  },
});

// ---- uploading ---------------------------------------------------------------------------------------------------

interface Seeding {
  readonly port: number;
  readonly events: TimedEvent[];
  /** Settles when the session ends; never rejects (the outcome is in `outcome`). */
  readonly ended: Promise<{ ok: true; result: SessionResult } | { ok: false; error: unknown }>;
  readonly controller: AbortController;
}

/** Starts a seeding session over the whole payload on a free port and waits for it to listen. */
async function startSeeding(tor: ReturnType<typeof single>, dir: string): Promise<Seeding> {
  await Deno.writeFile(`${dir}/${tor.meta.name}`, tor.payload);
  const events: TimedEvent[] = [];
  const controller = new AbortController();
  let heard: (port: number) => void = () => {};
  const listening = new Promise<number>((r) => (heard = r));
  const ended = runSession({
    meta: tor.meta,
    outDir: dir,
    port: 0,
    useTorrentTrackers: false,
    seed: {},
    signal: controller.signal,
    random: seeded(99),
    onEvent: (e) => {
      events.push(e);
      if (e.event === "listening") heard(e.port);
    },
  }).then((result) => ({ ok: true as const, result }), (error) => ({ ok: false as const, error }));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    listening,
    ended.then(() => 0),
    new Promise<number>((r) => (timer = setTimeout(() => r(0), 10_000))),
  ]);
  clearTimeout(timer);
  assert(port > 0, `the seeding session did not listen: ${JSON.stringify(events)}`);
  return { port, events, ended, controller };
}

/** Aborts a seeding session and checks that it rejects with the abort reason. */
async function stopSeeding(s: Seeding): Promise<void> {
  const reason = new Error("test is over");
  s.controller.abort(reason);
  const out = await s.ended;
  assert(!out.ok && out.error === reason, `expected the abort reason, got ${out.ok ? "a result" : String(out.error)}`);
}

const leecherId = new TextEncoder().encode("-LE0001-yyyyyyyyyyyy");

/** Connects a leecher and exchanges handshakes. */
async function leecher(port: number, meta: Metainfo, fast: boolean): Promise<Wire> {
  const w = await Wire.connect(port);
  await w.sendRaw(
    encodeHandshake({ reserved: reservedBits({ fast, extended: true }), infoHash: meta.infoHash, peerId: leecherId }),
  );
  const h = await w.handshake(5000);
  assert(h !== null, "no handshake from the session");
  assertEquals(h.infoHash, meta.infoHash);
  return w;
}

/** Sends interested and waits for unchoke. */
async function getUnchoked(w: Wire): Promise<void> {
  assert(await w.send({ type: "interested" }));
  assert(await w.until("unchoke", 5000) !== null, "never unchoked");
}

Deno.test("runSession() seeds: an interested leecher is unchoked and gets correct data; abort ends it", async () => {
  const tor = single(8, 16);
  await withTemp(async (dir) => {
    const s = await startSeeding(tor, dir);
    const w = await leecher(s.port, tor.meta, true);
    try {
      // the opening: have-all to a Fast peer that we know is complete
      const opening: string[] = [];
      assert(await w.send({ type: "interested" }));
      assert(await w.until("unchoke", 5000, (m) => opening.push(m.type)) !== null, "never unchoked");
      assert(opening.includes("have-all"), opening.join());
      const reqs = requestsFor(tor.meta, [...Array(tor.meta.pieceCount).keys()]);
      for (const r of reqs) assert(await w.send({ type: "request", ...r }));
      const got = new Uint8Array(tor.payload.length);
      for (let k = 0; k < reqs.length; k++) {
        const m = await w.until("piece", 5000);
        assert(m !== null, `block ${k} never came`);
        got.set(m.block, m.index * tor.meta.pieceLength + m.begin);
      }
      sameBytes(got, tor.payload, "served data");
      assert(s.events.some((e) => e.event === "seeding"));
    } finally {
      await stopSeeding(s);
      assert(await w.waitClosed(5000), "the leecher's connection stayed open after the abort");
      await w.close();
    }
    // `done` is still reported, with what was served
    const done = s.events.filter((e): e is DoneEvent => e.event === "done");
    assertEquals(done.map((d) => [d.complete, d.uploaded, d.downloaded]), [[true, tor.payload.length, 0]]);
    // the listener is closed too
    await assertRejects(() => Deno.connect({ hostname: "127.0.0.1", port: s.port }), Error);
  });
});

Deno.test("runSession() rejects requests it will not serve (choked, over 16 KiB), or ignores them without Fast", async (t) => {
  const tor = single(9, 8);
  await withTemp(async (dir) => {
    const s = await startSeeding(tor, dir);
    try {
      await t.step("a Fast peer gets reject", async () => {
        const w = await leecher(s.port, tor.meta, true);
        try {
          assert(await w.send({ type: "request", index: 1, begin: 0, length: 16384 }));
          const m = await w.until("reject", 5000);
          assertEquals(m, { type: "reject", index: 1, begin: 0, length: 16384 });
        } finally {
          await w.close();
        }
      });
      await t.step("an unchoked Fast peer asking for more than 16 KiB gets reject and stays connected", async () => {
        const w = await leecher(s.port, tor.meta, true);
        try {
          await getUnchoked(w);
          assert(await w.send({ type: "request", index: 1, begin: 0, length: 32768 }));
          assertEquals(await w.until("reject", 5000), { type: "reject", index: 1, begin: 0, length: 32768 });
          assert(await w.send({ type: "request", index: 1, begin: 0, length: 16384 }));
          const m = await w.until("piece", 5000);
          assertEquals(m && [m.index, m.begin, m.block.length], [1, 0, 16384]);
        } finally {
          await w.close();
        }
      });
      await t.step("a peer without Fast is ignored", async () => {
        const w = await leecher(s.port, tor.meta, false);
        try {
          const seen: string[] = [];
          assert(await w.send({ type: "request", index: 1, begin: 0, length: 16384 }));
          await getUnchokedSeeing(w, seen);
          assert(await w.send({ type: "request", index: 2, begin: 16384, length: 16384 }));
          const m = await w.until("piece", 5000, (x) => seen.push(x.type));
          assert(m !== null);
          assertEquals([m.index, m.begin], [2, 16384]); // the choked request was dropped, not served late
          assert(!seen.includes("reject"), seen.join());
        } finally {
          await w.close();
        }
      });
    } finally {
      await stopSeeding(s);
    }
  });
});

async function getUnchokedSeeing(w: Wire, seen: string[]): Promise<void> {
  assert(await w.send({ type: "interested" }));
  assert(await w.until("unchoke", 5000, (m) => seen.push(m.type)) !== null, "never unchoked");
}

const badRequests: { name: string; requests: (meta: Metainfo) => Req[] }[] = [
  { name: "a piece past the end", requests: (m) => [{ index: m.pieceCount, begin: 0, length: 16384 }] },
  {
    name: "a block past the end of its piece",
    requests: (m) => [{ index: 0, begin: m.pieceLength - 100, length: 16384 }],
  },
  {
    name: "a block past the end of the short last piece",
    requests: (m) => [{ index: m.pieceCount - 1, begin: 0, length: 16384 }],
  },
  {
    name: `a length over ${MAX_BLOCK_BYTES} bytes`,
    requests: () => [{ index: 0, begin: 0, length: MAX_BLOCK_BYTES + 1 }],
  },
  { name: "a zero length", requests: () => [{ index: 0, begin: 0, length: 0 }] },
  {
    name: `a flood of more than ${MAX_PEER_QUEUED_REQUESTS} requests`,
    requests: (m) =>
      Array.from({ length: 10 * MAX_PEER_QUEUED_REQUESTS }, (_, k) => ({
        index: k % (m.pieceCount - 1),
        begin: 0,
        length: 16384,
      })),
  },
];

Deno.test({
  name: "runSession() drops a leecher that sends a bad request and keeps seeding",
  fn: async (t) => {
    const tor = single(10, 8);
    for (const c of badRequests) {
      await t.step(c.name, async () => {
        await withTemp(async (dir) => {
          const s = await startSeeding(tor, dir);
          try {
            const w = await leecher(s.port, tor.meta, true);
            try {
              await getUnchoked(w);
              await w.sendRaw(encodeRequests(c.requests(tor.meta))); // may fail part-way once the session hangs up
              assert(await w.waitClosed(5000), "the connection stayed open");
            } finally {
              await w.close();
            }
            // and the session still serves others
            const ok = await leecher(s.port, tor.meta, true);
            try {
              await getUnchoked(ok);
              assert(await ok.send({ type: "request", index: 0, begin: 0, length: 16384 }));
              const m = await ok.until("piece", 5000);
              const out = await Promise.race([s.ended, Promise.resolve(null)]);
              assert(m !== null, `the session stopped serving: ${out && !out.ok ? String(out.error) : "?"}`);
            } finally {
              await ok.close();
            }
          } finally {
            await stopSeeding(s);
          }
        });
      });
    }
  },
});

/** Many request messages in one buffer, so they arrive together. */
function encodeRequests(reqs: readonly Req[]): Uint8Array {
  const bytes = new Uint8Array(reqs.length * 17);
  reqs.forEach((r, k) => {
    const v = new DataView(bytes.buffer, k * 17, 17);
    v.setUint32(0, 13);
    v.setUint8(4, 6);
    v.setUint32(5, r.index);
    v.setUint32(9, r.begin);
    v.setUint32(13, r.length);
  });
  return bytes;
}

Deno.test("runSession(): a complete download whose caller drops the record saves none (no flush for it)", async (t) => {
  const tor = single(31);
  const recordOf = (dir: string) => `${dir}/.btfetch/${tor.meta.infoHashHex}/resume.json`;
  const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
  for (const drop of [false, true]) {
    await t.step(`dropRecordWhenComplete: ${drop}`, async () => {
      await withTemp(async (dir) => {
        const good = new FakePeer(seeder({ meta: tor.meta, payload: tor.payload }));
        const run = await using([good], () => fetchFrom(tor.meta, dir, [good], { dropRecordWhenComplete: drop }));
        assertEquals(run.result.complete, true);
        sameBytes(await readBack(tor.meta, dir), tor.payload, "file");
        // without the option the record is saved at completion (and its data flushed first); with it, none is
        assertEquals(await exists(recordOf(dir)), !drop);
      });
    });
  }
});

Deno.test("runSession() saves resume records while the download runs (the flush off the main thread), whole at the end", async () => {
  const tor = single(32, 24);
  const recordOf = (dir: string) => `${dir}/.btfetch/${tor.meta.infoHashHex}/resume.json`;
  const countOf = (b64: string) => {
    let n = 0;
    for (const byte of Uint8Array.fromBase64(b64)) for (let b = byte; b; b &= b - 1) n++;
    return n;
  };
  await withTemp(async (dir) => {
    const good = new FakePeer(seeder({ meta: tor.meta, payload: tor.payload }));
    const seen: number[] = [];
    const poll = setInterval(() => {
      try {
        seen.push(countOf(JSON.parse(Deno.readTextFileSync(recordOf(dir))).have));
      } catch { /* not yet, or being replaced */ }
    }, 50);
    let run: Run;
    try {
      // ~780 KB at 400 KB/s: about two seconds, a checkpoint every 200 ms
      run = await using(
        [good],
        () => fetchFrom(tor.meta, dir, [good], { resumeSaveMs: 200, maxDownloadRate: 400_000 }),
      );
    } finally {
      clearInterval(poll);
    }
    assertEquals(run.result.complete, true);
    sameBytes(await readBack(tor.meta, dir), tor.payload, "file");
    const partial = seen.filter((n) => n > 0 && n < tor.meta.pieceCount);
    assert(partial.length > 0, `no partial record seen while downloading: ${seen.join(" ")}`);
    for (let i = 1; i < seen.length; i++) assert(seen[i] >= seen[i - 1], `a record went back: ${seen.join(" ")}`);
    assertEquals(countOf(JSON.parse(await Deno.readTextFile(recordOf(dir))).have), tor.meta.pieceCount);
  });
});
