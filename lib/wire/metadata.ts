/**
 * The metadata extension (BEP 9, `ut_metadata`): the info dictionary travels in 16 KiB pieces inside extended
 * messages, so a magnet link is enough to start. Pure codec: payloads in, messages out.
 * @module
 */
import { BencodeError, decodeBencode, encodeBencode, getInt, isDict } from "../bencode.ts";
import { MAX_METADATA_BYTES } from "../limits.ts";
import { WireError } from "./frame.ts";
import { concatBytes } from "../bytes.ts";

/** Bytes of a metadata piece (all but the last). */
export const METADATA_PIECE_BYTES = 16 * 1024;
/** The extension's name in the extended handshake's `m` dictionary. */
export const UT_METADATA = "ut_metadata";

/** One ut_metadata message. `data` is a view into the payload. */
export type MetadataMessage =
  | { readonly type: "request"; readonly piece: number }
  | { readonly type: "data"; readonly piece: number; readonly totalSize: number; readonly data: Uint8Array }
  | { readonly type: "reject"; readonly piece: number };

const MSG_TYPE = { request: 0, data: 1, reject: 2 } as const;

/**
 * How many pieces metadata of `size` bytes has.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(metadataPieceCount(16384), 1);
 * eq(metadataPieceCount(16385), 2);
 * ```
 */
export function metadataPieceCount(size: number): number {
  return Math.ceil(size / METADATA_PIECE_BYTES);
}

/**
 * Encodes a message as the payload of an extended message (without the extended id).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const p = encodeMetadataMessage({ type: "data", piece: 0, totalSize: 3, data: new Uint8Array([1, 2, 3]) });
 * eq(decodeMetadataMessage(p), { type: "data", piece: 0, totalSize: 3, data: new Uint8Array([1, 2, 3]) });
 * ```
 */
export function encodeMetadataMessage(m: MetadataMessage): Uint8Array {
  const dict = new Map<string, number>([["msg_type", MSG_TYPE[m.type]], ["piece", m.piece]]);
  if (m.type !== "data") return encodeBencode(dict);
  dict.set("total_size", m.totalSize);
  const head = encodeBencode(dict);
  const out = new Uint8Array(head.length + m.data.length);
  out.set(head);
  out.set(m.data, head.length);
  return out;
}

/**
 * Decodes an ut_metadata payload: a bencoded dictionary, followed by the piece's bytes for `data`. Sizes are checked
 * against {@linkcode MAX_METADATA_BYTES} and the piece size; unknown message types are refused.
 * @throws {WireError} `bad-payload` on anything malformed.
 */
export function decodeMetadataMessage(payload: Uint8Array): MetadataMessage {
  let r;
  try {
    r = decodeBencode(payload, { allowTrailing: true, allowUnsorted: true, maxDepth: 2 });
  } catch (e) {
    if (e instanceof BencodeError) throw new WireError("bad-payload", e.offset, `ut_metadata: ${e.message}`);
    throw e;
  }
  if (!isDict(r.value)) throw new WireError("bad-payload", 0, "ut_metadata: not a dictionary");
  let type: number | undefined;
  let piece: number | undefined;
  let total: number | undefined;
  try {
    type = getInt(r.value, "msg_type");
    piece = getInt(r.value, "piece");
    total = getInt(r.value, "total_size");
  } catch (e) {
    if (e instanceof BencodeError) throw new WireError("bad-payload", 0, `ut_metadata: ${e.message}`);
    throw e;
  }
  if (piece === undefined || piece < 0 || piece >= metadataPieceCount(MAX_METADATA_BYTES)) {
    throw new WireError("bad-payload", 0, `ut_metadata: bad piece ${piece}`);
  }
  const rest = payload.subarray(r.end);
  switch (type) {
    case MSG_TYPE.request:
      return { type: "request", piece };
    case MSG_TYPE.reject:
      return { type: "reject", piece };
    case MSG_TYPE.data: {
      if (total === undefined || total <= 0 || total > MAX_METADATA_BYTES) {
        throw new WireError("bad-payload", 0, `ut_metadata: bad total_size ${total}`);
      }
      const want = Math.min(METADATA_PIECE_BYTES, total - piece * METADATA_PIECE_BYTES);
      if (want <= 0 || rest.length !== want) {
        throw new WireError(
          "bad-payload",
          r.end,
          `ut_metadata: piece ${piece} has ${rest.length} bytes, expected ${want}`,
        );
      }
      return { type: "data", piece, totalSize: total, data: rest };
    }
    default:
      throw new WireError("bad-payload", 0, `ut_metadata: unknown msg_type ${type}`);
  }
}

/**
 * Wraps raw info-dictionary bytes in a minimal .torrent (with trackers and web seeds), keeping the info bytes as they
 * are so the info-hash does not change (`--save-torrent`).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const t = torrentFromInfo(new TextEncoder().encode("d4:name1:xe"), [["http://t/a"]], []);
 * eq(new TextDecoder().decode(t), "d8:announce10:http://t/a4:infod4:name1:xee");
 * ```
 */
export function torrentFromInfo(
  info: Uint8Array,
  tiers: readonly (readonly string[])[],
  webSeeds: readonly string[],
): Uint8Array {
  const enc = (v: Parameters<typeof encodeBencode>[0]) => encodeBencode(v);
  const str = (s: string) => enc(s);
  const parts: Uint8Array[] = [new Uint8Array([0x64])]; // d, then keys in byte order
  const flat = tiers.flat();
  if (flat.length > 0) parts.push(str("announce"), str(flat[0]));
  if (flat.length > 1) parts.push(str("announce-list"), enc(tiers.map((t) => [...t])));
  parts.push(str("info"), info);
  if (webSeeds.length > 0) parts.push(str("url-list"), enc([...webSeeds]));
  parts.push(new Uint8Array([0x65])); // e
  return concatBytes(parts);
}
