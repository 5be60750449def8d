/**
 * Bencode (BEP 3): a strict decoder that remembers the byte span of every value, and a canonical encoder.
 *
 * Decoded values are `bigint` (integers), `Uint8Array` (strings: views into the input, never copies), arrays (lists)
 * and {@linkcode BencodeDict} (dictionaries). Dictionary keys are "binary strings": one character per byte
 * (latin1), so any key bytes survive and `"__proto__"` is just a key. Use {@linkcode latin1Key} and
 * {@linkcode keyBytes} to convert.
 *
 * Strict by default: leading zeros, `i-0e`, empty integers, truncation, unsorted or duplicate dictionary keys,
 * non-string keys, nesting deeper than {@linkcode BENCODE_MAX_DEPTH} (a caller may ask for more, up to
 * {@linkcode BENCODE_DEPTH_CEILING}), more than {@linkcode MAX_BENCODE_CONTAINERS} lists and dictionaries, and
 * trailing bytes are refused with a {@linkcode BencodeError} carrying a `code` and the byte `offset` where the
 * problem starts. Nothing else escapes on any input: not even a stack overflow.
 *
 * Spans: {@linkcode DecodeResult.spanOf} gives the `[start, end)` bytes of any decoded list or dictionary, and
 * {@linkcode DecodeResult.valueSpan} the bytes of the value stored under a key of a decoded dictionary (any type):
 * this is how metainfo hashes the raw `info` value.
 * @module
 */
import {
  BENCODE_DEPTH_CEILING,
  BENCODE_MAX_DEPTH,
  MAX_BENCODE_CONTAINERS,
  MAX_BENCODE_INTEGER_DIGITS,
  MAX_BENCODE_LENGTH_DIGITS,
} from "./limits.ts";

/** A decoded bencode value. */
export type BencodeValue = bigint | Uint8Array | BencodeValue[] | BencodeDict;

/** A decoded dictionary; keys are binary strings (latin1: one character per byte). */
export type BencodeDict = Map<string, BencodeValue>;

/**
 * What {@linkcode encodeBencode} accepts: decoded values, plus safe-integer `number`s, `string`s (encoded as UTF-8)
 * and plain objects (as dictionaries). Dictionary keys are binary strings, as in {@linkcode BencodeDict}.
 */
export type BencodeInput =
  | bigint
  | number
  | string
  | Uint8Array
  | readonly BencodeInput[]
  | ReadonlyMap<string, BencodeInput>
  | { readonly [key: string]: BencodeInput };

/** Why bencode was refused. The last three come from the typed getters, not from decoding. */
export type BencodeErrorCode =
  | "truncated"
  | "leading-zero"
  | "negative-zero"
  | "bad-integer"
  | "bad-length"
  | "trailing-bytes"
  | "non-string-key"
  | "unsorted-keys"
  | "duplicate-key"
  | "too-deep"
  | "too-many"
  | "unexpected-byte"
  | "too-long"
  | "wrong-type"
  | "out-of-range"
  | "bad-utf8";

/**
 * Malformed bencode. `offset` is the byte where the problem starts (absolute in the decoded buffer), or -1 when the
 * error comes from a typed getter on an already decoded value.
 *
 * Offsets by code: `truncated` is where more input was needed (for a string longer than the bytes left, where its
 * length starts); `leading-zero`, `negative-zero`, `too-long`, `too-deep`, `too-many`, `non-string-key` and an empty
 * `bad-integer` point at the first byte of the value; `unsorted-keys` and `duplicate-key` at the offending key;
 * `unexpected-byte`, `bad-length`, other `bad-integer` and `trailing-bytes` at the bad byte itself.
 */
export class BencodeError extends SyntaxError {
  override readonly name = "BencodeError";
  /** Makes the error; `detail` says what was wrong, with the bad value. */
  constructor(
    readonly code: BencodeErrorCode,
    readonly offset: number,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(
      offset >= 0 ? `Cannot decode bencode at byte ${offset}: ${detail}` : `Cannot read bencode: ${detail}`,
      options,
    );
  }
}

/** A byte range `[start, end)` in the decoded buffer. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** A problem tolerated because of `allowUnsorted`, for the caller to judge. */
export interface BencodeIssue {
  readonly code: "unsorted-keys" | "duplicate-key";
  /** Where the offending key starts. */
  readonly offset: number;
}

/** Options for {@linkcode decodeBencode}. */
export interface DecodeOptions {
  /** Where the value starts in `bytes` (default 0). Offsets and spans stay absolute. */
  readonly offset?: number;
  /**
   * The deepest nesting of lists and dictionaries allowed (default {@linkcode BENCODE_MAX_DEPTH}); anything above
   * {@linkcode BENCODE_DEPTH_CEILING}, `Infinity` and `NaN` included, means the ceiling.
   */
  readonly maxDepth?: number;
  /**
   * Accept unsorted and duplicate dictionary keys, recording each in {@linkcode DecodeResult.issues}. For a
   * duplicate key the first occurrence wins (as libtorrent reads it); later ones are skipped, spans included.
   */
  readonly allowUnsorted?: boolean;
  /** Accept bytes after the value; {@linkcode DecodeResult.end} says where the value stopped. */
  readonly allowTrailing?: boolean;
  /**
   * Record spans only for lists and dictionaries nested at most this deep (default: all). Recording adds about a
   * quarter to decoding time on large file lists; the top-level value is depth 1, so `spanDepth: 1` keeps just its
   * spans, which is all that hashing a torrent's `info` value needs.
   */
  readonly spanDepth?: number;
}

/** A decoded value, where it stopped, and its raw byte spans. */
export interface DecodeResult {
  readonly value: BencodeValue;
  /** The offset just past the value. */
  readonly end: number;
  /** Unsorted and duplicate keys tolerated under `allowUnsorted` (empty otherwise). */
  readonly issues: readonly BencodeIssue[];
  /** The raw bytes span of a list or dictionary from this decode (undefined for anything else, or past `spanDepth`). */
  spanOf(container: BencodeValue[] | BencodeDict): Span | undefined;
  /**
   * The raw bytes span of the value under `key` in a dictionary from this decode: undefined if absent, past
   * `spanDepth`, or once the dictionary has changed size since decoding. Scans the dictionary's keys (linear).
   */
  valueSpan(dict: BencodeDict, key: string): Span | undefined;
}

const I = 0x69; // 'i'
const L = 0x6c; // 'l'
const D = 0x64; // 'd'
const E = 0x65; // 'e'
const COLON = 0x3a;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

function describe(b: number): string {
  const ch = b >= 0x21 && b < 0x7f ? ` ("${String.fromCharCode(b)}")` : "";
  return `0x${b.toString(16).padStart(2, "0")}${ch}`;
}

/**
 * Decodes one bencoded value.
 * @param bytes The input; strings in the result are views into it.
 * @param options Where to start, depth limit, and which strictness rules to relax.
 * @returns The value, where it ended, tolerated issues, and span look-ups.
 * @throws {BencodeError} on any malformed or non-canonical input (see {@linkcode BencodeErrorCode}).
 * @throws {RangeError} when `options.offset` is outside `bytes` (a caller's bug, never the input's).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const bytes = new TextEncoder().encode("d4:infod1:xi1ee4:name3:abce");
 * const r = decodeBencode(bytes);
 * const top = r.value as BencodeDict;
 * eq(top.get("name"), new TextEncoder().encode("abc"));
 * eq(r.valueSpan(top, "info"), { start: 7, end: 15 });
 * eq(r.spanOf(top), { start: 0, end: bytes.length });
 * ```
 */
export function decodeBencode(bytes: Uint8Array, options: DecodeOptions = {}): DecodeResult {
  const asked = options.maxDepth ?? BENCODE_MAX_DEPTH;
  const maxDepth = asked < BENCODE_DEPTH_CEILING ? asked : BENCODE_DEPTH_CEILING; // NaN fails `<`: the ceiling
  const spanDepth = options.spanDepth ?? Infinity;
  const allowUnsorted = options.allowUnsorted ?? false;
  const n = bytes.length;
  let pos = options.offset ?? 0;
  if (!Number.isSafeInteger(pos) || pos < 0 || pos > n) {
    throw new RangeError(`Cannot decode bencode: offset ${pos} is outside the ${n}-byte input`);
  }
  // Spans live in flat arrays, not in a WeakMap or a Map per dictionary (which made decoding ~2.5x slower):
  // `containers` maps each list or dictionary to its index in `records` ([start, end, values, size]); a dictionary's
  // value spans are [start, end] pairs in `valueBounds` from index `values`, in key order, `size` of them.
  const containers = new Map<object, number>();
  const records: number[] = [];
  const valueBounds: number[] = [];
  const record = (container: object, start: number, values: number, size: number): void => {
    containers.set(container, records.length);
    records.push(start, pos, values, size);
  };
  const issues: BencodeIssue[] = [];
  let containerCount = 0;

  const truncated = (what: string): BencodeError =>
    new BencodeError("truncated", n, `input ends inside ${what} (${n} bytes)`);

  function integer(): bigint {
    const start = pos;
    let p = pos + 1;
    const neg = p < n && bytes[p] === MINUS;
    if (neg) p++;
    const digitsStart = p;
    while (p < n && bytes[p] >= ZERO && bytes[p] <= NINE) {
      p++;
      if (p - digitsStart > MAX_BENCODE_INTEGER_DIGITS) {
        throw new BencodeError("too-long", start, `integer has more than ${MAX_BENCODE_INTEGER_DIGITS} digits`);
      }
    }
    if (p >= n) throw truncated("an integer");
    if (bytes[p] !== E) {
      throw new BencodeError("bad-integer", p, `unexpected byte ${describe(bytes[p])} in an integer`);
    }
    const count = p - digitsStart;
    if (count === 0) throw new BencodeError("bad-integer", start, "integer has no digits");
    if (bytes[digitsStart] === ZERO && count > 1) {
      throw new BencodeError("leading-zero", start, "integer has a leading zero");
    }
    if (neg && count === 1 && bytes[digitsStart] === ZERO) {
      throw new BencodeError("negative-zero", start, "integer is negative zero");
    }
    pos = p + 1;
    if (count <= 15) {
      let v = 0;
      for (let k = digitsStart; k < p; k++) v = v * 10 + (bytes[k] - ZERO);
      return BigInt(neg ? -v : v);
    }
    const text = latin1Key(bytes.subarray(digitsStart, p));
    return neg ? -BigInt(text) : BigInt(text);
  }

  function string(): Uint8Array {
    const start = pos;
    let p = pos;
    let len = 0;
    while (p < n && bytes[p] >= ZERO && bytes[p] <= NINE) {
      len = len * 10 + (bytes[p] - ZERO);
      p++;
      if (p - start > MAX_BENCODE_LENGTH_DIGITS) {
        throw new BencodeError("too-long", start, `string length has more than ${MAX_BENCODE_LENGTH_DIGITS} digits`);
      }
    }
    if (p >= n) throw truncated("a string length");
    if (bytes[p] !== COLON) {
      throw new BencodeError("bad-length", p, `unexpected byte ${describe(bytes[p])} in a string length`);
    }
    if (bytes[start] === ZERO && p - start > 1) {
      throw new BencodeError("leading-zero", start, "string length has a leading zero");
    }
    const dataStart = p + 1;
    if (len > n - dataStart) {
      throw new BencodeError("truncated", start, `string length ${len} exceeds the ${n - dataStart} bytes left`);
    }
    pos = dataStart + len;
    return bytes.subarray(dataStart, pos);
  }

  function value(depth: number): BencodeValue {
    if (pos >= n) throw truncated("a value");
    const c = bytes[pos];
    if (c === I) return integer();
    if (c >= ZERO && c <= NINE) return string();
    if (c === L || c === D) {
      if (depth > maxDepth) {
        throw new BencodeError("too-deep", pos, `nesting is deeper than the limit of ${maxDepth}`);
      }
      if (++containerCount > MAX_BENCODE_CONTAINERS) {
        throw new BencodeError("too-many", pos, `more than ${MAX_BENCODE_CONTAINERS} lists and dictionaries`);
      }
      return c === L ? list(depth) : dict(depth);
    }
    throw new BencodeError("unexpected-byte", pos, `unexpected byte ${describe(c)} where a value should start`);
  }

  function list(depth: number): BencodeValue[] {
    const start = pos++;
    const out: BencodeValue[] = [];
    for (;;) {
      if (pos >= n) throw truncated("a list");
      if (bytes[pos] === E) break;
      out.push(value(depth + 1));
    }
    pos++;
    if (depth <= spanDepth) record(out, start, -1, 0);
    return out;
  }

  function dict(depth: number): BencodeDict {
    const start = pos++;
    const out: BencodeDict = new Map();
    const bounds: number[] | null = depth <= spanDepth ? [] : null; // nested ones record meanwhile: append at the end
    let prev: string | undefined;
    for (;;) {
      if (pos >= n) throw truncated("a dictionary");
      const c = bytes[pos];
      if (c === E) break;
      if (c < ZERO || c > NINE) {
        if (c === I || c === L || c === D) {
          throw new BencodeError("non-string-key", pos, "dictionary key is not a string");
        }
        throw new BencodeError("unexpected-byte", pos, `unexpected byte ${describe(c)} where a key should start`);
      }
      const keyStart = pos;
      const key = latin1Key(string());
      let skip = false;
      if (out.has(key)) {
        if (!allowUnsorted) {
          throw new BencodeError("duplicate-key", keyStart, `duplicate key ${JSON.stringify(key)}`);
        }
        issues.push({ code: "duplicate-key", offset: keyStart });
        skip = true;
      } else if (prev !== undefined && key < prev) {
        if (!allowUnsorted) {
          throw new BencodeError(
            "unsorted-keys",
            keyStart,
            `key ${JSON.stringify(key)} sorts before the previous key ${JSON.stringify(prev)}`,
          );
        }
        issues.push({ code: "unsorted-keys", offset: keyStart });
      }
      const valueStart = pos;
      const v = value(depth + 1);
      if (!skip) {
        out.set(key, v);
        bounds?.push(valueStart, pos);
      }
      prev = key;
    }
    pos++;
    if (bounds !== null) {
      record(out, start, valueBounds.length, out.size);
      for (const x of bounds) valueBounds.push(x);
    }
    return out;
  }

  let top: BencodeValue;
  try {
    top = value(1);
  } catch (e) {
    // A caller already deep in its own recursion may leave less stack than BENCODE_DEPTH_CEILING levels need: the
    // overflow (the only RangeError that can arise in here) is still deep input, reported as such.
    if (e instanceof RangeError) {
      throw new BencodeError("too-deep", pos, "nesting is too deep for the stack left to decode it", { cause: e });
    }
    throw e;
  }
  if (!options.allowTrailing && pos !== n) {
    throw new BencodeError("trailing-bytes", pos, `${n - pos} bytes follow the value`);
  }
  return {
    value: top,
    end: pos,
    issues,
    spanOf: (container) => {
      const r = containers.get(container);
      return r === undefined ? undefined : { start: records[r], end: records[r + 1] };
    },
    valueSpan: (d, key) => {
      const r = containers.get(d);
      // a dictionary changed since decoding (size differs) no longer matches its recorded spans
      if (r === undefined || records[r + 2] < 0 || records[r + 3] !== d.size || !d.has(key)) return undefined;
      let k = records[r + 2];
      for (const name of d.keys()) {
        if (name === key) return { start: valueBounds[k], end: valueBounds[k + 1] };
        k += 2;
      }
      return undefined;
    },
  };
}

interface Writer {
  buf: Uint8Array;
  len: number;
}

function reserve(w: Writer, extra: number): void {
  const need = w.len + extra;
  if (need <= w.buf.length) return;
  let size = w.buf.length * 2;
  while (size < need) size *= 2;
  const next = new Uint8Array(size);
  next.set(w.buf.subarray(0, w.len));
  w.buf = next;
}

function writeAscii(w: Writer, text: string): void {
  reserve(w, text.length);
  for (let k = 0; k < text.length; k++) w.buf[w.len++] = text.charCodeAt(k);
}

function writeString(w: Writer, data: Uint8Array): void {
  writeAscii(w, `${data.length}:`);
  reserve(w, data.length);
  w.buf.set(data, w.len);
  w.len += data.length;
}

const utf8 = new TextEncoder();

function writeValue(w: Writer, v: BencodeInput, depth: number): void {
  switch (typeof v) {
    case "bigint":
      writeAscii(w, `i${v}e`);
      return;
    case "number":
      if (!Number.isSafeInteger(v)) throw new RangeError(`Cannot encode bencode: ${v} is not a safe integer`);
      writeAscii(w, `i${v}e`);
      return;
    case "string":
      writeString(w, utf8.encode(v));
      return;
    case "object":
      break;
    default:
      throw new TypeError(`Cannot encode bencode: unsupported ${typeof v} value`);
  }
  if (v instanceof Uint8Array) {
    writeString(w, v);
    return;
  }
  if (depth > BENCODE_MAX_DEPTH) {
    throw new RangeError(`Cannot encode bencode: nesting is deeper than the limit of ${BENCODE_MAX_DEPTH}`);
  }
  if (Array.isArray(v)) {
    writeAscii(w, "l");
    for (const item of v as readonly BencodeInput[]) writeValue(w, item, depth + 1);
    writeAscii(w, "e");
    return;
  }
  let entries: [string, BencodeInput][];
  if (v instanceof Map) {
    entries = [...(v as ReadonlyMap<string, BencodeInput>)];
  } else {
    const proto = v === null ? undefined : Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`Cannot encode bencode: unsupported object ${Object.prototype.toString.call(v)}`);
    }
    entries = Object.entries(v as { readonly [key: string]: BencodeInput });
  }
  // Raw-byte order: keys hold one char per byte, so UTF-16 code unit order is byte order.
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  writeAscii(w, "d");
  for (const [key, item] of entries) {
    if (typeof key !== "string") throw new TypeError("Cannot encode bencode: dictionary key is not a string");
    writeString(w, keyBytes(key));
    writeValue(w, item, depth + 1);
  }
  writeAscii(w, "e");
}

/**
 * Encodes a value canonically: dictionary keys sorted by raw bytes, integers without leading zeros.
 * @param value A decoded value, or the conveniences of {@linkcode BencodeInput}.
 * @returns The encoded bytes.
 * @throws {RangeError} for a `number` that is not a safe integer, a key with a character above U+00FF, or nesting
 *   deeper than {@linkcode BENCODE_MAX_DEPTH} (which also catches cycles).
 * @throws {TypeError} for values of any other type.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const text = (b: Uint8Array) => new TextDecoder().decode(b);
 * eq(text(encodeBencode(new Map<string, BencodeInput>([["interval", 1800], ["complete", 3n]]))), "d8:completei3e8:intervali1800ee");
 * eq(text(encodeBencode(["spam", -4])), "l4:spami-4ee");
 * ```
 */
export function encodeBencode(value: BencodeInput): Uint8Array {
  const w: Writer = { buf: new Uint8Array(256), len: 0 };
  writeValue(w, value, 1);
  return w.buf.slice(0, w.len);
}

/**
 * Turns key bytes into a binary-string key (one character per byte).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(latin1Key(new Uint8Array([0x61, 0xff])), "a\u00ff");
 * ```
 */
export function latin1Key(bytes: Uint8Array): string {
  if (bytes.length <= 64) {
    let s = "";
    for (let k = 0; k < bytes.length; k++) s += String.fromCharCode(bytes[k]);
    return s;
  }
  const parts: string[] = [];
  for (let k = 0; k < bytes.length; k += 8192) {
    parts.push(String.fromCharCode(...bytes.subarray(k, k + 8192)));
  }
  return parts.join("");
}

/**
 * Turns a binary-string key back into its bytes.
 * @throws {RangeError} when a character is above U+00FF (not a binary string).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(keyBytes("a\u00ff"), new Uint8Array([0x61, 0xff]));
 * ```
 */
export function keyBytes(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let k = 0; k < key.length; k++) {
    const c = key.charCodeAt(k);
    if (c > 0xff) {
      throw new RangeError(`Cannot use ${JSON.stringify(key)} as a bencode key: character ${k} is above U+00FF`);
    }
    out[k] = c;
  }
  return out;
}

/**
 * Whether a decoded value is a dictionary.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(isDict(new Map()), true);
 * eq(isDict([]), false);
 * ```
 */
export function isDict(v: BencodeValue | undefined): v is BencodeDict {
  return v instanceof Map;
}

/**
 * The value under `key`, or undefined.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(dictGet(new Map([["a", 1n]]), "a"), 1n);
 * eq(dictGet(new Map(), "__proto__"), undefined);
 * ```
 */
export function dictGet(d: BencodeDict, key: string): BencodeValue | undefined {
  return d.get(key);
}

function kindOf(v: BencodeValue): string {
  if (typeof v === "bigint") return "an integer";
  if (v instanceof Uint8Array) return "a string";
  if (Array.isArray(v)) return "a list";
  return "a dictionary";
}

function wrongType(key: string, want: string, got: BencodeValue): BencodeError {
  return new BencodeError("wrong-type", -1, `key ${JSON.stringify(key)} is ${kindOf(got)}, expected ${want}`);
}

/**
 * The string under `key` as raw bytes, or undefined when absent.
 * @throws {BencodeError} `wrong-type` when present but not a string.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(getBytes(new Map([["peers", new Uint8Array([1, 2])]]), "peers"), new Uint8Array([1, 2]));
 * ```
 */
export function getBytes(d: BencodeDict, key: string): Uint8Array | undefined {
  const v = d.get(key);
  if (v === undefined || v instanceof Uint8Array) return v;
  throw wrongType(key, "a string", v);
}

/**
 * The integer under `key` as a bigint, or undefined when absent.
 * @throws {BencodeError} `wrong-type` when present but not an integer.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(getBigInt(new Map([["n", 2n ** 70n]]), "n"), 2n ** 70n);
 * ```
 */
export function getBigInt(d: BencodeDict, key: string): bigint | undefined {
  const v = d.get(key);
  if (v === undefined || typeof v === "bigint") return v;
  throw wrongType(key, "an integer", v);
}

/**
 * The integer under `key` as a number, or undefined when absent.
 * @throws {BencodeError} `wrong-type` when present but not an integer, `out-of-range` when not a safe integer.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(getInt(new Map([["interval", 1800n]]), "interval"), 1800);
 * eq(getInt(new Map(), "interval"), undefined);
 * ```
 */
export function getInt(d: BencodeDict, key: string): number | undefined {
  const v = getBigInt(d, key);
  if (v === undefined) return undefined;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new BencodeError("out-of-range", -1, `key ${JSON.stringify(key)} holds ${v}, beyond a safe integer`);
  }
  return Number(v);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The string under `key` decoded as UTF-8, or undefined when absent.
 * @throws {BencodeError} `wrong-type` when present but not a string, `bad-utf8` when not valid UTF-8.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(getString(new Map([["name", new TextEncoder().encode("ü")]]), "name"), "ü");
 * ```
 */
export function getString(d: BencodeDict, key: string): string | undefined {
  const v = getBytes(d, key);
  if (v === undefined) return undefined;
  try {
    return strictUtf8.decode(v);
  } catch (e) {
    throw new BencodeError("bad-utf8", -1, `key ${JSON.stringify(key)} is not valid UTF-8`, { cause: e });
  }
}

/**
 * The dictionary under `key`, or undefined when absent.
 * @throws {BencodeError} `wrong-type` when present but not a dictionary.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(getDict(new Map([["m", new Map()]]), "m")?.size, 0);
 * ```
 */
export function getDict(d: BencodeDict, key: string): BencodeDict | undefined {
  const v = d.get(key);
  if (v === undefined || v instanceof Map) return v;
  throw wrongType(key, "a dictionary", v);
}

/**
 * The list under `key`, or undefined when absent.
 * @throws {BencodeError} `wrong-type` when present but not a list.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(getList(new Map([["l", [1n]]]), "l"), [1n]);
 * ```
 */
export function getList(d: BencodeDict, key: string): BencodeValue[] | undefined {
  const v = d.get(key);
  if (v === undefined || Array.isArray(v)) return v;
  throw wrongType(key, "a list", v);
}
