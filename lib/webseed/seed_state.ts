/**
 * One web seed's state as the engine sees it: which files it serves, whether it may be given a run now, how fast it
 * is. A pure state machine: the engine feeds events with the monotonic time `now` through {@linkcode stepSeed} and
 * acts on the returned actions; it asks {@linkcode canStart} before handing the seed a run, {@linkcode nextRunPieces}
 * for the run's length and {@linkcode servesPiece} for which pieces it may take from this seed.
 *
 * Policy:
 * - Files. Each file with bytes is `available` until the seed shows otherwise: `missing` when an answer says it is not
 *   there (404, 410, 416, another length, other `4xx`, a `200` it cannot skip into, a compressed body, a refused
 *   redirect; see `response.ts` and `redirect.ts`) or when it has no URL (`urls.ts`); `banned` for bad data. Padding
 *   files are never asked, so never faulted. A piece is served when every file with bytes in it is available and the
 *   piece itself was not refused.
 * - Bad data, as libtorrent rules: when a piece the seed supplied fails its hash check, the seed is dropped if the
 *   torrent has a single file with bytes; otherwise a piece lying in one file bans that file (the seed holds another
 *   version of it), and a piece spanning several files is refused from this seed and counts a strike against each of
 *   them: a file with {@linkcode WEBSEED_FILE_STRIKES} strikes is banned. More than {@linkcode WEBSEED_MAX_BAD_PIECES}
 *   refused pieces drop the seed. The engine reports a bad piece only when this seed supplied its bytes.
 * - A seed left with no available file is dropped (`no-files`, or `bad-data` if any of them was banned).
 * - Failures (a network error, a `5xx`, a malformed answer, a run that ended with no byte at all) back off: the seed
 *   takes no run for {@linkcode WEBSEED_RETRY_BASE_MS}, doubling with each consecutive failure, at most
 *   {@linkcode WEBSEED_RETRY_MAX_MS}; a run ending complete resets the count. Runs already in flight that fail during
 *   a back-off neither double nor extend it (unless they bring a longer `Retry-After`). `429`/`503` wait for their
 *   `Retry-After` (at least {@linkcode WEBSEED_RETRY_FLOOR_MS}) when they give one, else back off the same way. A run
 *   cut short after some bytes is neither a failure nor a success: the rest goes back to the picker, and the seed's
 *   rate shrinks its runs.
 * - At most {@linkcode WEBSEED_MAX_RUNS_IN_FLIGHT} runs at once per seed.
 * - Rate: bytes over the time the seed had a run in flight (idle time does not count), decaying with time constant
 *   {@linkcode WEBSEED_RATE_TAU_MS} and divided by the weight that decay gives the busy time so far, so that a steady
 *   rate reads right from the start (with a window of at least {@linkcode WEBSEED_RATE_MIN_WINDOW_MS}). Null until the
 *   first byte.
 * @module
 */
import type { Metainfo } from "../metainfo.ts";
import { Bitfield } from "../bitfield.ts";
import { WEBSEED_MAX_BAD_PIECES, WEBSEED_MAX_RUNS_IN_FLIGHT } from "../limits.ts";
import { filePieceRange, pieceSpans } from "../storage/layout.ts";
import { runSize } from "./plan.ts";
import type { MissingReason } from "./response.ts";
import { parseWebSeedUrl, webSeedUrls } from "./urls.ts";

/** The first back-off after a failure; it doubles with each consecutive failure. */
export const WEBSEED_RETRY_BASE_MS = 2000;
/** The longest back-off: a seed that was down is tried again at least this often. */
export const WEBSEED_RETRY_MAX_MS = 5 * 60_000;
/** The shortest wait after a `429`/`503`, whatever its `Retry-After` says (`0` would make a busy loop). */
export const WEBSEED_RETRY_FLOOR_MS = 1000;
/** Time constant of a seed's rate: it follows a change within a few seconds. */
export const WEBSEED_RATE_TAU_MS = 4000;
/** The shortest busy time a rate is measured over, so the first bytes do not make a seed look infinitely fast. */
export const WEBSEED_RATE_MIN_WINDOW_MS = 250;
/** Strikes (failed pieces spanning it with other files) that ban a file on a seed. */
export const WEBSEED_FILE_STRIKES = 2;

/** What the seed state reads from a torrent. */
export type SeedGeometry = Pick<Metainfo, "files" | "multiFile" | "pieceLength" | "totalLength" | "pieceCount">;

/** Why a file is not asked of a seed: an answer's reason, no URL for it, or a redirect that was refused. */
export type FileMissingReason = MissingReason | "no-url" | "redirect";

/** A file a seed does not serve. */
export type FileFault =
  | { readonly kind: "missing"; readonly reason: FileMissingReason }
  | { readonly kind: "banned" };

/** Why a whole seed was dropped. */
export type DropReason = "bad-data" | "no-files";

/** The state of one web seed. Times are monotonic ms. */
export interface WebSeedState {
  /** The seed's URL, normalised. */
  readonly url: string;
  readonly meta: SeedGeometry;
  /** The seed's URL for each file (null: padding, or none). */
  readonly urls: readonly (string | null)[];
  /** Files not served, by index; absent: available. */
  readonly faults: ReadonlyMap<number, FileFault>;
  /** Failed pieces spanning several files, by file: see the module policy. */
  readonly strikes: ReadonlyMap<number, number>;
  /** Pieces refused from this seed (they spanned several files and failed). */
  readonly badPieces: ReadonlySet<number>;
  /** Set once the seed is of no more use. */
  readonly dropped: DropReason | null;
  readonly inFlight: number;
  /** Consecutive failures. */
  readonly failures: number;
  /** No run before this time. */
  readonly retryAt: number;
  /** Decaying byte sum, when it was last advanced, and the busy time seen so far. */
  readonly meter: { readonly value: number; readonly at: number; readonly busyMs: number };
  /** Payload bytes received from this seed. */
  readonly downloaded: number;
}

/** How a run ended. `bytes` of a short run: how many of its bytes arrived. */
export type RunOutcome =
  | { readonly result: "done" }
  | { readonly result: "short"; readonly bytes: number }
  | { readonly result: "failed" }
  | { readonly result: "retry"; readonly retryAfterMs: number | null }
  | { readonly result: "missing"; readonly fileIndex: number; readonly reason: FileMissingReason };

/** Inputs from the engine. */
export type SeedEvent =
  | { readonly type: "run-started" }
  | { readonly type: "data"; readonly bytes: number }
  | { readonly type: "run-ended"; readonly outcome: RunOutcome }
  | { readonly type: "bad-piece"; readonly piece: number };

/**
 * What the engine does: `wake` (the seed may take runs again at `at`: keep a timer), `lost-file` and `lost-piece`
 * (pieces the seed no longer serves: give them to other sources, warn), `dropped` (forget the seed, warn).
 */
export type SeedAction =
  | { readonly type: "wake"; readonly at: number }
  | { readonly type: "lost-file"; readonly fileIndex: number; readonly fault: FileFault }
  | { readonly type: "lost-piece"; readonly piece: number }
  | { readonly type: "dropped"; readonly reason: DropReason };

function hasBytes(f: SeedGeometry["files"][number]): boolean {
  return f.length > 0 && !f.padding;
}

/**
 * A fresh seed at `url` (a `url-list` entry, a magnet's `ws=` or `--web-seed`): every file it has a URL for is
 * available; one with bytes and no URL is `missing` (`no-url`).
 * @throws {WebSeedError} when `url` is not a usable web seed URL (see `urls.ts`).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const meta = {
 *   multiFile: false, pieceLength: 4, totalLength: 10, pieceCount: 3,
 *   files: [{ index: 0, path: ["a.iso"], length: 10, offset: 0, padding: false }],
 * };
 * const s = createSeedState(meta, "http://m.example/isos/", 0);
 * eq(s.urls, ["http://m.example/isos/a.iso"]);
 * eq([canStart(s, 0), seedRate(s, 0), nextRunPieces(s, 0)], [true, null, 3]);
 * ```
 */
export function createSeedState(meta: SeedGeometry, url: string, now: number): WebSeedState {
  const href = parseWebSeedUrl(url).href;
  const urls = webSeedUrls(meta, href);
  const faults = new Map<number, FileFault>();
  meta.files.forEach((f, i) => {
    if (hasBytes(f) && urls[i] === null) faults.set(i, { kind: "missing", reason: "no-url" });
  });
  const s: WebSeedState = {
    url: href,
    meta,
    urls,
    faults,
    strikes: new Map(),
    badPieces: new Set(),
    dropped: null,
    inFlight: 0,
    failures: 0,
    retryAt: now,
    meter: { value: 0, at: now, busyMs: 0 },
    downloaded: 0,
  };
  return { ...s, dropped: noFilesLeft(s) };
}

/**
 * The wait after `failures` consecutive failures (at least 1).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(backoffMs(1), WEBSEED_RETRY_BASE_MS);
 * eq(backoffMs(3), 4 * WEBSEED_RETRY_BASE_MS);
 * eq(backoffMs(100), WEBSEED_RETRY_MAX_MS);
 * ```
 */
export function backoffMs(failures: number): number {
  return Math.min(WEBSEED_RETRY_MAX_MS, WEBSEED_RETRY_BASE_MS * 2 ** Math.min(30, Math.max(0, failures - 1)));
}

/**
 * Whether the seed may be handed a run at `now`: not dropped, not backing off, fewer than
 * {@linkcode WEBSEED_MAX_RUNS_IN_FLIGHT} runs in flight.
 */
export function canStart(s: WebSeedState, now: number): boolean {
  return s.dropped === null && s.inFlight < WEBSEED_MAX_RUNS_IN_FLIGHT && now >= s.retryAt;
}

/** When the seed's back-off ends, if it is backing off at `now` (for the engine's timer); else null. */
export function seedDeadline(s: WebSeedState, now: number): number | null {
  return s.dropped === null && s.retryAt > now ? s.retryAt : null;
}

function advance(s: WebSeedState, now: number): WebSeedState["meter"] {
  const m = s.meter;
  const dt = Math.max(0, now - m.at);
  if (s.inFlight === 0 || dt === 0) return dt === 0 ? m : { ...m, at: now };
  return { value: m.value * Math.exp(-dt / WEBSEED_RATE_TAU_MS), at: now, busyMs: m.busyMs + dt };
}

/**
 * The seed's rate in bytes per second at `now` (see the module policy), or null before its first byte.
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * const meta = {
 *   multiFile: false, pieceLength: 4, totalLength: 10, pieceCount: 3,
 *   files: [{ index: 0, path: ["a"], length: 10, offset: 0, padding: false }],
 * };
 * let [s] = stepSeed(createSeedState(meta, "http://m/a", 0), { type: "run-started" }, 0);
 * for (let t = 100; t <= 10_000; t += 100) [s] = stepSeed(s, { type: "data", bytes: 100_000 }, t); // 1 MB/s
 * const r = seedRate(s, 10_000);
 * ok(r !== null && r > 950_000 && r < 1_100_000, String(r));
 * ```
 */
export function seedRate(s: WebSeedState, now: number): number | null {
  if (s.downloaded === 0) return null;
  const m = advance(s, now);
  // the weight the decaying sum gives a constant rate over the busy time so far: exact at any age, not only once full
  const window = Math.max(
    WEBSEED_RATE_MIN_WINDOW_MS,
    WEBSEED_RATE_TAU_MS * -Math.expm1(-m.busyMs / WEBSEED_RATE_TAU_MS),
  );
  return (m.value * 1000) / window;
}

/** How many pieces the seed's next run should have: `runSize` at its rate, at most the torrent's piece count. */
export function nextRunPieces(s: WebSeedState, now: number): number {
  return Math.min(s.meta.pieceCount, runSize(seedRate(s, now), s.meta.pieceLength));
}

/**
 * Whether piece `piece` may be taken from this seed: not dropped, the piece not refused, every file with bytes in it
 * available.
 * @throws {RangeError} when the piece does not exist.
 */
export function servesPiece(s: WebSeedState, piece: number): boolean {
  if (s.dropped !== null || s.badPieces.has(piece)) return false;
  for (const span of pieceSpans(s.meta, piece)) {
    if (s.faults.has(span.fileIndex) && hasBytes(s.meta.files[span.fileIndex])) return false;
  }
  return true;
}

/**
 * The pieces this seed serves, as a bitfield (what a peer's bitfield is to the picker).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const meta = {
 *   multiFile: true, pieceLength: 4, totalLength: 12, pieceCount: 3,
 *   files: [
 *     { index: 0, path: ["t", "a"], length: 6, offset: 0, padding: false },
 *     { index: 1, path: ["t", "b"], length: 6, offset: 6, padding: false },
 *   ],
 * };
 * const [s] = stepSeed(createSeedState(meta, "http://m/", 0), { type: "run-started" }, 0);
 * const outcome = { result: "missing", fileIndex: 1, reason: "not-found" } as const;
 * const [t, actions] = stepSeed(s, { type: "run-ended", outcome }, 5);
 * eq(actions, [{ type: "lost-file", fileIndex: 1, fault: { kind: "missing", reason: "not-found" } }]);
 * eq([...servedPieces(t).indexes()], [0]);
 * ```
 */
export function servedPieces(s: WebSeedState): Bitfield {
  if (s.dropped !== null) return new Bitfield(s.meta.pieceCount);
  const out = Bitfield.full(s.meta.pieceCount);
  for (const i of s.faults.keys()) {
    if (!hasBytes(s.meta.files[i])) continue;
    const r = filePieceRange(s.meta, i);
    if (r !== null) { for (let p = r.first; p <= r.last; p++) out.clear(p); }
  }
  for (const p of s.badPieces) out.clear(p);
  return out;
}

/** Dropped reason when no file with bytes is left available, else null. */
function noFilesLeft(s: WebSeedState): DropReason | null {
  let banned = false;
  for (let i = 0; i < s.meta.files.length; i++) {
    if (!hasBytes(s.meta.files[i])) continue;
    const f = s.faults.get(i);
    if (f === undefined) return null;
    if (f.kind === "banned") banned = true;
  }
  return banned ? "bad-data" : "no-files";
}

/** Marks files faulted; drops the seed if none is left. */
function fault(s: WebSeedState, files: readonly number[], f: FileFault, out: SeedAction[]): WebSeedState {
  const faults = new Map(s.faults);
  for (const i of files) {
    const old = faults.get(i);
    if (!hasBytes(s.meta.files[i])) continue; // never asked, so never at fault
    if (old?.kind === "banned" || (old !== undefined && f.kind === "missing")) continue;
    faults.set(i, f);
    // a file that was already missing was already reported lost; becoming banned changes nothing for the picker
    if (old === undefined) out.push({ type: "lost-file", fileIndex: i, fault: f });
  }
  return dropIf({ ...s, faults }, noFilesLeft({ ...s, faults }), out);
}

function dropIf(s: WebSeedState, reason: DropReason | null, out: SeedAction[]): WebSeedState {
  if (reason === null || s.dropped !== null) return s;
  out.push({ type: "dropped", reason });
  return { ...s, dropped: reason };
}

function failed(s: WebSeedState, now: number, retryAfterMs: number | null, out: SeedAction[]): WebSeedState {
  const counting = now >= s.retryAt; // else a run started before this back-off failed too: no new information
  if (!counting && retryAfterMs === null) return s;
  const failures = counting ? s.failures + 1 : s.failures;
  // Retry-After is honoured (at least the floor), but a server that asks again and again for a short wait gets our
  // own back-off from the second failure in a row: `Retry-After: 0` on every answer is not a request a second
  const wait = retryAfterMs === null
    ? backoffMs(failures)
    : Math.max(WEBSEED_RETRY_FLOOR_MS, retryAfterMs, failures > 1 ? backoffMs(failures - 1) : 0);
  const retryAt = Math.max(s.retryAt, now + wait);
  if (s.dropped === null && retryAt > s.retryAt) out.push({ type: "wake", at: retryAt });
  return { ...s, failures, retryAt };
}

function badPiece(s: WebSeedState, piece: number, out: SeedAction[]): WebSeedState {
  if (s.dropped !== null || s.badPieces.has(piece)) return s;
  const dataFiles = s.meta.files.filter(hasBytes).length;
  if (dataFiles === 1) return dropIf(s, "bad-data", out);
  const files = pieceSpans(s.meta, piece).map((sp) => sp.fileIndex).filter((i) => hasBytes(s.meta.files[i]));
  if (files.length === 1) return fault(s, files, { kind: "banned" }, out);
  const badPieces = new Set(s.badPieces).add(piece);
  out.push({ type: "lost-piece", piece });
  const strikes = new Map(s.strikes);
  const struck: number[] = [];
  for (const i of files) {
    const n = (strikes.get(i) ?? 0) + 1;
    strikes.set(i, n);
    if (n >= WEBSEED_FILE_STRIKES) struck.push(i);
  }
  let next: WebSeedState = { ...s, badPieces, strikes };
  if (struck.length > 0) next = fault(next, struck, { kind: "banned" }, out);
  return dropIf(next, badPieces.size > WEBSEED_MAX_BAD_PIECES ? "bad-data" : null, out);
}

/**
 * Advances the seed by one event at `now` (see the module policy).
 * @throws {RangeError} on engine misuse: a run started beyond {@linkcode WEBSEED_MAX_RUNS_IN_FLIGHT} or on a dropped
 * seed, a run ended that was never started, a negative byte count, a piece or file that does not exist.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const meta = {
 *   multiFile: false, pieceLength: 4, totalLength: 10, pieceCount: 3,
 *   files: [{ index: 0, path: ["a"], length: 10, offset: 0, padding: false }],
 * };
 * let [s] = stepSeed(createSeedState(meta, "http://m/a", 0), { type: "run-started" }, 0);
 * let actions;
 * [s, actions] = stepSeed(s, { type: "run-ended", outcome: { result: "retry", retryAfterMs: 30_000 } }, 10);
 * eq(actions, [{ type: "wake", at: 30_010 }]);
 * eq([canStart(s, 30_009), canStart(s, 30_010)], [false, true]);
 * [s, actions] = stepSeed(s, { type: "bad-piece", piece: 1 }, 40_000); // a single-file torrent: the seed goes
 * eq(actions, [{ type: "dropped", reason: "bad-data" }]);
 * ```
 */
export function stepSeed(s: WebSeedState, ev: SeedEvent, now: number): [WebSeedState, SeedAction[]] {
  const out: SeedAction[] = [];
  const meter = advance(s, now);
  switch (ev.type) {
    case "run-started": {
      if (s.dropped !== null || s.inFlight >= WEBSEED_MAX_RUNS_IN_FLIGHT) {
        throw new RangeError(
          `Cannot start a run on web seed ${s.url}: ${
            s.dropped !== null ? "it was dropped" : `${s.inFlight} in flight`
          }`,
        );
      }
      return [{ ...s, meter, inFlight: s.inFlight + 1 }, out];
    }
    case "data": {
      if (!Number.isSafeInteger(ev.bytes) || ev.bytes < 0) {
        throw new RangeError(`Cannot count ${ev.bytes} bytes from web seed ${s.url}`);
      }
      return [{ ...s, meter: { ...meter, value: meter.value + ev.bytes }, downloaded: s.downloaded + ev.bytes }, out];
    }
    case "run-ended": {
      if (s.inFlight === 0) throw new RangeError(`Cannot end a run on web seed ${s.url}: none in flight`);
      let next: WebSeedState = { ...s, meter, inFlight: s.inFlight - 1 };
      const o = ev.outcome;
      switch (o.result) {
        case "done":
          next = { ...next, failures: 0 };
          break;
        case "short":
          if (o.bytes <= 0) next = failed(next, now, null, out);
          break;
        case "failed":
          next = failed(next, now, null, out);
          break;
        case "retry":
          next = failed(next, now, o.retryAfterMs, out);
          break;
        case "missing":
          if (s.meta.files[o.fileIndex] === undefined) {
            throw new RangeError(`Cannot fault file ${o.fileIndex}: the torrent has ${s.meta.files.length} files`);
          }
          next = fault(next, [o.fileIndex], { kind: "missing", reason: o.reason }, out);
          break;
      }
      return [next, out];
    }
    case "bad-piece": {
      if (!Number.isInteger(ev.piece) || ev.piece < 0 || ev.piece >= s.meta.pieceCount) {
        throw new RangeError(`Cannot blame piece ${ev.piece}: the torrent has ${s.meta.pieceCount} pieces`);
      }
      return [badPiece({ ...s, meter }, ev.piece, out), out];
    }
  }
}
