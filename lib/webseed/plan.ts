/**
 * What to ask a web seed for: the HTTP requests that fetch a run of whole pieces, and how long the next run should
 * be. Pure: no IO, no clock.
 *
 * Policy:
 * - The engine hands a seed runs of whole pieces `[first, last]`: at least one piece, so every piece a seed delivers
 *   can be hash-checked on its own, and up to {@linkcode runSize} pieces.
 * - A run becomes one segment per file it touches, in payload order, cut at file boundaries (the piece ↔ file maths
 *   is `lib/storage/layout.ts`'s): a `get` segment is one `GET` with `Range: bytes=rangeStart-rangeEnd` (inclusive,
 *   as HTTP has it) on the file's URL; a `zeros` segment covers a padding file (BEP 47), whose bytes are zeros by
 *   definition: filled locally, never requested. A zero-length file covers no bytes and gets no segment (storage
 *   creates it).
 * - Each segment says where its bytes go: `payloadOffset` (its first byte in the torrent's payload) and the `piece`
 *   and `pieceOffset` of that byte; {@linkcode locateByte} maps any byte of the segment to its piece and offset.
 * - The next run's length follows the seed's measured rate: about {@linkcode WEBSEED_RUN_TARGET_MS} of transfer, at
 *   least one piece and at most {@linkcode WEBSEED_MAX_RUN_BYTES} (rounded down to whole pieces, never below one), so a
 *   fast seed gets long runs (few requests, long streams) and a slow one short runs (little held hostage by it). A
 *   seed with no measurement yet gets {@linkcode WEBSEED_FIRST_RUN_BYTES}.
 * @module
 */
import type { Metainfo } from "../metainfo.ts";
import { WEBSEED_MAX_RUN_BYTES } from "../limits.ts";
import { payloadSpans } from "../storage/layout.ts";

/** The transfer time a run is sized for: long enough that a round trip per run is small beside it. */
export const WEBSEED_RUN_TARGET_MS = 3000;
/** The length of a seed's first run, before its rate is known (at least one piece is asked anyway). */
export const WEBSEED_FIRST_RUN_BYTES = 1024 * 1024;

/** What {@linkcode planRun} reads from a torrent. */
export type PlanGeometry = Pick<Metainfo, "files" | "pieceLength" | "totalLength" | "pieceCount">;

/** Where a segment's first byte belongs. */
interface SegmentPlace {
  /** Index into `meta.files`. */
  readonly fileIndex: number;
  /** Bytes in the segment, always > 0. */
  readonly length: number;
  /** Offset of the first byte in the torrent's payload. */
  readonly payloadOffset: number;
  /** The piece holding the first byte. */
  readonly piece: number;
  /** The first byte's offset in that piece. */
  readonly pieceOffset: number;
}

/** One ranged `GET`: bytes `rangeStart..rangeEnd` (inclusive) of the file at `url`. */
export interface GetSegment extends SegmentPlace {
  readonly kind: "get";
  readonly url: string;
  readonly rangeStart: number;
  readonly rangeEnd: number;
}

/** Bytes of a padding file: zeros, filled locally. `fileOffset` is where they start in the padding file. */
export interface ZeroSegment extends SegmentPlace {
  readonly kind: "zeros";
  readonly fileOffset: number;
}

/** A piece of a run's plan. */
export type Segment = GetSegment | ZeroSegment;

/** A run of whole pieces and the seed's URL for each file (null: none, as `webSeedUrls` gives). */
export interface RunRequest {
  readonly first: number;
  readonly last: number;
  readonly urls: readonly (string | null)[];
  /**
   * Bytes at the start of piece `first` that are held already (a run cut short before): the run starts after them,
   * so a seed that answers each range with less than a piece still gets further each time. Default 0.
   */
  readonly skip?: number;
}

/**
 * The segments that fetch pieces `first..last` (inclusive) from a web seed: they tile the run's bytes exactly, in
 * payload order. See the module policy.
 * @throws {RangeError} when the run is empty or outside the torrent, or a file it needs has no URL (the engine must
 * hand a seed only pieces it serves).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const files = [
 *   { index: 0, path: ["t", "a"], length: 5, offset: 0, padding: false },
 *   { index: 1, path: ["t", ".pad", "3"], length: 3, offset: 5, padding: true },
 *   { index: 2, path: ["t", "b"], length: 6, offset: 8, padding: false },
 * ];
 * const meta = { files, pieceLength: 4, totalLength: 14, pieceCount: 4 };
 * const urls = ["http://h/t/a", null, "http://h/t/b"];
 * eq(planRun(meta, { first: 1, last: 2, urls }), [
 *   { kind: "get", fileIndex: 0, url: "http://h/t/a", rangeStart: 4, rangeEnd: 4, length: 1, payloadOffset: 4,
 *     piece: 1, pieceOffset: 0 },
 *   { kind: "zeros", fileIndex: 1, fileOffset: 0, length: 3, payloadOffset: 5, piece: 1, pieceOffset: 1 },
 *   { kind: "get", fileIndex: 2, url: "http://h/t/b", rangeStart: 0, rangeEnd: 3, length: 4, payloadOffset: 8,
 *     piece: 2, pieceOffset: 0 },
 * ]);
 * ```
 */
export function planRun(meta: PlanGeometry, run: RunRequest): Segment[] {
  const { first, last } = run;
  if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last < first || last >= meta.pieceCount) {
    throw new RangeError(`Cannot plan pieces ${first}..${last}: the torrent has ${meta.pieceCount} pieces`);
  }
  const end = Math.min(meta.totalLength, (last + 1) * meta.pieceLength);
  const skip = run.skip ?? 0;
  if (
    !Number.isInteger(skip) || skip < 0 ||
    first * meta.pieceLength + skip >= Math.min(end, (first + 1) * meta.pieceLength)
  ) {
    throw new RangeError(`Cannot plan pieces ${first}..${last} from byte ${skip} of the first`);
  }
  const start = first * meta.pieceLength + skip;
  const out: Segment[] = [];
  for (const s of payloadSpans(meta, start, end - start)) {
    const payloadOffset = start + s.pieceOffset;
    const piece = Math.floor(payloadOffset / meta.pieceLength);
    const pieceOffset = payloadOffset % meta.pieceLength;
    const { fileIndex, fileOffset, length } = s;
    if (meta.files[fileIndex].padding) {
      out.push({ kind: "zeros", fileIndex, fileOffset, length, payloadOffset, piece, pieceOffset });
      continue;
    }
    const url = run.urls[fileIndex];
    if (url === null || url === undefined) {
      throw new RangeError(`Cannot plan pieces ${first}..${last}: file ${fileIndex} has no URL on this seed`);
    }
    const rangeEnd = fileOffset + length - 1;
    out.push({
      kind: "get",
      fileIndex,
      url,
      rangeStart: fileOffset,
      rangeEnd,
      length,
      payloadOffset,
      piece,
      pieceOffset,
    });
  }
  return out;
}

/**
 * The `Range` header value for a segment.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(rangeHeader({ rangeStart: 0, rangeEnd: 1023 }), "bytes=0-1023");
 * ```
 */
export function rangeHeader(seg: Pick<GetSegment, "rangeStart" | "rangeEnd">): string {
  return `bytes=${seg.rangeStart}-${seg.rangeEnd}`;
}

/**
 * The piece and offset of byte `k` (0-based) of a segment.
 * @throws {RangeError} when `k` is outside the segment.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const seg = { payloadOffset: 4094, length: 10 };
 * eq(locateByte(4096, seg, 0), { piece: 0, offset: 4094 });
 * eq(locateByte(4096, seg, 2), { piece: 1, offset: 0 });
 * ```
 */
export function locateByte(
  pieceLength: number,
  seg: Pick<SegmentPlace, "payloadOffset" | "length">,
  k: number,
): { piece: number; offset: number } {
  if (!Number.isInteger(k) || k < 0 || k >= seg.length) {
    throw new RangeError(`Cannot locate byte ${k} of a ${seg.length}-byte segment`);
  }
  const at = seg.payloadOffset + k;
  return { piece: Math.floor(at / pieceLength), offset: at % pieceLength };
}

/**
 * How many pieces to ask of a seed next, given its measured rate in bytes per second (null: not measured yet). See
 * the module policy.
 * @throws {RangeError} when the rate is negative or not a number, or the piece length is not positive.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const MiB = 1024 * 1024;
 * eq(runSize(null, 256 * 1024), 4); // WEBSEED_FIRST_RUN_BYTES
 * eq(runSize(2 * MiB, MiB), 6); // 3 s at 2 MiB/s
 * eq(runSize(1000, MiB), 1); // never below one piece
 * eq(runSize(1e12, MiB), 16); // WEBSEED_MAX_RUN_BYTES
 * eq(runSize(1e12, 32 * MiB), 1);
 * ```
 */
export function runSize(rateBytesPerS: number | null, pieceLength: number): number {
  if (!(pieceLength > 0)) throw new RangeError(`Cannot size a run of pieces of ${pieceLength} bytes`);
  if (rateBytesPerS !== null && !(rateBytesPerS >= 0)) {
    throw new RangeError(`Cannot size a run for a rate of ${rateBytesPerS} bytes per second`);
  }
  const want = rateBytesPerS === null ? WEBSEED_FIRST_RUN_BYTES : (rateBytesPerS * WEBSEED_RUN_TARGET_MS) / 1000;
  return Math.max(1, Math.floor(Math.min(want, WEBSEED_MAX_RUN_BYTES) / pieceLength));
}
