import { assertEquals, assertThrows } from "../_assert.ts";
import {
  type AskedRange,
  type HttpAnswer,
  judgeResponse,
  parseHttpDate,
  type ResponseVerdict,
  retryAfterMs,
} from "../../lib/webseed/response.ts";
import { WEBSEED_MAX_RETRY_AFTER_MS, WEBSEED_MAX_SKIP_BYTES } from "../../lib/limits.ts";

function answer(status: number, h: Record<string, string> = {}): HttpAnswer {
  const lower = new Map(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
  return { status, headers: (name) => lower.get(name.toLowerCase()) ?? null };
}

const asked: AskedRange = { rangeStart: 100, rangeEnd: 199, fileLength: 1000 };
const whole: AskedRange = { rangeStart: 0, rangeEnd: 999, fileLength: 1000 };
const far: AskedRange = {
  rangeStart: WEBSEED_MAX_SKIP_BYTES + 1,
  rangeEnd: WEBSEED_MAX_SKIP_BYTES + 100,
  fileLength: 2 * WEBSEED_MAX_SKIP_BYTES,
};

const cases: { name: string; answer: HttpAnswer; asked?: AskedRange; want: ResponseVerdict }[] = [
  // 206
  {
    name: "206 with the asked range",
    answer: answer(206, { "Content-Range": "bytes 100-199/1000", "Content-Length": "100" }),
    want: { kind: "data", skip: 0, length: 100, close: false },
  },
  {
    name: "206 short of the asked end: taken, the rest asked again",
    answer: answer(206, { "Content-Range": "bytes 100-149/1000" }),
    want: { kind: "data", skip: 0, length: 50, close: false },
  },
  {
    name: "206 of a single byte",
    answer: answer(206, { "Content-Range": "bytes 100-100/1000" }),
    want: { kind: "data", skip: 0, length: 1, close: false },
  },
  {
    name: "206 with an unknown total",
    answer: answer(206, { "Content-Range": "bytes 100-199/*" }),
    want: { kind: "data", skip: 0, length: 100, close: false },
  },
  {
    name: "206 with extra spaces and a capital unit",
    answer: answer(206, { "Content-Range": "  Bytes  100-199/1000 " }),
    want: { kind: "data", skip: 0, length: 100, close: false },
  },
  {
    name: "206 with identity encoding",
    answer: answer(206, { "Content-Range": "bytes 100-199/1000", "Content-Encoding": "identity" }),
    want: { kind: "data", skip: 0, length: 100, close: false },
  },
  {
    name: "206 starting elsewhere",
    answer: answer(206, { "Content-Range": "bytes 0-199/1000" }),
    want: { kind: "failed", status: 206, reason: "bad-content-range" },
  },
  {
    name: "206 ending past the asked end",
    answer: answer(206, { "Content-Range": "bytes 100-299/1000" }),
    want: { kind: "failed", status: 206, reason: "bad-content-range" },
  },
  {
    name: "206 ending before it starts",
    answer: answer(206, { "Content-Range": "bytes 100-99/1000" }),
    want: { kind: "failed", status: 206, reason: "bad-content-range" },
  },
  {
    name: "206 without Content-Range (multipart)",
    answer: answer(206, { "Content-Type": "multipart/byteranges; boundary=x" }),
    want: { kind: "failed", status: 206, reason: "bad-content-range" },
  },
  {
    name: "206 with an unsatisfied-range form",
    answer: answer(206, { "Content-Range": "bytes */1000" }),
    want: { kind: "failed", status: 206, reason: "bad-content-range" },
  },
  {
    name: "206 with another unit",
    answer: answer(206, { "Content-Range": "items 100-199/1000" }),
    want: { kind: "failed", status: 206, reason: "bad-content-range" },
  },
  {
    name: "206 with a negative number",
    answer: answer(206, { "Content-Range": "bytes -100-199/1000" }),
    want: { kind: "failed", status: 206, reason: "bad-content-range" },
  },
  {
    name: "206 with a number over 2^53",
    answer: answer(206, { "Content-Range": "bytes 100-1999999999999999999/1000" }),
    want: { kind: "failed", status: 206, reason: "bad-content-range" },
  },
  {
    name: "206 of another file length: the seed has another version",
    answer: answer(206, { "Content-Range": "bytes 100-199/1001" }),
    want: { kind: "missing", status: 206, reason: "wrong-length" },
  },
  {
    name: "206 whose Content-Length disagrees",
    answer: answer(206, { "Content-Range": "bytes 100-199/1000", "Content-Length": "99" }),
    want: { kind: "failed", status: 206, reason: "bad-content-length" },
  },
  {
    name: "206 with a malformed Content-Length",
    answer: answer(206, { "Content-Range": "bytes 100-199/1000", "Content-Length": "100, 100" }),
    want: { kind: "failed", status: 206, reason: "bad-content-length" },
  },
  {
    name: "206 compressed",
    answer: answer(206, { "Content-Range": "bytes 100-199/1000", "Content-Encoding": "gzip" }),
    want: { kind: "missing", status: 206, reason: "encoded" },
  },
  // 200
  {
    name: "200 to a range near the start: skip to it, close after",
    answer: answer(200, { "Content-Length": "1000" }),
    want: { kind: "data", skip: 100, length: 100, close: true },
  },
  {
    name: "200 without Content-Length (chunked)",
    answer: answer(200, {}),
    want: { kind: "data", skip: 100, length: 100, close: true },
  },
  {
    name: "200 to the whole file: the body is the file",
    answer: answer(200, { "Content-Length": "1000" }),
    asked: whole,
    want: { kind: "data", skip: 0, length: 1000, close: false },
  },
  {
    name: "200 to the file's tail: no close needed",
    answer: answer(200, {}),
    asked: { rangeStart: 900, rangeEnd: 999, fileLength: 1000 },
    want: { kind: "data", skip: 900, length: 100, close: false },
  },
  {
    name: "200 at the skip limit",
    answer: answer(200, {}),
    asked: { rangeStart: WEBSEED_MAX_SKIP_BYTES, rangeEnd: WEBSEED_MAX_SKIP_BYTES, fileLength: far.fileLength },
    want: { kind: "data", skip: WEBSEED_MAX_SKIP_BYTES, length: 1, close: true },
  },
  {
    name: "200 to a range past the skip limit: not used for this file",
    answer: answer(200, {}),
    asked: far,
    want: { kind: "missing", status: 200, reason: "ignores-range" },
  },
  {
    name: "200 of another length (an error page)",
    answer: answer(200, { "Content-Length": "512", "Content-Type": "text/html" }),
    want: { kind: "missing", status: 200, reason: "wrong-length" },
  },
  {
    name: "200 compressed",
    answer: answer(200, { "Content-Encoding": "br" }),
    want: { kind: "missing", status: 200, reason: "encoded" },
  },
  { name: "204", answer: answer(204), want: { kind: "failed", status: 204, reason: "status" } },
  // 3xx
  {
    name: "302 with Location",
    answer: answer(302, { Location: "http://m2/f" }),
    want: { kind: "redirect", status: 302, location: "http://m2/f" },
  },
  {
    name: "301, 303, 307, 308 redirect too",
    answer: answer(308, { Location: "/moved" }),
    want: { kind: "redirect", status: 308, location: "/moved" },
  },
  { name: "302 without Location", answer: answer(302), want: { kind: "failed", status: 302, reason: "no-location" } },
  {
    name: "302 with an empty Location",
    answer: answer(302, { Location: "  " }),
    want: { kind: "failed", status: 302, reason: "no-location" },
  },
  { name: "304", answer: answer(304), want: { kind: "failed", status: 304, reason: "status" } },
  { name: "300", answer: answer(300, { Location: "/x" }), want: { kind: "failed", status: 300, reason: "status" } },
  // 4xx
  { name: "404", answer: answer(404), want: { kind: "missing", status: 404, reason: "not-found" } },
  { name: "410", answer: answer(410), want: { kind: "missing", status: 410, reason: "gone" } },
  { name: "416", answer: answer(416), want: { kind: "missing", status: 416, reason: "unsatisfiable" } },
  { name: "403", answer: answer(403), want: { kind: "missing", status: 403, reason: "refused" } },
  { name: "408 is transient", answer: answer(408), want: { kind: "failed", status: 408, reason: "status" } },
  {
    name: "429 with Retry-After seconds",
    answer: answer(429, { "Retry-After": "30" }),
    want: { kind: "retry", status: 429, retryAfterMs: 30_000 },
  },
  { name: "429 without Retry-After", answer: answer(429), want: { kind: "retry", status: 429, retryAfterMs: null } },
  // 5xx
  {
    name: "503 with Retry-After date",
    answer: answer(503, { "Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT", Date: "Wed, 21 Oct 2015 07:28:00 GMT" }),
    want: { kind: "retry", status: 503, retryAfterMs: 10_000 },
  },
  {
    name: "503 with a Retry-After over the cap",
    answer: answer(503, { "Retry-After": "86400" }),
    want: { kind: "retry", status: 503, retryAfterMs: WEBSEED_MAX_RETRY_AFTER_MS },
  },
  { name: "500", answer: answer(500), want: { kind: "failed", status: 500, reason: "status" } },
  { name: "502", answer: answer(502), want: { kind: "failed", status: 502, reason: "status" } },
  { name: "a status out of range", answer: answer(999), want: { kind: "failed", status: 999, reason: "status" } },
];

Deno.test("judgeResponse() says what to do with each kind of answer", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => assertEquals(judgeResponse(c.answer, c.asked ?? asked), c.want));
  }
});

Deno.test("judgeResponse() refuses an asked range outside the file", async (t) => {
  const bad: AskedRange[] = [
    { rangeStart: -1, rangeEnd: 5, fileLength: 10 },
    { rangeStart: 5, rangeEnd: 4, fileLength: 10 },
    { rangeStart: 0, rangeEnd: 10, fileLength: 10 },
    { rangeStart: 0.5, rangeEnd: 5, fileLength: 10 },
  ];
  for (const a of bad) {
    await t.step(JSON.stringify(a), () => {
      assertThrows(() => judgeResponse(answer(206), a), RangeError);
    });
  }
});

const DATE = "Wed, 21 Oct 2015 07:28:00 GMT";
const DATE_MS = Date.UTC(2015, 9, 21, 7, 28, 0);
const retries: { name: string; h: Record<string, string>; wall?: number; want: number | null }[] = [
  { name: "seconds", h: { "Retry-After": "2" }, want: 2000 },
  { name: "zero seconds", h: { "Retry-After": "0" }, want: 0 },
  { name: "leading zeros", h: { "Retry-After": "0000000000000007" }, want: 7000 },
  { name: "huge seconds: the cap", h: { "Retry-After": "9".repeat(40) }, want: WEBSEED_MAX_RETRY_AFTER_MS },
  { name: "negative seconds: unreadable", h: { "Retry-After": "-5" }, want: null },
  { name: "fractional seconds: unreadable", h: { "Retry-After": "1.5" }, want: null },
  { name: "absent", h: {}, want: null },
  { name: "empty", h: { "Retry-After": "" }, want: null },
  {
    name: "date from the Date header",
    h: { "Retry-After": "Wed, 21 Oct 2015 07:29:00 GMT", Date: DATE },
    want: 60_000,
  },
  {
    name: "date from the wall clock without Date",
    h: { "Retry-After": "Wed, 21 Oct 2015 07:28:05 GMT" },
    wall: DATE_MS,
    want: 5000,
  },
  { name: "Date header wins over the wall clock", h: { "Retry-After": DATE, Date: DATE }, wall: 0, want: 0 },
  { name: "date in the past: 0", h: { "Retry-After": "Wed, 21 Oct 2015 07:00:00 GMT", Date: DATE }, want: 0 },
  {
    name: "date far ahead: the cap",
    h: { "Retry-After": "Thu, 22 Oct 2015 07:28:00 GMT", Date: DATE },
    want: WEBSEED_MAX_RETRY_AFTER_MS,
  },
  { name: "date with nothing to count from", h: { "Retry-After": DATE }, want: null },
  { name: "bad Date header, wall clock used", h: { "Retry-After": DATE, Date: "yesterday" }, wall: DATE_MS, want: 0 },
  { name: "garbage", h: { "Retry-After": "later please" }, want: null },
];

Deno.test("retryAfterMs() reads seconds and dates, bounded", async (t) => {
  for (const c of retries) {
    await t.step(c.name, () => assertEquals(retryAfterMs(answer(503, c.h), c.wall), c.want));
  }
});

const dates: [string, number | null][] = [
  ["Sun, 06 Nov 1994 08:49:37 GMT", Date.UTC(1994, 10, 6, 8, 49, 37)],
  ["Sunday, 06-Nov-94 08:49:37 GMT", Date.UTC(1994, 10, 6, 8, 49, 37)],
  ["Tuesday, 06-Nov-29 08:49:37 GMT", Date.UTC(2029, 10, 6, 8, 49, 37)],
  ["Sun Nov  6 08:49:37 1994", Date.UTC(1994, 10, 6, 8, 49, 37)],
  ["Sun Nov 16 08:49:37 1994", Date.UTC(1994, 10, 16, 8, 49, 37)],
  ["Thu, 29 Feb 2024 00:00:00 GMT", Date.UTC(2024, 1, 29)],
  ["Wed, 31 Dec 2025 23:59:60 GMT", Date.UTC(2025, 11, 31, 23, 59, 59)],
  ["Thu, 29 Feb 2023 00:00:00 GMT", null],
  ["Thu, 29 Feb 1900 00:00:00 GMT", null],
  ["Sun, 31 Nov 1994 08:49:37 GMT", null],
  ["Sun, 00 Nov 1994 08:49:37 GMT", null],
  ["Sun, 06 Nov 1994 24:00:00 GMT", null],
  ["Sun, 06 Nov 1994 08:60:00 GMT", null],
  ["Sun, 06 Nov 1994 08:49:37 UTC", null],
  ["Sun, 06 nov 1994 08:49:37 GMT", null],
  ["Sun, 6 Nov 1994 08:49:37 GMT", null],
  ["Sun,  06 Nov 1994 08:49:37 GMT", null],
  ["Sun, 06 Nov 0094 08:49:37 GMT", null],
  ["1994-11-06T08:49:37Z", null],
  ["784111777", null],
  ["", null],
];

Deno.test("parseHttpDate() reads the three HTTP-date forms strictly", async (t) => {
  for (const [text, want] of dates) await t.step(JSON.stringify(text), () => assertEquals(parseHttpDate(text), want));
});
