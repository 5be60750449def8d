import { assertEquals } from "../_assert.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import type { TorrentFile } from "../../lib/metainfo.ts";
import {
  bytesLeft,
  checkLimits,
  createTorrentState,
  DEFAULT_STALL_TIMEOUT_MS,
  type LimitDecision,
  type Limits,
  pieceBytes,
  pieceVerifiedIn,
  type TorrentState,
} from "../../lib/engine/torrent_state.ts";

function bits(size: number, indexes: Iterable<number>): Bitfield {
  const b = new Bitfield(size);
  for (const i of indexes) b.set(i);
  return b;
}

function files(...specs: [name: string, length: number, padding?: boolean][]): TorrentFile[] {
  let offset = 0;
  return specs.map(([name, length, padding], index) => {
    const f = { index, path: ["t", name], length, offset, padding: padding ?? false };
    offset += length;
    return f;
  });
}

/**
 * Piece length 4, 16 bytes, 4 pieces:
 * piece 0 = a[0..4); piece 1 = a[4..6) + b[0..2) (the empty file sits between them); piece 2 = b[2..5) + padding;
 * piece 3 = c.
 */
const META = {
  pieceCount: 4,
  pieceLength: 4,
  totalLength: 16,
  files: files(["a", 6], ["empty", 0], ["b", 5], ["pad", 1, true], ["c", 4]),
};
const [A, EMPTY, B, PAD, C] = [0, 1, 2, 3, 4];

const fileRows: {
  name: string;
  have: number[];
  wanted: number[];
  selected?: number[];
  remaining: number[];
  verify: [piece: number, done: number[]][];
}[] = [
  {
    name: "every file followed: a shared piece counts for both files; empty and padding files are not followed",
    have: [],
    wanted: [0, 1, 2, 3],
    remaining: [2, -1, 2, -1, 1],
    verify: [[1, []], [3, [C]], [0, [A]], [2, [B]]],
  },
  {
    name: "the piece shared by two files completes both at once",
    have: [],
    wanted: [0, 1, 2, 3],
    remaining: [2, -1, 2, -1, 1],
    verify: [[0, []], [2, []], [1, [A, B]], [3, [C]]],
  },
  {
    name: "pieces had at the start do not count as missing",
    have: [1, 3],
    wanted: [0, 1, 2, 3],
    remaining: [1, -1, 1, -1, 0],
    verify: [[2, [B]], [0, [A]]],
  },
  {
    name: "unselected files are not followed, even through a piece shared with a selected one",
    have: [],
    wanted: [1, 2],
    selected: [B],
    remaining: [-1, -1, 2, -1, -1],
    verify: [[1, []], [2, [B]]],
  },
  {
    name: "a piece verified twice completes nothing twice",
    have: [],
    wanted: [3],
    selected: [C],
    remaining: [-1, -1, -1, -1, 1],
    verify: [[3, [C]], [3, []]],
  },
];

Deno.test("createTorrentState() and pieceVerifiedIn() follow which files are complete", async (t) => {
  for (const r of fileRows) {
    await t.step(r.name, () => {
      const ts = createTorrentState(META, {
        have: bits(4, r.have),
        wanted: bits(4, r.wanted),
        selected: r.selected && new Set(r.selected),
        now: 0,
      });
      assertEquals([...ts.fileRemaining], r.remaining);
      for (const [k, [piece, done]] of r.verify.entries()) {
        assertEquals(pieceVerifiedIn(ts, piece, 10 + k), done, `step ${k}: piece ${piece}`);
      }
      for (const f of [EMPTY, PAD]) assertEquals(ts.fileRemaining[f], -1);
    });
  }
});

Deno.test("createTorrentState() counts wanted and verified bytes; pieceVerifiedIn() adds wanted pieces", async (t) => {
  const rows = [
    { name: "nothing had", have: [], wanted: [0, 1, 2, 3], wantedBytes: 16, verified: 0 },
    { name: "some had", have: [0, 3], wanted: [0, 1, 2, 3], wantedBytes: 16, verified: 8 },
    { name: "only wanted pieces count", have: [0, 3], wanted: [1, 3], wantedBytes: 8, verified: 4 },
    { name: "nothing wanted", have: [0], wanted: [], wantedBytes: 0, verified: 0 },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const ts = createTorrentState(META, { have: bits(4, r.have), wanted: bits(4, r.wanted), now: 5 });
      assertEquals([ts.wantedBytes, ts.verifiedBytes, bytesLeft(ts)], [
        r.wantedBytes,
        r.verified,
        r.wantedBytes - r.verified,
      ]);
      assertEquals([ts.downloaded, ts.uploaded, ts.wasted, ts.hashFailures], [0, 0, 0, 0]);
      assertEquals([ts.lastProgressAt, ts.completeAt, ts.seedStartedAt], [5, null, null]);
      let left = bytesLeft(ts);
      for (let i = 0; i < 4; i++) {
        if (r.have.includes(i)) continue;
        pieceVerifiedIn(ts, i, 100 + i);
        if (r.wanted.includes(i)) left -= pieceBytes(META, i);
        assertEquals([bytesLeft(ts), ts.lastProgressAt], [left, 100 + i], `piece ${i}`);
      }
      assertEquals(bytesLeft(ts), 0);
    });
  }
  await t.step("a short last piece counts its own length", () => {
    const meta = { pieceCount: 3, pieceLength: 4, totalLength: 9, files: files(["x", 9]) };
    assertEquals([0, 1, 2].map((i) => pieceBytes(meta, i)), [4, 4, 1]);
    const ts = createTorrentState(meta, { have: bits(3, [2]), wanted: Bitfield.full(3), now: 0 });
    assertEquals([ts.wantedBytes, ts.verifiedBytes, ts.fileRemaining[0]], [9, 1, 2]);
    assertEquals(pieceVerifiedIn(ts, 0, 1), []);
    assertEquals(pieceVerifiedIn(ts, 1, 2), [0]);
    assertEquals(bytesLeft(ts), 0);
  });
});

/** A state of META (16 bytes wanted) at `start`, with `patch` applied. */
function state(patch: Partial<TorrentState>, start = 0): TorrentState {
  const ts = createTorrentState(META, { have: new Bitfield(4), wanted: Bitfield.full(4), now: start });
  return Object.assign(ts, patch);
}

const limitRows: { name: string; ts: Partial<TorrentState>; now: number; limits: Limits; want: LimitDecision }[] = [
  // downloading
  { name: "downloading, no limits hit", ts: {}, now: 1_000, limits: {}, want: { kind: "continue" } },
  {
    name: "timeout: just before",
    ts: { lastProgressAt: 9_000 },
    now: 9_999,
    limits: { timeoutMs: 10_000 },
    want: { kind: "continue" },
  },
  {
    name: "timeout: at the limit, though pieces keep coming",
    ts: { lastProgressAt: 9_999 },
    now: 10_000,
    limits: { timeoutMs: 10_000 },
    want: { kind: "timeout", afterMs: 10_000 },
  },
  {
    name: "stall: just before",
    ts: { lastProgressAt: 1_000 },
    now: 2_999,
    limits: { stallTimeoutMs: 2_000 },
    want: { kind: "continue" },
  },
  {
    name: "stall: no piece verified for the stall time-out",
    ts: { lastProgressAt: 1_000 },
    now: 3_000,
    limits: { stallTimeoutMs: 2_000 },
    want: { kind: "stalled", afterMs: 2_000 },
  },
  {
    name: "stall: the default time-out",
    ts: {},
    now: DEFAULT_STALL_TIMEOUT_MS,
    limits: {},
    want: { kind: "stalled", afterMs: DEFAULT_STALL_TIMEOUT_MS },
  },
  {
    name: "stall: one ms under the default time-out",
    ts: {},
    now: DEFAULT_STALL_TIMEOUT_MS - 1,
    limits: {},
    want: { kind: "continue" },
  },
  {
    name: "timeout wins over a stall at the same time",
    ts: {},
    now: 5_000,
    limits: { timeoutMs: 5_000, stallTimeoutMs: 5_000 },
    want: { kind: "timeout", afterMs: 5_000 },
  },
  {
    name: "seed limits do not end a download",
    ts: { uploaded: 1_000 },
    now: 1_000,
    limits: { seed: { ratio: 0, timeMs: 0 } },
    want: { kind: "continue" },
  },
  // complete
  { name: "complete, no seeding: stop", ts: { completeAt: 500 }, now: 500, limits: {}, want: { kind: "stop" } },
  {
    name: "complete: the download's timeout and stall no longer apply",
    ts: { completeAt: 500, seedStartedAt: 500 },
    now: 10 * DEFAULT_STALL_TIMEOUT_MS,
    limits: { timeoutMs: 1_000, stallTimeoutMs: 1_000, seed: {} },
    want: { kind: "continue" },
  },
  {
    name: "seeding not started yet: continue",
    ts: { completeAt: 500 },
    now: 10_000,
    limits: { seed: { timeMs: 0 } },
    want: { kind: "continue" },
  },
  {
    name: "seeding by time: before",
    ts: { completeAt: 500, seedStartedAt: 600 },
    now: 1_599,
    limits: { seed: { timeMs: 1_000 } },
    want: { kind: "continue" },
  },
  {
    name: "seeding by time: at the time",
    ts: { completeAt: 500, seedStartedAt: 600 },
    now: 1_600,
    limits: { seed: { timeMs: 1_000 } },
    want: { kind: "stop" },
  },
  {
    name: "seeding by ratio: under (31 of 2 x 16 bytes)",
    ts: { completeAt: 500, seedStartedAt: 500, uploaded: 31 },
    now: 600,
    limits: { seed: { ratio: 2 } },
    want: { kind: "continue" },
  },
  {
    name: "seeding by ratio: reached (32 of 2 x 16 bytes)",
    ts: { completeAt: 500, seedStartedAt: 500, uploaded: 32 },
    now: 600,
    limits: { seed: { ratio: 2 } },
    want: { kind: "stop" },
  },
  {
    name: "seeding by ratio or time: the ratio first",
    ts: { completeAt: 500, seedStartedAt: 500, uploaded: 16 },
    now: 600,
    limits: { seed: { ratio: 1, timeMs: 60_000 } },
    want: { kind: "stop" },
  },
  {
    name: "seeding by ratio or time: the time first",
    ts: { completeAt: 500, seedStartedAt: 500, uploaded: 0 },
    now: 60_500,
    limits: { seed: { ratio: 1, timeMs: 60_000 } },
    want: { kind: "stop" },
  },
  {
    name: "seeding with no limit: until interrupted",
    ts: { completeAt: 500, seedStartedAt: 500, uploaded: 1e12 },
    now: 1e9,
    limits: { seed: {} },
    want: { kind: "continue" },
  },
];

Deno.test("checkLimits() ends a download on timeout or stall, and seeding on ratio or time", async (t) => {
  for (const r of limitRows) {
    await t.step(r.name, () => assertEquals(checkLimits(state(r.ts), r.now, r.limits), r.want));
  }
});

Deno.test("checkLimits() measures a stall from the last verified piece", () => {
  const ts = state({}, 0);
  const limits = { stallTimeoutMs: 1_000 };
  assertEquals(checkLimits(ts, 900, limits).kind, "continue");
  pieceVerifiedIn(ts, 0, 900);
  assertEquals(checkLimits(ts, 1_899, limits).kind, "continue");
  assertEquals(checkLimits(ts, 1_900, limits), { kind: "stalled", afterMs: 1_000 });
});
