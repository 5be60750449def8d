/**
 * Peer wire messages (BEP 3, the Fast extension of BEP 6, the extension protocol of BEP 10): decoding a frame's
 * payload into a {@linkcode Message}, and encoding messages into whole frames.
 * @module
 */
import { MAX_BLOCK_BYTES, MAX_EXTENDED_MESSAGE_BYTES, MAX_MESSAGE_BYTES } from "../limits.ts";
import { WireError } from "./frame.ts";

/** One peer wire message; `bits`, `block` and `payload` are views into the decoded frame, not copies. */
export type Message =
  | { readonly type: "keep-alive" }
  | { readonly type: "choke" }
  | { readonly type: "unchoke" }
  | { readonly type: "interested" }
  | { readonly type: "not-interested" }
  | { readonly type: "have"; readonly index: number }
  | { readonly type: "bitfield"; readonly bits: Uint8Array }
  | { readonly type: "request"; readonly index: number; readonly begin: number; readonly length: number }
  | { readonly type: "piece"; readonly index: number; readonly begin: number; readonly block: Uint8Array }
  | { readonly type: "cancel"; readonly index: number; readonly begin: number; readonly length: number }
  | { readonly type: "port"; readonly port: number }
  | { readonly type: "suggest"; readonly index: number }
  | { readonly type: "have-all" }
  | { readonly type: "have-none" }
  | { readonly type: "reject"; readonly index: number; readonly begin: number; readonly length: number }
  | { readonly type: "allowed-fast"; readonly index: number }
  | { readonly type: "extended"; readonly id: number; readonly payload: Uint8Array }
  | { readonly type: "unknown"; readonly id: number; readonly payload: Uint8Array };

/**
 * The size of a `piece` frame's prefix: length (4), id (1), index (4), begin (4).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(messageFrameLength({ type: "piece", index: 0, begin: 0, block: new Uint8Array(5) }), PIECE_HEADER_BYTES + 5);
 * ```
 */
export const PIECE_HEADER_BYTES = 13;

const ID = {
  choke: 0,
  unchoke: 1,
  interested: 2,
  "not-interested": 3,
  have: 4,
  bitfield: 5,
  request: 6,
  piece: 7,
  cancel: 8,
  port: 9,
  suggest: 13,
  "have-all": 14,
  "have-none": 15,
  reject: 16,
  "allowed-fast": 17,
  extended: 20,
} as const;

const NAMES: ReadonlyMap<number, string> = new Map(Object.entries(ID).map(([name, id]) => [id, name]));

const KEEP_ALIVE: Message = { type: "keep-alive" };
const CHOKE: Message = { type: "choke" };
const UNCHOKE: Message = { type: "unchoke" };
const INTERESTED: Message = { type: "interested" };
const NOT_INTERESTED: Message = { type: "not-interested" };
const HAVE_ALL: Message = { type: "have-all" };
const HAVE_NONE: Message = { type: "have-none" };

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

function badLength(id: number, offset: number, got: number, want: string): WireError {
  return new WireError("bad-length", offset, `${NAMES.get(id)} (id ${id}) must be ${want} bytes, got ${got}`);
}

function exact(body: Uint8Array, offset: number, want: number): void {
  if (body.length !== want) throw badLength(body[0], offset, body.length, `${want}`);
}

function between(body: Uint8Array, offset: number, min: number, max: number): void {
  if (body.length < min || body.length > max) throw badLength(body[0], offset, body.length, `${min} to ${max}`);
}

/**
 * Decodes a frame's payload (as {@linkcode readFrame} returns it, without the length prefix) into a message.
 * Messages with an id we do not know come back as `unknown`, which BEP 3 says to ignore; whether a known message
 * is allowed (a BEP 6 message without the Fast extension, `port` without DHT) is the caller's decision.
 * @param body The frame payload; empty for a keep-alive.
 * @param offset The stream position of `body[0]`, used only for error offsets (default 0).
 * @returns The message; its byte fields are views into `body`.
 * @throws {WireError} `bad-length` (at `offset`, naming the id) when the size is wrong for the id: `have`,
 *   `suggest`, `allowed-fast` 5; `request`, `cancel`, `reject` 13; `port` 3; the payload-less ones 1; `bitfield`
 *   at least 2; `piece` 9 plus a block of at most {@linkcode MAX_BLOCK_BYTES}; `extended` 2 plus at most
 *   {@linkcode MAX_EXTENDED_MESSAGE_BYTES}. `too-long` when `body` exceeds {@linkcode MAX_MESSAGE_BYTES}.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(decodeMessage(new Uint8Array([4, 0, 0, 1, 2])), { type: "have", index: 258 });
 * eq(decodeMessage(new Uint8Array()), { type: "keep-alive" });
 * eq(decodeMessage(new Uint8Array([99, 1])), { type: "unknown", id: 99, payload: new Uint8Array([1]) });
 * ```
 */
export function decodeMessage(body: Uint8Array, offset = 0): Message {
  if (body.length === 0) return KEEP_ALIVE;
  if (body.length > MAX_MESSAGE_BYTES) {
    throw new WireError("too-long", offset, `length ${body.length} exceeds the limit of ${MAX_MESSAGE_BYTES}`);
  }
  const id = body[0];
  switch (id) {
    case ID.choke:
      exact(body, offset, 1);
      return CHOKE;
    case ID.unchoke:
      exact(body, offset, 1);
      return UNCHOKE;
    case ID.interested:
      exact(body, offset, 1);
      return INTERESTED;
    case ID["not-interested"]:
      exact(body, offset, 1);
      return NOT_INTERESTED;
    case ID.have:
      exact(body, offset, 5);
      return { type: "have", index: u32(body, 1) };
    case ID.bitfield:
      between(body, offset, 2, MAX_MESSAGE_BYTES);
      return { type: "bitfield", bits: body.subarray(1) };
    case ID.request:
      exact(body, offset, 13);
      return { type: "request", index: u32(body, 1), begin: u32(body, 5), length: u32(body, 9) };
    case ID.piece:
      between(body, offset, 9, 9 + MAX_BLOCK_BYTES);
      return { type: "piece", index: u32(body, 1), begin: u32(body, 5), block: body.subarray(9) };
    case ID.cancel:
      exact(body, offset, 13);
      return { type: "cancel", index: u32(body, 1), begin: u32(body, 5), length: u32(body, 9) };
    case ID.port:
      exact(body, offset, 3);
      return { type: "port", port: (body[1] << 8) | body[2] };
    case ID.suggest:
      exact(body, offset, 5);
      return { type: "suggest", index: u32(body, 1) };
    case ID["have-all"]:
      exact(body, offset, 1);
      return HAVE_ALL;
    case ID["have-none"]:
      exact(body, offset, 1);
      return HAVE_NONE;
    case ID.reject:
      exact(body, offset, 13);
      return { type: "reject", index: u32(body, 1), begin: u32(body, 5), length: u32(body, 9) };
    case ID["allowed-fast"]:
      exact(body, offset, 5);
      return { type: "allowed-fast", index: u32(body, 1) };
    case ID.extended:
      between(body, offset, 2, 2 + MAX_EXTENDED_MESSAGE_BYTES);
      return { type: "extended", id: body[1], payload: body.subarray(2) };
    default:
      return { type: "unknown", id, payload: body.subarray(1) };
  }
}

function checkU32(m: Message, field: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    throw new RangeError(`Cannot encode ${m.type} message: ${field} ${v} is not a 32-bit unsigned integer`);
  }
}

function checkByte(m: Message, field: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) {
    throw new RangeError(`Cannot encode ${m.type} message: ${field} ${v} is not a byte`);
  }
}

function checkSize(m: Message, field: string, n: number, min: number, max: number): void {
  if (n < min || n > max) {
    throw new RangeError(`Cannot encode ${m.type} message: ${field} of ${n} bytes is outside ${min} to ${max}`);
  }
}

/** The body length (without the 4-byte prefix) of `m`, after checking its fields. */
function bodyLength(m: Message): number {
  switch (m.type) {
    case "keep-alive":
      return 0;
    case "choke":
    case "unchoke":
    case "interested":
    case "not-interested":
    case "have-all":
    case "have-none":
      return 1;
    case "have":
    case "suggest":
    case "allowed-fast":
      checkU32(m, "index", m.index);
      return 5;
    case "request":
    case "cancel":
    case "reject":
      checkU32(m, "index", m.index);
      checkU32(m, "begin", m.begin);
      checkU32(m, "length", m.length);
      return 13;
    case "bitfield":
      checkSize(m, "bits", m.bits.length, 1, MAX_MESSAGE_BYTES - 1);
      return 1 + m.bits.length;
    case "piece":
      checkU32(m, "index", m.index);
      checkU32(m, "begin", m.begin);
      checkSize(m, "block", m.block.length, 0, MAX_BLOCK_BYTES);
      return 9 + m.block.length;
    case "port":
      if (!Number.isInteger(m.port) || m.port < 0 || m.port > 0xffff) {
        throw new RangeError(`Cannot encode port message: port ${m.port} is not a 16-bit unsigned integer`);
      }
      return 3;
    case "extended":
      checkByte(m, "id", m.id);
      checkSize(m, "payload", m.payload.length, 0, MAX_EXTENDED_MESSAGE_BYTES);
      return 2 + m.payload.length;
    case "unknown":
      checkByte(m, "id", m.id);
      if (NAMES.has(m.id)) {
        throw new RangeError(`Cannot encode unknown message: id ${m.id} is the known message ${NAMES.get(m.id)}`);
      }
      checkSize(m, "payload", m.payload.length, 0, MAX_MESSAGE_BYTES - 1);
      return 1 + m.payload.length;
    default: {
      const never: never = m;
      throw new TypeError(`Cannot encode message: unknown type ${(never as { type: unknown }).type}`);
    }
  }
}

/**
 * The total size of the frame {@linkcode encodeMessage} makes for `m`, length prefix included.
 * @throws {RangeError} When a field is out of range (see {@linkcode encodeMessage}).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(messageFrameLength({ type: "keep-alive" }), 4);
 * eq(messageFrameLength({ type: "request", index: 0, begin: 0, length: 16384 }), 17);
 * eq(messageFrameLength({ type: "piece", index: 0, begin: 0, block: new Uint8Array(10) }), 23);
 * ```
 */
export function messageFrameLength(m: Message): number {
  return 4 + bodyLength(m);
}

/**
 * Encodes `m` as a whole frame, length prefix included.
 * @throws {RangeError} When a field is out of range: a 32-bit field that is not a uint32, a port over 65535, an
 *   empty bitfield, a block over {@linkcode MAX_BLOCK_BYTES}, an extended payload over
 *   {@linkcode MAX_EXTENDED_MESSAGE_BYTES}, or an `unknown` message whose id is a known one.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(encodeMessage({ type: "have", index: 258 }), new Uint8Array([0, 0, 0, 5, 4, 0, 0, 1, 2]));
 * eq(encodeMessage({ type: "keep-alive" }), new Uint8Array([0, 0, 0, 0]));
 * ```
 */
export function encodeMessage(m: Message): Uint8Array {
  const out = new Uint8Array(messageFrameLength(m));
  encodeMessageInto(m, out, 0);
  return out;
}

/**
 * Writes `m` as a whole frame into `buf` at `offset`, for batching several messages in one buffer.
 * @returns The number of bytes written, {@linkcode messageFrameLength}`(m)`.
 * @throws {RangeError} When a field is out of range (see {@linkcode encodeMessage}) or the frame does not fit.
 * @example
 * ```ts
 * import { deepStrictEqual as eq, strictEqual } from "node:assert/strict";
 * const buf = new Uint8Array(10);
 * let at = encodeMessageInto({ type: "interested" }, buf, 0);
 * at += encodeMessageInto({ type: "unchoke" }, buf, at);
 * strictEqual(at, 10);
 * eq(buf, new Uint8Array([0, 0, 0, 1, 2, 0, 0, 0, 1, 1]));
 * ```
 */
export function encodeMessageInto(m: Message, buf: Uint8Array, offset: number): number {
  const len = bodyLength(m);
  if (!Number.isInteger(offset) || offset < 0 || offset + 4 + len > buf.length) {
    throw new RangeError(`Cannot encode ${m.type} message: ${4 + len} bytes do not fit at ${offset} in ${buf.length}`);
  }
  put32(buf, offset, len);
  const at = offset + 4;
  switch (m.type) {
    case "keep-alive":
      break;
    case "choke":
    case "unchoke":
    case "interested":
    case "not-interested":
    case "have-all":
    case "have-none":
      buf[at] = ID[m.type];
      break;
    case "have":
    case "suggest":
    case "allowed-fast":
      buf[at] = ID[m.type];
      put32(buf, at + 1, m.index);
      break;
    case "request":
    case "cancel":
    case "reject":
      buf[at] = ID[m.type];
      put32(buf, at + 1, m.index);
      put32(buf, at + 5, m.begin);
      put32(buf, at + 9, m.length);
      break;
    case "bitfield":
      buf[at] = ID.bitfield;
      buf.set(m.bits, at + 1);
      break;
    case "piece":
      buf[at] = ID.piece;
      put32(buf, at + 1, m.index);
      put32(buf, at + 5, m.begin);
      buf.set(m.block, at + 9);
      break;
    case "port":
      buf[at] = ID.port;
      buf[at + 1] = m.port >>> 8;
      buf[at + 2] = m.port;
      break;
    case "extended":
      buf[at] = ID.extended;
      buf[at + 1] = m.id;
      buf.set(m.payload, at + 2);
      break;
    case "unknown":
      buf[at] = m.id;
      buf.set(m.payload, at + 1);
      break;
    default: {
      const never: never = m;
      throw new TypeError(`Cannot encode message: unknown type ${(never as { type: unknown }).type}`);
    }
  }
  return 4 + len;
}

/**
 * Writes the 13-byte prefix of a `piece` frame (length, id 7, index, begin) into `buf` at `offset`, so the block can
 * be read from disk straight into the bytes after it.
 * @returns {@linkcode PIECE_HEADER_BYTES} (13).
 * @throws {RangeError} When a field is out of range, the block is over {@linkcode MAX_BLOCK_BYTES}, or the prefix
 *   does not fit.
 * @example
 * ```ts
 * import { deepStrictEqual as eq, strictEqual } from "node:assert/strict";
 * const buf = new Uint8Array(13 + 2);
 * strictEqual(writePieceHeader(buf, 0, 1, 16384, 2), 13);
 * buf.set([0xaa, 0xbb], 13);
 * eq(buf, encodeMessage({ type: "piece", index: 1, begin: 16384, block: new Uint8Array([0xaa, 0xbb]) }));
 * ```
 */
export function writePieceHeader(
  buf: Uint8Array,
  offset: number,
  index: number,
  begin: number,
  blockLength: number,
): number {
  const m: Message = { type: "piece", index, begin, block: buf };
  checkU32(m, "index", index);
  checkU32(m, "begin", begin);
  if (!Number.isInteger(blockLength)) throw new RangeError(`Cannot encode piece message: block length ${blockLength}`);
  checkSize(m, "block", blockLength, 0, MAX_BLOCK_BYTES);
  if (!Number.isInteger(offset) || offset < 0 || offset + PIECE_HEADER_BYTES > buf.length) {
    throw new RangeError(`Cannot encode piece header: 13 bytes do not fit at ${offset} in ${buf.length}`);
  }
  put32(buf, offset, 9 + blockLength);
  buf[offset + 4] = ID.piece;
  put32(buf, offset + 5, index);
  put32(buf, offset + 9, begin);
  return PIECE_HEADER_BYTES;
}
