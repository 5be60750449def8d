/**
 * What a web seed's answer to a ranged `GET` means: take its body (and which bytes of it), follow a redirect, count
 * the file as not on the seed, wait and retry, or fail. Pure: the runtime hands in the status and headers (never the
 * body) and acts on the verdict.
 *
 * Policy (statuses as libtorrent treats them, except where said):
 * - `206` needs `Content-Range: bytes a-b/total` whose `a` is the asked `rangeStart` and whose `b` is at least `a` and
 *   at most the asked `rangeEnd`. A `b` short of `rangeEnd` is fine: the body carries what it says and the engine asks
 *   again for the rest. `total` must be the file's length unless it is `*`; a different length means the seed holds
 *   another version of the file (`missing`, `wrong-length`). A `Content-Length`, if present, must be `b - a + 1`.
 *   Anything else, a `206` without `Content-Range` included (a multipart answer: we never ask for two ranges), is
 *   `failed`.
 * - `200` means the server ignored `Range` and sends the whole file from byte 0. libtorrent refuses it unless the
 *   whole file was asked; btfetch takes it when reaching the asked range costs little: when `rangeStart` is at most
 *   {@linkcode WEBSEED_MAX_SKIP_BYTES}, the verdict says to read and drop `skip` bytes, keep the asked bytes, and
 *   close the connection if the body runs on past them (`close`), so the stream never outlives the request. Further
 *   into the file, the seed is not used for that file (`missing`, `ignores-range`), since every request would
 *   download the file's head again. A `Content-Length` other than the file's length is `missing`, `wrong-length`
 *   (often an error page sent as `200`).
 * - A `Content-Encoding` other than `identity` on `200` or `206` is `missing`, `encoded`: ranges would count encoded
 *   bytes. (The runtime sends `Accept-Encoding: identity`; a server that compresses anyway cannot serve this file.)
 * - `301`, `302`, `303`, `307` and `308` with a `Location` are `redirect`s (the runtime applies `redirect.ts`); without
 *   one, and any other `3xx`, `failed`.
 * - `404` (`not-found`), `410` (`gone`) and `416` (`unsatisfiable`: the seed's file is shorter) say the file is not on
 *   this seed; so does any other `4xx` (`refused`) but `408` and `429`.
 * - `429` and `503` are `retry`, after `Retry-After` when it is given: seconds, or an HTTP-date counted from the
 *   answer's `Date` header (the server's own clock), else from the caller's wall clock; past dates are 0 and waits
 *   longer than {@linkcode WEBSEED_MAX_RETRY_AFTER_MS} are cut to it. Unreadable or absent, it is null and the seed
 *   state backs off on its own.
 * - `408`, other `5xx` and anything else are `failed`: transient, the seed backs off and tries again.
 * @module
 */
import { WEBSEED_MAX_RETRY_AFTER_MS, WEBSEED_MAX_SKIP_BYTES } from "../limits.ts";

/** An HTTP answer's status and a case-insensitive header lookup (as `Headers.get` does). */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: (name: string) => string | null;
}

/** What was asked: bytes `rangeStart..rangeEnd` (inclusive) of a file of `fileLength` bytes. */
export interface AskedRange {
  readonly rangeStart: number;
  readonly rangeEnd: number;
  readonly fileLength: number;
  /** Wall-clock ms (as `Date.now()`) when the answer arrived: for a `Retry-After` date when there is no `Date`. */
  readonly wallClockMs?: number;
}

/** Why a file is not usable on a seed. */
export type MissingReason =
  | "not-found"
  | "gone"
  | "unsatisfiable"
  | "refused"
  | "wrong-length"
  | "ignores-range"
  | "encoded";

/** Why an answer failed (transient, or a server fault). */
export type FailReason = "status" | "bad-content-range" | "bad-content-length" | "no-location";

/** The verdict on an answer; see the module policy. */
export type ResponseVerdict =
  /**
   * Read and drop `skip` body bytes, then deliver `length` bytes starting at the asked `rangeStart` (`length` may be
   * short of the asked length); if `close`, the body goes on after them: stop reading and close the connection.
   */
  | { readonly kind: "data"; readonly skip: number; readonly length: number; readonly close: boolean }
  | { readonly kind: "redirect"; readonly status: number; readonly location: string }
  | { readonly kind: "missing"; readonly status: number; readonly reason: MissingReason }
  | { readonly kind: "retry"; readonly status: number; readonly retryAfterMs: number | null }
  | { readonly kind: "failed"; readonly status: number; readonly reason: FailReason };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** A decimal length of at most 15 digits (below 2^53), or null. */
function decimal(text: string): number | null {
  return /^\d{1,15}$/.test(text) ? Number(text) : null;
}

/**
 * Judges a web seed's answer to a ranged `GET` (see the module policy).
 * @throws {RangeError} when the asked range is not inside the file.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const asked = { rangeStart: 100, rangeEnd: 199, fileLength: 1000 };
 * const headers = (h: Record<string, string>) => (name: string) => h[name.toLowerCase()] ?? null;
 * eq(judgeResponse({ status: 206, headers: headers({ "content-range": "bytes 100-149/1000" }) }, asked),
 *   { kind: "data", skip: 0, length: 50, close: false });
 * eq(judgeResponse({ status: 200, headers: headers({ "content-length": "1000" }) }, asked),
 *   { kind: "data", skip: 100, length: 100, close: true });
 * eq(judgeResponse({ status: 404, headers: headers({}) }, asked),
 *   { kind: "missing", status: 404, reason: "not-found" });
 * eq(judgeResponse({ status: 503, headers: headers({ "retry-after": "120" }) }, asked),
 *   { kind: "retry", status: 503, retryAfterMs: 120_000 });
 * ```
 */
export function judgeResponse(answer: HttpAnswer, asked: AskedRange): ResponseVerdict {
  const { rangeStart, rangeEnd, fileLength } = asked;
  if (
    !Number.isSafeInteger(rangeStart) || !Number.isSafeInteger(rangeEnd) || !Number.isSafeInteger(fileLength) ||
    rangeStart < 0 || rangeEnd < rangeStart || rangeEnd >= fileLength
  ) {
    throw new RangeError(`Cannot judge an answer to bytes ${rangeStart}-${rangeEnd} of a ${fileLength}-byte file`);
  }
  const { status, headers } = answer;
  if (status === 200 || status === 206) {
    const encoding = headers("content-encoding")?.trim().toLowerCase();
    if (encoding !== undefined && encoding !== "" && encoding !== "identity") {
      return { kind: "missing", status, reason: "encoded" };
    }
    const lengthText = headers("content-length");
    const contentLength = lengthText === null ? null : decimal(lengthText.trim());
    if (lengthText !== null && contentLength === null) return { kind: "failed", status, reason: "bad-content-length" };
    if (status === 200) {
      if (contentLength !== null && contentLength !== fileLength) {
        return { kind: "missing", status, reason: "wrong-length" };
      }
      if (rangeStart > WEBSEED_MAX_SKIP_BYTES) return { kind: "missing", status, reason: "ignores-range" };
      return { kind: "data", skip: rangeStart, length: rangeEnd - rangeStart + 1, close: rangeEnd < fileLength - 1 };
    }
    const m = /^bytes[ \t]+(\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)$/i.exec(headers("content-range")?.trim() ?? "");
    if (!m) return { kind: "failed", status, reason: "bad-content-range" };
    const [a, b] = [Number(m[1]), Number(m[2])];
    if (m[3] !== "*" && Number(m[3]) !== fileLength) return { kind: "missing", status, reason: "wrong-length" };
    if (a !== rangeStart || b < a || b > rangeEnd) return { kind: "failed", status, reason: "bad-content-range" };
    if (contentLength !== null && contentLength !== b - a + 1) {
      return { kind: "failed", status, reason: "bad-content-length" };
    }
    return { kind: "data", skip: 0, length: b - a + 1, close: false };
  }
  if (REDIRECTS.has(status)) {
    const location = headers("location")?.trim() ?? "";
    return location === "" ? { kind: "failed", status, reason: "no-location" } : { kind: "redirect", status, location };
  }
  if (status === 429 || status === 503) {
    return { kind: "retry", status, retryAfterMs: retryAfterMs(answer, asked.wallClockMs) };
  }
  if (status === 404) return { kind: "missing", status, reason: "not-found" };
  if (status === 410) return { kind: "missing", status, reason: "gone" };
  if (status === 416) return { kind: "missing", status, reason: "unsatisfiable" };
  if (status >= 400 && status < 500 && status !== 408) return { kind: "missing", status, reason: "refused" };
  return { kind: "failed", status, reason: "status" };
}

/**
 * The wait a `Retry-After` header asks for, in ms: delta-seconds, or an HTTP-date counted from the answer's `Date`
 * (else from `wallClockMs`); at least 0, at most {@linkcode WEBSEED_MAX_RETRY_AFTER_MS}; null when absent,
 * unreadable, or a date with nothing to count from.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const answer = (h: Record<string, string>) => ({ status: 503, headers: (n: string) => h[n.toLowerCase()] ?? null });
 * eq(retryAfterMs(answer({ "retry-after": "5" })), 5000);
 * eq(retryAfterMs(answer({
 *   "retry-after": "Sun, 06 Nov 1994 08:50:37 GMT",
 *   date: "Sun, 06 Nov 1994 08:49:37 GMT",
 * })), 60_000);
 * eq(retryAfterMs(answer({ "retry-after": "soon" })), null);
 * ```
 */
export function retryAfterMs(answer: HttpAnswer, wallClockMs?: number): number | null {
  const text = answer.headers("retry-after")?.trim();
  if (text === undefined || text === "") return null;
  if (/^\d+$/.test(text)) {
    const digits = text.replace(/^0+(?=\d)/, "");
    const seconds = digits.length > 15 ? Infinity : Number(digits); // more digits than any sane wait: the cap
    return Math.min(WEBSEED_MAX_RETRY_AFTER_MS, seconds * 1000);
  }
  const at = parseHttpDate(text);
  if (at === null) return null;
  const dateText = answer.headers("date");
  const ref = (dateText === null ? null : parseHttpDate(dateText.trim())) ?? wallClockMs ?? null;
  if (ref === null) return null;
  return Math.min(WEBSEED_MAX_RETRY_AFTER_MS, Math.max(0, at - ref));
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const LONG_DAY = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)";
const MONTH = `(${MONTHS.join("|")})`;
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * Parses an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms) to ms since the
 * epoch, or null. A two-digit RFC 850 year is taken in 1970–2069; years before 1970 are refused. The weekday name is
 * checked for form, not value.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777000);
 * eq(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777000);
 * eq(parseHttpDate("Sun Nov  6 08:49:37 1994"), 784111777000);
 * eq(parseHttpDate("Sun, 31 Feb 1994 08:49:37 GMT"), null);
 * ```
 */
export function parseHttpDate(text: string): number | null {
  let day: string, month: string, year: number, h: string, mi: string, s: string;
  let m = IMF_FIXDATE.exec(text);
  if (m) {
    [day, month, year, h, mi, s] = [m[1], m[2], Number(m[3]), m[4], m[5], m[6]];
  } else if ((m = RFC850_DATE.exec(text))) {
    const yy = Number(m[3]);
    [day, month, year, h, mi, s] = [m[1], m[2], yy < 70 ? 2000 + yy : 1900 + yy, m[4], m[5], m[6]];
  } else if ((m = ASCTIME_DATE.exec(text))) {
    [month, day, h, mi, s, year] = [m[1], m[2].trim(), m[3], m[4], m[5], Number(m[6])];
  } else {
    return null;
  }
  const mon = MONTHS.indexOf(month);
  const [dd, hh, mm, ss] = [Number(day), Number(h), Number(mi), Number(s)];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = mon === 1 ? (leap ? 29 : 28) : [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mon];
  if (year < 1970 || dd < 1 || dd > monthDays || hh > 23 || mm > 59 || ss > 60) return null;
  return Date.UTC(year, mon, dd, hh, mm, Math.min(ss, 59)); // a leap second counts as :59
}
