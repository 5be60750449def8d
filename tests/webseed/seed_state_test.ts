import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { fuzzSeed, seeded } from "../_gen.ts";
import {
  backoffMs,
  canStart,
  createSeedState,
  nextRunPieces,
  type RunOutcome,
  type SeedAction,
  seedDeadline,
  type SeedEvent,
  type SeedGeometry,
  seedRate,
  servedPieces,
  servesPiece,
  stepSeed,
  WEBSEED_RETRY_BASE_MS,
  WEBSEED_RETRY_FLOOR_MS,
  WEBSEED_RETRY_MAX_MS,
  type WebSeedState,
} from "../../lib/webseed/seed_state.ts";
import { WebSeedError } from "../../lib/webseed/error.ts";
import {
  WEBSEED_MAX_BAD_PIECES,
  WEBSEED_MAX_RUN_BYTES,
  WEBSEED_MAX_RUNS_IN_FLIGHT,
  WEBSEED_MAX_URL_CHARS,
} from "../../lib/limits.ts";
import type { TorrentFile } from "../../lib/metainfo.ts";

/** A torrent geometry from file lengths; negative lengths are padding files. One length: a single-file torrent. */
function geometry(pieceLength: number, lengths: number[], names?: string[]): SeedGeometry {
  const multiFile = lengths.length > 1;
  const files: TorrentFile[] = [];
  let offset = 0;
  lengths.forEach((n, index) => {
    const length = Math.abs(n);
    const name = names?.[index] ?? (n < 0 ? `.pad` : `f${index}`);
    files.push({ index, path: multiFile ? ["t", name] : [name], length, offset, padding: n < 0 });
    offset += length;
  });
  return { files, multiFile, pieceLength, totalLength: offset, pieceCount: Math.ceil(offset / pieceLength) };
}

/** Runs events (each at its own time) from `s`; the final state and every action, in order. */
function run(s: WebSeedState, events: [number, SeedEvent][]): [WebSeedState, SeedAction[]] {
  const all: SeedAction[] = [];
  for (const [now, ev] of events) {
    const [next, actions] = stepSeed(s, ev, now);
    s = next;
    all.push(...actions);
  }
  return [s, all];
}

const start: SeedEvent = { type: "run-started" };
const ended = (outcome: RunOutcome): SeedEvent => ({ type: "run-ended", outcome });
const done = ended({ result: "done" });
const fail = ended({ result: "failed" });
const missing = (fileIndex: number): SeedEvent => ended({ result: "missing", fileIndex, reason: "not-found" });
const bad = (piece: number): SeedEvent => ({ type: "bad-piece", piece });

Deno.test("createSeedState() derives the URLs and faults files it cannot ask for", async (t) => {
  await t.step("multi-file", () => {
    const s = createSeedState(geometry(4, [5, -3, 0, 4]), "http://m/pub", 0);
    assertEquals(s.urls, ["http://m/pub/t/f0", null, "http://m/pub/t/f2", "http://m/pub/t/f3"]);
    assertEquals([...s.faults], []);
    assertEquals(s.dropped, null);
  });
  await t.step("a file whose URL is too long is missing", () => {
    const s = createSeedState(geometry(4, [5, 4], ["a", "b".repeat(WEBSEED_MAX_URL_CHARS)]), "http://m/", 0);
    assertEquals([...s.faults], [[1, { kind: "missing", reason: "no-url" }]]);
    assertEquals([servesPiece(s, 0), servesPiece(s, 1), servesPiece(s, 2)], [true, false, false]);
  });
  await t.step("no file left: dropped from the start", () => {
    const s = createSeedState(geometry(4, [5], ["b".repeat(WEBSEED_MAX_URL_CHARS)]), "http://m/", 0);
    assertEquals([s.dropped, canStart(s, 0)], ["no-files", false]);
  });
  await t.step("a non-http URL is refused", () => {
    assertEquals(
      assertThrows(() => createSeedState(geometry(4, [5]), "ftp://m/a", 0), WebSeedError).code,
      "unsupported-scheme",
    );
  });
});

Deno.test("stepSeed() bounds the runs in flight", async (t) => {
  const s0 = createSeedState(geometry(4, [40]), "http://m/a", 0);
  const [full] = run(s0, Array.from({ length: WEBSEED_MAX_RUNS_IN_FLIGHT }, () => [0, start] as [number, SeedEvent]));
  await t.step("full: no more", () => {
    assertEquals([full.inFlight, canStart(full, 0)], [WEBSEED_MAX_RUNS_IN_FLIGHT, false]);
    assertThrows(() => stepSeed(full, start, 0), RangeError);
  });
  await t.step("one ends: room again", () => {
    const [s] = run(full, [[5, done]]);
    assertEquals([s.inFlight, canStart(s, 5)], [WEBSEED_MAX_RUNS_IN_FLIGHT - 1, true]);
  });
  await t.step("ending a run never started", () => void assertThrows(() => stepSeed(s0, done, 0), RangeError));
  await t.step(
    "negative bytes",
    () => void assertThrows(() => stepSeed(s0, { type: "data", bytes: -1 }, 0), RangeError),
  );
  await t.step("a piece outside the torrent", () => void assertThrows(() => stepSeed(s0, bad(10), 0), RangeError));
  await t.step("a file outside the torrent", () => {
    const [s] = run(s0, [[0, start]]);
    assertThrows(() => stepSeed(s, missing(3), 0), RangeError);
  });
});

const B = WEBSEED_RETRY_BASE_MS;
const backoffs: { name: string; events: [number, SeedEvent][]; wakes: number[]; failures: number; retryAt: number }[] =
  [
    {
      name: "one failure: the base wait",
      events: [[0, start], [10, fail]],
      wakes: [10 + B],
      failures: 1,
      retryAt: 10 + B,
    },
    {
      name: "consecutive failures double",
      events: [[0, start], [0, fail], [B, start], [B, fail], [3 * B, start], [3 * B, fail]],
      wakes: [B, 3 * B, 7 * B],
      failures: 3,
      retryAt: 7 * B,
    },
    {
      name: "runs failing together count once",
      events: [[0, start], [0, start], [0, start], [5, fail], [6, fail], [7, fail]],
      wakes: [5 + B],
      failures: 1,
      retryAt: 5 + B,
    },
    {
      name: "a complete run resets the count",
      events: [[0, start], [0, fail], [B, start], [B, done], [B + 1, start], [B + 1, fail]],
      wakes: [B, 2 * B + 1],
      failures: 1,
      retryAt: 2 * B + 1,
    },
    {
      name: "Retry-After is honoured",
      events: [[0, start], [100, ended({ result: "retry", retryAfterMs: 30_000 })]],
      wakes: [30_100],
      failures: 1,
      retryAt: 30_100,
    },
    {
      name: "Retry-After 0 waits the floor",
      events: [[0, start], [100, ended({ result: "retry", retryAfterMs: 0 })]],
      wakes: [100 + WEBSEED_RETRY_FLOOR_MS],
      failures: 1,
      retryAt: 100 + WEBSEED_RETRY_FLOOR_MS,
    },
    {
      name: "Retry-After 0 again and again: our own back-off from the second failure in a row",
      events: [
        [0, start],
        [0, ended({ result: "retry", retryAfterMs: 0 })],
        [WEBSEED_RETRY_FLOOR_MS, start],
        [WEBSEED_RETRY_FLOOR_MS, ended({ result: "retry", retryAfterMs: 0 })],
        [WEBSEED_RETRY_FLOOR_MS + B, start],
        [WEBSEED_RETRY_FLOOR_MS + B, ended({ result: "retry", retryAfterMs: 0 })],
      ],
      wakes: [WEBSEED_RETRY_FLOOR_MS, WEBSEED_RETRY_FLOOR_MS + B, WEBSEED_RETRY_FLOOR_MS + 3 * B],
      failures: 3,
      retryAt: WEBSEED_RETRY_FLOOR_MS + 3 * B,
    },
    {
      name: "429/503 without Retry-After back off",
      events: [[0, start], [100, ended({ result: "retry", retryAfterMs: null })]],
      wakes: [100 + B],
      failures: 1,
      retryAt: 100 + B,
    },
    {
      name: "a shorter Retry-After never cuts a longer wait",
      events: [[0, start], [0, start], [0, ended({ result: "retry", retryAfterMs: 60_000 })], [1, fail]],
      wakes: [60_000],
      failures: 1,
      retryAt: 60_000,
    },
    {
      name: "a run cut short after some bytes is not a failure",
      events: [[0, start], [0, { type: "data", bytes: 10 }], [5, ended({ result: "short", bytes: 10 })]],
      wakes: [],
      failures: 0,
      retryAt: 0,
    },
    {
      name: "a run ending with no byte is a failure",
      events: [[0, start], [5, ended({ result: "short", bytes: 0 })]],
      wakes: [5 + B],
      failures: 1,
      retryAt: 5 + B,
    },
    {
      name: "a missing file is not a failure",
      events: [[0, start], [5, missing(0)]],
      wakes: [],
      failures: 0,
      retryAt: 0,
    },
  ];

Deno.test("stepSeed() backs off after failures and honours Retry-After", async (t) => {
  const s0 = createSeedState(geometry(4, [20, 20]), "http://m/", 0);
  for (const c of backoffs) {
    await t.step(c.name, () => {
      const [s, actions] = run(s0, c.events);
      assertEquals(actions.filter((a) => a.type === "wake").map((a) => a.type === "wake" && a.at), c.wakes);
      assertEquals([s.failures, s.retryAt], [c.failures, c.retryAt]);
      const last = c.events[c.events.length - 1][0];
      assertEquals(seedDeadline(s, last), c.retryAt > last ? c.retryAt : null);
      if (c.retryAt > last) assertEquals([canStart(s, c.retryAt - 1), canStart(s, c.retryAt)], [false, true]);
      else assertEquals(canStart(s, last), true);
    });
  }
});

Deno.test("backoffMs() doubles up to WEBSEED_RETRY_MAX_MS", async (t) => {
  const rows: [number, number][] = [[0, B], [1, B], [2, 2 * B], [5, 16 * B], [30, WEBSEED_RETRY_MAX_MS], [
    1e9,
    WEBSEED_RETRY_MAX_MS,
  ]];
  for (const [n, want] of rows) await t.step(`${n}`, () => assertEquals(backoffMs(n), want));
});

Deno.test("stepSeed() stops asking for files the seed does not have", async (t) => {
  // pieces of 4: file 0 = bytes 0-5 (pieces 0, 1), file 1 = 6-11 (pieces 1, 2), file 2 = 12-15 (piece 3)
  const s0 = createSeedState(geometry(4, [6, 6, 4]), "http://m/", 0);
  const [s1, a1] = run(s0, [[0, start], [1, missing(1)]]);
  await t.step("the file is lost, once", () => {
    assertEquals(a1, [{ type: "lost-file", fileIndex: 1, fault: { kind: "missing", reason: "not-found" } }]);
    const [, again] = run(s1, [[2, start], [3, missing(1)]]);
    assertEquals(again, []);
  });
  await t.step("its pieces, and pieces it shares, are not served", () => {
    assertEquals([0, 1, 2, 3].map((p) => servesPiece(s1, p)), [true, false, false, true]);
    assertEquals([...servedPieces(s1).indexes()], [0, 3]);
  });
  await t.step("no file left: dropped", () => {
    const [s, a] = run(s1, [[2, start], [2, start], [3, missing(0)], [4, missing(2)]]);
    assertEquals(a.map((x) => x.type), ["lost-file", "lost-file", "dropped"]);
    assertEquals([s.dropped, canStart(s, 10), servesPiece(s, 3), servedPieces(s).count], ["no-files", false, false, 0]);
    assertThrows(() => stepSeed(s, start, 5), RangeError);
  });
});

const bans: {
  name: string;
  lengths: number[];
  pieceLength: number;
  pieces: number[];
  actions: SeedAction[];
  served: number[];
}[] = [
  {
    name: "single-file torrent: the whole seed goes",
    lengths: [16],
    pieceLength: 4,
    pieces: [2],
    actions: [{ type: "dropped", reason: "bad-data" }],
    served: [],
  },
  {
    name: "one file with bytes beside padding: the whole seed goes",
    lengths: [6, -2, 0],
    pieceLength: 4,
    pieces: [0],
    actions: [{ type: "dropped", reason: "bad-data" }],
    served: [],
  },
  {
    name: "a piece inside one file bans that file",
    lengths: [8, 8],
    pieceLength: 4,
    pieces: [2],
    actions: [{ type: "lost-file", fileIndex: 1, fault: { kind: "banned" } }],
    served: [0, 1],
  },
  {
    name: "a piece of one file and padding bans that file",
    lengths: [6, -2, 8],
    pieceLength: 4,
    pieces: [1],
    actions: [{ type: "lost-file", fileIndex: 0, fault: { kind: "banned" } }],
    served: [2, 3],
  },
  {
    name: "a piece spanning files: that piece only",
    lengths: [6, 6, 4],
    pieceLength: 4,
    pieces: [1],
    actions: [{ type: "lost-piece", piece: 1 }],
    served: [0, 2, 3],
  },
  {
    name: "a file struck twice is banned",
    lengths: [6, 4, 6],
    pieceLength: 4,
    pieces: [1, 2],
    actions: [
      { type: "lost-piece", piece: 1 },
      { type: "lost-piece", piece: 2 },
      { type: "lost-file", fileIndex: 1, fault: { kind: "banned" } },
    ],
    served: [0, 3],
  },
  {
    name: "the same piece twice counts once",
    lengths: [6, 6, 4],
    pieceLength: 4,
    pieces: [1, 1],
    actions: [{ type: "lost-piece", piece: 1 }],
    served: [0, 2, 3],
  },
  {
    name: "every file banned: the seed goes",
    lengths: [4, 4],
    pieceLength: 4,
    pieces: [0, 1],
    actions: [
      { type: "lost-file", fileIndex: 0, fault: { kind: "banned" } },
      { type: "lost-file", fileIndex: 1, fault: { kind: "banned" } },
      { type: "dropped", reason: "bad-data" },
    ],
    served: [],
  },
  {
    name: "nothing more once dropped",
    lengths: [4],
    pieceLength: 2,
    pieces: [0, 1],
    actions: [{ type: "dropped", reason: "bad-data" }],
    served: [],
  },
];

Deno.test("stepSeed() bans bad data by libtorrent's rule: the seed, the file, or the piece", async (t) => {
  for (const c of bans) {
    await t.step(c.name, () => {
      const s0 = createSeedState(geometry(c.pieceLength, c.lengths), "http://m/", 0);
      const [s, actions] = run(s0, c.pieces.map((p, i) => [i, bad(p)]));
      assertEquals(actions, c.actions);
      assertEquals([...servedPieces(s).indexes()], c.served);
    });
  }
});

Deno.test("stepSeed() drops a seed with more than WEBSEED_MAX_BAD_PIECES bad pieces", () => {
  // files of 3 bytes, pieces of 4: piece 3i spans files 4i and 4i+1 only, so no file is struck twice
  const lengths = Array.from({ length: 4 * (WEBSEED_MAX_BAD_PIECES + 2) }, () => 3);
  const meta = geometry(4, lengths);
  const pieces = Array.from({ length: WEBSEED_MAX_BAD_PIECES + 1 }, (_, i) => 3 * i);
  const [s, actions] = run(createSeedState(meta, "http://m/", 0), pieces.map((p, i) => [i, bad(p)]));
  assertEquals(actions.filter((a) => a.type === "lost-file"), []);
  assertEquals(actions.filter((a) => a.type === "lost-piece").length, WEBSEED_MAX_BAD_PIECES + 1);
  assertEquals(actions[actions.length - 1], { type: "dropped", reason: "bad-data" });
  assertEquals(s.dropped, "bad-data");
});

Deno.test("stepSeed() turns a missing file into a banned one without reporting it twice", () => {
  const s0 = createSeedState(geometry(4, [8, 8, 8]), "http://m/", 0);
  const [s, actions] = run(s0, [[0, start], [1, missing(1)], [2, bad(2)]]);
  assertEquals(actions.map((a) => a.type), ["lost-file"]);
  assertEquals(s.faults.get(1), { kind: "banned" });
});

Deno.test("servedPieces() agrees with servesPiece() on generated fault sets", () => {
  const rand = seeded(fuzzSeed(11));
  for (let i = 0; i < 300; i++) {
    const lengths = Array.from({ length: 2 + rand.int(6) }, () => (rand.int(5) === 0 ? -1 : 1) * rand.int(12));
    if (lengths.filter((n) => n > 0).length < 2) lengths.push(5, 5);
    const meta = geometry(1 + rand.int(8), lengths);
    let s = createSeedState(meta, "http://m/", 0);
    for (let k = rand.int(4); k > 0; k--) {
      if (rand.int(2) === 0 && s.dropped === null) {
        [s] = run(s, [[k, start], [k, missing(rand.int(meta.files.length))]]);
      } else [s] = run(s, [[k, bad(rand.int(meta.pieceCount))]]);
    }
    const bits = servedPieces(s);
    for (let p = 0; p < meta.pieceCount; p++) {
      assertEquals(bits.has(p), servesPiece(s, p), `seed ${rand.seed} #${i} piece ${p}: ${JSON.stringify(lengths)}`);
    }
  }
});

Deno.test("seedRate() measures bytes over busy time", async (t) => {
  const meta = geometry(1 << 20, [1 << 30]);
  const s0 = createSeedState(meta, "http://m/a", 0);
  /** Feeds `rate` bytes/s in 100 ms chunks from `from` to `to` (ms). */
  const feed = (s: WebSeedState, rate: number, from: number, to: number): WebSeedState => {
    for (let now = from + 100; now <= to; now += 100) [s] = stepSeed(s, { type: "data", bytes: rate / 10 }, now);
    return s;
  };
  const near = (r: number | null, want: number) => assert(r !== null && Math.abs(r - want) / want < 0.07, `${r}`);
  await t.step("null before any byte", () => assertEquals(seedRate(s0, 1000), null));
  const [busy] = stepSeed(s0, start, 0);
  await t.step("right from the first second", () => near(seedRate(feed(busy, 1e6, 0, 1000), 1000), 1e6));
  await t.step("steady after a while", () => near(seedRate(feed(busy, 1e6, 0, 20_000), 20_000), 1e6));
  await t.step("follows a change within seconds", () => {
    near(seedRate(feed(feed(busy, 1e6, 0, 10_000), 4e6, 10_000, 30_000), 30_000), 4e6);
  });
  await t.step("idle time does not count", () => {
    const [idle] = stepSeed(feed(busy, 1e6, 0, 5000), done, 5000);
    near(seedRate(idle, 600_000), 1e6);
    const [again] = stepSeed(idle, start, 600_000);
    near(seedRate(again, 600_000), 1e6);
  });
  await t.step("a stalled run decays it", () => {
    const r = seedRate(feed(busy, 1e6, 0, 5000), 25_000);
    assert(r !== null && r < 0.05e6, `${r}`);
  });
  await t.step("counts every byte", () => assertEquals(feed(busy, 1e6, 0, 1000).downloaded, 1e6));
});

Deno.test("nextRunPieces() grows with the seed's rate, within one piece and the run limit", async (t) => {
  const MiB = 1 << 20;
  const s0 = createSeedState(geometry(MiB, [1 << 30]), "http://m/a", 0);
  let [s] = stepSeed(s0, start, 0);
  await t.step("unmeasured: the first run", () => assertEquals(nextRunPieces(s, 0), 1));
  const chunk = Math.round((2.15 * MiB) / 10); // 2.15 MiB/s in 100 ms chunks: 3 s of it is 6.45 pieces
  for (let now = 100; now <= 5000; now += 100) [s] = stepSeed(s, { type: "data", bytes: chunk }, now);
  await t.step("2.15 MiB/s: 6 pieces", () => assertEquals(nextRunPieces(s, 5000), 6));
  for (let now = 5100; now <= 30_000; now += 100) [s] = stepSeed(s, { type: "data", bytes: 10 * MiB }, now);
  await t.step("fast: the limit", () => assertEquals(nextRunPieces(s, 30_000), WEBSEED_MAX_RUN_BYTES / MiB));
  await t.step("never more than the torrent has", () => {
    const small = createSeedState(geometry(MiB, [3 * MiB]), "http://m/a", 0);
    let [x] = stepSeed(small, start, 0);
    [x] = stepSeed(x, { type: "data", bytes: 1e9 }, 1000);
    assertEquals(nextRunPieces(x, 1000), 3);
  });
});
