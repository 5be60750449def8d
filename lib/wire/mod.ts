/**
 * The peer wire protocol, pure: framing, handshake, messages, the BEP 10 extended handshake and the BEP 6
 * allowed-fast set. Nothing here does IO; every decoder throws only {@linkcode WireError} on malformed input.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * import { decodeMessage, encodeMessage, readFrame } from "./mod.ts";
 * const r = readFrame(encodeMessage({ type: "have", index: 7 }), 0);
 * eq(r.kind === "frame" && decodeMessage(r.payload), { type: "have", index: 7 });
 * ```
 * @module
 */
export { readFrame, WireError, writeFrame } from "./frame.ts";
export type { FrameResult, WireErrorCode } from "./frame.ts";
export {
  decodeHandshake,
  encodeHandshake,
  HANDSHAKE_BYTES,
  PROTOCOL_NAME,
  reservedBits,
  supportsDht,
  supportsExtended,
  supportsFast,
} from "./handshake.ts";
export type { Handshake, HandshakeResult } from "./handshake.ts";
export {
  decodeMessage,
  encodeMessage,
  encodeMessageInto,
  messageFrameLength,
  PIECE_HEADER_BYTES,
  writePieceHeader,
} from "./messages.ts";
export type { Message } from "./messages.ts";
export { decodeExtHandshake, encodeExtHandshake } from "./extension.ts";
export type { ExtHandshake } from "./extension.ts";
export { allowedFastSet } from "./fast.ts";
