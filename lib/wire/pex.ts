/**
 * Peer exchange (BEP 11, `ut_pex`): the bencoded dictionary carried by an extended message, listing the peers its
 * sender connected to (`added`, `added6`, with a flags byte each in `added.f`, `added6.f`) and disconnected from
 * (`dropped`, `dropped6`) since its previous message, in the compact forms of BEP 23 (6 bytes) and BEP 7 (18 bytes).
 * Pure codec: payloads in, messages out. What to send and whom to believe is `engine/pex.ts`.
 *
 * Decoding is strict where it matters and lenient where real clients differ, as BEP 10 messages should be:
 * - refused ({@linkcode WireError}): a payload that is not one bencoded dictionary (`bad-payload`), a peer list that
 *   is not a string (`bad-payload`) or whose length is not a multiple of its entry size (`bad-length`), and more than
 *   {@linkcode PEX_MAX_RECEIVED_ENTRIES} peers added (IPv4 and IPv6 together) or dropped (`too-long`). The limit is
 *   checked before any entry is read. Over it the message is refused, not truncated: an honest client sends at most
 *   100 (libtorrent) and BEP 11 asks for 50, so a sender far past that is flooding and is better dropped.
 * - tolerated: unknown keys, unsorted or duplicate keys (the first wins), a message with no list at all (an empty
 *   update), and entries with port 0 (skipped with their flags byte: nobody can dial them).
 * - a flags string (`added.f`, `added6.f`) that is not a string or whose length is not the number of entries is
 *   ignored, and the peers kept: flags are hints (seed, reachable), the addresses are the message. libtorrent instead
 *   ignores the peers when their flags are missing or the wrong length; BEP 11 makes the flags optional.
 *
 * Encoding is canonical: keys sorted, a list only when it has entries, a flags string only when given (one byte per
 * entry), so `encodePex(decodePex(b))` is `b` for every `b` this module encodes.
 * @module
 */
import { decodeCompactPeers, encodeCompactPeers, ipv4Bytes, ipv6Bytes, type PeerAddress } from "../address.ts";
import { BencodeError, type BencodeInput, type BencodeValue, decodeBencode, encodeBencode } from "../bencode.ts";
import { PEX_MAX_RECEIVED_ENTRIES } from "../limits.ts";
import { WireError } from "./frame.ts";

/** The extension's name in the extended handshake's `m` dictionary. */
export const UT_PEX = "ut_pex";

/** The flag bits of `added.f` and `added6.f` (BEP 11); other bits are reserved. */
export const PexFlag = {
  /** Prefers encryption (the `e` field of its extended handshake). */
  encryption: 0x01,
  /** A seed, or upload-only. */
  seed: 0x02,
  /** Supports uTP. */
  utp: 0x04,
  /** Supports `ut_holepunch`. */
  holepunch: 0x08,
  /** Reachable: the sender connected to it (an outgoing connection). */
  reachable: 0x10,
} as const;

/**
 * One ut_pex message. A flags array is either empty (no flags known) or holds one byte per entry of its list.
 */
export interface PexMessage {
  /** IPv4 peers connected to since the previous message. */
  readonly added: readonly PeerAddress[];
  /** One {@linkcode PexFlag} byte per entry of `added`, or empty. */
  readonly addedFlags: readonly number[];
  /** IPv6 peers connected to since the previous message. */
  readonly added6: readonly PeerAddress[];
  /** One {@linkcode PexFlag} byte per entry of `added6`, or empty. */
  readonly added6Flags: readonly number[];
  /** IPv4 peers disconnected from since the previous message. */
  readonly dropped: readonly PeerAddress[];
  /** IPv6 peers disconnected from since the previous message. */
  readonly dropped6: readonly PeerAddress[];
}

/** Sizes of a compact entry: 4 or 16 address bytes and 2 port bytes. */
const ENTRY_BYTES = { 4: 6, 6: 18 } as const;

/**
 * Encodes a message to its bencoded payload (not framed: wrap it in an `extended` message with the peer's ut_pex id).
 * @throws {RangeError} when an address is not of its list's family (a dotted IPv4 address in `added` and `dropped`,
 *   an IPv6 address in `added6` and `dropped6`) or its port is not in 1..65535, when a flags array is neither empty
 *   nor as long as its list or holds something other than a byte, or when more than
 *   {@linkcode PEX_MAX_RECEIVED_ENTRIES} peers are added or dropped (a peer would refuse the message).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const m = {
 *   added: [{ host: "10.0.0.1", port: 6881 }], addedFlags: [PexFlag.seed], added6: [], added6Flags: [],
 *   dropped: [{ host: "10.0.0.2", port: 80 }], dropped6: [],
 * };
 * const b = encodePex(m);
 * eq(new TextDecoder().decode(b.subarray(0, 10)), "d5:added6:");
 * eq(decodePex(b), m);
 * ```
 */
export function encodePex(m: PexMessage): Uint8Array {
  for (const [name, list, more] of [["added", m.added, m.added6], ["dropped", m.dropped, m.dropped6]] as const) {
    if (list.length + more.length > PEX_MAX_RECEIVED_ENTRIES) {
      throw new RangeError(
        `Cannot encode ut_pex: ${
          list.length + more.length
        } ${name} peers exceed the limit of ${PEX_MAX_RECEIVED_ENTRIES}`,
      );
    }
  }
  const d = new Map<string, BencodeInput>();
  const put = (key: string, peers: readonly PeerAddress[], family: 4 | 6, flags?: readonly number[]): void => {
    if (peers.length === 0) {
      if (flags !== undefined && flags.length > 0) {
        throw new RangeError(`Cannot encode ut_pex: ${flags.length} flags for an empty ${key}`);
      }
      return;
    }
    for (const p of peers) checkPeer(key, p, family);
    d.set(key, encodeCompactPeers(peers, family));
    if (flags === undefined || flags.length === 0) return;
    if (flags.length !== peers.length) {
      throw new RangeError(`Cannot encode ut_pex: ${flags.length} flags for ${peers.length} ${key} peers`);
    }
    for (const f of flags) {
      if (!Number.isInteger(f) || f < 0 || f > 0xff) {
        throw new RangeError(`Cannot encode ut_pex: flags ${f} is not a byte`);
      }
    }
    d.set(`${key}.f`, new Uint8Array(flags));
  };
  put("added", m.added, 4, m.addedFlags);
  put("added6", m.added6, 6, m.added6Flags);
  put("dropped", m.dropped, 4);
  put("dropped6", m.dropped6, 6);
  return encodeBencode(d);
}

function checkPeer(key: string, p: PeerAddress, family: 4 | 6): void {
  const ip = family === 4 ? ipv4Bytes(p.host) : ipv6Bytes(p.host);
  if (ip === null) {
    throw new RangeError(`Cannot encode ut_pex: ${JSON.stringify(p.host)} in ${key} is not IPv${family}`);
  }
  if (!Number.isInteger(p.port) || p.port < 1 || p.port > 0xffff) {
    throw new RangeError(`Cannot encode ut_pex: port ${p.port} in ${key} is not in 1..65535`);
  }
}

/**
 * Decodes a ut_pex payload (the bytes after the extended message's id byte); see the module notes for what is refused
 * and what is tolerated. Addresses are IPv4 dotted quads and RFC 5952 IPv6 text, as {@linkcode decodeCompactPeers}
 * writes them.
 * @throws {WireError} `bad-payload` when the payload is not one bencoded dictionary or a peer list is not a string;
 *   `bad-length` when a list's length is not a multiple of 6 (IPv4) or 18 (IPv6); `too-long` when more than
 *   {@linkcode PEX_MAX_RECEIVED_ENTRIES} peers are added, or dropped, IPv4 and IPv6 together. The offset is within
 *   `payload`: where the bencode went wrong, or where the offending list's value starts.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const b = new Uint8Array([..."d5:added6:"].map((c) => c.charCodeAt(0)).concat([10, 0, 0, 1, 0x1a, 0xe1, 0x65]));
 * eq(decodePex(b), {
 *   added: [{ host: "10.0.0.1", port: 6881 }], addedFlags: [], added6: [], added6Flags: [], dropped: [], dropped6: [],
 * });
 * ```
 */
export function decodePex(payload: Uint8Array): PexMessage {
  let r;
  try {
    r = decodeBencode(payload, { allowUnsorted: true });
  } catch (e) {
    if (!(e instanceof BencodeError)) throw e;
    throw new WireError("bad-payload", Math.max(e.offset, 0), `ut_pex is not valid bencode (${e.code})`, { cause: e });
  }
  const d = r.value;
  if (!(d instanceof Map)) throw new WireError("bad-payload", 0, "ut_pex is not a dictionary");
  const at = (key: string): number => r.valueSpan(d, key)?.start ?? 0;
  const list = (key: string, family: 4 | 6): Uint8Array => {
    const v: BencodeValue | undefined = d.get(key);
    if (v === undefined) return new Uint8Array(0);
    if (!(v instanceof Uint8Array)) throw new WireError("bad-payload", at(key), `ut_pex ${key} is not a string`);
    if (v.length % ENTRY_BYTES[family] !== 0) {
      throw new WireError(
        "bad-length",
        at(key),
        `ut_pex ${key} has ${v.length} bytes, not a multiple of ${ENTRY_BYTES[family]}`,
      );
    }
    return v;
  };
  const added = list("added", 4);
  const added6 = list("added6", 6);
  const dropped = list("dropped", 4);
  const dropped6 = list("dropped6", 6);
  for (const [name, v4, v6] of [["added", added, added6], ["dropped", dropped, dropped6]] as const) {
    const n = v4.length / 6 + v6.length / 18;
    if (n > PEX_MAX_RECEIVED_ENTRIES) {
      throw new WireError(
        "too-long",
        at(v6.length > 0 ? `${name}6` : name),
        `ut_pex lists ${n} ${name} peers, over the limit of ${PEX_MAX_RECEIVED_ENTRIES}`,
      );
    }
  }
  const [a4, f4] = entries(added, 4, d.get("added.f"));
  const [a6, f6] = entries(added6, 6, d.get("added6.f"));
  return {
    added: a4,
    addedFlags: f4,
    added6: a6,
    added6Flags: f6,
    dropped: entries(dropped, 4, undefined)[0],
    dropped6: entries(dropped6, 6, undefined)[0],
  };
}

/** The peers of a checked compact list, and their flags when `flags` is a string of one byte per entry. */
function entries(bytes: Uint8Array, family: 4 | 6, flags: BencodeValue | undefined): [PeerAddress[], number[]] {
  const size = ENTRY_BYTES[family];
  const count = bytes.length / size;
  const useFlags = flags instanceof Uint8Array && flags.length === count && count > 0;
  const peers: PeerAddress[] = [];
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const one = decodeCompactPeers(bytes.subarray(i * size, (i + 1) * size), family); // empty for port 0
    if (one.length === 0) continue;
    peers.push(one[0]);
    if (useFlags) out.push(flags[i]);
  }
  return [peers, out];
}
