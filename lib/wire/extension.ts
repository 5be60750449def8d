/**
 * The BEP 10 extended handshake: the bencoded dictionary carried by an `extended` message with id 0, naming the
 * extensions a peer supports and the message ids it wants for them.
 * @module
 */
import { BencodeError, type BencodeInput, type BencodeValue, decodeBencode, encodeBencode } from "../bencode.ts";
import { MAX_METADATA_BYTES } from "../limits.ts";
import { WireError } from "./frame.ts";

/** A decoded extended handshake; absent or ill-typed optional fields are `undefined`. */
export interface ExtHandshake {
  /** Extension name (a binary string, e.g. "ut_metadata") to the id the sender wants for it; 0 means disabled. */
  readonly m: ReadonlyMap<string, number>;
  /** Client name and version. */
  readonly v?: string;
  /** The sender's TCP listen port. */
  readonly p?: number;
  /** How many outstanding requests the sender queues. */
  readonly reqq?: number;
  /** The size of the info dictionary in bytes (BEP 9 `metadata_size`). */
  readonly metadataSize?: number;
  /** Our IP address as the sender sees it: 4 or 16 bytes. */
  readonly yourip?: Uint8Array;
}

/**
 * Encodes an extended handshake to its bencoded payload (not framed: wrap it in an `extended` message with id 0).
 * @throws {RangeError} When an `m` id is not an integer in 0..255, `p` not a port, or a name not a binary string.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const b = encodeExtHandshake({ m: new Map([["ut_metadata", 2]]), metadataSize: 100, v: "btfetch 0.1" });
 * eq(new TextDecoder().decode(b), "d1:md11:ut_metadatai2ee13:metadata_sizei100e1:v11:btfetch 0.1e");
 * ```
 */
export function encodeExtHandshake(h: ExtHandshake): Uint8Array {
  const m = new Map<string, BencodeInput>();
  for (const [name, id] of h.m) {
    if (!Number.isInteger(id) || id < 0 || id > 255) {
      throw new RangeError(`Cannot encode extended handshake: id ${id} for ${JSON.stringify(name)} is not a byte`);
    }
    m.set(name, id);
  }
  const d = new Map<string, BencodeInput>([["m", m]]);
  if (h.v !== undefined) d.set("v", h.v);
  if (h.p !== undefined) {
    if (!Number.isInteger(h.p) || h.p < 1 || h.p > 0xffff) {
      throw new RangeError(`Cannot encode extended handshake: port ${h.p} is not in 1..65535`);
    }
    d.set("p", h.p);
  }
  if (h.reqq !== undefined) d.set("reqq", h.reqq);
  if (h.metadataSize !== undefined) d.set("metadata_size", h.metadataSize);
  if (h.yourip !== undefined) d.set("yourip", h.yourip);
  return encodeBencode(d);
}

const utf8 = new TextDecoder();

function int(v: BencodeValue | undefined, min: number, max: number): number | undefined {
  return typeof v === "bigint" && v >= BigInt(min) && v <= BigInt(max) ? Number(v) : undefined;
}

/**
 * Decodes an extended handshake payload. Lenient as BEP 10 asks: unknown keys are ignored, dictionary keys may be
 * unsorted, and an optional field of the wrong type or out of range (`p` outside 1..65535, `reqq` below 1,
 * `metadata_size` outside 1..{@linkcode MAX_METADATA_BYTES}, `yourip` not 4 or 16 bytes, an `m` id outside 0..255)
 * is dropped rather than failing the peer. `v` is decoded as UTF-8 with replacement characters; `yourip` is a copy.
 * @param payload The bytes after the `extended` message's id byte.
 * @throws {WireError} `bad-payload` when the payload is not one bencoded dictionary, or `m` is present but not a
 *   dictionary; the offset is within `payload`.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const h = decodeExtHandshake(new TextEncoder().encode("d1:md6:ut_pexi1ee1:pi6881e4:reqqi250e1:zi0ee"));
 * eq(h, { m: new Map([["ut_pex", 1]]), p: 6881, reqq: 250 });
 * ```
 */
export function decodeExtHandshake(payload: Uint8Array): ExtHandshake {
  let value: BencodeValue;
  try {
    value = decodeBencode(payload, { allowUnsorted: true }).value;
  } catch (e) {
    if (!(e instanceof BencodeError)) throw e;
    throw new WireError("bad-payload", Math.max(e.offset, 0), `extended handshake is not valid bencode (${e.code})`, {
      cause: e,
    });
  }
  if (!(value instanceof Map)) throw new WireError("bad-payload", 0, "extended handshake is not a dictionary");
  const rawM = value.get("m") ?? new Map<string, BencodeValue>();
  if (!(rawM instanceof Map)) throw new WireError("bad-payload", 0, "extended handshake key m is not a dictionary");
  const m = new Map<string, number>();
  for (const [name, id] of rawM) {
    const n = int(id, 0, 255);
    if (n !== undefined) m.set(name, n);
  }
  const h: { -readonly [K in keyof ExtHandshake]: ExtHandshake[K] } = { m };
  const v = value.get("v");
  if (v instanceof Uint8Array) h.v = utf8.decode(v);
  const p = int(value.get("p"), 1, 0xffff);
  if (p !== undefined) h.p = p;
  const reqq = int(value.get("reqq"), 1, Number.MAX_SAFE_INTEGER);
  if (reqq !== undefined) h.reqq = reqq;
  const size = int(value.get("metadata_size"), 1, MAX_METADATA_BYTES);
  if (size !== undefined) h.metadataSize = size;
  const ip = value.get("yourip");
  if (ip instanceof Uint8Array && (ip.length === 4 || ip.length === 16)) h.yourip = ip.slice();
  return h;
}
