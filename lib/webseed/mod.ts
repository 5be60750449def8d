/**
 * Web seeds (BEP 19), the pure core: each file's URL on a seed (`urls.ts`), the ranged requests for a run of pieces
 * (`plan.ts`), the verdict on an answer (`response.ts`), the redirect policy (`redirect.ts`) and each seed's state
 * (`seed_state.ts`). Nothing here does IO or reads a clock; the engine's runtime does the HTTP and feeds back events.
 *
 * One run, as the runtime drives it: {@linkcode canStart} → `run-started` → {@linkcode planRun} for
 * {@linkcode nextRunPieces} pieces → per `get` segment a `GET` with {@linkcode rangeHeader} (and
 * `Accept-Encoding: identity`), redirects through {@linkcode followRedirect}, the answer through
 * {@linkcode judgeResponse}, body bytes as `data` → `run-ended` with the outcome; a piece that fails its hash →
 * `bad-piece`.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * import { canStart, createSeedState, judgeResponse, nextRunPieces, planRun, stepSeed } from "./mod.ts";
 * const meta = {
 *   multiFile: true, pieceLength: 4, totalLength: 10, pieceCount: 3,
 *   files: [
 *     { index: 0, path: ["t", "a"], length: 6, offset: 0, padding: false },
 *     { index: 1, path: ["t", "b"], length: 4, offset: 6, padding: false },
 *   ],
 * };
 * let seed = createSeedState(meta, "http://mirror.example/pub/", 0);
 * eq(canStart(seed, 0), true);
 * [seed] = stepSeed(seed, { type: "run-started" }, 0);
 * const segs = planRun(meta, { first: 0, last: nextRunPieces(seed, 0) - 1, urls: seed.urls });
 * eq(segs.map((s) => s.kind === "get" && [s.url, s.rangeStart, s.rangeEnd]), [
 *   ["http://mirror.example/pub/t/a", 0, 5],
 *   ["http://mirror.example/pub/t/b", 0, 3],
 * ]);
 * const headers = (name: string) => name === "content-range" ? "bytes 0-5/6" : null;
 * eq(judgeResponse({ status: 206, headers }, { rangeStart: 0, rangeEnd: 5, fileLength: 6 }),
 *   { kind: "data", skip: 0, length: 6, close: false });
 * ```
 * @module
 */
export { WebSeedError, type WebSeedErrorCode } from "./error.ts";
export { encodePathComponent, parseWebSeedUrl, type UrlGeometry, webSeedUrls } from "./urls.ts";
export {
  type GetSegment,
  locateByte,
  type PlanGeometry,
  planRun,
  rangeHeader,
  type RunRequest,
  runSize,
  type Segment,
  WEBSEED_FIRST_RUN_BYTES,
  WEBSEED_RUN_TARGET_MS,
  type ZeroSegment,
} from "./plan.ts";
export {
  type AskedRange,
  type FailReason,
  type HttpAnswer,
  judgeResponse,
  type MissingReason,
  parseHttpDate,
  type ResponseVerdict,
  retryAfterMs,
} from "./response.ts";
export {
  followRedirect,
  type HostScope,
  hostScope,
  mayConnect,
  type RedirectChain,
  type RedirectRefusal,
  type RedirectVerdict,
  startChain,
} from "./redirect.ts";
export {
  backoffMs,
  canStart,
  createSeedState,
  type DropReason,
  type FileFault,
  type FileMissingReason,
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
  WEBSEED_FILE_STRIKES,
  WEBSEED_RATE_MIN_WINDOW_MS,
  WEBSEED_RATE_TAU_MS,
  WEBSEED_RETRY_BASE_MS,
  WEBSEED_RETRY_FLOOR_MS,
  WEBSEED_RETRY_MAX_MS,
  type WebSeedState,
} from "./seed_state.ts";
