/**
 * The HTTP tracker announce, as a pure codec: the announce URL (BEP 3) and the bencoded reply, with compact IPv4 peers
 * (BEP 23), the dictionary peer list (BEP 3) and compact IPv6 peers (BEP 7). No IO here: `http.ts` sends the request.
 * @module
 */
import { BencodeError, type BencodeValue, decodeBencode } from "../bencode.ts";
import { AddressError, decodeCompactPeers, ipv4Bytes, ipv6Bytes, type PeerAddress } from "../address.ts";
import {
  MAX_ANNOUNCE_INTERVAL_S,
  MAX_PEERS_PER_ANNOUNCE,
  MAX_TRACKER_TEXT_CHARS,
  MIN_ANNOUNCE_INTERVAL_S,
} from "../limits.ts";

/** The announce interval assumed when a reply gives none (seconds): what most trackers send. */
export const DEFAULT_ANNOUNCE_INTERVAL_S = 1800;

/** The `event` of an announce; a regular re-announce carries none. */
export type AnnounceEvent = "started" | "completed" | "stopped";

/** What an announce tells the tracker. Byte counts are payload bytes; `key` is a u32 fixed for the session. */
export interface AnnounceParams {
  readonly infoHash: Uint8Array;
  readonly peerId: Uint8Array;
  readonly port: number;
  readonly uploaded: number;
  readonly downloaded: number;
  readonly left: number;
  readonly event?: AnnounceEvent;
  readonly numwant?: number;
  /** Identifies this client to the tracker across IP changes: an unsigned 32-bit number. */
  readonly key: number;
  /** The `tracker id` an earlier reply from this tracker gave, echoed back. */
  readonly trackerId?: string;
  /** Ask for compact peers (BEP 23); default true. */
  readonly compact?: boolean;
}

/** A tracker's answer to an announce. `interval` and `minInterval` are seconds, already clamped to sane bounds. */
export interface AnnounceReply {
  readonly interval: number;
  readonly minInterval?: number;
  readonly trackerId?: string;
  readonly warning?: string;
  readonly complete?: number;
  readonly incomplete?: number;
  readonly peers: readonly PeerAddress[];
}

/**
 * Why an announce failed: `failure` (the tracker refused, with its reason in the message), `malformed` (a reply we
 * cannot read), `http-status`, `timeout`, `network`, `too-large` (reply over the size limit), `unsupported-scheme`
 * (a URL we cannot announce to).
 */
export type TrackerErrorCode =
  | "failure"
  | "malformed"
  | "http-status"
  | "timeout"
  | "network"
  | "too-large"
  | "unsupported-scheme"
  | "redirect";

/** An announce that did not produce peers; `url` is the tracker's announce URL. */
export class TrackerError extends Error {
  override readonly name = "TrackerError";
  /**
   * Makes the error.
   * @example
   * ```ts
   * import { strictEqual as eq } from "node:assert/strict";
   * const e = new TrackerError("timeout", "udp://t.example:6969", "No reply within 15000 ms");
   * eq(e.code, "timeout");
   * eq(e.message, "No reply within 15000 ms");
   * ```
   */
  constructor(
    readonly code: TrackerErrorCode,
    readonly url: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const UNRESERVED = /^[A-Za-z0-9._~-]$/;
const HEX = "0123456789ABCDEF";

/**
 * Percent-encodes bytes one by one: unreserved characters (`A-Z a-z 0-9 . - _ ~`) stay literal, every other byte is
 * `%XX` (so a space is `%20`, never `+`).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(percentEncodeBytes(new Uint8Array([0x20, 0x2b, 0x25, 0x41, 0x00, 0xff])), "%20%2B%25A%00%FF");
 * ```
 */
export function percentEncodeBytes(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += UNRESERVED.test(c) ? c : "%" + HEX[b >> 4] + HEX[b & 15];
  }
  return out;
}

function textBytes(s: string): Uint8Array {
  // tracker ids come back to us as latin1 binary strings; anything wider was typed by a person: UTF-8
  if ([...s].every((c) => c.charCodeAt(0) <= 0xff)) return Uint8Array.from(s, (c) => c.charCodeAt(0));
  return new TextEncoder().encode(s);
}

function checkCount(name: string, n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`Cannot build announce: ${name} ${n} is not a count`);
  return String(n);
}

/**
 * Builds the announce URL for an HTTP(S) tracker: `info_hash` and `peer_id` percent-encoded byte by byte, `key` as 8
 * hex digits, `compact=1` (unless `compact` is false) and `no_peer_id=1`. A query already in `base` is kept (the
 * parameters are appended with `&`); a fragment is dropped.
 * @throws {RangeError} when the info-hash or peer id is not 20 bytes, or a number is out of range.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const u = announceUrl("http://t.example/announce?passkey=abc", {
 *   infoHash: new Uint8Array(20).fill(0x20), peerId: new Uint8Array(20).fill(0x41), port: 6881,
 *   uploaded: 0, downloaded: 0, left: 100, event: "started", key: 0xbeef, numwant: 50,
 * });
 * eq(u.startsWith("http://t.example/announce?passkey=abc&info_hash=%20%20"), true);
 * eq(u.includes("&key=0000BEEF&"), true);
 * eq(u.endsWith("&event=started"), true);
 * ```
 */
export function announceUrl(base: string, p: AnnounceParams): string {
  if (p.infoHash.length !== 20) throw new RangeError(`Cannot build announce: info-hash is ${p.infoHash.length} bytes`);
  if (p.peerId.length !== 20) throw new RangeError(`Cannot build announce: peer id is ${p.peerId.length} bytes`);
  if (!Number.isInteger(p.port) || p.port < 0 || p.port > 65535) {
    throw new RangeError(`Cannot build announce: port ${p.port} is out of range`);
  }
  if (!Number.isInteger(p.key) || p.key < 0 || p.key > 0xffff_ffff) {
    throw new RangeError(`Cannot build announce: key ${p.key} is not a u32`);
  }
  const hash = base.indexOf("#");
  let url = hash >= 0 ? base.slice(0, hash) : base;
  const q = [
    `info_hash=${percentEncodeBytes(p.infoHash)}`,
    `peer_id=${percentEncodeBytes(p.peerId)}`,
    `port=${p.port}`,
    `uploaded=${checkCount("uploaded", p.uploaded)}`,
    `downloaded=${checkCount("downloaded", p.downloaded)}`,
    `left=${checkCount("left", p.left)}`,
    `key=${p.key.toString(16).toUpperCase().padStart(8, "0")}`,
  ];
  if (p.compact !== false) q.push("compact=1");
  q.push("no_peer_id=1");
  if (p.numwant !== undefined) q.push(`numwant=${checkCount("numwant", p.numwant)}`);
  if (p.trackerId !== undefined) q.push(`trackerid=${percentEncodeBytes(textBytes(p.trackerId))}`);
  if (p.event !== undefined) q.push(`event=${p.event}`);
  if (!url.includes("?")) url += "?";
  else if (!url.endsWith("?") && !url.endsWith("&")) url += "&";
  return url + q.join("&");
}

/**
 * The scrape URL for an announce URL by the BEP 48 convention (the last path segment starts with `announce`, which
 * becomes `scrape`), or null when the tracker does not follow it.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(scrapeUrl("http://t.example/x/announce.php?k=1"), "http://t.example/x/scrape.php?k=1");
 * eq(scrapeUrl("http://t.example/a"), null);
 * ```
 */
export function scrapeUrl(announce: string): string | null {
  const q = announce.search(/[?#]/);
  const path = q >= 0 ? announce.slice(0, q) : announce;
  const rest = q >= 0 ? announce.slice(q) : "";
  const slash = path.lastIndexOf("/");
  if (slash < 0 || !path.slice(slash + 1).startsWith("announce")) return null;
  return path.slice(0, slash + 1) + "scrape" + path.slice(slash + 1 + "announce".length) + rest;
}

function clip(s: string): string {
  return s.length > MAX_TRACKER_TEXT_CHARS ? s.slice(0, MAX_TRACKER_TEXT_CHARS) + "…" : s;
}

/** Control characters (C0, DEL, C1) and the bidi embeddings, overrides and isolates (U+202A–E, U+2066–9). */
const UNPRINTABLE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;

/**
 * Text a tracker sent, made safe to show: UTF-8 (what does not decode becomes U+FFFD), line breaks and tabs turned
 * into spaces and every other control character (terminal escapes, C1, bidi overrides) into U+FFFD, cut to
 * {@linkcode MAX_TRACKER_TEXT_CHARS} with an ellipsis. At most 4 bytes per character are decoded.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(trackerText(new TextEncoder().encode("Unregistered\ntorrent\x1b[2J")), "Unregistered torrent\ufffd[2J");
 * ```
 */
export function trackerText(bytes: Uint8Array): string {
  // 4 bytes per UTF-8 code point at most: this prefix holds more than the limit whenever the whole would
  const head = bytes.subarray(0, 4 * MAX_TRACKER_TEXT_CHARS + 4);
  const text = new TextDecoder("utf-8", { fatal: false }).decode(head);
  return clip(text.replace(UNPRINTABLE, (c) => (c === "\t" || c === "\n" || c === "\r" ? " " : "\ufffd")));
}

/** Clamps an interval a tracker gave (seconds) to [{@linkcode MIN_ANNOUNCE_INTERVAL_S}, {@linkcode MAX_ANNOUNCE_INTERVAL_S}]. */
export function clampInterval(seconds: number): number {
  return Math.min(MAX_ANNOUNCE_INTERVAL_S, Math.max(MIN_ANNOUNCE_INTERVAL_S, seconds));
}

type Dict = Map<string, BencodeValue>;

function isDict(v: BencodeValue | undefined): v is Dict {
  return v instanceof Map;
}

function intField(d: Dict, key: string, url: string): number | undefined {
  const v = d.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== "bigint") {
    throw new TrackerError("malformed", url, `Cannot read tracker reply: "${key}" is not an integer`);
  }
  if (v < 0n) throw new TrackerError("malformed", url, `Cannot read tracker reply: "${key}" is negative (${v})`);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function bytesField(d: Dict, key: string, url: string): Uint8Array | undefined {
  const v = d.get(key);
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array)) {
    throw new TrackerError("malformed", url, `Cannot read tracker reply: "${key}" is not a string`);
  }
  return v;
}

const latin1 = (b: Uint8Array): string => String.fromCharCode(...b);

function dictPeer(v: BencodeValue): PeerAddress | null {
  if (!isDict(v)) return null;
  const ip = v.get("ip");
  const port = v.get("port");
  if (!(ip instanceof Uint8Array) || typeof port !== "bigint" || port < 1n || port > 65535n || ip.length > 255) {
    return null;
  }
  // some trackers send the 4 or 16 raw address bytes instead of text
  if (ip.length === 4 && !/^[\x20-\x7e]{4}$/.test(latin1(ip))) {
    return { host: ip.join("."), port: Number(port) };
  }
  const host = latin1(ip);
  if (ipv4Bytes(host) === null && ipv6Bytes(host) === null && !/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(host)) {
    return null;
  }
  return { host, port: Number(port) };
}

function readPeers(d: Dict, url: string): PeerAddress[] {
  const out: PeerAddress[] = [];
  const peers = d.get("peers");
  try {
    if (peers instanceof Uint8Array) {
      out.push(...decodeCompactPeers(peers, 4, MAX_PEERS_PER_ANNOUNCE));
    } else if (Array.isArray(peers)) {
      for (const v of peers) {
        if (out.length >= MAX_PEERS_PER_ANNOUNCE) break;
        const a = dictPeer(v);
        if (a) out.push(a);
      }
    } else if (peers !== undefined) {
      throw new TrackerError("malformed", url, `Cannot read tracker reply: "peers" is neither a string nor a list`);
    }
    const peers6 = d.get("peers6");
    if (peers6 instanceof Uint8Array) {
      out.push(...decodeCompactPeers(peers6, 6, MAX_PEERS_PER_ANNOUNCE - out.length));
    } else if (peers6 !== undefined) {
      throw new TrackerError("malformed", url, `Cannot read tracker reply: "peers6" is not a string`);
    }
  } catch (e) {
    if (e instanceof AddressError) {
      throw new TrackerError("malformed", url, `Cannot read tracker reply: ${e.message}`, { cause: e });
    }
    throw e;
  }
  return out;
}

/**
 * Reads a bencoded announce reply. Keys may be unsorted (real trackers send them so) and trailing bytes are ignored.
 * Peers come from compact `peers` (BEP 23) or the dictionary list, and compact `peers6` (BEP 7), at most
 * {@linkcode MAX_PEERS_PER_ANNOUNCE}; intervals are clamped, a missing one is {@linkcode DEFAULT_ANNOUNCE_INTERVAL_S}.
 * `url` only labels errors.
 * @throws {TrackerError} `failure` with the tracker's `failure reason` in the message; `malformed` for anything else
 * we cannot read (not bencode, not a dictionary, a field of the wrong type, compact peers of a bad length).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const body = Uint8Array.from("d8:intervali900e5:peers6:\x7f\x00\x00\x01\x1a\xe1e", (c) => c.charCodeAt(0));
 * eq(parseAnnounceReply(body), { interval: 900, peers: [{ host: "127.0.0.1", port: 6881 }] });
 * ```
 */
export function parseAnnounceReply(body: Uint8Array, url = ""): AnnounceReply {
  let value: BencodeValue;
  try {
    value = decodeBencode(body, { allowUnsorted: true, allowTrailing: true }).value;
  } catch (e) {
    if (e instanceof BencodeError) {
      throw new TrackerError("malformed", url, `Cannot read tracker reply: ${e.message}`, { cause: e });
    }
    throw e;
  }
  if (!isDict(value)) throw new TrackerError("malformed", url, "Cannot read tracker reply: not a dictionary");
  const failure = value.get("failure reason");
  if (failure !== undefined) {
    const reason = failure instanceof Uint8Array ? trackerText(failure) : "(unreadable reason)";
    throw new TrackerError("failure", url, `Tracker refused the announce: ${reason}`);
  }
  const interval = intField(value, "interval", url);
  const minInterval = intField(value, "min interval", url);
  const trackerId = bytesField(value, "tracker id", url);
  const warning = bytesField(value, "warning message", url);
  const complete = intField(value, "complete", url);
  const incomplete = intField(value, "incomplete", url);
  const reply: {
    interval: number;
    minInterval?: number;
    trackerId?: string;
    warning?: string;
    complete?: number;
    incomplete?: number;
    peers: readonly PeerAddress[];
  } = { interval: clampInterval(interval ?? DEFAULT_ANNOUNCE_INTERVAL_S), peers: readPeers(value, url) };
  if (minInterval !== undefined) reply.minInterval = clampInterval(minInterval);
  if (trackerId !== undefined && trackerId.length > 0) {
    reply.trackerId = latin1(trackerId.subarray(0, MAX_TRACKER_TEXT_CHARS));
  }
  if (warning !== undefined) reply.warning = trackerText(warning);
  if (complete !== undefined) reply.complete = complete;
  if (incomplete !== undefined) reply.incomplete = incomplete;
  return reply;
}
