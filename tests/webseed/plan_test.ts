import { assertEquals, assertThrows } from "../_assert.ts";
import { fuzzSeed, seeded } from "../_gen.ts";
import {
  locateByte,
  type PlanGeometry,
  planRun,
  rangeHeader,
  runSize,
  type Segment,
  WEBSEED_FIRST_RUN_BYTES,
  WEBSEED_RUN_TARGET_MS,
} from "../../lib/webseed/plan.ts";
import { WEBSEED_MAX_RUN_BYTES } from "../../lib/limits.ts";
import type { TorrentFile } from "../../lib/metainfo.ts";

/** A torrent geometry from file lengths; lengths given as negative numbers are padding files. */
function geometry(pieceLength: number, lengths: number[]): PlanGeometry {
  const files: TorrentFile[] = [];
  let offset = 0;
  lengths.forEach((n, index) => {
    const length = Math.abs(n);
    files.push({ index, path: ["t", `f${index}`], length, offset, padding: n < 0 });
    offset += length;
  });
  return { files, pieceLength, totalLength: offset, pieceCount: Math.ceil(offset / pieceLength) };
}

function urlsOf(meta: PlanGeometry): (string | null)[] {
  return meta.files.map((f) => f.padding ? null : `http://h/t/f${f.index}`);
}

/** Short form of a segment: [kind, file, first byte in file, last byte in file, piece, offset in piece]. */
function brief(s: Segment): [string, number, number, number, number, number] {
  return s.kind === "get"
    ? ["get", s.fileIndex, s.rangeStart, s.rangeEnd, s.piece, s.pieceOffset]
    : ["zeros", s.fileIndex, s.fileOffset, s.fileOffset + s.length - 1, s.piece, s.pieceOffset];
}

const cases: {
  name: string;
  meta: PlanGeometry;
  first: number;
  last: number;
  want: ReturnType<typeof brief>[];
}[] = [
  {
    name: "single file, one piece",
    meta: geometry(4, [10]),
    first: 1,
    last: 1,
    want: [["get", 0, 4, 7, 1, 0]],
  },
  {
    name: "single file, a run ending in the short last piece",
    meta: geometry(4, [10]),
    first: 0,
    last: 2,
    want: [["get", 0, 0, 9, 0, 0]],
  },
  {
    name: "split at a file boundary inside a piece",
    meta: geometry(4, [5, 7]),
    first: 0,
    last: 2,
    want: [["get", 0, 0, 4, 0, 0], ["get", 1, 0, 6, 1, 1]],
  },
  {
    name: "a run starting mid-file",
    meta: geometry(4, [5, 7]),
    first: 2,
    last: 2,
    want: [["get", 1, 3, 6, 2, 0]],
  },
  {
    name: "empty files skipped",
    meta: geometry(4, [3, 0, 0, 5, 0]),
    first: 0,
    last: 1,
    want: [["get", 0, 0, 2, 0, 0], ["get", 3, 0, 4, 0, 3]],
  },
  {
    name: "padding filled locally, not requested",
    meta: geometry(4, [3, -1, 4]),
    first: 0,
    last: 1,
    want: [["get", 0, 0, 2, 0, 0], ["zeros", 1, 0, 0, 0, 3], ["get", 2, 0, 3, 1, 0]],
  },
  {
    name: "a piece of padding only asks for nothing",
    meta: geometry(4, [4, -8, 4]),
    first: 1,
    last: 2,
    want: [["zeros", 1, 0, 7, 1, 0]],
  },
  {
    name: "many small files in one piece",
    meta: geometry(8, [1, 2, 3, 2]),
    first: 0,
    last: 0,
    want: [["get", 0, 0, 0, 0, 0], ["get", 1, 0, 1, 0, 1], ["get", 2, 0, 2, 0, 3], ["get", 3, 0, 1, 0, 6]],
  },
];

Deno.test("planRun() cuts a run of pieces into one request per file, padding filled locally", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      assertEquals(planRun(c.meta, { first: c.first, last: c.last, urls: urlsOf(c.meta) }).map(brief), c.want);
    });
  }
});

Deno.test("planRun() puts each file's URL and length on its segment", () => {
  const meta = geometry(4, [5, 7]);
  const segs = planRun(meta, { first: 0, last: 2, urls: ["http://h/a", "http://h/b"] });
  assertEquals(segs.map((s) => [s.kind === "get" ? s.url : null, s.length, s.payloadOffset]), [
    ["http://h/a", 5, 0],
    ["http://h/b", 7, 5],
  ]);
  assertEquals(segs.map((s) => s.kind === "get" ? rangeHeader(s) : ""), ["bytes=0-4", "bytes=0-6"]);
});

const refused: { name: string; meta: PlanGeometry; first: number; last: number; urls?: (string | null)[] }[] = [
  { name: "empty run", meta: geometry(4, [10]), first: 2, last: 1 },
  { name: "negative first", meta: geometry(4, [10]), first: -1, last: 1 },
  { name: "last past the end", meta: geometry(4, [10]), first: 0, last: 3 },
  { name: "not an integer", meta: geometry(4, [10]), first: 0.5, last: 1 },
  { name: "a needed file without URL", meta: geometry(4, [5, 7]), first: 1, last: 1, urls: ["http://h/a", null] },
  { name: "a needed file missing from urls", meta: geometry(4, [5, 7]), first: 2, last: 2, urls: ["http://h/a"] },
];

Deno.test("planRun() refuses runs outside the torrent and files the seed has no URL for", async (t) => {
  for (const c of refused) {
    await t.step(c.name, () => {
      assertThrows(() => planRun(c.meta, { first: c.first, last: c.last, urls: c.urls ?? urlsOf(c.meta) }), RangeError);
    });
  }
});

Deno.test("planRun() segments tile the run exactly on generated torrents", () => {
  const rand = seeded(fuzzSeed(7));
  for (let i = 0; i < 500; i++) {
    const lengths = Array.from({ length: 1 + rand.int(8) }, () => {
      const n = rand.int(4) === 0 ? 0 : 1 + rand.int(40);
      return rand.int(5) === 0 ? -n : n;
    });
    if (lengths.every((n) => n <= 0)) lengths.push(1);
    const meta = geometry(1 + rand.int(16), lengths);
    const first = rand.int(meta.pieceCount);
    const last = first + rand.int(meta.pieceCount - first);
    const segs = planRun(meta, { first, last, urls: urlsOf(meta) });
    const msg = `seed ${rand.seed} #${i}: ${JSON.stringify(lengths)} / ${meta.pieceLength} [${first}, ${last}]`;
    let at = first * meta.pieceLength;
    for (const s of segs) {
      const f = meta.files[s.fileIndex];
      assertEquals(s.payloadOffset, at, msg);
      assertEquals(s.length > 0, true, msg);
      assertEquals(s.kind === "zeros", f.padding, msg);
      const fileOffset = s.kind === "get" ? s.rangeStart : s.fileOffset;
      assertEquals(f.offset + fileOffset, s.payloadOffset, msg);
      if (s.kind === "get") assertEquals(s.rangeEnd - s.rangeStart + 1, s.length, msg);
      assertEquals(fileOffset + s.length <= f.length, true, msg);
      assertEquals(locateByte(meta.pieceLength, s, 0), { piece: s.piece, offset: s.pieceOffset }, msg);
      at += s.length;
    }
    assertEquals(at, Math.min(meta.totalLength, (last + 1) * meta.pieceLength), msg);
  }
});

Deno.test("locateByte() maps a segment's bytes to pieces", async (t) => {
  const seg = { payloadOffset: 10, length: 9 };
  const rows: [number, { piece: number; offset: number }][] = [
    [0, { piece: 2, offset: 2 }],
    [1, { piece: 2, offset: 3 }],
    [2, { piece: 3, offset: 0 }],
    [8, { piece: 4, offset: 2 }],
  ];
  for (const [k, want] of rows) await t.step(`byte ${k}`, () => assertEquals(locateByte(4, seg, k), want));
  await t.step("outside the segment", () => {
    assertThrows(() => locateByte(4, seg, 9), RangeError);
    assertThrows(() => locateByte(4, seg, -1), RangeError);
  });
});

const MiB = 1024 * 1024;
const sizes: { name: string; rate: number | null; pieceLength: number; want: number }[] = [
  {
    name: "unmeasured: the first run",
    rate: null,
    pieceLength: 256 * 1024,
    want: WEBSEED_FIRST_RUN_BYTES / (256 * 1024),
  },
  { name: "unmeasured, big pieces: one piece", rate: null, pieceLength: 4 * MiB, want: 1 },
  { name: "zero rate: one piece", rate: 0, pieceLength: 16 * 1024, want: 1 },
  { name: "slow: one piece", rate: 10_000, pieceLength: MiB, want: 1 },
  {
    name: "target time at the measured rate",
    rate: 4 * MiB,
    pieceLength: MiB,
    want: (4 * WEBSEED_RUN_TARGET_MS) / 1000,
  },
  { name: "rounded down to whole pieces", rate: MiB, pieceLength: 2 * MiB, want: 1 },
  { name: "fast: capped", rate: 1e12, pieceLength: MiB, want: WEBSEED_MAX_RUN_BYTES / MiB },
  { name: "pieces over the cap: one", rate: 1e12, pieceLength: 32 * MiB, want: 1 },
];

Deno.test("runSize() sizes runs by the seed's rate, between one piece and WEBSEED_MAX_RUN_BYTES", async (t) => {
  for (const c of sizes) await t.step(c.name, () => assertEquals(runSize(c.rate, c.pieceLength), c.want));
  await t.step("bad inputs", () => {
    assertThrows(() => runSize(-1, MiB), RangeError);
    assertThrows(() => runSize(NaN, MiB), RangeError);
    assertThrows(() => runSize(MiB, 0), RangeError);
  });
});

Deno.test("planRun() with skip starts after the bytes of the first piece held already, and refuses a skip past it", () => {
  const meta = geometry(32768, [20000, 50000]);
  const segs = planRun(meta, { first: 0, last: 1, skip: 16384, urls: urlsOf(meta) });
  assertEquals(segs.map((s) => [s.fileIndex, s.payloadOffset, s.length, s.piece, s.pieceOffset]), [
    [0, 16384, 20000 - 16384, 0, 16384],
    [1, 20000, 65536 - 20000, 0, 20000],
  ]);
  assertEquals(segs.reduce((n, s) => n + s.length, 0), 65536 - 16384);
  for (const skip of [-1, 0.5, 32768, 40000]) {
    assertThrows(() => planRun(meta, { first: 0, last: 1, skip, urls: urlsOf(meta) }), RangeError);
  }
  // the last piece is short: a skip must stay inside it
  assertThrows(() => planRun(meta, { first: 2, last: 2, skip: 70000 - 65536, urls: urlsOf(meta) }), RangeError);
  assertEquals(planRun(meta, { first: 2, last: 2, skip: 100, urls: urlsOf(meta) })[0].payloadOffset, 65536 + 100);
});
