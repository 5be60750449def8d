/**
 * Magnet URIs (BEP 9, BEP 53) to and from {@linkcode Magnet}, and bare info-hashes (40 hex or 32 base32 digits).
 *
 * Read: `xt=urn:btih:` (required; several `xt` must agree; a v2-only `urn:btmh:` is refused as unsupported), `dn`
 * (a `+` is a space), `tr` and `tr.N` (repeatable), `ws`, `x.pe` (`HOST:PORT`), `so` (BEP 53, e.g. `0,2,4-6`).
 * Unknown parameters are ignored; empty `tr`/`ws` values and repeats are dropped. Several `so` parameters add up.
 *
 * Bounds: every part of a link is limited before it costs anything, and parsing is linear in the link's length. The
 * link is at most {@linkcode MAX_MAGNET_LENGTH} characters with at most {@linkcode MAX_MAGNET_PARAMETERS} parameters,
 * of which at most {@linkcode MAX_MAGNET_TRACKERS} `tr`, {@linkcode MAX_MAGNET_WEB_SEEDS} `ws` and
 * {@linkcode MAX_MAGNET_PEERS} `x.pe`; `so` lists at most {@linkcode MAX_MAGNET_SELECT_RANGES} ranges over indexes
 * below {@linkcode MAX_FILES}, spanning at most {@linkcode MAX_FILES} indexes together (overlaps counted), which are
 * merged by one sort rather than expanded one by one.
 * @module
 */
import { parseAddress, type PeerAddress } from "./address.ts";
import {
  MAX_FILES,
  MAX_MAGNET_LENGTH,
  MAX_MAGNET_PARAMETERS,
  MAX_MAGNET_PEERS,
  MAX_MAGNET_SELECT_RANGES,
  MAX_MAGNET_TRACKERS,
  MAX_MAGNET_WEB_SEEDS,
} from "./limits.ts";
import type { Metainfo } from "./metainfo.ts";
import { toHex } from "./bytes.ts";

/** A parsed magnet link. */
export interface Magnet {
  /** 20 bytes. */
  infoHash: Uint8Array;
  /** Lowercase hex. */
  infoHashHex: string;
  name?: string;
  trackers: string[];
  webSeeds: string[];
  /** Peers from `x.pe`. */
  peers: PeerAddress[];
  /** BEP 53 `so=`: 0-based file indexes, ascending and unique. */
  select?: number[];
}

/** Why a magnet URI was refused. */
export type MagnetErrorCode =
  | "not-magnet"
  | "too-long"
  | "too-many"
  | "bad-encoding"
  | "missing-info-hash"
  | "bad-info-hash"
  | "unsupported"
  | "conflict"
  | "bad-peer"
  | "bad-select";

/** A magnet URI that cannot be used. */
export class MagnetError extends SyntaxError {
  override readonly name = "MagnetError";
  /** Makes the error; `detail` says what was wrong, with the bad value. */
  constructor(readonly code: MagnetErrorCode, detail: string, options?: ErrorOptions) {
    super(`Cannot read magnet URI: ${detail}`, options);
  }
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * Reads a bare info-hash: 40 hex digits or 32 base32 digits (RFC 4648, either case).
 * @returns The 20 bytes, or null when `text` is neither.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(parseInfoHash("c12fe1c06bba254a9dc9f519b335aa7c1367a88a")?.[0], 0xc1);
 * eq(parseInfoHash("YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK")?.[0], 0xc1);
 * eq(parseInfoHash("not a hash"), null);
 * ```
 */
export function parseInfoHash(text: string): Uint8Array | null {
  if (/^[0-9a-fA-F]{40}$/.test(text)) {
    const out = new Uint8Array(20);
    for (let k = 0; k < 20; k++) out[k] = parseInt(text.slice(2 * k, 2 * k + 2), 16);
    return out;
  }
  if (/^[A-Za-z2-7]{32}$/.test(text)) {
    const out = new Uint8Array(20);
    let acc = 0;
    let bits = 0;
    let o = 0;
    for (const ch of text.toUpperCase()) {
      acc = (acc << 5) | BASE32.indexOf(ch);
      bits += 5;
      if (bits >= 8) {
        bits -= 8;
        out[o++] = (acc >>> bits) & 0xff;
      }
      acc &= (1 << bits) - 1;
    }
    return out;
  }
  return null;
}

function decodeComponent(text: string, key: string): string {
  try {
    return decodeURIComponent(text);
  } catch (e) {
    throw new MagnetError("bad-encoding", `parameter ${key} has bad percent-encoding`, { cause: e });
  }
}

/** Quotes untrusted text for a message, cut to its first 40 characters. */
function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
}

/** One BEP 53 range of file indexes, both ends included. */
type SelectRange = readonly [from: number, to: number];

/**
 * Reads one `so` value (`0,2,4-6`) into `ranges`. `total` counts the indexes of every range read so far, overlaps
 * included, so the work of merging them is bounded before any is expanded; returns the new total.
 */
function readSelect(text: string, ranges: SelectRange[], total: number): number {
  for (const part of text.split(",")) {
    const m = /^(\d{1,7})(?:-(\d{1,7}))?$/.exec(part);
    if (!m) throw new MagnetError("bad-select", `so item ${quote(part)} is not an index or range`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to >= MAX_FILES) {
      throw new MagnetError("bad-select", `so range ${part} is reversed or past file ${MAX_FILES - 1}`);
    }
    if (ranges.length >= MAX_MAGNET_SELECT_RANGES) {
      throw new MagnetError("too-many", `so lists more than ${MAX_MAGNET_SELECT_RANGES} ranges`);
    }
    ranges.push([from, to]);
    total += to - from + 1;
    if (total > MAX_FILES) throw new MagnetError("bad-select", `so lists more than ${MAX_FILES} indexes`);
  }
  return total;
}

/** The indexes of `ranges`, ascending and unique: one sort, then one pass that skips what is already out. */
function mergeSelect(ranges: SelectRange[]): number[] {
  ranges.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  let next = 0; // the smallest index not yet in `out`
  for (const [from, to] of ranges) {
    for (let k = Math.max(from, next); k <= to; k++) out.push(k);
    if (to >= next) next = to + 1;
  }
  return out;
}

/** Counts one more occurrence of a repeatable parameter, refusing the one past `limit`. */
function countOne(counts: Map<string, number>, what: string, limit: number): void {
  const n = (counts.get(what) ?? 0) + 1;
  if (n > limit) throw new MagnetError("too-many", `more than ${limit} ${what} parameters`);
  counts.set(what, n);
}

/**
 * Reads a magnet URI.
 * @param uri The `magnet:?...` text.
 * @returns The info-hash and whatever else the link carries.
 * @throws {MagnetError} when it is not a magnet URI, is too long (`too-long`), has too many parameters, trackers, web
 *   seeds, peers or `so` ranges (`too-many`), has no usable `urn:btih:` info-hash (or two that disagree), bad
 *   percent-encoding or a lone surrogate (`bad-encoding`), a bad `x.pe` address or a bad `so` list.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const m = parseMagnet(
 *   "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=My+File&tr=udp%3A%2F%2Ft%3A1&so=0,2-3",
 * );
 * eq([m.infoHashHex, m.name, m.trackers, m.select], ["c12fe1c06bba254a9dc9f519b335aa7c1367a88a", "My File", ["udp://t:1"], [0, 2, 3]]);
 * ```
 */
export function parseMagnet(uri: string): Magnet {
  if (uri.length > MAX_MAGNET_LENGTH) {
    throw new MagnetError("too-long", `${uri.length} characters exceed the limit of ${MAX_MAGNET_LENGTH}`);
  }
  if (!/^magnet:\?/i.test(uri)) throw new MagnetError("not-magnet", "expected text starting with magnet:?");
  // a lone surrogate passes decodeURIComponent unescaped, and no URL or name can be written back from it
  if (!uri.isWellFormed()) throw new MagnetError("bad-encoding", "the text has a lone UTF-16 surrogate");
  let infoHash: Uint8Array | undefined;
  let sawV2 = false;
  let name: string | undefined;
  let selectRanges: SelectRange[] | undefined;
  let selectTotal = 0;
  const trackers: string[] = [];
  const webSeeds: string[] = [];
  const seen = new Set<string>(); // "tr " or "ws " and the URL: a repeat is dropped in constant time
  const peers: PeerAddress[] = [];
  const counts = new Map<string, number>();
  let params = 0;
  const query = uri.slice(uri.indexOf("?") + 1).split("#")[0];
  for (const pair of query.split("&")) {
    if (pair === "") continue;
    if (++params > MAX_MAGNET_PARAMETERS) {
      throw new MagnetError("too-many", `more than ${MAX_MAGNET_PARAMETERS} parameters`);
    }
    const eq = pair.indexOf("=");
    const key = (eq < 0 ? pair : pair.slice(0, eq)).toLowerCase();
    const raw = eq < 0 ? "" : pair.slice(eq + 1);
    if (key === "xt" || /^xt\.\d+$/.test(key)) {
      const v = decodeComponent(raw, key);
      const m = /^urn:btih:(.*)$/i.exec(v);
      if (!m) {
        if (/^urn:btmh:/i.test(v)) sawV2 = true;
        continue;
      }
      const h = parseInfoHash(m[1]);
      if (!h) throw new MagnetError("bad-info-hash", `${quote(m[1])} is not 40 hex or 32 base32 digits`);
      if (infoHash && toHex(infoHash) !== toHex(h)) {
        throw new MagnetError("conflict", `two different info-hashes: ${toHex(infoHash)} and ${toHex(h)}`);
      }
      infoHash = h;
    } else if (key === "dn") {
      name = decodeComponent(raw.replaceAll("+", " "), key);
    } else if (key === "tr" || /^tr\.\d+$/.test(key)) {
      countOne(counts, "tr", MAX_MAGNET_TRACKERS);
      const v = decodeComponent(raw, key);
      if (v !== "" && !seen.has(`tr ${v}`)) {
        seen.add(`tr ${v}`);
        trackers.push(v);
      }
    } else if (key === "ws") {
      countOne(counts, "ws", MAX_MAGNET_WEB_SEEDS);
      const v = decodeComponent(raw, key);
      if (v !== "" && !seen.has(`ws ${v}`)) {
        seen.add(`ws ${v}`);
        webSeeds.push(v);
      }
    } else if (key === "x.pe") {
      countOne(counts, "x.pe", MAX_MAGNET_PEERS);
      const v = decodeComponent(raw, key);
      try {
        peers.push(parseAddress(v));
      } catch (e) {
        throw new MagnetError("bad-peer", `x.pe=${quote(v)} is not HOST:PORT`, { cause: e });
      }
    } else if (key === "so") {
      selectRanges ??= [];
      selectTotal = readSelect(decodeComponent(raw, key), selectRanges, selectTotal);
    }
  }
  if (!infoHash) {
    if (sawV2) throw new MagnetError("unsupported", "only a v2 (urn:btmh:) info-hash is given; btfetch reads v1");
    throw new MagnetError("missing-info-hash", "no xt=urn:btih: parameter");
  }
  return {
    infoHash,
    infoHashHex: toHex(infoHash),
    ...(name !== undefined ? { name } : {}),
    trackers,
    webSeeds,
    peers,
    ...(selectRanges !== undefined ? { select: mergeSelect(selectRanges) } : {}),
  };
}

/**
 * Writes a magnet URI: `magnet:?xt=urn:btih:<hex>&dn=..&tr=..&ws=..`, values percent-encoded. The link stays one that
 * {@linkcode parseMagnet} takes: trackers past {@linkcode MAX_MAGNET_TRACKERS}, web seeds past
 * {@linkcode MAX_MAGNET_WEB_SEEDS}, and whatever would make it longer than {@linkcode MAX_MAGNET_LENGTH} are left out
 * (the name first in, then trackers, then web seeds, each in order; {@linkcode magnetLeftOut} says what). Trackers
 * come first: 500 long ones can leave no room for a web seed.
 * @throws {MagnetError} `bad-info-hash` when `infoHashHex` is not 40 hex digits, `bad-encoding` when a name or URL
 *   has a lone UTF-16 surrogate (it has no percent-encoding).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(
 *   formatMagnet({ infoHashHex: "C12FE1C06BBA254A9DC9F519B335AA7C1367A88A", name: "a b", trackers: ["udp://t:1"] }),
 *   "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=a%20b&tr=udp%3A%2F%2Ft%3A1",
 * );
 * ```
 */
export function formatMagnet(
  m: { infoHashHex: string; name?: string; trackers?: readonly string[]; webSeeds?: readonly string[] },
): string {
  if (!/^[0-9a-fA-F]{40}$/.test(m.infoHashHex)) {
    throw new MagnetError("bad-info-hash", `${JSON.stringify(m.infoHashHex)} is not 40 hex digits`);
  }
  const encode = (key: string, value: string): string => {
    try {
      return `&${key}=${encodeURIComponent(value)}`;
    } catch (e) {
      throw new MagnetError("bad-encoding", `${key}=${quote(value)} has a lone UTF-16 surrogate`, { cause: e });
    }
  };
  let out = `magnet:?xt=urn:btih:${m.infoHashHex.toLowerCase()}`;
  if (m.name !== undefined) {
    const dn = encode("dn", m.name);
    if (out.length + dn.length <= MAX_MAGNET_LENGTH) out += dn; // a name that alone would not fit is left out
  }
  const add = (key: string, values: readonly string[], max: number) => {
    let n = 0;
    for (const v of values) {
      const p = encode(key, v);
      if (n === max || out.length + p.length > MAX_MAGNET_LENGTH) continue; // later, shorter ones may still fit
      out += p;
      n++;
    }
  };
  add("tr", m.trackers ?? [], MAX_MAGNET_TRACKERS);
  add("ws", m.webSeeds ?? [], MAX_MAGNET_WEB_SEEDS);
  return out;
}

/** One line saying what {@linkcode magnetLeftOut} counted, or null when nothing was left out. */
export function magnetLeftOutWords(left: { name: boolean; trackers: number; webSeeds: number }): string | null {
  const parts = [
    ...(left.name ? ["the name"] : []),
    ...(left.trackers > 0 ? [`${left.trackers} tracker${left.trackers === 1 ? "" : "s"}`] : []),
    ...(left.webSeeds > 0 ? [`${left.webSeeds} web seed${left.webSeeds === 1 ? "" : "s"}`] : []),
  ];
  if (parts.length === 0) return null;
  return `${parts.join(" and ")} left out of the magnet link, to keep it within what a magnet reader takes ` +
    `(${MAX_MAGNET_TRACKERS} trackers, ${MAX_MAGNET_WEB_SEEDS} web seeds, ${MAX_MAGNET_LENGTH / 1024} KiB)`;
}

/**
 * What {@linkcode formatMagnet} leaves out of `m`'s link to keep it within the limits: the name (when it alone would
 * not fit), and how many trackers and web seeds.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const trackers = Array.from({ length: 600 }, (_, i) => `http://t${i}/`);
 * eq(magnetLeftOut({ infoHashHex: "c12fe1c06bba254a9dc9f519b335aa7c1367a88a", trackers }), {
 *   name: false,
 *   trackers: 100,
 *   webSeeds: 0,
 * });
 * ```
 */
export function magnetLeftOut(
  m: { infoHashHex: string; name?: string; trackers?: readonly string[]; webSeeds?: readonly string[] },
): { name: boolean; trackers: number; webSeeds: number } {
  const uri = formatMagnet(m);
  const count = (key: string) => uri.split(`&${key}=`).length - 1;
  return {
    name: m.name !== undefined && count("dn") === 0,
    trackers: (m.trackers?.length ?? 0) - count("tr"),
    webSeeds: (m.webSeeds?.length ?? 0) - count("ws"),
  };
}

/**
 * The magnet link of a torrent: its name, every tracker in tier order, and its `url-list` as web seeds.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { encodeBencode } from "./bencode.ts";
 * import { parseMetainfo } from "./metainfo.ts";
 * const info = { length: 5, name: "a", "piece length": 16384, pieces: new Uint8Array(20) };
 * const meta = parseMetainfo(encodeBencode({ "announce-list": [["http://a"], ["http://b"]], info }));
 * eq(magnetFromMetainfo(meta), `magnet:?xt=urn:btih:${meta.infoHashHex}&dn=a&tr=http%3A%2F%2Fa&tr=http%3A%2F%2Fb`);
 * ```
 */
export function magnetFromMetainfo(meta: Metainfo): string {
  return formatMagnet(magnetInput(meta));
}

/** The line saying what {@linkcode magnetFromMetainfo} left out of `meta`'s link, or null when it holds it all. */
export function magnetLeftOutNote(meta: Metainfo): string | null {
  return magnetLeftOutWords(magnetLeftOut(magnetInput(meta)));
}

/** What {@linkcode magnetFromMetainfo} puts in a torrent's link: its name, trackers in tier order, web seeds. */
function magnetInput(
  meta: Metainfo,
): { infoHashHex: string; name: string; trackers: string[]; webSeeds: string[] } {
  return {
    infoHashHex: meta.infoHashHex,
    name: meta.name,
    trackers: meta.announce.flat(),
    webSeeds: [...meta.urlList],
  };
}
