import { assert, assertEquals } from "../_assert.ts";
import { fuzzSeed, seeded } from "../_gen.ts";
import { BLOCK_BYTES, MAX_OUTSTANDING_REQUESTS, MAX_PIECE_LENGTH, MAX_PIECES } from "../../lib/limits.ts";
import { addBytes } from "../../lib/engine/rate.ts";
import {
  blockArrived,
  blockKey,
  createQueue,
  DEFAULT_PEER_REQQ,
  dropAll,
  dropRequest,
  expireRequests,
  INITIAL_DEPTH,
  isOutstanding,
  QUEUE_SECONDS,
  REQUEST_TIMEOUT_MS,
  type RequestQueue,
  requestsSent,
  requestsWanted,
  setPeerReqq,
} from "../../lib/engine/requests.ts";

const B = BLOCK_BYTES;

function blocks(from: number, n: number): { index: number; begin: number; length: number }[] {
  return Array.from({ length: n }, (_, k) => ({ index: from + k, begin: 0, length: B }));
}

/** Sends what the queue wants, numbering pieces from `next`; returns the next free number. */
function top(q: RequestQueue, next: number, now: number): number {
  const n = requestsWanted(q, now);
  requestsSent(q, blocks(next, n), now);
  return next + n;
}

Deno.test("requestsWanted() starts at INITIAL_DEPTH and counts what is outstanding", () => {
  const q = createQueue(0);
  assertEquals(requestsWanted(q, 0), INITIAL_DEPTH);
  requestsSent(q, blocks(0, 5), 0);
  assertEquals(requestsWanted(q, 0), INITIAL_DEPTH - 5);
  assertEquals(q.maxDepth, Math.min(DEFAULT_PEER_REQQ, MAX_OUTSTANDING_REQUESTS));
});

/** Feeds the peer's rate meter `rate` bytes a second (as requested blocks would, without touching the depth) for `ms`. */
function feed(q: RequestQueue, rate: number, from: number, ms: number): number {
  for (let now = from + 10; now <= from + ms; now += 10) addBytes(q.rate, rate / 100, now);
  return from + ms;
}

Deno.test("blockArrived() grows the depth by one per requested block (slow start), up to maxDepth", () => {
  const q = createQueue(0);
  let next = 0;
  const depths: number[] = [];
  for (let round = 1; round <= 5; round++) {
    // each round trip answers a full pipeline
    const n = q.depth;
    requestsSent(q, blocks(next, n), round * 100);
    for (let k = 0; k < n; k++) assertEquals(blockArrived(q, next + k, 0, B, round * 100 + 50), true);
    next += n;
    depths.push(q.depth);
  }
  assertEquals(depths, [32, 64, 128, DEFAULT_PEER_REQQ, DEFAULT_PEER_REQQ]); // doubling per round trip, then reqq
  // an unrequested block counts for nothing: not the pipeline, not the rate
  setPeerReqq(q, 500);
  const total = q.rate.total;
  assertEquals(blockArrived(q, 99_999, 0, B, 5000), false);
  assertEquals([q.depth, q.rate.total], [DEFAULT_PEER_REQQ, total]);
});

Deno.test("requestsWanted() grows with slow start while blocks keep coming", () => {
  const q = createQueue(0);
  let next = top(q, 0, 0);
  const wanted: number[] = [INITIAL_DEPTH];
  for (let round = 1; round <= 6; round++) {
    const now = round * 100; // 100 ms round trips
    for (const o of [...q.outstanding.values()]) blockArrived(q, o.index, o.begin, B, now);
    const n = requestsWanted(q, now);
    wanted.push(n);
    next = top(q, next, now);
  }
  for (let k = 1; k < wanted.length; k++) assert(wanted[k] >= wanted[k - 1], `not growing: ${wanted}`);
  assert(wanted[wanted.length - 1] >= 4 * INITIAL_DEPTH, `${wanted}`);
  assert(wanted.every((n) => n <= q.maxDepth), `${wanted}`);
});

Deno.test("requestsWanted() keeps QUEUE_SECONDS of the measured rate in flight, capped by reqq", async (t) => {
  const rows = [
    { rate: 1 << 20, reqq: 1000 }, // 64 blocks a second
    { rate: 4 << 20, reqq: 1000 }, // 256
    { rate: 4 << 20, reqq: 100 },
    { rate: 64 << 20, reqq: 100_000 }, // beyond MAX_OUTSTANDING_REQUESTS
  ];
  for (const r of rows) {
    await t.step(`${r.rate} B/s, reqq ${r.reqq}`, () => {
      const q = createQueue(0);
      setPeerReqq(q, r.reqq);
      const now = feed(q, r.rate, 0, 10_000);
      assertEquals(q.depth, INITIAL_DEPTH); // only the rate term moved
      const want = Math.min(r.reqq, MAX_OUTSTANDING_REQUESTS, (r.rate * QUEUE_SECONDS) / B);
      const got = requestsWanted(q, now);
      assert(Math.abs(got - want) <= want * 0.1, `wanted ${got}, expected about ${want}`);
    });
  }
});

Deno.test("setPeerReqq() bounds the pipeline by the peer's reqq and MAX_OUTSTANDING_REQUESTS", async (t) => {
  const rows = [
    { reqq: 5, max: 5 },
    { reqq: 1, max: 1 },
    { reqq: 0, max: 1 },
    { reqq: 300, max: 300 },
    { reqq: 1_000_000, max: MAX_OUTSTANDING_REQUESTS },
  ];
  for (const r of rows) {
    await t.step(`reqq ${r.reqq}`, () => {
      const q = createQueue(0);
      setPeerReqq(q, r.reqq);
      assertEquals(q.maxDepth, r.max);
      assert(q.depth >= 1 && q.depth <= r.max);
      assert(requestsWanted(q, 0) <= r.max);
      const now = feed(q, 100 << 20, 0, 5000); // a fast peer would take far more
      assertEquals(requestsWanted(q, now), r.max);
    });
  }
});

Deno.test("expireRequests() after REQUEST_TIMEOUT_MS of silence releases everything and snubs the peer", () => {
  const q = createQueue(0);
  top(q, 0, 1000);
  assertEquals(expireRequests(q, 1000 + REQUEST_TIMEOUT_MS - 1), []);
  const expired = expireRequests(q, 1000 + REQUEST_TIMEOUT_MS);
  assertEquals(expired.length, INITIAL_DEPTH);
  assertEquals(expired.every((o) => o.sentAt === 1000), true);
  assertEquals([q.snubbed, q.timeouts, q.outstanding.size], [true, 1, 0]);
  // a snubbed peer gets one request at a time
  assertEquals(requestsWanted(q, 20_000), 1);
  requestsSent(q, blocks(100, 1), 20_000);
  assertEquals(requestsWanted(q, 20_000), 0);
  assertEquals(expireRequests(q, 20_000 + REQUEST_TIMEOUT_MS).length, 1);
  assertEquals(q.timeouts, 2);
  // a requested block ends the snub and the count of time-outs
  requestsSent(q, blocks(200, 1), 40_000);
  assertEquals(blockArrived(q, 200, 0, B, 40_500), true);
  assertEquals([q.snubbed, q.timeouts], [false, 0]);
  assert(requestsWanted(q, 40_500) >= INITIAL_DEPTH);
});

Deno.test("expireRequests() measures silence from the last block, or from the first request after a quiet spell", () => {
  const q = createQueue(0);
  requestsSent(q, blocks(0, 2), 0);
  blockArrived(q, 0, 0, B, 8000);
  assertEquals(expireRequests(q, 8000 + REQUEST_TIMEOUT_MS - 1), []);
  assertEquals(expireRequests(q, 8000 + REQUEST_TIMEOUT_MS).length, 1);
  // nothing outstanding: nothing expires, however long
  assertEquals(expireRequests(q, 1_000_000), []);
  // the queue went empty; the clock restarts at the next request
  const r = createQueue(0);
  requestsSent(r, blocks(0, 1), 0);
  blockArrived(r, 0, 0, B, 100);
  requestsSent(r, blocks(1, 1), 50_000);
  assertEquals(expireRequests(r, 50_000 + REQUEST_TIMEOUT_MS - 1), []);
  assertEquals(expireRequests(r, 50_000 + REQUEST_TIMEOUT_MS).length, 1);
});

Deno.test("dropRequest() and dropAll() end requests and return what was outstanding", () => {
  const q = createQueue(0);
  requestsSent(q, [{ index: 3, begin: B, length: B }, { index: 3, begin: 0, length: B }, ...blocks(7, 2)], 5);
  assertEquals(isOutstanding(q, 3, B), true);
  assertEquals(dropRequest(q, 3, B), { index: 3, begin: B, length: B, sentAt: 5 });
  assertEquals(isOutstanding(q, 3, B), false);
  assertEquals(dropRequest(q, 3, B), undefined);
  assertEquals(dropRequest(q, 42, 0), undefined);
  const all = dropAll(q);
  assertEquals(all.map((o) => [o.index, o.begin]).sort(), [[3, 0], [7, 0], [8, 0]]);
  assertEquals([q.outstanding.size, dropAll(q).length], [0, 0]);
  // a block that arrives after its request was dropped is not counted as asked for
  assertEquals(blockArrived(q, 7, 0, B, 10), false);
});

Deno.test("blockKey() is unique over every block of every legal torrent", () => {
  const maxBegin = MAX_PIECE_LENGTH - B;
  assert(blockKey(0, maxBegin) < blockKey(1, 0));
  assert(Number.isSafeInteger(blockKey(MAX_PIECES - 1, maxBegin)));
  const seed = fuzzSeed();
  const rand = seeded(seed);
  const seen = new Map<number, string>();
  for (let k = 0; k < 20_000; k++) {
    const index = rand() < 0.5 ? rand.int(4) : rand.int(MAX_PIECES);
    const begin = (rand() < 0.5 ? rand.int(4) : rand.int(MAX_PIECE_LENGTH / B)) * B;
    const key = blockKey(index, begin);
    const name = `${index}/${begin}`;
    const prev = seen.get(key);
    assert(prev === undefined || prev === name, `seed ${seed}: ${name} and ${prev} share key ${key}`);
    seen.set(key, name);
    // and it inverts
    assertEquals([Math.floor(key / 16384), (key % 16384) * B], [index, begin], `seed ${seed}`);
  }
});

Deno.test("blockArrived() ignores a block nobody asked for, or of the wrong length: the time-out still runs", async (t) => {
  const rows = [
    { name: "unrequested block", index: 5, begin: 0, length: B },
    { name: "requested block, wrong length", index: 0, begin: 0, length: 1 },
    { name: "requested piece, other offset", index: 0, begin: B, length: B },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const q = createQueue(0);
      requestsSent(q, blocks(0, 4), 0);
      // a drip every 4 s for 12 s: none of it counts
      for (const at of [4_000, 8_000]) assertEquals(blockArrived(q, r.index, r.begin, r.length, at), false);
      assertEquals(q.rate.total, 0);
      assertEquals(expireRequests(q, REQUEST_TIMEOUT_MS).length, 4);
      assertEquals(q.snubbed, true);
    });
  }
});
