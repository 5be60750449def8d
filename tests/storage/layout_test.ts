import { assertEquals, assertThrows } from "../_assert.ts";
import { fuzzIterations, fuzzSeed, seeded } from "../_gen.ts";
import { blockSpans, filePieceRange, payloadSpans, piecesForFiles, pieceSpans } from "../../lib/storage/layout.ts";
import { makeGeom, randomFiles } from "./_geom.ts";

/** Files of the given lengths (padding where the length is negative: -n is n bytes of padding). */
function geom(lengths: number[], pieceLength: number) {
  return makeGeom(
    lengths.map((n) => ({ data: new Uint8Array(Math.abs(n)), padding: n < 0 })),
    pieceLength,
  ).meta;
}

/** Spans as compact tuples: [fileIndex, fileOffset, pieceOffset, length]. */
function tuples(spans: { fileIndex: number; fileOffset: number; pieceOffset: number; length: number }[]) {
  return spans.map((s) => [s.fileIndex, s.fileOffset, s.pieceOffset, s.length]);
}

const cases: { name: string; lengths: number[]; pl: number; want: number[][][] }[] = [
  { name: "single file, whole pieces", lengths: [32], pl: 16, want: [[[0, 0, 0, 16]], [[0, 16, 0, 16]]] },
  { name: "single file, short last piece", lengths: [20], pl: 16, want: [[[0, 0, 0, 16]], [[0, 16, 0, 4]]] },
  { name: "a file shorter than a piece", lengths: [5], pl: 16, want: [[[0, 0, 0, 5]]] },
  {
    name: "files sharing pieces, odd sizes",
    lengths: [3, 7, 11],
    pl: 8,
    want: [
      [[0, 0, 0, 3], [1, 0, 3, 5]],
      [[1, 5, 0, 2], [2, 0, 2, 6]],
      [[2, 6, 0, 5]],
    ],
  },
  {
    name: "empty files never appear",
    lengths: [0, 4, 0, 0, 4, 0],
    pl: 8,
    want: [[[1, 0, 0, 4], [4, 0, 4, 4]]],
  },
  {
    name: "a file spanning several pieces",
    lengths: [2, 20, 2],
    pl: 8,
    want: [[[0, 0, 0, 2], [1, 0, 2, 6]], [[1, 6, 0, 8]], [[1, 14, 0, 6], [2, 0, 6, 2]]],
  },
  {
    name: "padding files are included (BEP 47 alignment)",
    lengths: [5, -3, 8, 1],
    pl: 8,
    want: [[[0, 0, 0, 5], [1, 0, 5, 3]], [[2, 0, 0, 8]], [[3, 0, 0, 1]]],
  },
];

Deno.test("pieceSpans() maps each piece to its file runs", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const meta = geom(c.lengths, c.pl);
      assertEquals(meta.pieceCount, c.want.length);
      for (let p = 0; p < meta.pieceCount; p++) assertEquals(tuples(pieceSpans(meta, p)), c.want[p], `piece ${p}`);
    });
  }
});

Deno.test("blockSpans() maps a sub-range of a piece", () => {
  const meta = geom([3, 7, 11], 8);
  assertEquals(tuples(blockSpans(meta, 0, 2, 3)), [[0, 2, 2, 1], [1, 0, 3, 2]]);
  assertEquals(tuples(blockSpans(meta, 1, 2, 6)), [[2, 0, 2, 6]]);
  assertEquals(tuples(blockSpans(meta, 2, 4, 1)), [[2, 10, 4, 1]]);
  assertEquals(blockSpans(meta, 1, 3, 0), []);
});

Deno.test("blockSpans() and pieceSpans() refuse ranges outside the torrent", async (t) => {
  const meta = geom([3, 7, 11], 8);
  const rows: [string, () => unknown][] = [
    ["negative piece", () => pieceSpans(meta, -1)],
    ["piece past the end", () => pieceSpans(meta, 3)],
    ["fractional piece", () => pieceSpans(meta, 0.5)],
    ["block past a short last piece", () => blockSpans(meta, 2, 4, 2)],
    ["negative begin", () => blockSpans(meta, 0, -1, 1)],
    ["payload range past the end", () => payloadSpans(meta, 20, 2)],
  ];
  for (const [name, fn] of rows) await t.step(name, () => void assertThrows(fn, RangeError));
});

Deno.test("filePieceRange() gives first and last piece, null for empty files", () => {
  const meta = geom([3, 0, 7, 11], 8);
  assertEquals(filePieceRange(meta, 0), { first: 0, last: 0 });
  assertEquals(filePieceRange(meta, 1), null);
  assertEquals(filePieceRange(meta, 2), { first: 0, last: 1 });
  assertEquals(filePieceRange(meta, 3), { first: 1, last: 2 });
  assertThrows(() => filePieceRange(meta, 4), RangeError);
});

Deno.test("piecesForFiles() covers selected files, ignoring padding and empty files", () => {
  const meta = geom([5, -3, 8, 0, 1], 8);
  assertEquals([...piecesForFiles(meta, new Set([0])).indexes()], [0]);
  assertEquals([...piecesForFiles(meta, new Set([1])).indexes()], []);
  assertEquals([...piecesForFiles(meta, new Set([3])).indexes()], []);
  assertEquals([...piecesForFiles(meta, new Set([2, 4])).indexes()], [1, 2]);
  assertEquals([...piecesForFiles(meta, new Set([0, 99])).indexes()], [0]);
});

Deno.test("pieceSpans() tiles every piece exactly and maps to the right file bytes (random geometries)", () => {
  const seed = fuzzSeed(7);
  const rand = seeded(seed);
  const n = fuzzIterations(300);
  for (let it = 0; it < n; it++) {
    const files = randomFiles(rand, 1 + rand.int(12), rand.int(4) === 0 ? 200 : 40, true);
    const pl = 1 + rand.int(64);
    const g = makeGeom(files, pl);
    const meta = g.meta;
    const ctx = `seed ${seed} #${it}`;
    let covered = 0;
    for (let p = 0; p < meta.pieceCount; p++) {
      const plen = Math.min(pl, meta.totalLength - p * pl);
      const spans = pieceSpans(meta, p);
      let at = 0;
      for (const s of spans) {
        assertEquals(s.pieceOffset, at, `${ctx} piece ${p}: spans tile the piece`);
        assertEquals(s.length > 0, true, ctx);
        const f = meta.files[s.fileIndex];
        assertEquals(f.offset + s.fileOffset, p * pl + s.pieceOffset, `${ctx} piece ${p}: file offset`);
        assertEquals(s.fileOffset + s.length <= f.length, true, ctx);
        // the bytes agree: the file's content at fileOffset is the payload at the piece's offset
        assertEquals(
          g.contents[s.fileIndex].subarray(s.fileOffset, s.fileOffset + s.length),
          g.piece(p).subarray(s.pieceOffset, s.pieceOffset + s.length),
          ctx,
        );
        at += s.length;
      }
      assertEquals(at, plen, `${ctx} piece ${p}: spans cover the piece`);
      covered += at;
      // a random block gives the matching slice of the piece's spans
      const begin = rand.int(plen);
      const len = rand.int(plen - begin + 1);
      const block = blockSpans(meta, p, begin, len);
      assertEquals(block.reduce((a, s) => a + s.length, 0), len, ctx);
      if (len > 0) assertEquals(block[0].pieceOffset, begin, ctx);
    }
    assertEquals(covered, meta.totalLength, ctx);
    // a file's piece range is exactly the pieces whose spans name it
    for (let i = 0; i < meta.files.length; i++) {
      const r = filePieceRange(meta, i);
      const named: number[] = [];
      for (let p = 0; p < meta.pieceCount; p++) if (pieceSpans(meta, p).some((s) => s.fileIndex === i)) named.push(p);
      assertEquals(r === null ? [] : Array.from({ length: r.last - r.first + 1 }, (_, k) => r.first + k), named, ctx);
    }
  }
});
