/**
 * Length-prefixed framing of the peer wire protocol (BEP 3), and the error every wire codec throws.
 * @module
 */
import { MAX_MESSAGE_BYTES } from "../limits.ts";

/** Why a peer's bytes were refused. */
export type WireErrorCode = "too-long" | "bad-length" | "bad-handshake" | "bad-payload";

/**
 * Malformed peer-wire input; `offset` is the byte where the problem starts. A peer's fault, not ours: drop the peer.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const e = new WireError("bad-length", 12, "have (id 4) must be 5 bytes, got 3");
 * eq(e instanceof SyntaxError, true);
 * eq(e.code, "bad-length");
 * eq(e.message, "Cannot decode peer message at byte 12: have (id 4) must be 5 bytes, got 3");
 * ```
 */
export class WireError extends SyntaxError {
  override readonly name = "WireError";
  /** Makes the error; `code` says what was wrong, `offset` where, `detail` is the rest of the message. */
  constructor(readonly code: WireErrorCode, readonly offset: number, detail: string, options?: ErrorOptions) {
    super(`Cannot decode peer message at byte ${offset}: ${detail}`, options);
  }
}

/** A whole frame and where the next one starts, or how many more bytes to wait for. */
export type FrameResult =
  | { readonly kind: "frame"; readonly payload: Uint8Array; readonly next: number }
  | { readonly kind: "need"; readonly bytes: number };

/**
 * Reads one length-prefixed frame at `offset`; the payload is a view, not a copy.
 * @param buf Bytes received so far.
 * @param offset Where the frame's 4-byte length prefix starts.
 * @returns The payload and the offset after it, or how many more bytes are needed before it can be read.
 * @throws {WireError} `too-long` when the prefix exceeds {@linkcode MAX_MESSAGE_BYTES}.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(readFrame(new Uint8Array([0, 0, 0, 1, 7]), 0), { kind: "frame", payload: new Uint8Array([7]), next: 5 });
 * eq(readFrame(new Uint8Array([0, 0, 0, 3, 7]), 0), { kind: "need", bytes: 2 });
 * ```
 */
export function readFrame(buf: Uint8Array, offset: number): FrameResult {
  const have = buf.length - offset;
  if (have < 4) return { kind: "need", bytes: 4 - have };
  const len = ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0;
  if (len > MAX_MESSAGE_BYTES) {
    throw new WireError("too-long", offset, `length ${len} exceeds the limit of ${MAX_MESSAGE_BYTES}`);
  }
  const end = offset + 4 + len;
  if (end > buf.length) return { kind: "need", bytes: end - buf.length };
  return { kind: "frame", payload: buf.subarray(offset + 4, end), next: end };
}

/**
 * Prefixes `payload` with its 4-byte big-endian length, copying it into a new frame.
 * @param payload The frame body (message id and fields); empty for a keep-alive.
 * @returns The whole frame.
 * @throws {RangeError} When `payload` is longer than {@linkcode MAX_MESSAGE_BYTES}, which no peer would accept.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(writeFrame(new Uint8Array([7])), new Uint8Array([0, 0, 0, 1, 7]));
 * eq(writeFrame(new Uint8Array()), new Uint8Array([0, 0, 0, 0]));
 * ```
 */
export function writeFrame(payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_MESSAGE_BYTES) {
    throw new RangeError(`Cannot frame ${payload.length} bytes: exceeds the limit of ${MAX_MESSAGE_BYTES}`);
  }
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}
