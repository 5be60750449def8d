/**
 * The torrent's own state: byte counters, which wanted pieces and files are still missing, when it completed, and
 * when to stop (a time limit, a stall, the end of seeding). Pure: the runtime passes `now` and performs the
 * decisions {@linkcode checkLimits} returns.
 * @module
 */
import type { Bitfield } from "../bitfield.ts";
import type { Metainfo } from "../metainfo.ts";
import { pieceSpans } from "../storage/layout.ts";

/** Stall time-out when none is given: no piece verified for this long ends the download. */
export const DEFAULT_STALL_TIMEOUT_MS = 5 * 60_000;

/** When seeding stops after the download completes. */
export interface SeedLimits {
  /** Stop once uploaded/size reaches this ratio. */
  readonly ratio?: number;
  /** Stop after seeding this long (ms). */
  readonly timeMs?: number;
}

/** Counters and milestones of one torrent. */
export interface TorrentState {
  readonly meta: Pick<Metainfo, "pieceCount" | "pieceLength" | "totalLength" | "files">;
  readonly wanted: Bitfield;
  /** Payload bytes received from peers in this run. */
  downloaded: number;
  /** Payload bytes sent to peers in this run. */
  uploaded: number;
  /** Bytes discarded: failed pieces, duplicates, blocks nobody asked for. */
  wasted: number;
  hashFailures: number;
  /** Bytes of wanted pieces verified. */
  verifiedBytes: number;
  /** Bytes of wanted pieces. */
  readonly wantedBytes: number;
  /** Per file, how many of its pieces are still missing; -1 for files not followed (unselected, empty, padding). */
  readonly fileRemaining: Int32Array;
  /** When the last piece was verified (or the session started). */
  lastProgressAt: number;
  completeAt: number | null;
  seedStartedAt: number | null;
}

/** What to do after {@linkcode checkLimits}. */
export type LimitDecision =
  | { readonly kind: "continue" }
  | { readonly kind: "stop" }
  | { readonly kind: "timeout"; readonly afterMs: number }
  | { readonly kind: "stalled"; readonly afterMs: number };

/** The length of piece `index`. */
export function pieceBytes(meta: TorrentState["meta"], index: number): number {
  return index === meta.pieceCount - 1 ? meta.totalLength - index * meta.pieceLength : meta.pieceLength;
}

/**
 * The state of a torrent whose verified pieces are `have`, wanting `wanted`, with files in `selected` followed
 * (every file when absent).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { Bitfield } from "../bitfield.ts";
 * const meta = { pieceCount: 2, pieceLength: 4, totalLength: 6,
 *   files: [{ index: 0, path: ["a"], length: 6, offset: 0, padding: false }] };
 * const ts = createTorrentState(meta, { have: new Bitfield(2), wanted: Bitfield.full(2), now: 0 });
 * eq(ts.wantedBytes, 6);
 * eq(pieceVerifiedIn(ts, 0, 0).length, 0);
 * eq(pieceVerifiedIn(ts, 1, 0).length, 1); // file 0 complete
 * ```
 */
export function createTorrentState(
  meta: TorrentState["meta"],
  o: {
    readonly have: Bitfield;
    readonly wanted: Bitfield;
    readonly selected?: ReadonlySet<number>;
    readonly now: number;
  },
): TorrentState {
  const fileRemaining = new Int32Array(meta.files.length).fill(-1);
  for (const f of meta.files) {
    if (f.padding || f.length === 0) continue;
    if (o.selected && !o.selected.has(f.index)) continue;
    fileRemaining[f.index] = 0;
  }
  let wantedBytes = 0;
  let verifiedBytes = 0;
  for (let i = 0; i < meta.pieceCount; i++) {
    if (!o.wanted.has(i)) continue;
    const len = pieceBytes(meta, i);
    wantedBytes += len;
    if (o.have.has(i)) {
      verifiedBytes += len;
      continue;
    }
    for (const s of pieceSpans(meta, i)) if (fileRemaining[s.fileIndex] >= 0) fileRemaining[s.fileIndex]++;
  }
  return {
    meta,
    wanted: o.wanted,
    downloaded: 0,
    uploaded: 0,
    wasted: 0,
    hashFailures: 0,
    verifiedBytes,
    wantedBytes,
    fileRemaining,
    lastProgressAt: o.now,
    completeAt: null,
    seedStartedAt: null,
  };
}

/** A piece passed its hash at `now`: counts it and returns the files (indexes into `meta.files`) it completed. */
export function pieceVerifiedIn(ts: TorrentState, index: number, now: number): number[] {
  ts.lastProgressAt = now;
  if (ts.wanted.has(index)) ts.verifiedBytes += pieceBytes(ts.meta, index);
  const done: number[] = [];
  for (const s of pieceSpans(ts.meta, index)) {
    if (ts.fileRemaining[s.fileIndex] > 0 && --ts.fileRemaining[s.fileIndex] === 0) done.push(s.fileIndex);
  }
  return done;
}

/** Bytes of wanted pieces not yet verified. */
export function bytesLeft(ts: TorrentState): number {
  return ts.wantedBytes - ts.verifiedBytes;
}

/** Options of {@linkcode checkLimits}. */
export interface Limits {
  readonly timeoutMs?: number;
  readonly stallTimeoutMs?: number;
  /** Seeding after completion; absent: stop at completion. */
  readonly seed?: SeedLimits;
}

/**
 * Whether the torrent should go on at `now`: a download ends with `timeout` or `stalled`; seeding ends with `stop`
 * once its ratio or time is reached.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { Bitfield } from "../bitfield.ts";
 * const meta = { pieceCount: 1, pieceLength: 4, totalLength: 4, files: [] };
 * const ts = createTorrentState(meta, { have: new Bitfield(1), wanted: Bitfield.full(1), now: 0 });
 * eq(checkLimits(ts, 1_000, { stallTimeoutMs: 2_000 }).kind, "continue");
 * eq(checkLimits(ts, 2_000, { stallTimeoutMs: 2_000 }).kind, "stalled");
 * ```
 */
export function checkLimits(ts: TorrentState, now: number, l: Limits): LimitDecision {
  if (ts.completeAt === null) {
    if (l.timeoutMs !== undefined && now >= l.timeoutMs) return { kind: "timeout", afterMs: l.timeoutMs };
    const stall = l.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    if (now - ts.lastProgressAt >= stall) return { kind: "stalled", afterMs: stall };
    return CONTINUE;
  }
  const seed = l.seed;
  if (!seed) return { kind: "stop" };
  if (ts.seedStartedAt === null) return CONTINUE;
  if (seed.timeMs !== undefined && now - ts.seedStartedAt >= seed.timeMs) return { kind: "stop" };
  if (seed.ratio !== undefined && ts.uploaded >= seed.ratio * ts.wantedBytes) return { kind: "stop" };
  return CONTINUE;
}

const CONTINUE: LimitDecision = { kind: "continue" };
