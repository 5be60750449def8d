/**
 * Piece ↔ file maths: which byte ranges of which files a piece (or a block of it) covers. Pure: no IO.
 *
 * A torrent's payload is its files laid end to end in `meta.files` order (`TorrentFile.offset`), cut into pieces of
 * `pieceLength` bytes (the last one may be short). Zero-length files cover no bytes and never appear in a span;
 * padding files (BEP 47) do appear, and callers skip them via `meta.files[span.fileIndex].padding`.
 * @module
 */
import type { Metainfo } from "../metainfo.ts";
import { Bitfield } from "../bitfield.ts";

/** The geometry this module needs from a {@linkcode Metainfo}. */
export type Geometry = Pick<Metainfo, "files" | "pieceLength" | "totalLength" | "pieceCount">;

/** One contiguous run of bytes shared by a piece and a file. */
export interface FileSpan {
  /** Index into `meta.files`. */
  readonly fileIndex: number;
  /** Where the run starts in the file. */
  readonly fileOffset: number;
  /** Where the run starts in the piece. */
  readonly pieceOffset: number;
  /** Its length in bytes, always > 0. */
  readonly length: number;
}

/** Files with bytes, sorted by payload offset, for binary search; built once per `files` array. */
interface FileIndex {
  readonly starts: Float64Array;
  readonly indexes: Uint32Array;
}

const fileIndexCache = new WeakMap<Geometry["files"], FileIndex>();

function fileIndexOf(files: Geometry["files"]): FileIndex {
  let fi = fileIndexCache.get(files);
  if (fi) return fi;
  let n = 0;
  for (const f of files) if (f.length > 0) n++;
  const starts = new Float64Array(n);
  const indexes = new Uint32Array(n);
  let k = 0;
  for (let i = 0; i < files.length; i++) {
    if (files[i].length > 0) {
      starts[k] = files[i].offset;
      indexes[k++] = i;
    }
  }
  fi = { starts, indexes };
  fileIndexCache.set(files, fi);
  return fi;
}

/** Position in `fi` of the last file starting at or before `pos`. */
function findFile(fi: FileIndex, pos: number): number {
  let lo = 0;
  let hi = fi.starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (fi.starts[mid] <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function pieceLen(meta: Geometry, piece: number): number {
  return Math.min(meta.pieceLength, meta.totalLength - piece * meta.pieceLength);
}

/**
 * The file runs covering payload bytes `[start, start + length)`, in payload order; `pieceOffset` counts from
 * `start - base`. Internal: callers pass an in-range span.
 */
function rangeSpans(meta: Geometry, start: number, length: number, base: number): FileSpan[] {
  const out: FileSpan[] = [];
  if (length === 0) return out;
  const fi = fileIndexOf(meta.files);
  const end = start + length;
  let pos = start;
  for (let k = findFile(fi, start); pos < end && k < fi.indexes.length; k++) {
    const f = meta.files[fi.indexes[k]];
    const fileEnd = f.offset + f.length;
    if (fileEnd <= pos) continue;
    const n = Math.min(fileEnd, end) - pos;
    out.push({ fileIndex: fi.indexes[k], fileOffset: pos - f.offset, pieceOffset: pos - base, length: n });
    pos += n;
  }
  return out;
}

/**
 * The file runs that make up `length` bytes at `begin` in piece `piece`, in order; they tile the range exactly.
 * Padding files are included; zero-length files never appear.
 * @throws {RangeError} when the piece does not exist or the range is not inside it.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const files = [
 *   { index: 0, path: ["t", "a"], length: 5, offset: 0, padding: false },
 *   { index: 1, path: ["t", "b"], length: 7, offset: 5, padding: false },
 * ];
 * const meta = { files, pieceLength: 8, totalLength: 12, pieceCount: 2 };
 * eq(blockSpans(meta, 0, 4, 3), [
 *   { fileIndex: 0, fileOffset: 4, pieceOffset: 4, length: 1 },
 *   { fileIndex: 1, fileOffset: 0, pieceOffset: 5, length: 2 },
 * ]);
 * ```
 */
export function blockSpans(meta: Geometry, piece: number, begin: number, length: number): FileSpan[] {
  if (!Number.isInteger(piece) || piece < 0 || piece >= meta.pieceCount) {
    throw new RangeError(`Cannot map piece ${piece}: the torrent has ${meta.pieceCount} pieces`);
  }
  const plen = pieceLen(meta, piece);
  if (!Number.isInteger(begin) || !Number.isInteger(length) || begin < 0 || length < 0 || begin + length > plen) {
    throw new RangeError(`Cannot map ${length} bytes at ${begin} in piece ${piece}: the piece has ${plen} bytes`);
  }
  const base = piece * meta.pieceLength;
  return rangeSpans(meta, base + begin, length, base);
}

/**
 * The file runs that make up piece `piece`, in order; they tile `[0, pieceLength)` (shorter for the last piece).
 * @throws {RangeError} when the piece does not exist.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const files = [
 *   { index: 0, path: ["t", "a"], length: 5, offset: 0, padding: false },
 *   { index: 1, path: ["t", "empty"], length: 0, offset: 5, padding: false },
 *   { index: 2, path: ["t", "b"], length: 7, offset: 5, padding: false },
 * ];
 * const meta = { files, pieceLength: 8, totalLength: 12, pieceCount: 2 };
 * eq(pieceSpans(meta, 1), [{ fileIndex: 2, fileOffset: 3, pieceOffset: 0, length: 4 }]);
 * ```
 */
export function pieceSpans(meta: Geometry, piece: number): FileSpan[] {
  if (!Number.isInteger(piece) || piece < 0 || piece >= meta.pieceCount) {
    throw new RangeError(`Cannot map piece ${piece}: the torrent has ${meta.pieceCount} pieces`);
  }
  const base = piece * meta.pieceLength;
  return rangeSpans(meta, base, pieceLen(meta, piece), base);
}

/**
 * The payload-order file runs covering `length` bytes from payload offset `start`; `pieceOffset` counts from
 * `start`. For bulk reads across many pieces.
 * @throws {RangeError} when the range is not inside the payload.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const files = [
 *   { index: 0, path: ["t", "a"], length: 5, offset: 0, padding: false },
 *   { index: 1, path: ["t", "b"], length: 7, offset: 5, padding: false },
 * ];
 * const meta = { files, pieceLength: 8, totalLength: 12, pieceCount: 2 };
 * eq(payloadSpans(meta, 3, 9).map((s) => [s.fileIndex, s.fileOffset, s.length]), [[0, 3, 2], [1, 0, 7]]);
 * ```
 */
export function payloadSpans(meta: Geometry, start: number, length: number): FileSpan[] {
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0) {
    throw new RangeError(`Cannot map ${length} bytes at payload offset ${start}`);
  }
  if (start + length > meta.totalLength) {
    throw new RangeError(`Cannot map ${length} bytes at ${start}: the payload has ${meta.totalLength} bytes`);
  }
  return rangeSpans(meta, start, length, start);
}

/**
 * The first and last piece holding bytes of file `fileIndex`, or null for a zero-length file.
 * @throws {RangeError} when there is no such file.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const files = [
 *   { index: 0, path: ["t", "a"], length: 5, offset: 0, padding: false },
 *   { index: 1, path: ["t", "e"], length: 0, offset: 5, padding: false },
 *   { index: 2, path: ["t", "b"], length: 7, offset: 5, padding: false },
 * ];
 * const meta = { files, pieceLength: 4, totalLength: 12, pieceCount: 3 };
 * eq(filePieceRange(meta, 2), { first: 1, last: 2 });
 * eq(filePieceRange(meta, 1), null);
 * ```
 */
export function filePieceRange(meta: Geometry, fileIndex: number): { first: number; last: number } | null {
  const f = meta.files[fileIndex];
  if (!Number.isInteger(fileIndex) || f === undefined) {
    throw new RangeError(`Cannot map file ${fileIndex}: the torrent has ${meta.files.length} files`);
  }
  if (f.length === 0) return null;
  return {
    first: Math.floor(f.offset / meta.pieceLength),
    last: Math.floor((f.offset + f.length - 1) / meta.pieceLength),
  };
}

/**
 * The pieces that hold any byte of a selected, non-padding file (indexes outside the torrent are ignored).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const files = [
 *   { index: 0, path: ["t", "a"], length: 5, offset: 0, padding: false },
 *   { index: 1, path: ["t", "b"], length: 7, offset: 5, padding: false },
 * ];
 * const meta = { files, pieceLength: 4, totalLength: 12, pieceCount: 3 };
 * eq([...piecesForFiles(meta, new Set([0])).indexes()], [0, 1]);
 * ```
 */
export function piecesForFiles(meta: Geometry, selected: ReadonlySet<number>): Bitfield {
  const out = new Bitfield(meta.pieceCount);
  for (const i of selected) {
    const f = meta.files[i];
    if (f === undefined || f.padding) continue;
    const r = filePieceRange(meta, i);
    if (r === null) continue;
    for (let p = r.first; p <= r.last; p++) out.set(p);
  }
  return out;
}
