/**
 * The BEP 3 handshake: pstrlen, "BitTorrent protocol", 8 reserved bytes, info-hash, peer id; and the reserved bits
 * that announce the Fast (BEP 6), extension (BEP 10) and DHT (BEP 5) protocols.
 * @module
 */
import { WireError } from "./frame.ts";

/**
 * The protocol string every BitTorrent handshake carries.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(PROTOCOL_NAME.length, 19);
 * ```
 */
export const PROTOCOL_NAME = "BitTorrent protocol";
/**
 * The size of a handshake: 1 + 19 + 8 + 20 + 20.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(HANDSHAKE_BYTES, 1 + PROTOCOL_NAME.length + 8 + 20 + 20);
 * ```
 */
export const HANDSHAKE_BYTES = 68;

/** A decoded handshake. */
export interface Handshake {
  /** The 8 reserved bytes (feature bits). */
  readonly reserved: Uint8Array;
  /** The 20-byte info-hash. */
  readonly infoHash: Uint8Array;
  /** The 20-byte peer id. */
  readonly peerId: Uint8Array;
}

/** A whole handshake and where the bytes after it start, or how many more bytes to wait for. */
export type HandshakeResult =
  | { kind: "handshake"; handshake: Handshake; next: number }
  | { kind: "need"; bytes: number };

const PREFIX: Uint8Array = new Uint8Array([PROTOCOL_NAME.length, ...new TextEncoder().encode(PROTOCOL_NAME)]);
const RESERVED_AT = 20;
const INFO_HASH_AT = 28;
const PEER_ID_AT = 48;

/**
 * Encodes a handshake to its 68 bytes.
 * @param h The reserved bytes (8), info-hash (20) and peer id (20).
 * @returns A new 68-byte array.
 * @throws {RangeError} When a field has the wrong length.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const b = encodeHandshake({ reserved: new Uint8Array(8), infoHash: new Uint8Array(20), peerId: new Uint8Array(20) });
 * eq(b.length, 68);
 * eq(b[0], 19);
 * eq(new TextDecoder().decode(b.subarray(1, 20)), "BitTorrent protocol");
 * ```
 */
export function encodeHandshake(h: Handshake): Uint8Array {
  checkLength("reserved", h.reserved, 8);
  checkLength("infoHash", h.infoHash, 20);
  checkLength("peerId", h.peerId, 20);
  const out = new Uint8Array(HANDSHAKE_BYTES);
  out.set(PREFIX, 0);
  out.set(h.reserved, RESERVED_AT);
  out.set(h.infoHash, INFO_HASH_AT);
  out.set(h.peerId, PEER_ID_AT);
  return out;
}

function checkLength(name: string, b: Uint8Array, want: number): void {
  if (b.length !== want) {
    throw new RangeError(`Cannot encode handshake: ${name} is ${b.length} bytes, expected ${want}`);
  }
}

/**
 * Reads a handshake at `offset`, checking the pstrlen byte and protocol string as soon as they arrive, so garbage is
 * refused before all 68 bytes are in. The fields are copies, not views.
 * @param buf Bytes received so far.
 * @param offset Where the handshake starts.
 * @returns The handshake and the offset after it, or how many more bytes are needed.
 * @throws {WireError} `bad-handshake` at the first byte that differs from 19 followed by "BitTorrent protocol".
 * @example
 * ```ts
 * import { deepStrictEqual as eq, throws } from "node:assert/strict";
 * import { WireError } from "./frame.ts";
 * const h = { reserved: new Uint8Array(8), infoHash: new Uint8Array(20).fill(1), peerId: new Uint8Array(20).fill(2) };
 * const b = encodeHandshake(h);
 * eq(decodeHandshake(b, 0), { kind: "handshake", handshake: h, next: 68 });
 * eq(decodeHandshake(b.subarray(0, 30), 0), { kind: "need", bytes: 38 });
 * throws(() => decodeHandshake(new TextEncoder().encode("GET / HTTP/1.1"), 0), WireError);
 * ```
 */
export function decodeHandshake(buf: Uint8Array, offset: number): HandshakeResult {
  const have = buf.length - offset;
  const check = Math.min(have, PREFIX.length);
  for (let i = 0; i < check; i++) {
    if (buf[offset + i] !== PREFIX[i]) {
      const what = i === 0
        ? `protocol name length ${buf[offset]}, expected ${PREFIX[0]}`
        : `protocol name byte ${i - 1} is 0x${buf[offset + i].toString(16).padStart(2, "0")}, expected "${
          PROTOCOL_NAME[i - 1]
        }"`;
      throw new WireError("bad-handshake", offset + i, what);
    }
  }
  if (have < HANDSHAKE_BYTES) return { kind: "need", bytes: HANDSHAKE_BYTES - have };
  return {
    kind: "handshake",
    handshake: {
      reserved: buf.slice(offset + RESERVED_AT, offset + INFO_HASH_AT),
      infoHash: buf.slice(offset + INFO_HASH_AT, offset + PEER_ID_AT),
      peerId: buf.slice(offset + PEER_ID_AT, offset + HANDSHAKE_BYTES),
    },
    next: offset + HANDSHAKE_BYTES,
  };
}

/**
 * The reserved bytes announcing the given extensions: Fast (BEP 6) sets `reserved[7] & 0x04`, the extension protocol
 * (BEP 10) `reserved[5] & 0x10`, DHT (BEP 5) `reserved[7] & 0x01`.
 * @param opts Which extensions to announce.
 * @returns A new 8-byte array.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(reservedBits({ fast: true, extended: true, dht: true }), new Uint8Array([0, 0, 0, 0, 0, 0x10, 0, 0x05]));
 * eq(reservedBits({}), new Uint8Array(8));
 * ```
 */
export function reservedBits(opts: { fast?: boolean; extended?: boolean; dht?: boolean }): Uint8Array {
  const r = new Uint8Array(8);
  if (opts.fast) r[7] |= 0x04;
  if (opts.extended) r[5] |= 0x10;
  if (opts.dht) r[7] |= 0x01;
  return r;
}

/**
 * Whether the reserved bytes announce the Fast extension (BEP 6).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(supportsFast(reservedBits({ fast: true })), true);
 * eq(supportsFast(reservedBits({ dht: true })), false);
 * ```
 */
export function supportsFast(reserved: Uint8Array): boolean {
  return ((reserved[7] ?? 0) & 0x04) !== 0;
}

/**
 * Whether the reserved bytes announce the extension protocol (BEP 10).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(supportsExtended(reservedBits({ extended: true })), true);
 * eq(supportsExtended(reservedBits({ fast: true })), false);
 * ```
 */
export function supportsExtended(reserved: Uint8Array): boolean {
  return ((reserved[5] ?? 0) & 0x10) !== 0;
}

/**
 * Whether the reserved bytes announce DHT support (BEP 5), and so a `port` message may follow.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(supportsDht(reservedBits({ dht: true })), true);
 * eq(supportsDht(reservedBits({ fast: true })), false);
 * ```
 */
export function supportsDht(reserved: Uint8Array): boolean {
  return ((reserved[7] ?? 0) & 0x01) !== 0;
}
