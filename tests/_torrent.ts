/**
 * Builds valid torrents from real data for tests: the pieces are SHA-1 hashes of the payload.
 * @module
 */
import { createHash } from "node:crypto";
import { type BencodeInput, encodeBencode } from "../lib/bencode.ts";
import { type Metainfo, parseMetainfo } from "../lib/metainfo.ts";

/** What {@linkcode makeTorrent} builds from. */
export interface TorrentOptions {
  name: string;
  pieceLength: number;
  /** A list of files (multi-file torrent), or the bytes of a single-file torrent. */
  files: { path: string[]; data: Uint8Array }[] | Uint8Array;
  announce?: string;
  announceList?: string[][];
  urlList?: string[];
  private?: boolean;
}

/** SHA-1 of `data`. */
export function sha1(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha1").update(data).digest());
}

/** Concatenates byte arrays. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The bencodable info dictionary for `opts` and the payload it describes. */
export function makeInfo(opts: TorrentOptions): { info: Map<string, BencodeInput>; payload: Uint8Array } {
  const payload = opts.files instanceof Uint8Array ? opts.files : concatBytes(opts.files.map((f) => f.data));
  const hashes: Uint8Array[] = [];
  for (let o = 0; o < payload.length; o += opts.pieceLength) {
    hashes.push(sha1(payload.subarray(o, o + opts.pieceLength)));
  }
  const info = new Map<string, BencodeInput>([
    ["name", opts.name],
    ["piece length", opts.pieceLength],
    ["pieces", concatBytes(hashes)],
  ]);
  if (opts.files instanceof Uint8Array) info.set("length", payload.length);
  else {info.set(
      "files",
      opts.files.map((f) => new Map<string, BencodeInput>([["length", f.data.length], ["path", f.path]])),
    );}
  if (opts.private) info.set("private", 1);
  return { info, payload };
}

/**
 * Builds a valid torrent: `bytes` is the .torrent file, `meta` what {@linkcode parseMetainfo} reads from it, and
 * `payload` the torrent's contiguous data.
 */
export function makeTorrent(opts: TorrentOptions): { bytes: Uint8Array; meta: Metainfo; payload: Uint8Array } {
  const { info, payload } = makeInfo(opts);
  const top = new Map<string, BencodeInput>([["info", info]]);
  if (opts.announce !== undefined) top.set("announce", opts.announce);
  if (opts.announceList !== undefined) top.set("announce-list", opts.announceList);
  if (opts.urlList !== undefined) top.set("url-list", opts.urlList);
  const bytes = encodeBencode(top);
  return { bytes, meta: parseMetainfo(bytes), payload };
}
