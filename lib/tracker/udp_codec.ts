/**
 * The UDP tracker protocol (BEP 15) as a pure codec: connect and announce requests, and the tracker's connect,
 * announce and error responses. Retries live in `udp_exchange.ts`, sockets in `udp.ts`.
 * @module
 */
import { AddressError, decodeCompactPeers } from "../address.ts";
import { MAX_PEERS_PER_ANNOUNCE } from "../limits.ts";
import {
  type AnnounceEvent,
  type AnnounceParams,
  type AnnounceReply,
  clampInterval,
  TrackerError,
  trackerText,
} from "./announce.ts";

/** The magic `protocol_id` of a connect request. */
export const UDP_PROTOCOL_ID = 0x41727101980n;

/** BEP 15 action numbers. */
export const UDP_ACTION = { connect: 0, announce: 1, scrape: 2, error: 3 } as const;

/** Size of a connect request and of a connect response. */
export const UDP_CONNECT_BYTES = 16;
/** Size of an announce request (without BEP 41 options). */
export const UDP_ANNOUNCE_BYTES = 98;

const EVENT_CODE: Record<AnnounceEvent, number> = { completed: 1, started: 2, stopped: 3 };

/** A decoded tracker response. `announce` replies carry seeders as `complete` and leechers as `incomplete`. */
export type UdpResponse =
  | { readonly type: "connect"; readonly txid: number; readonly connectionId: bigint }
  | { readonly type: "announce"; readonly txid: number; readonly reply: AnnounceReply }
  | { readonly type: "error"; readonly txid: number; readonly message: string };

/**
 * Encodes a connect request.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(encodeConnectRequest(0x01020304), new Uint8Array([0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4]));
 * ```
 */
export function encodeConnectRequest(txid: number): Uint8Array {
  const out = new Uint8Array(UDP_CONNECT_BYTES);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, UDP_PROTOCOL_ID);
  v.setUint32(8, UDP_ACTION.connect);
  v.setUint32(12, txid >>> 0);
  return out;
}

/**
 * Encodes an announce request (98 bytes). `numwant` absent means -1, the tracker's default; the IP field is 0 (the
 * tracker uses the packet's source address).
 * @throws {RangeError} when the info-hash or peer id is not 20 bytes.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const b = encodeAnnounceRequest(7n, 9, {
 *   infoHash: new Uint8Array(20), peerId: new Uint8Array(20), port: 6881, uploaded: 0, downloaded: 0, left: 5,
 *   event: "started", key: 1,
 * });
 * eq(b.length, 98);
 * eq(new DataView(b.buffer).getUint32(80), 2); // started
 * eq(new DataView(b.buffer).getUint16(96), 6881);
 * ```
 */
export function encodeAnnounceRequest(connectionId: bigint, txid: number, p: AnnounceParams): Uint8Array {
  if (p.infoHash.length !== 20) throw new RangeError(`Cannot build announce: info-hash is ${p.infoHash.length} bytes`);
  if (p.peerId.length !== 20) throw new RangeError(`Cannot build announce: peer id is ${p.peerId.length} bytes`);
  const out = new Uint8Array(UDP_ANNOUNCE_BYTES);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt.asUintN(64, connectionId));
  v.setUint32(8, UDP_ACTION.announce);
  v.setUint32(12, txid >>> 0);
  out.set(p.infoHash, 16);
  out.set(p.peerId, 36);
  v.setBigUint64(56, BigInt(Math.max(0, Math.trunc(p.downloaded))));
  v.setBigUint64(64, BigInt(Math.max(0, Math.trunc(p.left))));
  v.setBigUint64(72, BigInt(Math.max(0, Math.trunc(p.uploaded))));
  v.setUint32(80, p.event === undefined ? 0 : EVENT_CODE[p.event]);
  v.setUint32(84, 0);
  v.setUint32(88, p.key >>> 0);
  v.setInt32(92, p.numwant === undefined ? -1 : Math.min(p.numwant, 0x7fff_ffff));
  v.setUint16(96, p.port);
  return out;
}

/**
 * The action and transaction id at the start of a response, or null when the packet is too short to have them.
 * Lets the transport match a datagram to its exchange before decoding the rest.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(readUdpHeader(new Uint8Array([0, 0, 0, 3, 0, 0, 0, 9])), { action: 3, txid: 9 });
 * eq(readUdpHeader(new Uint8Array(7)), null);
 * ```
 */
export function readUdpHeader(bytes: Uint8Array): { action: number; txid: number } | null {
  if (bytes.length < 8) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, 8);
  return { action: v.getUint32(0), txid: v.getUint32(4) };
}

/**
 * Decodes a tracker response. `expect` is the action of our request (an error response is always accepted);
 * `family` is the tracker's address family, which fixes the compact peer size (6 or 18 bytes, BEP 15 / BEP 7).
 * @throws {TrackerError} `malformed` for a short packet, an unexpected action, or peers of a bad length; `failure`
 * for an announce response with nothing after the header (how opentracker refuses an info-hash it does not track).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const b = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 42]);
 * eq(decodeUdpResponse(b, { expect: "connect", family: 4 }), { type: "connect", txid: 9, connectionId: 42n });
 * ```
 */
export function decodeUdpResponse(
  bytes: Uint8Array,
  opts: { readonly expect: "connect" | "announce"; readonly family: 4 | 6; readonly url?: string },
): UdpResponse {
  const url = opts.url ?? "";
  const bad = (detail: string): TrackerError =>
    new TrackerError("malformed", url, `Cannot read UDP tracker response: ${detail}`);
  const head = readUdpHeader(bytes);
  if (!head) throw bad(`${bytes.length} bytes is shorter than a header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (head.action === UDP_ACTION.error) {
    return { type: "error", txid: head.txid, message: trackerText(bytes.subarray(8)) };
  }
  if (head.action !== UDP_ACTION[opts.expect]) throw bad(`action ${head.action} in reply to ${opts.expect}`);
  if (opts.expect === "connect") {
    if (bytes.length < UDP_CONNECT_BYTES) throw bad(`connect response of ${bytes.length} bytes`);
    return { type: "connect", txid: head.txid, connectionId: v.getBigUint64(8) };
  }
  if (bytes.length === 8) {
    // opentracker answers this way for an info-hash off its whitelist: a refusal, not line noise
    throw new TrackerError("failure", url, "Tracker refused the announce: empty announce response");
  }
  if (bytes.length < 20) throw bad(`announce response of ${bytes.length} bytes`);
  let peers;
  try {
    peers = decodeCompactPeers(bytes.subarray(20), opts.family, MAX_PEERS_PER_ANNOUNCE);
  } catch (e) {
    if (e instanceof AddressError) {
      throw new TrackerError("malformed", url, `Cannot read UDP tracker response: ${e.message}`, { cause: e });
    }
    throw e;
  }
  return {
    type: "announce",
    txid: head.txid,
    reply: {
      interval: clampInterval(v.getUint32(8)),
      incomplete: v.getUint32(12),
      complete: v.getUint32(16),
      peers,
    },
  };
}
