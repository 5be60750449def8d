/**
 * The swarm state machine (lib/engine/swarm.ts) driven whole on a virtual clock: `admit`, `addPeer` + `greet`,
 * `peerMessage`, `serveUploads` on drain, `pieceOutcome` and `tick`, through the harness in `_sim.ts` (a recording
 * SwarmIO, simulated peers with latency and rate, a SHA-1 writer). No sockets, no timers, nothing sleeps.
 */
import { assert, assertEquals } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { makeTorrent } from "../_torrent.ts";
import { BLOCK_BYTES } from "../../lib/limits.ts";
import { BAN_STRIKES } from "../../lib/engine/blame.ts";
import { isBanned } from "../../lib/engine/peer_pool.ts";
import { peerShares } from "../../lib/engine/swarm.ts";
import { type Behaviour, Sim, type SimOptions } from "./_sim.ts";

const B = BLOCK_BYTES;
const PIECE = 64 * 1024;

/** A single-file torrent of `bytes` random bytes in 64 KiB pieces. */
function torrent(bytes: number, seed = 1): Pick<SimOptions, "meta" | "payload"> {
  const { meta, payload } = makeTorrent({
    name: "data.bin",
    pieceLength: PIECE,
    files: randomBytes(seeded(seed), bytes),
  });
  return { meta, payload };
}

/** 2 MiB less 5000 bytes: 32 pieces, the last one short (3 whole blocks and one of 11384 bytes). */
const MAIN = torrent(2 * 1024 * 1024 - 5000);

/** A 50 MB/s seeder with a 1 ms round trip. */
const SEEDER: Behaviour = { label: "fast seeder", oneWayMs: 0.5, rate: 50e6 };
/** Has everything, unchokes, takes requests and answers none; pushes a 1-byte block nobody asked for every 5 s. */
const DRIP: Behaviour = { label: "drip peer", oneWayMs: 0.5, mute: true, dripEveryMs: 5_000 };
/** Answers one requested block every 4 s. */
const SLOW: Behaviour = { label: "slow honest peer", oneWayMs: 0.5, serveMs: 4_000 };
/** Has everything, unchokes, and never answers a request. */
const MUTE: Behaviour = { label: "mute peer", oneWayMs: 0.5, mute: true };

// ---- 1. one fast seeder --------------------------------------------------------------------------------------------

Deno.test("swarm: one fast seeder completes the download, every piece verified once, counters exact", () => {
  const sim = new Sim({ ...MAIN });
  const seeder = sim.connect(SEEDER, 0);
  const end = sim.runToEnd(10_000);
  const sw = sim.sw;
  const total = MAIN.meta.totalLength;
  assertEquals(end.kind, "stop");
  assert(end.at > 30 && end.at < 500, `complete at ${end.at} ms`);
  assertEquals(sim.completedCalls, 1);
  assertEquals(sim.eventsOf("complete"), [{ event: "complete", verified: total, elapsed_ms: Math.round(end.at) }]);
  assertEquals(sim.eventsOf("file-complete"), [{ event: "file-complete", index: 1, path: "data.bin" }]);
  assertEquals(sim.eventsOf("piece-failed"), []);
  // each piece submitted once, intact, and passed
  assertEquals(sim.submits.map((s) => s.index).sort((a, b) => a - b), [...Array(MAIN.meta.pieceCount).keys()]);
  assert(sim.submits.every((s) => s.intact));
  assert(sim.outcomes.every((o) => o.ok && !o.digests));
  assert(sw.picker.have.complete);
  assert(sw.stopped);
  assertEquals(
    [sw.ts.verifiedBytes, sw.ts.downloaded, sw.ts.uploaded, sw.ts.wasted, sw.ts.hashFailures],
    [total, total, 0, 0, 0],
  );
  // every block was requested exactly once, with the right length
  const reqs = sim.sentTo(seeder.id).filter((m) => m.type === "request");
  assertEquals(reqs.length, MAIN.meta.pieceCount * 4); // 127 whole blocks and the last piece's short tail
  assertEquals(new Set(reqs.map((r) => `${r.index}:${r.begin}`)).size, reqs.length);
  assertEquals(reqs.reduce((n, r) => n + r.length, 0), total);
  assertEquals(seeder.served, reqs.length);
  // the opening (ext handshake, have-none), interest, then a have per piece; once complete, both seeding: closed
  const to = sim.sentTo(seeder.id);
  assertEquals(to.slice(0, 3).map((m) => m.type), ["extended", "have-none", "interested"]);
  assertEquals(to.filter((m) => m.type === "have").length, MAIN.meta.pieceCount);
  assertEquals(to.at(-1)?.type, "not-interested");
  assertEquals(sim.closed.map((c) => c.peer), [seeder.id]);
  const gone = sim.eventsOf("peer").filter((e) => e.action !== "connected");
  assertEquals(gone.map((e) => [e.action, e.reason, e.downloaded, e.uploaded]), [
    ["disconnected", "both seeding", total, 0],
  ]);
  assertEquals(peerShares(sw), [{ address: seeder.key, client: "fast seeder", downloaded: total, uploaded: 0 }]);
  assertEquals([sw.peers.size, sw.pool.connected, sw.buffers.size, sw.verifying.size], [0, 0, 0, 0]);
});

// ---- 2. a fast seeder beside a drip, a slow and a mute peer ----------------------------------------------------------

/** Runs `peers` (behaviour, connect time) to completion. */
function download(peers: readonly (readonly [Behaviour, number])[]): Sim {
  const sim = new Sim({ ...MAIN });
  for (const [b, at] of peers) sim.connect(b, at);
  sim.runToEnd(120_000);
  return sim;
}

Deno.test("swarm: bad peers beside a fast seeder delay completion by about a second at most; drips are wasted", async (t) => {
  const alone = download([[SEEDER, 0]]).finished?.at ?? NaN;
  const half = alone / 2;
  const rows: { name: string; peers: (readonly [Behaviour, number])[]; seederAt: number }[] = [
    {
      name: "drip, slow and mute peers connect with the seeder",
      peers: [[DRIP, 0], [SLOW, 0], [MUTE, 0], [SEEDER, 0]],
      seederAt: 0,
    },
    {
      name: "drip, slow and mute peers connect after the seeder",
      peers: [[SEEDER, 0], [DRIP, 0], [SLOW, 0], [MUTE, 0]],
      seederAt: 0,
    },
    {
      name: "the three bad peers alone for 12 s before the seeder comes",
      peers: [[DRIP, 0], [SLOW, 0], [MUTE, 0], [SEEDER, 12_000]],
      seederAt: 12_000,
    },
    {
      name: "the three bad peers alone for 40 s (the drip and mute ones time out twice and are dropped)",
      peers: [[DRIP, 0], [SLOW, 0], [MUTE, 0], [SEEDER, 40_000]],
      seederAt: 40_000,
    },
    {
      name: "the three bad peers join mid-download",
      peers: [[SEEDER, 0], [DRIP, half], [SLOW, half], [MUTE, half]],
      seederAt: 0,
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const sim = download(r.peers);
      const sw = sim.sw;
      const end = sim.finished?.at ?? NaN;
      const late = end - (r.seederAt + alone);
      assert(late <= 1_000, `complete at ${end} ms: ${late} ms after the seeder alone (${alone} ms)`);
      assertEquals([sim.completedCalls, sim.eventsOf("complete").length], [1, 1]);
      assert(sw.picker.have.complete);
      // no drip byte reached a piece: every submitted piece was intact and passed, nothing failed
      assert(sim.submits.every((s) => s.intact), "a piece was submitted with foreign bytes");
      assertEquals([sw.ts.hashFailures, sim.eventsOf("piece-failed").length], [0, 0]);
      assertEquals(sim.submits.length, MAIN.meta.pieceCount);
      // the drip's bytes were counted, as downloaded and as wasted; every byte not wasted is in exactly one piece
      const drip = sim.remotes.find((x) => x.b === DRIP);
      assert(drip !== undefined && drip.drips >= 1, `drips: ${drip?.drips}`);
      const dripGone = sim.eventsOf("peer").find((e) => e.address === drip.key && e.action !== "connected");
      assertEquals(dripGone?.downloaded, drip.drips); // it sent nothing else
      assert(sw.ts.wasted >= drip.drips, `wasted ${sw.ts.wasted} < ${drip.drips} drip bytes`);
      assertEquals(sw.ts.downloaded - sw.ts.wasted, MAIN.meta.totalLength);
      // only the drips and a few endgame copies are wasted
      assert(sw.ts.wasted <= 8 * B + drip.drips, `${sw.ts.wasted} bytes wasted`);
      assertEquals(sim.faults, []);
    });
  }
});

// ---- 3. corrupt data: strikes and smart bans -----------------------------------------------------------------------

Deno.test("swarm: a peer that alone sends corrupt pieces is banned after BAN_STRIKES failures", () => {
  const sim = new Sim({ ...MAIN, swarm: { stallTimeoutMs: 60_000 } });
  const liar = sim.connect({ label: "liar", oneWayMs: 0.5, rate: 10e6, corrupt: () => true }, 0);
  sim.runUntil(5_000);
  const sw = sim.sw;
  const log = sim.events.map((x) => x.e);
  const failed = log.flatMap((e, i) => (e.event === "piece-failed" ? [i] : []));
  const banned = log.findIndex((e) => e.event === "peer" && e.action === "banned");
  assert(failed.length >= BAN_STRIKES, `${failed.length} failed pieces`);
  // banned right after its BAN_STRIKES-th failed piece, and not before
  assert(banned > failed[BAN_STRIKES - 1] && (failed.length === BAN_STRIKES || banned < failed[BAN_STRIKES]));
  for (const i of failed.slice(0, BAN_STRIKES)) {
    const e = log[i];
    assert(e.event === "piece-failed");
    assertEquals(e.peers, [liar.key]);
  }
  assertEquals(log[banned], {
    event: "peer",
    action: "banned",
    address: liar.key,
    incoming: false,
    source: "manual",
    client: "liar",
    reason: "sent pieces that failed their hash",
    downloaded: sw.ts.downloaded,
    uploaded: 0,
  });
  assertEquals(sim.closed.map((c) => c.peer), [liar.id]);
  assert(isBanned(sw.pool, liar.address));
  assertEquals([sw.peers.size, sw.pool.connected, sw.pool.bans], [0, 0, 1]);
  // the failed pieces are counted and wasted, none verified, and none is partly held any more
  assertEquals(sw.ts.hashFailures, failed.length);
  assertEquals(sw.ts.wasted, failed.length * PIECE);
  assertEquals([sw.picker.have.count, sw.ts.verifiedBytes, sim.completedCalls], [0, 0, 0]);
  assert(sim.outcomes.every((o) => !o.ok && o.digests));
  // it cannot come back
  const again = sim.connect({ label: "liar again", oneWayMs: 0.5, rate: 10e6 }, 5_001, {
    incoming: true,
    address: liar.address,
  });
  sim.runUntil(5_100);
  assertEquals([sw.peers.size, again.id, again.closed], [0, 0, true]);
});

Deno.test("swarm: a piece built from two peers fails; when it passes later the liar is banned, the honest peer kept", () => {
  // one piece of 4 blocks: the liar answers blocks 0 and 1 (block 1 corrupt) and chokes us; the honest peer, which
  // arrives later, fetches blocks 2 and 3, so the piece fails with two senders (no strike for either); refetched from
  // the honest peer alone, it passes, and its block digests show who lied
  const one = torrent(PIECE, 5);
  const sim = new Sim({ ...one });
  const liar = sim.connect({ label: "liar", oneWayMs: 0.5, rate: 10e6, chokeAfter: 2, corrupt: (_, b) => b === B }, 0);
  const honest = sim.connect({ label: "honest", oneWayMs: 0.5, rate: 10e6 }, 1_000);
  sim.runToEnd(30_000);
  const sw = sim.sw;
  assertEquals(sim.outcomes.map((o) => [o.index, o.ok, o.digests]), [[0, false, true], [0, true, true]]);
  assertEquals(sim.eventsOf("piece-failed"), [{ event: "piece-failed", piece: 0, peers: [liar.key, honest.key] }]);
  const gone = sim.eventsOf("peer").filter((e) => e.action !== "connected");
  assertEquals(gone.map((e) => [e.address, e.action, e.reason]), [
    [liar.key, "banned", "sent a block that failed its hash"],
    [honest.key, "disconnected", "both seeding"],
  ]);
  // the ban came with the passing piece, not with the failure
  const banAt = sim.events.find((x) => x.e.event === "peer" && x.e.action === "banned")?.at;
  assertEquals(banAt, sim.outcomes[1].at);
  assert(isBanned(sw.pool, liar.address));
  assert(!isBanned(sw.pool, honest.address));
  assertEquals(sw.pool.bans, 1);
  assertEquals([sw.ts.hashFailures, sw.ts.wasted, sw.ts.verifiedBytes], [1, PIECE, PIECE]);
  assertEquals([liar.served, sim.completedCalls], [2, 1]);
});
