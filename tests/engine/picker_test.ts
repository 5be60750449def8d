import { assert, assertEquals, assertNotEquals } from "../_assert.ts";
import { fuzzIterations, fuzzSeed, type Rand, seeded } from "../_gen.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import { BLOCK_BYTES } from "../../lib/limits.ts";
import {
  addPeerPiece,
  addPeerPieces,
  blockCount,
  type BlockRequest,
  claimRun,
  createPicker,
  ENDGAME_MAX_DUPLICATES,
  ENDGAME_MAX_OUTSTANDING,
  inEndgame,
  isDone,
  isInteresting,
  ORDER_REBUILD_MS,
  pickBlocks,
  type Picker,
  pieceComplete,
  pieceFailed,
  pieceLength,
  pieceVerified,
  receiveBlock,
  releaseBlock,
  removePeerPieces,
  requestsOut,
  wantPieces,
} from "../../lib/engine/picker.ts";

const B = BLOCK_BYTES;

function bits(size: number, indexes: Iterable<number>): Bitfield {
  const b = new Bitfield(size);
  for (const i of indexes) b.set(i);
  return b;
}

/** A seeded generator past its first outputs (xorshift32 starts tiny for small seeds). */
function warmed(seed: number): Rand {
  const r = seeded(seed);
  for (let i = 0; i < 8; i++) r();
  return r;
}

interface Geometry {
  pieceCount: number;
  pieceLength?: number;
  totalLength?: number;
  have?: Iterable<number>;
  wanted?: Iterable<number>;
  seed?: number;
  sequential?: boolean;
  maxPartial?: number;
}

function make(g: Geometry): Picker {
  const pl = g.pieceLength ?? B;
  return createPicker({
    pieceCount: g.pieceCount,
    pieceLength: pl,
    totalLength: g.totalLength ?? g.pieceCount * pl,
    have: bits(g.pieceCount, g.have ?? []),
    wanted: g.wanted ? bits(g.pieceCount, g.wanted) : Bitfield.full(g.pieceCount),
    random: warmed(g.seed ?? 1),
    sequential: g.sequential,
    maxPartial: g.maxPartial,
  });
}

function pieces(reqs: readonly BlockRequest[]): number[] {
  return [...new Set(reqs.map((r) => r.index))];
}

/** Receives every block of `index` and verifies it. */
function finish(p: Picker, index: number): void {
  const len = pieceLength(p, index);
  for (let b = 0; b < blockCount(p, index); b++) receiveBlock(p, index, b * B, Math.min(B, len - b * B));
  assert(pieceComplete(p, index), `piece ${index} complete`);
  pieceVerified(p, index);
}

Deno.test("pickBlocks() starts the rarest piece the peer has", () => {
  const q = make({ pieceCount: 6 });
  addPeerPieces(q, bits(6, [0, 1, 2, 5]));
  addPeerPieces(q, bits(6, [0, 2, 3, 5]));
  addPeerPiece(q, 0);
  assertEquals([...q.availability], [3, 1, 2, 1, 0, 2]);
  assertEquals(pickBlocks(q, bits(6, [0, 1, 2]), 1, 0), [{ index: 1, begin: 0, length: B }]);
  assertEquals(pickBlocks(q, bits(6, [0, 2]), 1, 0), [{ index: 2, begin: 0, length: B }]);
  assertEquals(pickBlocks(q, bits(6, [0]), 1, 0), [{ index: 0, begin: 0, length: B }]);
});

Deno.test("pickBlocks() orders new pieces by availability, then by the random rank", () => {
  const n = 40;
  const rand = seeded(7);
  const p = make({ pieceCount: n, seed: 3, maxPartial: n });
  for (let k = 0; k < 5; k++) {
    addPeerPieces(
      p,
      bits(n, Array.from({ length: n }, (_, i) => i).filter(() => rand() < 0.5)),
    );
  }
  const got = pieces(pickBlocks(p, Bitfield.full(n), n, 0));
  assertEquals(got.length, n);
  for (let k = 1; k < n; k++) {
    const a = p.availability[got[k - 1]];
    const b = p.availability[got[k]];
    assert(a < b || (a === b && p.rank[got[k - 1]] <= p.rank[got[k]]), `order at ${k}: ${got}`);
  }
});

Deno.test("pickBlocks() breaks availability ties differently for different seeds, the same for one seed", () => {
  const n = 64;
  const first = (seed: number) => pickBlocks(make({ pieceCount: n, seed }), Bitfield.full(n), 1, 0)[0].index;
  const starts = new Set([1, 2, 3, 4, 5, 6, 7, 8].map(first));
  assert(starts.size >= 4, `starts ${[...starts]}`);
  assertEquals(first(5), first(5));
  const orderOf = (seed: number) =>
    pieces(pickBlocks(make({ pieceCount: n, seed, maxPartial: n }), Bitfield.full(n), n, 0));
  assertNotEquals(orderOf(1), orderOf(2));
});

Deno.test("pickBlocks() finishes started pieces before starting new ones, fewest blocks left first", () => {
  const p = make({ pieceCount: 4, pieceLength: 4 * B, sequential: true });
  const all = Bitfield.full(4);
  assertEquals(pickBlocks(p, all, 2, 0), [{ index: 0, begin: 0, length: B }, { index: 0, begin: B, length: B }]);
  // another peer gets the rest of piece 0 before anything of piece 1
  assertEquals(pickBlocks(p, all, 3, 0), [
    { index: 0, begin: 2 * B, length: B },
    { index: 0, begin: 3 * B, length: B },
    { index: 1, begin: 0, length: B },
  ]);
  // piece 1 has 3 free blocks; a released block of piece 0 makes piece 0 the one with fewer left
  receiveBlock(p, 0, 0, B);
  receiveBlock(p, 0, B, B);
  receiveBlock(p, 0, 2 * B, B);
  releaseBlock(p, 0, 3 * B);
  assertEquals(pickBlocks(p, all, 2, 0), [{ index: 0, begin: 3 * B, length: B }, { index: 1, begin: B, length: B }]);
});

Deno.test("pickBlocks() caps started pieces at maxPartial, and at twice that for peers that have none of them", () => {
  const p = make({ pieceCount: 12, maxPartial: 2 });
  const all = Bitfield.full(12);
  assertEquals(pickBlocks(p, all, 100, 0).length, 2);
  assertEquals(p.partial.size, 2);
  const started = [...p.partial.keys()];
  // a peer that has a started piece waits for it (every block is requested already): nothing new is started
  assertEquals(pickBlocks(p, all, 100, 0), []);
  assertEquals(p.partial.size, 2);
  // a peer with none of the started pieces may start one per call, up to 2 * maxPartial
  const others = bits(12, [...Array(12).keys()].filter((i) => !started.includes(i)));
  assertEquals(pickBlocks(p, others, 100, 0).length, 1);
  assertEquals(p.partial.size, 3);
  // (now it has a started piece too, so it waits like the others)
  assertEquals(pickBlocks(p, others, 100, 0), []);
  // finishing pieces frees slots
  for (const i of [...p.partial.keys()]) finish(p, i);
  assertEquals(pickBlocks(p, all, 100, 0).length, 2);
  assertEquals(p.partial.size, 2);
});

Deno.test("pickBlocks() in endgame duplicates in-flight blocks, at most ENDGAME_MAX_DUPLICATES, never twice to a peer", () => {
  const p = make({ pieceCount: 2, pieceLength: 2 * B });
  const all = Bitfield.full(2);
  const peers = [new Set<string>(), new Set<string>(), new Set<string>()];
  const key = (r: BlockRequest) => `${r.index}/${r.begin}`;
  const pick = (k: number, max: number) => {
    const got = pickBlocks(p, all, max, 0, (r) => peers[k].has(key(r)));
    for (const r of got) {
      assert(!peers[k].has(key(r)), `peer ${k} asked twice for ${key(r)}`);
      peers[k].add(key(r));
    }
    return got;
  };
  assertEquals(pick(0, 3).length, 3);
  assertEquals(inEndgame(p), false);
  assertEquals(pick(0, 3).length, 1);
  assertEquals(inEndgame(p), true);
  assertEquals(pick(0, 10), []); // peer 0 holds all of them already
  assertEquals(pick(1, 10).length, 4); // each block once more
  assertEquals(ENDGAME_MAX_DUPLICATES, 2);
  assertEquals(pick(2, 10), []); // at the duplicate cap
  // the default isOutstanding (everything is out) never duplicates
  assertEquals(pickBlocks(p, all, 10, 0), []);
  // peer 0's copy of 0/B is rejected: one copy left in flight (peer 1's), so peer 2 may now take it
  releaseBlock(p, 0, B);
  peers[0].delete(`0/${B}`);
  assertEquals(pick(2, 10), [{ index: 0, begin: B, length: B }]);
  // the first copy to arrive is new, later copies are duplicates, and received blocks are not duplicated again
  assertEquals(receiveBlock(p, 0, 0, B), "new");
  peers[0].delete("0/0");
  assertEquals(pick(0, 10), []);
  // the late copies are duplicates
  assertEquals(receiveBlock(p, 0, 0, B), "duplicate");
});

Deno.test("pickBlocks() gives endgame duplicates only to peers with few requests out", () => {
  const p = make({ pieceCount: 1, pieceLength: 8 * B });
  const all = Bitfield.full(1);
  assertEquals(pickBlocks(p, all, 8, 0).length, 8);
  assert(inEndgame(p));
  const none = () => false;
  assertEquals(pickBlocks(p, all, 10, 0, none, undefined, ENDGAME_MAX_OUTSTANDING), []);
  assertEquals(pickBlocks(p, all, 10, 0, none, undefined, ENDGAME_MAX_OUTSTANDING - 1).length, 1);
  assertEquals(pickBlocks(p, all, 10, 0, none, undefined, 0).length, Math.min(ENDGAME_MAX_OUTSTANDING, 7));
});

Deno.test("releaseBlock() makes a block pickable again; a received block stays received", () => {
  const p = make({ pieceCount: 1, pieceLength: 2 * B });
  const all = Bitfield.full(1);
  assertEquals(pickBlocks(p, all, 2, 0).length, 2);
  assertEquals(pickBlocks(p, all, 2, 0), []);
  releaseBlock(p, 0, B);
  assertEquals(pickBlocks(p, all, 2, 0), [{ index: 0, begin: B, length: B }]);
  assertEquals(receiveBlock(p, 0, 0, B), "new");
  releaseBlock(p, 0, 0); // e.g. a late reject for a block we already have
  releaseBlock(p, 0, B);
  assertEquals(pickBlocks(p, all, 2, 0), [{ index: 0, begin: B, length: B }]);
  releaseBlock(p, 7, 0); // not started: ignored
});

Deno.test("pieceFailed() puts the whole piece back to be fetched again", () => {
  const p = make({ pieceCount: 3, pieceLength: 2 * B, sequential: true });
  const all = Bitfield.full(3);
  assertEquals(pieces(pickBlocks(p, all, 2, 0)), [0]);
  receiveBlock(p, 0, 0, B);
  receiveBlock(p, 0, B, B);
  assert(pieceComplete(p, 0));
  assertEquals(p.remaining, 2);
  pieceFailed(p, 0);
  assertEquals([p.remaining, p.partial.size, isDone(p)], [3, 0, false]);
  assertEquals(pickBlocks(p, all, 2, 0), [{ index: 0, begin: 0, length: B }, { index: 0, begin: B, length: B }]);
  // a rarest-first picker picks it again too
  const q = make({ pieceCount: 1, pieceLength: B });
  pickBlocks(q, Bitfield.full(1), 1, 0);
  receiveBlock(q, 0, 0, B);
  pieceFailed(q, 0);
  assertEquals(pickBlocks(q, Bitfield.full(1), 1, 0), [{ index: 0, begin: 0, length: B }]);
  finish(q, 0);
  assert(isDone(q));
});

Deno.test("pickBlocks() in sequential mode goes in index order whatever the availability", () => {
  const n = 10;
  const p = make({ pieceCount: n, sequential: true, maxPartial: n });
  addPeerPieces(p, bits(n, [0, 1, 2, 3, 4]));
  addPeerPieces(p, bits(n, [0, 1, 2]));
  assertEquals(pieces(pickBlocks(p, Bitfield.full(n), n, 0)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const q = make({ pieceCount: n, sequential: true, have: [0, 2] });
  assertEquals(pieces(pickBlocks(q, bits(n, [0, 2, 3, 5]), 2, 0)), [3, 5]);
});

Deno.test("pickBlocks() never picks pieces outside the wanted set or already had", () => {
  const n = 8;
  const p = make({ pieceCount: n, wanted: [1, 3, 6], have: [6], maxPartial: n });
  assertEquals(p.remaining, 2);
  assertEquals(isInteresting(p, bits(n, [0, 2, 6])), false);
  assertEquals(isInteresting(p, bits(n, [0, 3])), true);
  assertEquals(pieces(pickBlocks(p, Bitfield.full(n), 100, 0)).sort(), [1, 3]);
  finish(p, 1);
  finish(p, 3);
  assert(isDone(p));
  assertEquals(pickBlocks(p, Bitfield.full(n), 100, 0), []);
  // wantPieces() widens the selection
  assertEquals(wantPieces(p, [3, 4, 6]), 1);
  assertEquals(pickBlocks(p, Bitfield.full(n), 100, 0), [{ index: 4, begin: 0, length: B }]);
});

Deno.test("pickBlocks() gives the short last piece its true block lengths", async (t) => {
  const rows = [
    { name: "two blocks and a bit", pieceLength: 4 * B, total: 2 * 4 * B + 2 * B + 100, last: [B, B, 100] },
    { name: "less than a block", pieceLength: 2 * B, total: 2 * B + 1, last: [1] },
    { name: "a whole number of blocks", pieceLength: 4 * B, total: 4 * B + 2 * B, last: [B, B] },
    { name: "one short piece only", pieceLength: 4 * B, total: 3000, last: [3000] },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const n = Math.ceil(r.total / r.pieceLength);
      const p = make({
        pieceCount: n,
        pieceLength: r.pieceLength,
        totalLength: r.total,
        have: [...Array(n - 1).keys()],
      });
      const got = pickBlocks(p, Bitfield.full(n), 100, 0);
      assertEquals(got.map((x) => x.length), r.last);
      assertEquals(got.map((x) => x.begin), r.last.map((_, i) => i * B));
      assertEquals(got.every((x) => x.index === n - 1), true);
      // the wrong length for the short block is refused
      const lastAt = (r.last.length - 1) * B;
      assertEquals(receiveBlock(p, n - 1, lastAt, B + 1), "unwanted");
      for (let i = 0; i < r.last.length; i++) assertEquals(receiveBlock(p, n - 1, i * B, r.last[i]), "new");
      assert(pieceComplete(p, n - 1));
    });
  }
});

Deno.test("pickBlocks() with an allowed-fast set picks only from those pieces", () => {
  const n = 6;
  const p = make({ pieceCount: n, pieceLength: 2 * B, maxPartial: n });
  const all = Bitfield.full(n);
  // another peer started piece 0 (with a free block left)
  const started = pickBlocks(p, all, 1, 0);
  assertEquals(started.length, 1);
  const allowed = new Set([(started[0].index + 3) % n]);
  const got = pickBlocks(p, all, 100, 0, undefined, allowed);
  assertEquals(pieces(got), [...allowed]);
  assertEquals(got.length, 2);
  // allowed pieces the peer lacks give nothing
  assertEquals(pickBlocks(p, bits(n, []), 100, 0, undefined, new Set([1, 2])), []);
});

Deno.test("receiveBlock() tells new, duplicate and unwanted blocks apart", async (t) => {
  const p = make({ pieceCount: 2, pieceLength: 2 * B, sequential: true });
  pickBlocks(p, Bitfield.full(2), 2, 0);
  const rows: [string, number, number, number, string][] = [
    ["a requested block", 0, 0, B, "new"],
    ["the same block again", 0, 0, B, "duplicate"],
    ["a piece not started", 1, 0, B, "unwanted"],
    ["an offset inside a block", 0, 100, B, "unwanted"],
    ["an offset past the piece", 0, 2 * B, B, "unwanted"],
    ["a short block", 0, B, B - 1, "unwanted"],
    ["the second block", 0, B, B, "new"],
  ];
  for (const [name, index, begin, length, want] of rows) {
    await t.step(name, () => assertEquals(receiveBlock(p, index, begin, length), want));
  }
});

Deno.test("pickBlocks() follows availability changes only after ORDER_REBUILD_MS", () => {
  const n = 4;
  const p = make({ pieceCount: n, maxPartial: n });
  addPeerPieces(p, bits(n, [1, 2, 3]));
  addPeerPieces(p, bits(n, [2, 3]));
  assertEquals(pickBlocks(p, Bitfield.full(n), 1, 0), [{ index: 0, begin: 0, length: B }]); // availability 0
  // piece 3 becomes the rarest left, but the order is kept for a while
  removePeerPieces(p, bits(n, [2, 3]));
  addPeerPieces(p, bits(n, [1, 2]));
  addPeerPiece(p, 2);
  assertEquals([...p.availability], [0, 2, 3, 1]);
  assertEquals(pickBlocks(p, Bitfield.full(n), 1, ORDER_REBUILD_MS - 1), [{ index: 1, begin: 0, length: B }]);
  assertEquals(pickBlocks(p, Bitfield.full(n), 1, ORDER_REBUILD_MS), [{ index: 3, begin: 0, length: B }]);
});

// ---- property: a seeded swarm ------------------------------------------------------------------------------------

interface FakePeer {
  readonly has: Bitfield;
  readonly out: Map<string, BlockRequest>;
  /** Blocks this peer refused lately (BEP 6 reject): the pick skips them, so they stay free for other peers. */
  readonly rejected: Set<string>;
}

/** The picker's free-block bookkeeping matches the block states: each count exact, no free block before the hint. */
function checkFreeCounts(p: Picker, ctx: string): void {
  for (const pp of p.partial.values()) {
    const free = pp.blocks.filter((st) => st === 0).length;
    assertEquals(pp.free, free, `${ctx}: piece ${pp.index} free count`);
    const first = pp.blocks.indexOf(0);
    assert(first < 0 || first >= pp.firstFree, `${ctx}: piece ${pp.index} free block ${first} before ${pp.firstFree}`);
  }
}

function simulate(seed: number): void {
  const rand: Rand = seeded(seed);
  const pieceLen = B * (1 + rand.int(4));
  const pieceCount = 1 + rand.int(40);
  const total = (pieceCount - 1) * pieceLen + 1 + rand.int(pieceLen);
  const maxPartial = 1 + rand.int(6);
  const haveAtStart = [...Array(pieceCount).keys()].filter(() => rand() < 0.1);
  const wanted = [...Array(pieceCount).keys()].filter(() => rand() < 0.9);
  const p = createPicker({
    pieceCount,
    pieceLength: pieceLen,
    totalLength: total,
    have: bits(pieceCount, haveAtStart),
    wanted: bits(pieceCount, wanted),
    random: warmed(seed + 1),
    sequential: rand() < 0.2,
    maxPartial,
  });
  const peers: FakePeer[] = [];
  const nPeers = 1 + rand.int(6);
  for (let k = 0; k < nPeers; k++) {
    const has = bits(pieceCount, [...Array(pieceCount).keys()].filter(() => rand() < 0.6));
    peers.push({ has, out: new Map(), rejected: new Set() });
  }
  // make sure the swarm has every piece
  for (let i = 0; i < pieceCount; i++) if (!peers.some((q) => q.has.has(i))) peers[rand.int(nPeers)].has.set(i);
  for (const q of peers) addPeerPieces(p, q.has);

  const newCount = new Map<string, number>();
  const key = (index: number, begin: number) => `${index}/${begin}`;
  let now = 0;
  const ctx = `seed ${seed}`;
  for (let step = 0; !isDone(p); step++) {
    assert(step < 200_000, `${ctx}: no progress after ${step} steps`);
    now += rand.int(50);
    const q = peers[rand.int(nPeers)];
    const action = rand();
    if (action < 0.5) {
      if (rand() < 0.1) q.rejected.clear(); // refusals are forgotten after a while
      const got = pickBlocks(p, q.has, 1 + rand.int(8), now, (r) => {
        const k = key(r.index, r.begin);
        return q.out.has(k) || q.rejected.has(k);
      });
      for (const r of got) {
        assert(q.has.has(r.index), `${ctx}: picked piece ${r.index} the peer lacks`);
        assert(wanted.includes(r.index) && !haveAtStart.includes(r.index), `${ctx}: picked unwanted ${r.index}`);
        assert(!q.out.has(key(r.index, r.begin)), `${ctx}: asked one peer twice for ${key(r.index, r.begin)}`);
        assertEquals(r.length, Math.min(B, pieceLength(p, r.index) - r.begin), ctx);
        q.out.set(key(r.index, r.begin), r);
      }
      assert(p.partial.size <= 2 * maxPartial, `${ctx}: ${p.partial.size} pieces started`);
    } else if (action < 0.95 && q.out.size > 0) {
      // a block arrives, in random order
      const list = [...q.out.values()];
      const r = list[rand.int(list.length)];
      q.out.delete(key(r.index, r.begin));
      const res = receiveBlock(p, r.index, r.begin, r.length);
      if (res === "new") {
        const k = key(r.index, r.begin);
        newCount.set(k, (newCount.get(k) ?? 0) + 1);
        if (pieceComplete(p, r.index)) {
          pieceVerified(p, r.index);
          for (const o of peers) { // the runtime cancels the other copies
            for (const [k2, r2] of o.out) if (r2.index === r.index) o.out.delete(k2);
          }
        }
      }
    } else if (q.out.size > 0) {
      // a reject or a choke: requests come back
      const list = [...q.out.values()];
      const r = list[rand.int(list.length)];
      q.out.delete(key(r.index, r.begin));
      if (rand() < 0.5) q.rejected.add(key(r.index, r.begin));
      releaseBlock(p, r.index, r.begin);
    }
    checkFreeCounts(p, `${ctx} step ${step}`);
  }
  let blocks = 0;
  for (const i of wanted) {
    if (haveAtStart.includes(i)) continue;
    for (let b = 0; b < blockCount(p, i); b++) {
      blocks++;
      assertEquals(newCount.get(key(i, b * B)), 1, `${ctx}: block ${key(i, b * B)}`);
    }
  }
  assertEquals(newCount.size, blocks, ctx);
  for (const i of wanted) assert(p.have.has(i), `${ctx}: piece ${i} not had`);
}

Deno.test("pickBlocks() drives a random swarm to completion, each block new exactly once", () => {
  const base = fuzzSeed(1);
  const n = fuzzIterations(150);
  for (let k = 0; k < n; k++) simulate(base * 1000 + k);
});

Deno.test("claimRun() hands a web seed consecutive pieces nobody works on, idle started ones included", async (t) => {
  const make = () =>
    createPicker({
      pieceCount: 8,
      pieceLength: 32_768,
      totalLength: 8 * 32_768,
      have: new Bitfield(8),
      wanted: Bitfield.full(8),
      random: () => 0,
    });
  await t.step("runs in order from `from`, wrapping, bounded by maxPieces and what the seed serves", () => {
    const p = make();
    assertEquals(claimRun(p, 3, 6, () => true)?.run, { first: 6, last: 7 }); // stops at the end
    assertEquals(claimRun(p, 3, 6, (i) => i !== 1)?.run, { first: 0, last: 0 }); // wraps; piece 1 not served
    assertEquals(claimRun(p, 3, 0, () => true)?.run, { first: 1, last: 3 });
    assertEquals(claimRun(p, 1, 0, () => true)?.blocks.length, 2); // every block of the piece is requested
  });
  await t.step("a piece a peer is fetching is not taken; one whose requests all ended is", () => {
    const p = make();
    const got = pickBlocks(p, Bitfield.full(8), 1, 0); // a peer starts piece 0 (one block requested)
    assertEquals(got.length, 1);
    assertEquals(claimRun(p, 1, 0, () => true)?.run, { first: 1, last: 1 });
    releaseBlock(p, got[0].index, got[0].begin); // the peer went away: piece 0 is idle, started
    const again = claimRun(p, 1, 0, () => true);
    assertEquals(again?.run, { first: 0, last: 0 });
    assertEquals(again?.blocks.length, 2);
  });
  await t.step("half-received: only the missing blocks are asked", () => {
    const p = make();
    const r = claimRun(p, 1, 0, () => true);
    assertEquals(r?.blocks.length, 2);
    receiveBlock(p, 0, 0, 16_384);
    releaseBlock(p, 0, 16_384); // the run was cut after its first block
    assertEquals(claimRun(p, 1, 0, () => true)?.blocks, [{ index: 0, begin: 16_384, length: 16_384 }]);
  });
});

Deno.test("pickBlocks() in sequential mode lets a peer take the head piece's blocks held elsewhere when allowed", () => {
  const p = createPicker({
    pieceCount: 4,
    pieceLength: 32_768,
    totalLength: 4 * 32_768,
    have: new Bitfield(4),
    wanted: Bitfield.full(4),
    random: () => 0,
    sequential: true,
  });
  const all = Bitfield.full(4);
  // a slow peer takes the head piece's two blocks
  assertEquals(pickBlocks(p, all, 2, 0).map((r) => r.index), [0, 0]);
  // another peer may duplicate them (the strategy said the holder is slow): they come first, then new pieces
  const fast = pickBlocks(p, all, 3, 0, () => false);
  assertEquals(fast.map((r) => [r.index, r.begin]), [[0, 0], [0, 16_384], [1, 0]]);
  // when the holder will deliver soon (the strategy says skip), nothing is duplicated
  const q = createPicker({
    pieceCount: 4,
    pieceLength: 32_768,
    totalLength: 4 * 32_768,
    have: new Bitfield(4),
    wanted: Bitfield.full(4),
    random: () => 0,
    sequential: true,
  });
  pickBlocks(q, all, 2, 0);
  const skip = (r: { index: number; begin: number }) => requestsOut(q, r.index, r.begin) > 0;
  assertEquals(pickBlocks(q, all, 2, 0, skip).map((r) => r.index), [1, 1]);
});
