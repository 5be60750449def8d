/**
 * The little of HTTP/1.1 a web seed's range request needs, as pure functions: the request's bytes, and the response's
 * head (status line and header fields) parsed out of the bytes read so far. Bounded: a head longer than
 * {@linkcode MAX_HEAD_BYTES} or malformed is an {@linkcode HttpError}. What the status and fields mean for a run is
 * `response.ts`'s business; the engine's runtime (`engine/webseed_http.ts`) owns the sockets.
 * @module
 */

import { rangeHeader } from "./plan.ts";

/** The longest response head accepted (status line and fields, up to the blank line). */
export const MAX_HEAD_BYTES = 16 * 1024;

/** The most header fields accepted in one response head. */
export const MAX_HEADER_FIELDS = 100;

/** A malformed or oversized HTTP response head. */
export class HttpError extends Error {
  override readonly name = "HttpError";
}

/** A parsed response head. */
export interface ResponseHead {
  /** The status code (100–999). */
  readonly status: number;
  /** The HTTP minor version the server answered with: 0 (HTTP/1.0, which closes by default) or 1. */
  readonly minor: 0 | 1;
  /** Header fields by lower-case name; repeated fields are joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
  /** Bytes the head took, the blank line included: the body starts there. */
  readonly headLength: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");

/**
 * The bytes of `GET` for bytes `[rangeStart, rangeEnd]` (inclusive) of `url`, on a kept-alive connection.
 * @throws {HttpError} when the URL is not plain `http:` or carries credentials (those go through fetch).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const req = new TextDecoder().decode(encodeRangeRequest(new URL("http://h:8080/a%20b?x=1"), 0, 99));
 * eq(req.split("\r\n")[0], "GET /a%20b?x=1 HTTP/1.1");
 * eq(req.includes("\r\nHost: h:8080\r\n") && req.includes("\r\nRange: bytes=0-99\r\n") && req.endsWith("\r\n\r\n"), true);
 * ```
 */
export function encodeRangeRequest(url: URL, rangeStart: number, rangeEnd: number): Uint8Array {
  if (url.protocol !== "http:") throw new HttpError(`Cannot request ${url.protocol} URLs over plain HTTP/1.1`);
  if (url.username !== "" || url.password !== "") throw new HttpError("Cannot send URL credentials here");
  if (!Number.isSafeInteger(rangeStart) || !Number.isSafeInteger(rangeEnd) || rangeStart < 0 || rangeEnd < rangeStart) {
    throw new HttpError(`Cannot request the range ${rangeStart}-${rangeEnd}`);
  }
  return encoder.encode(
    `GET ${url.pathname}${url.search} HTTP/1.1\r\n` +
      `Host: ${url.host}\r\n` +
      `Range: ${rangeHeader({ rangeStart, rangeEnd })}\r\n` +
      "Accept-Encoding: identity\r\n" +
      "User-Agent: btfetch\r\n" +
      "Connection: keep-alive\r\n\r\n",
  );
}

/**
 * Parses a response head from the start of `buf` (the bytes read so far). `searched`: how many leading bytes an
 * earlier call already searched for the blank line (the bytes read before this read), so a head that arrives a byte
 * at a time is not rescanned from its start each time.
 * @returns the head, or null when the blank line ending it has not arrived yet.
 * @throws {HttpError} when the head is malformed, or longer than {@linkcode MAX_HEAD_BYTES} without ending.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const bytes = new TextEncoder().encode("HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\n\r\nabc");
 * const head = parseResponseHead(bytes);
 * eq(head?.status, 206);
 * eq(head?.headers.get("content-length"), "3");
 * eq(head?.headLength, bytes.length - 3);
 * eq(parseResponseHead(bytes.subarray(0, 20)), null);
 * ```
 */
export function parseResponseHead(buf: Uint8Array, searched = 0): ResponseHead | null {
  const end = findBlankLine(buf, Math.max(0, searched - 3), Math.min(buf.length, MAX_HEAD_BYTES));
  if (end < 0) {
    if (buf.length >= MAX_HEAD_BYTES) throw new HttpError(`The response head is longer than ${MAX_HEAD_BYTES} bytes`);
    return null;
  }
  const lines = decoder.decode(buf.subarray(0, end)).split("\r\n");
  const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0]);
  if (!m) throw new HttpError(`Not an HTTP/1.x status line: ${JSON.stringify(lines[0].slice(0, 80))}`);
  if (lines.length - 1 > MAX_HEADER_FIELDS) throw new HttpError(`More than ${MAX_HEADER_FIELDS} header fields`);
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0 || /[\s]/.test(line.slice(0, colon))) {
      throw new HttpError(`Not a header field: ${JSON.stringify(line.slice(0, 80))}`);
    }
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = headers.get(name);
    headers.set(name, had === undefined ? value : `${had}, ${value}`);
  }
  return { status: Number(m[2]), minor: m[1] === "0" ? 0 : 1, headers, headLength: end + 4 };
}

/**
 * The body's length when the head frames it by `Content-Length` alone; null when it is chunked, unframed (read to
 * the close) or its length is not one plain number (such answers are left to fetch).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(bodyLength(new Map([["content-length", "42"]])), 42);
 * eq(bodyLength(new Map([["content-length", "42"], ["transfer-encoding", "chunked"]])), null);
 * eq(bodyLength(new Map()), null);
 * ```
 */
export function bodyLength(headers: ReadonlyMap<string, string>): number | null {
  if (headers.has("transfer-encoding")) return null;
  const v = headers.get("content-length");
  if (v === undefined || !/^\d{1,15}$/.test(v)) return null;
  return Number(v);
}

/**
 * Whether the server will keep the connection open after this response: HTTP/1.1 does unless it says `close`;
 * HTTP/1.0 (`minor` 0) does only when it says `keep-alive`.
 */
export function keepsAlive(headers: ReadonlyMap<string, string>, minor: 0 | 1 = 1): boolean {
  const tokens = (headers.get("connection") ?? "").toLowerCase().split(",").map((t) => t.trim());
  return minor === 0 ? tokens.includes("keep-alive") : !tokens.includes("close");
}

/** The offset of the `\r\n\r\n` that ends the head, looked for from `from` in the first `limit` bytes; -1 if absent. */
function findBlankLine(buf: Uint8Array, from: number, limit: number): number {
  for (let i = from; i + 3 < limit; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}
