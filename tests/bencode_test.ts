import npmBencode from "bencode";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { fuzzSeed, type Rand, randomBytes, seeded } from "./_gen.ts";
import {
  BencodeError,
  type BencodeErrorCode,
  type BencodeValue,
  decodeBencode,
  dictGet,
  encodeBencode,
  getBigInt,
  getBytes,
  getDict,
  getInt,
  getList,
  getString,
  keyBytes,
  latin1Key,
} from "../lib/bencode.ts";
import {
  BENCODE_DEPTH_CEILING,
  BENCODE_MAX_DEPTH,
  MAX_BENCODE_CONTAINERS,
  MAX_BENCODE_INTEGER_DIGITS,
} from "../lib/limits.ts";

const te = new TextEncoder();
/** Bytes of a binary string (one char per byte). */
const b = (s: string): Uint8Array => keyBytes(s);
const dict = (entries: [string, BencodeValue][]): Map<string, BencodeValue> => new Map(entries);

const valid: { name: string; input: string; want: BencodeValue }[] = [
  { name: "zero", input: "i0e", want: 0n },
  { name: "negative", input: "i-42e", want: -42n },
  { name: "15 digits fast path", input: "i999999999999999e", want: 999999999999999n },
  { name: "big integer", input: "i123456789012345678901234567890e", want: 123456789012345678901234567890n },
  { name: "negative big integer", input: "i-123456789012345678901234567890e", want: -123456789012345678901234567890n },
  {
    name: "integer at the digit limit",
    input: `i${"9".repeat(MAX_BENCODE_INTEGER_DIGITS)}e`,
    want: BigInt("9".repeat(MAX_BENCODE_INTEGER_DIGITS)),
  },
  { name: "empty string", input: "0:", want: new Uint8Array() },
  { name: "string", input: "4:spam", want: te.encode("spam") },
  { name: "binary string", input: "2:\x00\xff", want: new Uint8Array([0, 255]) },
  { name: "empty list", input: "le", want: [] },
  { name: "empty dict", input: "de", want: new Map() },
  { name: "list", input: "li1e3:abclee", want: [1n, te.encode("abc"), []] },
  { name: "dict", input: "d1:ai1e1:bl1:xee", want: dict([["a", 1n], ["b", [te.encode("x")]]]) },
  { name: "prefix key sorts first", input: "d1:ai1e2:aai2ee", want: dict([["a", 1n], ["aa", 2n]]) },
  { name: "NUL sorts after nothing", input: "d1:ai1e2:a\x00i2ee", want: dict([["a", 1n], ["a\x00", 2n]]) },
  { name: "keys compare as raw bytes", input: "d1:zi1e1:\xffi2ee", want: dict([["z", 1n], ["\xff", 2n]]) },
  { name: "empty key", input: "d0:i1e1:ai2ee", want: dict([["", 1n], ["a", 2n]]) },
  { name: "__proto__ is just a key", input: "d9:__proto__d1:xi1eee", want: dict([["__proto__", dict([["x", 1n]])]]) },
  {
    name: "nesting at the depth limit",
    input: "l".repeat(BENCODE_MAX_DEPTH) + "e".repeat(BENCODE_MAX_DEPTH),
    want: (() => {
      let v: BencodeValue = [];
      for (let k = 1; k < BENCODE_MAX_DEPTH; k++) v = [v];
      return v;
    })(),
  },
];

Deno.test("decodeBencode() decodes canonical values", async (t) => {
  for (const c of valid) {
    await t.step(c.name, () => {
      const bytes = b(c.input);
      const r = decodeBencode(bytes);
      assertEquals(r.value, c.want);
      assertEquals(r.end, bytes.length);
      assertEquals(r.issues, []);
      assertEquals(encodeBencode(r.value), bytes, "encode(decode(b)) is b");
    });
  }
});

const invalid: { name: string; input: string; code: BencodeErrorCode; offset: number }[] = [
  { name: "empty input", input: "", code: "truncated", offset: 0 },
  { name: "lone i", input: "i", code: "truncated", offset: 1 },
  { name: "unterminated integer", input: "i12", code: "truncated", offset: 3 },
  { name: "empty integer", input: "ie", code: "bad-integer", offset: 0 },
  { name: "minus only", input: "i-e", code: "bad-integer", offset: 0 },
  { name: "leading zero", input: "i03e", code: "leading-zero", offset: 0 },
  { name: "double zero", input: "i00e", code: "leading-zero", offset: 0 },
  { name: "negative leading zero", input: "i-03e", code: "leading-zero", offset: 0 },
  { name: "negative zero", input: "i-0e", code: "negative-zero", offset: 0 },
  { name: "decimal point", input: "i1.5e", code: "bad-integer", offset: 2 },
  { name: "plus sign", input: "i+1e", code: "bad-integer", offset: 1 },
  { name: "double minus", input: "i--1e", code: "bad-integer", offset: 2 },
  { name: "space in integer", input: "i 1e", code: "bad-integer", offset: 1 },
  {
    name: "integer over the digit limit",
    input: `i${"1".repeat(MAX_BENCODE_INTEGER_DIGITS + 1)}e`,
    code: "too-long",
    offset: 0,
  },
  { name: "string length leading zero", input: "03:abc", code: "leading-zero", offset: 0 },
  { name: "zero-length with leading zero", input: "00:", code: "leading-zero", offset: 0 },
  { name: "string longer than the input", input: "5:abc", code: "truncated", offset: 0 },
  { name: "huge string length", input: "999999999999999:a", code: "truncated", offset: 0 },
  { name: "string length over the digit limit", input: "1234567890123456:a", code: "too-long", offset: 0 },
  { name: "length without colon", input: "3", code: "truncated", offset: 1 },
  { name: "length with bad separator", input: "3x", code: "bad-length", offset: 1 },
  { name: "negative string length", input: "-1:a", code: "unexpected-byte", offset: 0 },
  { name: "unknown type byte", input: "x", code: "unexpected-byte", offset: 0 },
  { name: "stray end", input: "e", code: "unexpected-byte", offset: 0 },
  { name: "trailing bytes", input: "i1ei2e", code: "trailing-bytes", offset: 3 },
  { name: "trailing newline", input: "de\n", code: "trailing-bytes", offset: 2 },
  { name: "unterminated list", input: "l", code: "truncated", offset: 1 },
  { name: "list ends after item", input: "li1e", code: "truncated", offset: 4 },
  { name: "unterminated dict", input: "d", code: "truncated", offset: 1 },
  { name: "dict key without value", input: "d1:a", code: "truncated", offset: 4 },
  { name: "integer key", input: "di1ei2ee", code: "non-string-key", offset: 1 },
  { name: "list key", input: "dli1eei1ee", code: "non-string-key", offset: 1 },
  { name: "dict key", input: "dd1:ai1eei1ee", code: "non-string-key", offset: 1 },
  { name: "integer key later", input: "d1:ad1:bdeei1ei2ee", code: "non-string-key", offset: 11 },
  { name: "garbage key", input: "dx", code: "unexpected-byte", offset: 1 },
  { name: "unsorted keys", input: "d1:bi1e1:ai2ee", code: "unsorted-keys", offset: 7 },
  { name: "unsorted raw bytes", input: "d1:\xffi1e1:ai2ee", code: "unsorted-keys", offset: 7 },
  { name: "longer key first", input: "d2:aai1e1:ai2ee", code: "unsorted-keys", offset: 8 },
  { name: "duplicate keys", input: "d1:ai1e1:ai2ee", code: "duplicate-key", offset: 7 },
  { name: "duplicate keys apart", input: "d1:ai1e1:bi2e1:ai3ee", code: "duplicate-key", offset: 13 },
  { name: "unsorted in a nested dict", input: "ld1:bi1e1:ai2eee", code: "unsorted-keys", offset: 8 },
  {
    name: "nesting over the depth limit",
    input: "l".repeat(BENCODE_MAX_DEPTH + 1) + "e".repeat(BENCODE_MAX_DEPTH + 1),
    code: "too-deep",
    offset: BENCODE_MAX_DEPTH,
  },
  {
    name: "deep dicts",
    input: "d1:a".repeat(BENCODE_MAX_DEPTH + 1) + "de" + "e".repeat(BENCODE_MAX_DEPTH + 1),
    code: "too-deep",
    offset: 4 * BENCODE_MAX_DEPTH,
  },
];

Deno.test("decodeBencode() rejects malformed and non-canonical input with code and offset", async (t) => {
  for (const c of invalid) {
    await t.step(c.name, () => {
      const err = assertThrows(() => decodeBencode(b(c.input)), BencodeError);
      assert(err instanceof SyntaxError);
      assertEquals({ code: err.code, offset: err.offset }, { code: c.code, offset: c.offset });
      assert(err.message.startsWith(`Cannot decode bencode at byte ${c.offset}: `), err.message);
    });
  }
});

Deno.test("decodeBencode() checks a string length against the bytes left before slicing", () => {
  const err = assertThrows(() => decodeBencode(b("l1:a99999999:xe")), BencodeError);
  assertEquals([err.code, err.offset], ["truncated", 4]);
});

Deno.test("decodeBencode() honours maxDepth", () => {
  assertEquals(decodeBencode(b("i1e"), { maxDepth: 0 }).value, 1n);
  const err = assertThrows(() => decodeBencode(b("lle"), { maxDepth: 1 }), BencodeError);
  assertEquals([err.code, err.offset], ["too-deep", 1]);
});

/** `depth` nested empty lists: `ll...ee...`. */
function nestedLists(depth: number): Uint8Array {
  const out = new Uint8Array(2 * depth);
  out.fill(0x6c, 0, depth); // l
  out.fill(0x65, depth); // e
  return out;
}

Deno.test("decodeBencode() caps maxDepth at BENCODE_DEPTH_CEILING: 200,000 nested lists are a BencodeError", async (t) => {
  const deep = nestedLists(200_000);
  const rows: { name: string; maxDepth?: number }[] = [
    { name: "far above the ceiling", maxDepth: 1e9 },
    { name: "Infinity", maxDepth: Infinity },
    { name: "NaN", maxDepth: NaN },
    { name: "just above the ceiling", maxDepth: BENCODE_DEPTH_CEILING + 1 },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      // before the ceiling, these overflowed the stack with a RangeError (or, for NaN, had no limit at all)
      const err = assertThrows(() => decodeBencode(deep, { maxDepth: r.maxDepth }), BencodeError);
      assertEquals([err.code, err.offset], ["too-deep", BENCODE_DEPTH_CEILING]);
    });
  }
  await t.step("the default limit", () => {
    const err = assertThrows(() => decodeBencode(deep), BencodeError);
    assertEquals([err.code, err.offset], ["too-deep", BENCODE_MAX_DEPTH]);
  });
  await t.step("nesting at the ceiling decodes", () => {
    const r = decodeBencode(nestedLists(BENCODE_DEPTH_CEILING), { maxDepth: 1e9 });
    assertEquals(r.end, 2 * BENCODE_DEPTH_CEILING);
  });
});

Deno.test("decodeBencode() called with little stack left reports deep input as too-deep, not a RangeError", () => {
  // Recurse ever deeper before decoding input at the ceiling: at some point the decoder, not this helper, is the
  // one that runs out of stack, and that must come out as a BencodeError.
  const input = nestedLists(BENCODE_DEPTH_CEILING);
  const probe = (frames: number): unknown => {
    if (frames > 0) return probe(frames - 1);
    try {
      decodeBencode(input, { maxDepth: BENCODE_DEPTH_CEILING });
      return "decoded";
    } catch (e) {
      return e;
    }
  };
  let tooDeep = 0;
  let edge = 0;
  for (let frames = 0; frames < 1_000_000; frames += 100) {
    let got: unknown;
    try {
      got = probe(frames);
    } catch (e) {
      if (e instanceof RangeError) break; // the helper itself overflowed: past the window that matters
      throw e;
    }
    if (got === "decoded") continue;
    if (got instanceof RangeError) {
      // the one depth where the stack runs out inside the decoder's own handler, building the BencodeError: no code
      // can report anything there. It is a window of a few frames, so this 100-frame walk lands in it at most once.
      edge++;
      continue;
    }
    assert(got instanceof BencodeError, `${frames} frames deep: ${got}`);
    assertEquals(got.code, "too-deep");
    tooDeep++;
  }
  assert(tooDeep > 0, "the decoder never ran short of stack; the test does not reach its case");
  assert(edge <= 1, `a RangeError escaped at ${edge} depths, not just at the edge`);
});

/** A list of `inner` empty lists: `lllele...lee`. */
function listOfEmptyLists(inner: number): Uint8Array {
  const out = new Uint8Array(2 * inner + 2);
  out[0] = 0x6c;
  for (let k = 1; k <= 2 * inner; k += 2) {
    out[k] = 0x6c;
    out[k + 1] = 0x65;
  }
  out[2 * inner + 1] = 0x65;
  return out;
}

Deno.test("decodeBencode() refuses more than MAX_BENCODE_CONTAINERS lists and dictionaries", () => {
  // 16 MiB each. Recording spans for 2^24 containers (34 MiB of `le`) used to end in "RangeError: Map maximum size
  // exceeded"; spanDepth 0 keeps this test fast, as the count covers every container, recorded or not.
  const n = MAX_BENCODE_CONTAINERS;
  const atLimit = decodeBencode(listOfEmptyLists(n - 1), { spanDepth: 0 }).value;
  assertEquals((atLimit as BencodeValue[]).length, n - 1);
  const err = assertThrows(() => decodeBencode(listOfEmptyLists(n), { spanDepth: 0 }), BencodeError);
  assertEquals([err.code, err.offset], ["too-many", 2 * n - 1]);
});

Deno.test("decodeBencode() with allowUnsorted records issues; the first duplicate wins", async (t) => {
  const rows: { name: string; input: string; want: BencodeValue; issues: unknown[] }[] = [
    {
      name: "unsorted",
      input: "d1:bi1e1:ai2ee",
      want: dict([["b", 1n], ["a", 2n]]),
      issues: [{ code: "unsorted-keys", offset: 7 }],
    },
    {
      name: "adjacent duplicate",
      input: "d1:ai1e1:ai2ee",
      want: dict([["a", 1n]]),
      issues: [{ code: "duplicate-key", offset: 7 }],
    },
    {
      name: "distant duplicate",
      input: "d1:ai1e1:bi2e1:ai3ee",
      want: dict([["a", 1n], ["b", 2n]]),
      issues: [{ code: "duplicate-key", offset: 13 }],
    },
    { name: "canonical has no issues", input: "d1:ai1ee", want: dict([["a", 1n]]), issues: [] },
  ];
  for (const c of rows) {
    await t.step(c.name, () => {
      const r = decodeBencode(b(c.input), { allowUnsorted: true });
      assertEquals(r.value, c.want);
      assertEquals(r.issues, c.issues);
    });
  }
  await t.step("the span of a duplicate is the first value's", () => {
    const r = decodeBencode(b("d1:ai1e1:ai2ee"), { allowUnsorted: true });
    assertEquals(r.valueSpan(r.value as Map<string, BencodeValue>, "a"), { start: 4, end: 7 });
  });
  await t.step("other errors still throw", () => {
    const err = assertThrows(() => decodeBencode(b("d1:bi01ee"), { allowUnsorted: true }), BencodeError);
    assertEquals(err.code, "leading-zero");
  });
});

Deno.test("decodeBencode() with allowTrailing and offset decodes one value in a stream", () => {
  const bytes = b("xxi1ei2e");
  const first = decodeBencode(bytes, { offset: 2, allowTrailing: true });
  assertEquals([first.value, first.end], [1n, 5]);
  const second = decodeBencode(bytes, { offset: first.end });
  assertEquals([second.value, second.end], [2n, 8]);
  const err = assertThrows(() => decodeBencode(bytes, { offset: 1, allowTrailing: true }), BencodeError);
  assertEquals([err.code, err.offset], ["unexpected-byte", 1]);
  assertThrows(() => decodeBencode(bytes, { offset: 99 }), RangeError);
});

Deno.test("decodeBencode() reports spans of containers and dict values", () => {
  const text = "d4:infod6:lengthi5e4:name1:ae4:listli1eee";
  const bytes = b(text);
  const r = decodeBencode(bytes);
  const top = r.value as Map<string, BencodeValue>;
  const info = top.get("info") as Map<string, BencodeValue>;
  const list = top.get("list") as BencodeValue[];
  const slice = (s: { start: number; end: number } | undefined) => s && text.slice(s.start, s.end);
  assertEquals(slice(r.spanOf(top)), text);
  assertEquals(slice(r.valueSpan(top, "info")), "d6:lengthi5e4:name1:ae");
  assertEquals(slice(r.spanOf(info)), "d6:lengthi5e4:name1:ae");
  assertEquals(slice(r.valueSpan(info, "length")), "i5e");
  assertEquals(slice(r.valueSpan(info, "name")), "1:a");
  assertEquals(slice(r.spanOf(list)), "li1ee");
  assertEquals(r.valueSpan(top, "absent"), undefined);
  assertEquals(r.spanOf([]), undefined);
});

Deno.test("decodeBencode() with spanDepth records spans only down to that depth", () => {
  const bytes = b("d1:ad1:bli1eeee");
  const r = decodeBencode(bytes, { spanDepth: 1 });
  const top = r.value as Map<string, BencodeValue>;
  const inner = top.get("a") as Map<string, BencodeValue>;
  assertEquals(r.spanOf(top), { start: 0, end: bytes.length });
  assertEquals(r.valueSpan(top, "a"), { start: 4, end: 14 });
  assertEquals([r.spanOf(inner), r.valueSpan(inner, "b")], [undefined, undefined]);
  const all = decodeBencode(bytes);
  assertEquals(all.valueSpan(all.value as Map<string, BencodeValue>, "a"), { start: 4, end: 14 });
});

Deno.test("decodeBencode() span look-ups refuse a dictionary changed since decoding", () => {
  const r = decodeBencode(b("d1:ai1e1:bi2ee"));
  const top = r.value as Map<string, BencodeValue>;
  assertEquals(r.valueSpan(top, "b"), { start: 10, end: 13 });
  top.delete("a");
  assertEquals(r.valueSpan(top, "b"), undefined);
});

Deno.test("decodeBencode() returns strings as views into the input", () => {
  const bytes = b("l3:abce");
  const s = (decodeBencode(bytes).value as Uint8Array[])[0];
  assertEquals([s.buffer === bytes.buffer, s.byteOffset], [true, 3]);
});

Deno.test("decodeBencode() keeps __proto__ as data and pollutes nothing", () => {
  const r = decodeBencode(b("d9:__proto__d8:pollutedi1eee"));
  const top = r.value as Map<string, BencodeValue>;
  assertEquals(top.get("__proto__"), dict([["polluted", 1n]]));
  assertEquals(({} as Record<string, unknown>).polluted, undefined);
  assertEquals(Object.getPrototypeOf(top), Map.prototype);
});

Deno.test("encodeBencode() writes canonical bytes from inputs of every kind", async (t) => {
  const rows: { name: string; input: Parameters<typeof encodeBencode>[0]; want: string }[] = [
    { name: "number", input: 1800, want: "i1800e" },
    { name: "negative number", input: -3, want: "i-3e" },
    { name: "negative zero number", input: -0, want: "i0e" },
    { name: "max safe integer", input: Number.MAX_SAFE_INTEGER, want: "i9007199254740991e" },
    { name: "bigint", input: -(2n ** 80n), want: `i${-(2n ** 80n)}e` },
    { name: "string is UTF-8", input: "ü", want: "2:\xc3\xbc" },
    { name: "bytes", input: new Uint8Array([0, 255]), want: "2:\x00\xff" },
    { name: "list", input: ["a", 1, []], want: "l1:ai1elee" },
    {
      name: "map keys sorted by raw bytes",
      input: new Map([["\xff", 1], ["b", 2], ["", 3]]),
      want: "d0:i3e1:bi2e1:\xffi1ee",
    },
    { name: "plain object", input: { z: 1, a: "x" }, want: "d1:a1:x1:zi1ee" },
    { name: "__proto__ key in a Map", input: new Map([["__proto__", 1]]), want: "d9:__proto__i1ee" },
  ];
  for (const c of rows) {
    await t.step(c.name, () => assertEquals(latin1Key(encodeBencode(c.input)), c.want));
  }
});

Deno.test("encodeBencode() refuses values bencode cannot hold", async (t) => {
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  const rows: { name: string; input: unknown; cls: typeof RangeError | typeof TypeError }[] = [
    { name: "fraction", input: 1.5, cls: RangeError },
    { name: "unsafe number", input: 2 ** 53, cls: RangeError },
    { name: "NaN", input: NaN, cls: RangeError },
    { name: "key above U+00FF", input: new Map([["名", 1]]), cls: RangeError },
    { name: "cycle", input: cyclic, cls: RangeError },
    { name: "boolean", input: true, cls: TypeError },
    { name: "null", input: null, cls: TypeError },
    { name: "undefined in a list", input: [undefined], cls: TypeError },
    { name: "Date", input: new Date(0), cls: TypeError },
    { name: "Set", input: new Set([1]), cls: TypeError },
  ];
  for (const c of rows) {
    await t.step(c.name, () => {
      assertThrows(() => encodeBencode(c.input as Parameters<typeof encodeBencode>[0]), c.cls);
    });
  }
});

Deno.test("latin1Key() and keyBytes() convert every byte both ways", () => {
  const all = new Uint8Array(70_000).map((_, k) => k & 0xff);
  assertEquals(keyBytes(latin1Key(all)), all);
  assertEquals(latin1Key(new Uint8Array([0x80, 0x9f])), "\x80\x9f");
});

Deno.test("typed getters return values, undefined when absent, and wrong-type errors naming the key", async (t) => {
  const d = dict([
    ["int", 7n],
    ["big", 2n ** 60n],
    ["str", te.encode("héllo")],
    ["bad", new Uint8Array([0xff])],
    ["list", [1n]],
    ["dict", new Map()],
  ]);
  await t.step("present values", () => {
    assertEquals(getInt(d, "int"), 7);
    assertEquals(getBigInt(d, "big"), 2n ** 60n);
    assertEquals(getBytes(d, "str"), te.encode("héllo"));
    assertEquals(getString(d, "str"), "héllo");
    assertEquals(getList(d, "list"), [1n]);
    assertEquals(getDict(d, "dict"), new Map());
    assertEquals(dictGet(d, "int"), 7n);
  });
  await t.step("absent values", () => {
    for (const get of [getInt, getBigInt, getBytes, getString, getList, getDict, dictGet]) {
      assertEquals(get(d, "nope"), undefined);
    }
  });
  const errors: { name: string; fn: () => unknown; code: BencodeErrorCode }[] = [
    { name: "getInt on a string", fn: () => getInt(d, "str"), code: "wrong-type" },
    { name: "getInt beyond safe", fn: () => getInt(d, "big"), code: "out-of-range" },
    { name: "getBytes on a list", fn: () => getBytes(d, "list"), code: "wrong-type" },
    { name: "getString on an int", fn: () => getString(d, "int"), code: "wrong-type" },
    { name: "getString on bad UTF-8", fn: () => getString(d, "bad"), code: "bad-utf8" },
    { name: "getList on a dict", fn: () => getList(d, "dict"), code: "wrong-type" },
    { name: "getDict on a list", fn: () => getDict(d, "list"), code: "wrong-type" },
    { name: "getBigInt on a dict", fn: () => getBigInt(d, "dict"), code: "wrong-type" },
  ];
  for (const c of errors) {
    await t.step(c.name, () => {
      const err = assertThrows(c.fn, BencodeError);
      assertEquals([err.code, err.offset], [c.code, -1]);
      assert(/"(str|big|list|int|bad|dict)"/.test(err.message), err.message);
    });
  }
});

// ---- generated values: round trip and differential against npm bencode ----

type GenValue = number | Uint8Array | GenValue[] | Map<string, GenValue>;

function genValue(rand: Rand, depth: number): GenValue {
  switch (rand.int(depth > 0 ? 4 : 2)) {
    case 0: {
      const r = rand.int(3);
      if (r === 0) return rand.int(10);
      if (r === 1) return -rand.int(100_000);
      return Math.trunc((rand() * 2 - 1) * Number.MAX_SAFE_INTEGER);
    }
    case 1:
      return randomBytes(rand, rand.int(8) === 0 ? rand.int(400) : rand.int(12));
    case 2:
      return Array.from({ length: rand.int(5) }, () => genValue(rand, depth - 1));
    default: {
      const m = new Map<string, GenValue>();
      for (let n = rand.int(5); n > 0; n--) {
        const key = Array.from({ length: rand.int(6) }, () => String.fromCharCode(0x61 + rand.int(26))).join("");
        m.set(key, genValue(rand, depth - 1));
      }
      return m;
    }
  }
}

/** Our decoded value in npm bencode's decoded shape: numbers, Uint8Array, arrays, plain objects. */
function npmShape(v: BencodeValue): unknown {
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(npmShape);
  const out: Record<string, unknown> = {};
  for (const [k, x] of v) out[k] = npmShape(x);
  return out;
}

function normalise(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(normalise);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalise(x)]));
  }
  return v;
}

Deno.test("encodeBencode() and decodeBencode() agree with npm bencode on generated values", () => {
  const seed = fuzzSeed(7);
  const rand = seeded(seed);
  for (let i = 0; i < 1500; i++) {
    const v = genValue(rand, 4);
    const ours = encodeBencode(v);
    const theirs = npmBencode.encode(v);
    assertEquals(ours, new Uint8Array(theirs), `seed ${seed} #${i}: encode`);
    const decoded = decodeBencode(ours);
    assertEquals(npmShape(decoded.value), normalise(npmBencode.decode(ours)), `seed ${seed} #${i}: decode`);
    assertEquals(encodeBencode(decoded.value), ours, `seed ${seed} #${i}: round trip`);
    assertEquals(decoded.end, ours.length);
  }
});

Deno.test("encodeBencode(decodeBencode(b)) is b for canonical b with big integers and binary keys", () => {
  const seed = fuzzSeed(11);
  const rand = seeded(seed);
  const gen = (depth: number): BencodeValue => {
    switch (rand.int(depth > 0 ? 4 : 2)) {
      case 0:
        return BigInt.asIntN(200, BigInt(rand.int(2 ** 31)) << BigInt(rand.int(200)));
      case 1:
        return randomBytes(rand, rand.int(20));
      case 2:
        return Array.from({ length: rand.int(4) }, () => gen(depth - 1));
      default: {
        const m = new Map<string, BencodeValue>();
        for (let n = rand.int(4); n > 0; n--) m.set(latin1Key(randomBytes(rand, rand.int(4))), gen(depth - 1));
        return m;
      }
    }
  };
  for (let i = 0; i < 1500; i++) {
    const bytes = encodeBencode(gen(5));
    assertEquals(encodeBencode(decodeBencode(bytes).value), bytes, `seed ${seed} #${i}`);
  }
});
