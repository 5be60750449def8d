import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { fuzzIterations, fuzzSeed, seeded } from "../_gen.ts";
import {
  bodyLength,
  encodeRangeRequest,
  HttpError,
  keepsAlive,
  MAX_HEAD_BYTES,
  MAX_HEADER_FIELDS,
  parseResponseHead,
} from "../../lib/webseed/http1.ts";

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("encodeRangeRequest() asks for the path and query, with Host, Range and a kept-alive connection", async (t) => {
  const rows: [string, string, number, number, string, string][] = [
    ["a plain path", "http://127.0.0.1:8080/data/a.bin", 0, 16383, "GET /data/a.bin HTTP/1.1", "127.0.0.1:8080"],
    ["the default port", "http://example.org/x", 5, 5, "GET /x HTTP/1.1", "example.org"],
    ["escapes and a query kept", "http://h/a%20b/c?d=1&e", 1, 2, "GET /a%20b/c?d=1&e HTTP/1.1", "h"],
    ["an IPv6 host", "http://[::1]:9/f", 0, 1, "GET /f HTTP/1.1", "[::1]:9"],
  ];
  for (const [name, url, a, b, line, host] of rows) {
    await t.step(name, () => {
      const req = new TextDecoder().decode(encodeRangeRequest(new URL(url), a, b)).split("\r\n");
      assertEquals(req[0], line);
      assert(req.includes(`Host: ${host}`), req.join("|"));
      assert(req.includes(`Range: bytes=${a}-${b}`));
      assert(req.includes("Accept-Encoding: identity"));
      assert(req.includes("Connection: keep-alive"));
      assertEquals(req.slice(-2), ["", ""], "ends with a blank line");
    });
  }
});

Deno.test("encodeRangeRequest() refuses what a plain connection must not carry", async (t) => {
  const rows: [string, string, number, number][] = [
    ["https", "https://h/x", 0, 1],
    ["credentials", "http://u:p@h/x", 0, 1],
    ["a user alone", "http://u@h/x", 0, 1],
    ["a reversed range", "http://h/x", 5, 4],
    ["a negative start", "http://h/x", -1, 4],
    ["a fractional end", "http://h/x", 0, 1.5],
  ];
  for (const [name, url, a, b] of rows) {
    await t.step(name, () => {
      assertThrows(() => encodeRangeRequest(new URL(url), a, b), HttpError);
    });
  }
});

Deno.test("parseResponseHead() reads the status and fields and says where the body starts", async (t) => {
  await t.step("a 206 with its body after the head", () => {
    const raw = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-2/10\r\nContent-Length: 3\r\n\r\nabc";
    const head = parseResponseHead(text(raw));
    assertEquals(head?.status, 206);
    assertEquals(head?.headers.get("content-range"), "bytes 0-2/10");
    assertEquals(head?.headLength, raw.length - 3);
  });
  await t.step("names are case-insensitive, values trimmed, repeats joined", () => {
    const head = parseResponseHead(text("HTTP/1.0 200 OK\r\nX-A:  1 \r\nx-a: 2\r\nLOCATION:/z\r\n\r\n"));
    assertEquals([...head!.headers], [["x-a", "1, 2"], ["location", "/z"]]);
  });
  await t.step("a status line without a reason phrase", () => {
    assertEquals(parseResponseHead(text("HTTP/1.1 503\r\n\r\n"))?.status, 503);
  });
  await t.step("an incomplete head: null, at every cut", () => {
    const raw = text("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    for (let n = 0; n < raw.length; n++) assertEquals(parseResponseHead(raw.subarray(0, n)), null, `cut at ${n}`);
    assertEquals(parseResponseHead(raw)?.headLength, raw.length);
  });
});

Deno.test("parseResponseHead() refuses malformed and oversized heads with HttpError", async (t) => {
  const rows: [string, Uint8Array][] = [
    ["not HTTP", text("SSH-2.0-OpenSSH\r\n\r\n")],
    ["HTTP/2 framing", text("HTTP/2 200\r\n\r\n")],
    ["a two-digit status", text("HTTP/1.1 20 OK\r\n\r\n")],
    ["a field without a colon", text("HTTP/1.1 200 OK\r\nbroken\r\n\r\n")],
    ["a field with an empty name", text("HTTP/1.1 200 OK\r\n: x\r\n\r\n")],
    ["a space in a field name", text("HTTP/1.1 200 OK\r\nContent Length: 3\r\n\r\n")],
    ["too many fields", text(`HTTP/1.1 200 OK\r\n${"A: b\r\n".repeat(MAX_HEADER_FIELDS + 1)}\r\n`)],
    ["a head that never ends", text(`HTTP/1.1 200 OK\r\nX: ${"y".repeat(MAX_HEAD_BYTES)}`)],
  ];
  for (const [name, bytes] of rows) {
    await t.step(name, () => {
      assertThrows(() => parseResponseHead(bytes), HttpError);
    });
  }
});

Deno.test("bodyLength() and keepsAlive() read the framing", async (t) => {
  const rows: [string, [string, string][], number | null, boolean][] = [
    ["a plain length", [["content-length", "1048576"]], 1048576, true],
    ["zero", [["content-length", "0"]], 0, true],
    ["chunked", [["transfer-encoding", "chunked"]], null, true],
    ["chunked beside a length", [["content-length", "5"], ["transfer-encoding", "chunked"]], null, true],
    ["no length (read to the close)", [], null, true],
    ["two lengths joined", [["content-length", "5, 5"]], null, true],
    ["a negative length", [["content-length", "-5"]], null, true],
    ["Connection: close", [["content-length", "5"], ["connection", "Close"]], 5, false],
    ["Connection: keep-alive, upgrade", [["content-length", "5"], ["connection", "keep-alive, upgrade"]], 5, true],
  ];
  for (const [name, fields, length, alive] of rows) {
    await t.step(name, () => {
      const headers = new Map(fields);
      assertEquals(bodyLength(headers), length);
      assertEquals(keepsAlive(headers), alive);
    });
  }
});

Deno.test("parseResponseHead() on mutated heads only ever returns a head, null, or throws HttpError", () => {
  const rand = seeded(fuzzSeed(11));
  const base = text(
    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 10\r\nConnection: keep-alive\r\n\r\n",
  );
  for (let i = 0; i < fuzzIterations(3000); i++) {
    const b = base.slice(0, rand.int(base.length + 1));
    for (let k = rand.int(4); k > 0; k--) if (b.length > 0) b[rand.int(b.length)] = rand.int(256);
    try {
      const head = parseResponseHead(b);
      if (head !== null) {
        assert(head.status >= 100 && head.status <= 999);
        assert(head.headLength <= b.length);
        const n = bodyLength(head.headers);
        assert(n === null || Number.isSafeInteger(n));
      }
    } catch (e) {
      assert(e instanceof HttpError, `input ${i}: ${e}`);
    }
  }
});

Deno.test("parseResponseHead() reports HTTP/1.0, which keepsAlive() treats as closing unless it says keep-alive", () => {
  const old = parseResponseHead(text("HTTP/1.0 206 Partial Content\r\nContent-Length: 1\r\n\r\n"));
  assertEquals(old?.minor, 0);
  assertEquals(keepsAlive(old!.headers, old!.minor), false);
  assertEquals(keepsAlive(new Map([["connection", "Keep-Alive"]]), 0), true);
  assertEquals(parseResponseHead(text("HTTP/1.1 200 OK\r\n\r\n"))?.minor, 1);
});

Deno.test("parseResponseHead() given the bytes already searched finds the same end as a search from the start", () => {
  const raw = text("HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\n\r\nabc");
  for (let cut = 1; cut <= raw.length; cut++) {
    const before = parseResponseHead(raw.subarray(0, cut - 1));
    if (before !== null) continue;
    assertEquals(
      parseResponseHead(raw.subarray(0, cut), cut - 1),
      parseResponseHead(raw.subarray(0, cut)),
      `at ${cut}`,
    );
  }
});
