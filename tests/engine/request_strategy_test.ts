/**
 * The request strategy (request_strategy.ts with requests.ts and picker.ts) in unit rows, then in a small simulation
 * on a virtual clock: our side mirrors what lib/engine/swarm.ts (session.ts until 556dfb2) does with each message,
 * block and tick (peerMessage, fillRequests, onBlock, cancelDuplicates, pieceOutcome, complete, tick, dropPeer), and
 * each remote peer is a script of how it answers requests. No sockets, nothing sleeps.
 */
import { assert, assertEquals } from "../_assert.ts";
import { seeded } from "../_gen.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import { BLOCK_BYTES, MAX_OUTSTANDING_REQUESTS } from "../../lib/limits.ts";
import { WireError } from "../../lib/wire/frame.ts";
import type { Message } from "../../lib/wire/messages.ts";
import {
  addPeerPieces,
  createPicker,
  isDone,
  isInteresting,
  type Picker,
  pieceComplete,
  pieceVerified,
  receiveBlock,
  releaseBlock,
  removePeerPieces,
  requestsOut,
} from "../../lib/engine/picker.ts";
import { applyMessage, createPeerState, type PeerState } from "../../lib/engine/peer_state.ts";
import { addBytes } from "../../lib/engine/rate.ts";
import {
  ENDGAME_COMMIT_WINDOW_MS,
  planRequests,
  REQUEST_BATCH,
  type StrategyPeer,
  worthDuplicating,
} from "../../lib/engine/request_strategy.ts";
import {
  blockArrived,
  blockKey,
  createQueue,
  dropAll,
  dropRequest,
  DRY_MS,
  expireRequests,
  INITIAL_DEPTH,
  type RequestQueue,
  requestsSent,
} from "../../lib/engine/requests.ts";
import { MAX_TIMEOUTS, PIECE_MEMORY_BYTES } from "../../lib/engine/swarm.ts";
import { createTorrentState, pieceVerifiedIn, type TorrentState } from "../../lib/engine/torrent_state.ts";

const B = BLOCK_BYTES;

// ---- planRequests() and worthDuplicating() rows ---------------------------------------------------------------------

function smallPicker(pieces = 8, pieceLen = 4 * B): Picker {
  return createPicker({
    pieceCount: pieces,
    pieceLength: pieceLen,
    totalLength: pieces * pieceLen,
    have: new Bitfield(pieces),
    wanted: Bitfield.full(pieces),
    random: seeded(3),
  });
}

function peer(
  o: { interested?: boolean; choked?: boolean; allowedFast?: number[]; pieces?: number } = {},
): StrategyPeer {
  const state = createPeerState(o.pieces ?? 8, true, true);
  state.has = Bitfield.full(o.pieces ?? 8);
  state.amInterested = o.interested ?? true;
  state.peerChoking = o.choked ?? false;
  for (const i of o.allowedFast ?? []) state.allowedFast.add(i);
  return { state, queue: createQueue(0) };
}

/** Makes the queue's rate meter read `rate` bytes a second at time 0 (the meter reads its value / RATE_TAU_MS, 2 s). */
function learnt(q: RequestQueue, rate: number): void {
  addBytes(q.rate, rate * 2, 0);
}

Deno.test("planRequests() asks an unchoked, interesting peer for what its pipeline wants", async (t) => {
  const rows: {
    name: string;
    peer: StrategyPeer;
    setup?: (p: StrategyPeer, picker: Picker) => void;
    limit?: (n: number) => number;
    want: number;
    /** The pieces asked for, when it matters. */
    pieces?: number[];
    /** An offset (in piece 0) that must not be asked for. */
    notBegin?: number;
  }[] = [
    { name: "a new peer gets INITIAL_DEPTH requests", peer: peer(), want: INITIAL_DEPTH },
    { name: "not interested: nothing", peer: peer({ interested: false }), want: 0 },
    { name: "choked, no allowed-fast pieces: nothing", peer: peer({ choked: true }), want: 0 },
    {
      name: "choked: only its allowed-fast pieces",
      peer: peer({ choked: true, allowedFast: [5] }),
      want: 4,
      pieces: [5],
    },
    {
      name: "a rate limit lowers the count",
      peer: peer(),
      limit: (n) => Math.min(n, 3),
      want: 3,
    },
    { name: "a rate limit of nothing: nothing", peer: peer(), limit: () => 0, want: 0 },
    {
      name: `fewer than REQUEST_BATCH (${REQUEST_BATCH}) wanted while at least that many are out: nothing yet`,
      peer: peer(),
      setup: (p) => {
        learnt(p.queue, 4 * B); // the rate lets the pipeline grow to 2 * 4 + 16 blocks
        p.queue.depth = REQUEST_BATCH + 5;
        requestsSent(
          p.queue,
          Array.from({ length: REQUEST_BATCH }, (_, k) => ({ index: 100, begin: k * B, length: B })),
          0,
        );
      },
      want: 0,
    },
    {
      name: "a batch's worth wanted: topped up",
      peer: peer(),
      setup: (p) => {
        learnt(p.queue, 8 * B); // 2 * 8 + 16 blocks
        p.queue.depth = 2 * REQUEST_BATCH;
        requestsSent(
          p.queue,
          Array.from({ length: REQUEST_BATCH }, (_, k) => ({ index: 100, begin: k * B, length: B })),
          0,
        );
      },
      want: REQUEST_BATCH,
    },
    {
      name: "few out: topped up even by less than a batch",
      peer: peer(),
      setup: (p) => requestsSent(p.queue, [{ index: 100, begin: 0, length: B }], 0),
      want: INITIAL_DEPTH - 1,
    },
    {
      name: "a block it rejected a moment ago is not asked again",
      peer: peer({ pieces: 1 }),
      setup: (p) => {
        applyMessage(p.state, { type: "reject", index: 0, begin: B, length: B }, 0);
      },
      want: 3,
      notBegin: B,
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const picker = smallPicker(r.peer.state.pieceCount);
      r.setup?.(r.peer, picker);
      // the other queues given as a function: asked for once, and only when blocks are picked
      let asked = 0;
      const others = () => {
        asked++;
        return [];
      };
      const got = planRequests(picker, r.peer, others, 0, r.limit);
      assertEquals(got.length, r.want);
      assertEquals(asked, r.want > 0 ? 1 : 0);
      if (r.pieces) assertEquals([...new Set(got.map((g) => g.index))], r.pieces);
      for (const g of got) {
        assertEquals(r.peer.queue.outstanding.has(blockKey(g.index, g.begin)), false);
        assertEquals(requestsOut(picker, g.index, g.begin), 1); // marked requested in the picker
      }
      if (r.notBegin !== undefined) assertEquals(got.some((g) => g.index === 0 && g.begin === r.notBegin), false);
    });
  }
});

/** A queue that has learnt `rate` bytes a second at time 0, with `n` blocks of piece 0.. out, oldest first. */
function holder(rate: number, n: number): RequestQueue {
  const q = createQueue(0);
  if (rate > 0) learnt(q, rate);
  requestsSent(
    q,
    Array.from({ length: n }, (_, k) => ({ index: Math.floor(k / 16), begin: (k % 16) * B, length: B })),
    0,
  );
  return q;
}

function keyAt(position: number): number {
  return blockKey(Math.floor(position / 16), (position % 16) * B);
}

Deno.test("worthDuplicating() leaves a block to a holder that will send it within the commit window", async (t) => {
  // 1 MB/s: 500 kB (30.5 blocks) in ENDGAME_COMMIT_WINDOW_MS
  assertEquals(ENDGAME_COMMIT_WINDOW_MS, 500);
  const rows: { name: string; holders: RequestQueue[]; position: number; want: boolean }[] = [
    { name: "nobody holds it", holders: [holder(1e6, 0)], position: 0, want: true },
    { name: "a holder that has sent nothing (rate 0)", holders: [holder(0, 40)], position: 0, want: true },
    {
      name: "a holder too slow for even one block in the window",
      holders: [holder(30_000, 40)],
      position: 0,
      want: true,
    },
    { name: "a 1 MB/s holder, first in its queue", holders: [holder(1e6, 40)], position: 0, want: false },
    { name: "a 1 MB/s holder, the 30th in its queue", holders: [holder(1e6, 40)], position: 29, want: false },
    {
      name: "a 1 MB/s holder, the 31st in its queue (past the window)",
      holders: [holder(1e6, 40)],
      position: 30,
      want: true,
    },
    { name: "a 1 MB/s holder, far back in its queue", holders: [holder(1e6, 200)], position: 150, want: true },
    { name: "one slow and one committed holder", holders: [holder(0, 40), holder(1e6, 40)], position: 3, want: false },
  ];
  for (const r of rows) {
    await t.step(r.name, () => assertEquals(worthDuplicating(r.holders, keyAt(r.position), 0), r.want));
  }
});

// ---- the simulation ----------------------------------------------------------------------------------------------

/** A virtual clock with a queue of timed callbacks. */
interface Clock {
  now: number;
  seq: number;
  readonly heap: { at: number; seq: number; fn: () => void }[];
}

function before(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function schedule(c: Clock, at: number, fn: () => void): void {
  const h = c.heap;
  h.push({ at: Math.max(at, c.now), seq: c.seq++, fn });
  for (let i = h.length - 1; i > 0;) {
    const p = (i - 1) >> 1;
    if (!before(h[i], h[p])) break;
    [h[i], h[p]] = [h[p], h[i]];
    i = p;
  }
}

function popEvent(c: Clock): { at: number; fn: () => void } | undefined {
  const h = c.heap;
  const top = h[0];
  const last = h.pop();
  if (top === undefined || last === undefined) return undefined;
  if (h.length > 0) {
    h[0] = last;
    for (let i = 0;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l], h[m])) m = l;
      if (r < h.length && before(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
  return top;
}

/** How a remote peer behaves: it has every piece and unchokes us at once; then it answers requests like this. */
interface Behaviour {
  readonly label: string;
  /** ms it takes to send one requested block (its upload rate), in request order; null: it never sends one. */
  readonly serveMs: ((length: number) => number) | null;
  /** One-way latency, ms: requests and cancels reach it, and its blocks reach us, this long after they are sent. */
  readonly oneWayMs: number;
  /** It sends a 1-byte block nobody asked for right after connecting and then every this many ms. */
  readonly dripEveryMs?: number;
}

/** ~500 MB/s, answering each request after 1 ms (the round trip). */
const FAST: Behaviour = { label: "fast seeder", serveMs: (len) => len / 500_000, oneWayMs: 0.5 };
/** Has everything, unchokes, takes requests and answers none; sends one unrequested 1-byte block every 5 s. */
const DRIP: Behaviour = { label: "drip peer", serveMs: null, oneWayMs: 0.5, dripEveryMs: 5_000 };
/** Answers one requested block every 4 s. */
const SLOW: Behaviour = { label: "slow honest peer", serveMs: () => 4_000, oneWayMs: 0.5 };
/** Has everything, unchokes, takes requests and never answers. */
const SILENT: Behaviour = { label: "silent peer", serveMs: null, oneWayMs: 0.5 };
/** An honest 1 MB/s peer: its queue is partly committed in endgame. */
const MEDIUM: Behaviour = { label: "1 MB/s peer", serveMs: (len) => len / 1_000, oneWayMs: 0.5 };

/** The runtime's tick (private to session.ts). */
const TICK_MS = 100;
/** How long the writer thread takes to hash and store a piece. */
const HASH_MS = 0.5;

interface SimPeer extends StrategyPeer {
  readonly id: number;
  readonly b: Behaviour;
  readonly state: PeerState;
  readonly queue: RequestQueue;
  downloaded: number;
  unasked: number;
  closed: boolean;
  // the remote end: requests that reached it and that it has not begun to answer
  readonly inbox: { index: number; begin: number; length: number }[];
  busy: boolean;
}

interface Sim {
  readonly clock: Clock;
  readonly picker: Picker;
  readonly ts: TorrentState;
  readonly peers: Map<number, SimPeer>;
  nextId: number;
  /** Requests sent for a block another peer also had a request out for (endgame duplicates). */
  duplicates: number;
  requests: number;
}

const PIECES = 64;
const PIECE_LEN = 256 * 1024;
const TOTAL = PIECES * PIECE_LEN;
const ZEROS = new Uint8Array(B);

function createSim(seed: number): Sim {
  const have = new Bitfield(PIECES);
  const wanted = Bitfield.full(PIECES);
  const meta = {
    pieceCount: PIECES,
    pieceLength: PIECE_LEN,
    totalLength: TOTAL,
    files: [{ index: 0, path: ["t", "data"], length: TOTAL, offset: 0, padding: false }],
  };
  const sim: Sim = {
    clock: { now: 0, seq: 0, heap: [] },
    // as swarm.ts at its largest: maxPartial from PIECE_MEMORY_BYTES of piece buffers
    picker: createPicker({
      pieceCount: PIECES,
      pieceLength: PIECE_LEN,
      totalLength: TOTAL,
      have,
      wanted,
      random: seeded(seed),
      maxPartial: Math.max(4, Math.min(256, Math.floor(PIECE_MEMORY_BYTES / PIECE_LEN))),
    }),
    ts: createTorrentState(meta, { have, wanted, now: 0 }),
    peers: new Map(),
    nextId: 1,
    duplicates: 0,
    requests: 0,
  };
  const tick = () => {
    simTick(sim);
    if (sim.ts.completeAt === null) schedule(sim.clock, sim.clock.now + TICK_MS, tick);
  };
  schedule(sim.clock, TICK_MS, tick);
  return sim;
}

/** The remote peer `b` connects at `at`: it announces every piece and unchokes us. */
function connectAt(sim: Sim, b: Behaviour, at: number): void {
  schedule(sim.clock, at, () => {
    const p: SimPeer = {
      id: sim.nextId++,
      b,
      state: createPeerState(PIECES, true, true),
      queue: createQueue(sim.clock.now),
      downloaded: 0,
      unasked: 0,
      closed: false,
      inbox: [],
      busy: false,
    };
    sim.peers.set(p.id, p);
    deliver(sim, p, { type: "have-all" });
    deliver(sim, p, { type: "unchoke" });
    const every = b.dripEveryMs;
    if (every !== undefined) {
      const drip = () => {
        if (p.closed || sim.ts.completeAt !== null) return;
        deliver(sim, p, { type: "piece", index: 0, begin: 0, block: ZEROS.subarray(0, 1) });
        schedule(sim.clock, sim.clock.now + every, drip);
      };
      schedule(sim.clock, sim.clock.now + 1, drip);
    }
  });
}

// -- the remote end

function remoteRequest(sim: Sim, p: SimPeer, r: { index: number; begin: number; length: number }): void {
  schedule(sim.clock, sim.clock.now + p.b.oneWayMs, () => {
    p.inbox.push(r);
    pump(sim, p);
  });
}

/** A cancel reaches the peer after the requests sent before it; a block it has begun to send is sent anyway. */
function remoteCancel(sim: Sim, p: SimPeer, index: number, begin: number): void {
  schedule(sim.clock, sim.clock.now + p.b.oneWayMs, () => {
    const i = p.inbox.findIndex((r) => r.index === index && r.begin === begin);
    if (i >= 0) p.inbox.splice(i, 1);
  });
}

/** The peer sends its requested blocks one at a time, in order, each reaching us one-way latency later. */
function pump(sim: Sim, p: SimPeer): void {
  const serve = p.b.serveMs;
  const head = p.inbox[0];
  if (serve === null || p.busy || p.closed || !head) return;
  p.inbox.shift();
  p.busy = true;
  schedule(sim.clock, sim.clock.now + serve(head.length), () => {
    p.busy = false;
    const block = ZEROS.subarray(0, head.length);
    schedule(sim.clock, sim.clock.now + p.b.oneWayMs, () => {
      deliver(sim, p, { type: "piece", index: head.index, begin: head.begin, block });
    });
    pump(sim, p);
  });
}

// -- our end, as swarm.ts

/** A message from the peer (session.ts forPeer + swarm.ts peerMessage): a peer fault drops that peer only. */
function deliver(sim: Sim, p: SimPeer, msg: Message): void {
  if (p.closed) return;
  try {
    onMessage(sim, p, msg);
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    dropPeer(sim, p);
  }
}

function onMessage(sim: Sim, p: SimPeer, msg: Message): void {
  const now = sim.clock.now;
  const s = p.state;
  const e = applyMessage(s, msg, now);
  switch (e.kind) {
    case "unchoked":
      fillRequests(sim, p);
      return;
    case "pieces":
      if (e.previous) removePeerPieces(sim.picker, e.previous);
      addPeerPieces(sim.picker, s.has);
      s.hasCounted = true;
      updateInterest(sim, p);
      fillRequests(sim, p);
      return;
    case "block":
      onBlock(sim, p, e.index, e.begin, e.data, now);
      return;
    default:
      throw new Error(`the simulation does not expect ${e.kind}`);
  }
}

function updateInterest(sim: Sim, p: SimPeer): void {
  p.state.amInterested = sim.ts.completeAt === null && isInteresting(sim.picker, p.state.has);
}

/** A generator, as swarm.ts's otherQueues() is (see the BUG note on the fast-holder rows). */
function* otherQueues(sim: Sim, p: SimPeer): Iterable<RequestQueue> {
  for (const o of sim.peers.values()) if (o !== p) yield o.queue;
}

function fillRequests(sim: Sim, p: SimPeer): void {
  if (p.closed || sim.ts.completeAt !== null) return;
  const now = sim.clock.now;
  const reqs = planRequests(sim.picker, p, otherQueues(sim, p), now);
  if (reqs.length === 0) {
    if (p.state.amInterested && p.queue.outstanding.size === 0 && !p.state.peerChoking) updateInterest(sim, p);
    return;
  }
  requestsSent(p.queue, reqs, now);
  for (const r of reqs) {
    sim.requests++;
    if (requestsOut(sim.picker, r.index, r.begin) > 1) sim.duplicates++;
    remoteRequest(sim, p, r);
  }
}

function onBlock(sim: Sim, p: SimPeer, index: number, begin: number, data: Uint8Array, now: number): void {
  const length = data.length;
  const ts = sim.ts;
  ts.downloaded += length;
  p.downloaded += length;
  if (!blockArrived(p.queue, index, begin, length, now)) {
    ts.wasted += length;
    if (++p.unasked > MAX_OUTSTANDING_REQUESTS) throw new WireError("bad-payload", 0, "too many blocks not asked for");
    return;
  }
  p.state.rejectsInARow = 0;
  if (receiveBlock(sim.picker, index, begin, length) !== "new") {
    ts.wasted += length;
    fillRequests(sim, p);
    return;
  }
  if (requestsOut(sim.picker, index, begin) > 0) cancelDuplicates(sim, p, index, begin);
  if (pieceComplete(sim.picker, index)) schedule(sim.clock, now + HASH_MS, () => onPieceOutcome(sim, index));
  fillRequests(sim, p);
}

function cancelDuplicates(sim: Sim, from: SimPeer, index: number, begin: number): void {
  for (const p of sim.peers.values()) {
    if (p === from) continue;
    const r = dropRequest(p.queue, index, begin);
    if (r) {
      releaseBlock(sim.picker, index, begin);
      remoteCancel(sim, p, index, begin);
    }
  }
}

/** The writer thread says the piece passed its hash (every block here is good). */
function onPieceOutcome(sim: Sim, index: number): void {
  const now = sim.clock.now;
  pieceVerified(sim.picker, index);
  pieceVerifiedIn(sim.ts, index, now);
  for (const p of sim.peers.values()) {
    for (let b = 0; b < PIECE_LEN / B; b++) {
      const r = dropRequest(p.queue, index, b * B);
      if (r) remoteCancel(sim, p, index, r.begin);
    }
  }
  if (isDone(sim.picker) && sim.ts.completeAt === null) {
    sim.ts.completeAt = now;
    for (const p of sim.peers.values()) {
      for (const r of dropAll(p.queue)) remoteCancel(sim, p, r.index, r.begin);
      updateInterest(sim, p);
    }
  }
}

function simTick(sim: Sim): void {
  const now = sim.clock.now;
  for (const p of [...sim.peers.values()]) {
    const expired = expireRequests(p.queue, now);
    if (expired.length > 0) {
      for (const r of expired) releaseBlock(sim.picker, r.index, r.begin);
      if (p.queue.timeouts >= MAX_TIMEOUTS || p.downloaded === 0) {
        dropPeer(sim, p);
        continue;
      }
    }
    fillRequests(sim, p);
  }
}

function dropPeer(sim: Sim, p: SimPeer): void {
  if (p.closed) return;
  p.closed = true;
  sim.peers.delete(p.id);
  for (const r of dropAll(p.queue)) releaseBlock(sim.picker, r.index, r.begin);
  if (p.state.hasCounted) removePeerPieces(sim.picker, p.state.has);
}

interface Outcome {
  /** When the last piece was verified, ms. */
  readonly completeAt: number;
  readonly wasted: number;
  readonly duplicates: number;
  readonly requests: number;
  readonly downloaded: number;
}

/** Runs peers (behaviour, connect time) to completion, or fails after `limitMs` of virtual time. */
function simulate(peers: readonly [Behaviour, number][], seed = 11, limitMs = 120_000): Outcome {
  const sim = createSim(seed);
  for (const [b, at] of peers) connectAt(sim, b, at);
  const c = sim.clock;
  while (sim.ts.completeAt === null) {
    const ev = popEvent(c);
    if (ev === undefined || ev.at > limitMs) {
      throw new Error(
        `not complete after ${c.now} ms: ${sim.picker.have.count} of ${PIECES} pieces, peers ` +
          [...sim.peers.values()].map((p) => `${p.b.label} (${p.queue.outstanding.size} out)`).join(", "),
      );
    }
    c.now = ev.at;
    ev.fn();
  }
  assert(sim.picker.have.complete);
  assertEquals(sim.ts.verifiedBytes, TOTAL);
  return {
    completeAt: sim.ts.completeAt,
    wasted: sim.ts.wasted,
    duplicates: sim.duplicates,
    requests: sim.requests,
    downloaded: sim.ts.downloaded,
  };
}

Deno.test("simulation: a fast seeder alone fetches 16 MiB in well under a second of virtual time", () => {
  const o = simulate([[FAST, 0]]);
  // 16 MiB at 500 MB/s is 34 ms of transfer; slow start and the 1 ms answer delay add a little
  assert(o.completeAt > 30 && o.completeAt < 200, `${o.completeAt} ms`);
  assertEquals([o.wasted, o.duplicates, o.requests, o.downloaded], [0, 0, TOTAL / B, TOTAL]);
});

Deno.test("simulation: a bad peer beside a fast seeder delays the download by at most about a second", async (t) => {
  const alone = simulate([[FAST, 0]]).completeAt;
  const rows: { name: string; peers: [Behaviour, number][]; seederAt: number }[] = [
    { name: "(a) a drip peer connected first", peers: [[DRIP, 0], [FAST, 0]], seederAt: 0 },
    { name: "(a) a drip peer connected after the seeder", peers: [[FAST, 0], [DRIP, 0]], seederAt: 0 },
    {
      name: "(a) a drip peer alone for 7 s before the seeder comes",
      peers: [[DRIP, 0], [FAST, 7_000]],
      seederAt: 7_000,
    },
    { name: "(a) a drip peer joining mid-download", peers: [[FAST, 0], [DRIP, 10]], seederAt: 0 },
    { name: "(b) a slow honest peer connected first", peers: [[SLOW, 0], [FAST, 0]], seederAt: 0 },
    { name: "(b) a slow honest peer connected after the seeder", peers: [[FAST, 0], [SLOW, 0]], seederAt: 0 },
    { name: "(b) a slow honest peer alone for 9 s first", peers: [[SLOW, 0], [FAST, 9_000]], seederAt: 9_000 },
    { name: "(b) a slow honest peer joining mid-download", peers: [[FAST, 0], [SLOW, 10]], seederAt: 0 },
    { name: "(c) a silent peer connected first", peers: [[SILENT, 0], [FAST, 0]], seederAt: 0 },
    { name: "(c) a silent peer connected after the seeder", peers: [[FAST, 0], [SILENT, 0]], seederAt: 0 },
    { name: "(c) a silent peer alone for 5 s first", peers: [[SILENT, 0], [FAST, 5_000]], seederAt: 5_000 },
    { name: "(c) a silent peer joining mid-download", peers: [[FAST, 0], [SILENT, 10]], seederAt: 0 },
    {
      name: "(a)+(b)+(c) all three at once, first",
      peers: [[DRIP, 0], [SLOW, 0], [SILENT, 0], [FAST, 0]],
      seederAt: 0,
    },
    {
      name: "(d) an honest 1 MB/s peer that had time to show its rate",
      peers: [[MEDIUM, 0], [FAST, 3_000]],
      seederAt: 3_000,
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const o = simulate(r.peers);
      const late = o.completeAt - (r.seederAt + alone);
      assert(late <= 1_000, `complete at ${o.completeAt} ms: ${late} ms after the seeder alone (${alone} ms)`);
      // only the drip's unrequested bytes and a few endgame copies are wasted
      assert(o.wasted <= 8 * B + 10, `${o.wasted} bytes wasted`);
    });
  }
});

// Regression (was a bug, fixed): planRequests() iterates `others` once per candidate block (through worthDuplicating), but swarm.ts's
// fillRequests() passes a generator (`otherQueues(sw, peer)`), which runs only once: the first worthDuplicating() call consumes it (a
// `return false` inside its for-of closes it), so every later block in that call sees no holder and is "worth
// duplicating". In endgame a nearly idle peer therefore duplicates a fast holder's committed queue, and the copies
// are fetched twice (the simulation mirrors swarm.ts and passes a generator too). Rows marked `bug` fail today
// (a second seeder mid-download: 16 duplicate requests, 8 blocks fetched twice; three seeders: 8 and 3); with an array
// they give 0 and 0. Expected fix: planRequests() takes `others` into an array once (then un-ignore these rows).
Deno.test("simulation: a fast holder keeps its queue in endgame, so little is fetched twice", async (t) => {
  const alone = simulate([[FAST, 0]]).completeAt;
  const rows: { name: string; peers: [Behaviour, number][]; bug?: true }[] = [
    { name: "two fast seeders from the start", peers: [[FAST, 0], [FAST, 0]] },
    { name: "a second fast seeder mid-download", peers: [[FAST, 0], [FAST, 15]], bug: true },
    { name: "three fast seeders", peers: [[FAST, 0], [FAST, 0], [FAST, 0]], bug: true },
  ];
  for (const r of rows) {
    await t.step({
      name: r.name,
      ignore: false,
      fn: () => {
        const o = simulate(r.peers);
        assert(o.completeAt <= alone + 1_000, `complete at ${o.completeAt} ms (alone: ${alone} ms)`);
        // a handful of blocks at most are requested twice, and at most one arrives twice
        assert(o.duplicates <= 4, `${o.duplicates} duplicate requests`);
        assert(o.wasted <= B, `${o.wasted} bytes wasted`);
        assertEquals(o.downloaded, TOTAL + o.wasted);
      },
    });
  }
  await t.step("every row completes in time and wastes under 16 blocks, bug or not", () => {
    for (const r of rows) {
      const o = simulate(r.peers);
      assert(o.completeAt <= alone + 1_000, `${r.name}: complete at ${o.completeAt} ms (alone: ${alone} ms)`);
      assert(o.wasted <= 16 * B, `${r.name}: ${o.wasted} bytes wasted`);
    }
  });
});

/** A seeder of `mbps` MB/s with a 1 ms round trip. */
function seeder(mbps: number): Behaviour {
  return { label: `${mbps} MB/s seeder`, serveMs: (len) => len / (mbps * 1_000), oneWayMs: 0.5 };
}

Deno.test("simulation: a sweep of seeder speeds and join times keeps every bad peer within a second", async (t) => {
  for (const mbps of [50, 500, 1_000]) {
    const alone = simulate([[seeder(mbps), 0]]).completeAt;
    for (const bad of [DRIP, SLOW, SILENT]) {
      await t.step(`${mbps} MB/s seeder (alone: ${alone.toFixed(1)} ms), ${bad.label} joining at 0-90% of it`, () => {
        for (const share of [0, 0.1, 0.5, 0.9]) {
          const at = share * alone;
          const o = simulate([[seeder(mbps), 0], [bad, at]]);
          assert(o.completeAt <= alone + 1_000, `joining at ${at} ms: ${o.completeAt} ms (alone: ${alone} ms)`);
        }
      });
    }
  }
});

// Regression (was a bug, fixed): see the simulation's fast-holder rows above: planRequests() must consult `others` for every block, but a
// one-shot iterable (the generator swarm.ts passes) is used up by the first block.
Deno.test("planRequests() in endgame leaves a fast holder's committed blocks alone, whatever iterable holds the others", async (t) => {
  const rows: { name: string; others: (q: RequestQueue) => Iterable<RequestQueue>; bug?: true }[] = [
    { name: "an array", others: (q) => [q] },
    { name: "a Set", others: (q) => new Set([q]) },
    {
      name: "a generator, as swarm.ts passes",
      others: function* (q) {
        yield q;
      },
      bug: true,
    },
  ];
  for (const r of rows) {
    await t.step({
      name: r.name,
      ignore: false,
      fn: () => {
        const picker = smallPicker(1, 16 * B); // one piece of 16 blocks
        const fast = peer({ pieces: 1 });
        const idle = peer({ pieces: 1 });
        const all = planRequests(picker, fast, [], 0);
        assertEquals(all.length, 16);
        requestsSent(fast.queue, all, 0);
        learnt(fast.queue, 10e6); // 10 MB/s: 5 MB (all 16 blocks) within the commit window
        assertEquals(planRequests(picker, idle, r.others(fast.queue), 0), []);
      },
    });
  }
  await t.step("a slow holder's blocks are duplicated, to an idle peer, at most ENDGAME_MAX_OUTSTANDING", () => {
    const picker = smallPicker(1, 16 * B);
    const slow = peer({ pieces: 1 });
    const idle = peer({ pieces: 1 });
    requestsSent(slow.queue, planRequests(picker, slow, [], 0), 0);
    const dup = planRequests(picker, idle, [slow.queue], 0);
    assertEquals(dup.map((d) => d.begin / B), [15, 14, 13, 12]); // newest first
  });
});

Deno.test("planRequests() skips the picker's scan after a pick that found nothing, until something changed or DRY_MS", () => {
  const picker = smallPicker(8, 2 * B);
  picker.maxPartial = 1; // one started piece at a time: once its 2 blocks are out, nothing is left to pick
  const p = peer();
  let scans = 0;
  const others = () => {
    scans++;
    return [];
  };
  const first = planRequests(picker, p, others, 0);
  assertEquals(first.length, 2);
  requestsSent(p.queue, first, 0);
  assertEquals(planRequests(picker, p, others, 1).length, 0, "the cap is full: nothing");
  assertEquals(scans, 2);
  assertEquals(planRequests(picker, p, others, 2).length, 0);
  assertEquals(scans, 2, "nothing changed: no scan");
  // a block freed (a request given up): the picker's version moves, the next top-up scans and takes it
  releaseBlock(picker, first[1].index, first[1].begin);
  p.queue.outstanding.delete(blockKey(first[1].index, first[1].begin));
  assertEquals(planRequests(picker, p, others, 3).map((r) => r.begin), [first[1].begin]);
  assertEquals(scans, 3);
  requestsSent(p.queue, [first[1]], 3);
  assertEquals(planRequests(picker, p, others, 4).length, 0);
  assertEquals(planRequests(picker, p, others, 4 + DRY_MS - 1).length, 0);
  assertEquals(scans, 4, "dry again: no scan within DRY_MS");
  // DRY_MS later it looks again, even with nothing counted as changed
  assertEquals(planRequests(picker, p, others, 4 + DRY_MS).length, 0);
  assertEquals(scans, 5);
  // the peer's pieces changed: it looks again at once
  p.state.has.clear(7);
  assertEquals(planRequests(picker, p, others, 4 + DRY_MS + 1).length, 0);
  assertEquals(scans, 6);
  // the cap grew (as updatePieceCap does): a new piece can start
  picker.maxPartial = 2;
  picker.version++;
  assertEquals(planRequests(picker, p, others, 4 + DRY_MS + 2).length, 2);
});
