/**
 * The typed error of the web seed modules (BEP 19).
 * @module
 */

/**
 * Why a web seed URL was refused: `bad-url` (not a URL), `unsupported-scheme` (not http or https), `too-long` (over
 * `WEBSEED_MAX_URL_CHARS`), `bad-path` (a torrent path component that cannot be a URL segment).
 */
export type WebSeedErrorCode = "bad-url" | "unsupported-scheme" | "too-long" | "bad-path";

/**
 * A web seed URL that cannot be used; `url` is the text refused (cut to 200 characters in the message).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const e = new WebSeedError("unsupported-scheme", "ftp://h/f", "only http and https are supported");
 * eq(e.message, 'Cannot use web seed "ftp://h/f": only http and https are supported');
 * eq(e.code, "unsupported-scheme");
 * ```
 */
export class WebSeedError extends SyntaxError {
  override readonly name = "WebSeedError";
  /** Makes the error; `detail` says what was wrong. */
  constructor(readonly code: WebSeedErrorCode, readonly url: string, detail: string) {
    super(`Cannot use web seed "${url.length > 200 ? `${url.slice(0, 200)}…` : url}": ${detail}`);
  }
}
