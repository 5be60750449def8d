/**
 * Small Metainfo-shaped torrents for storage tests, with real SHA-1 piece hashes of given file contents.
 * @module
 */
import { createHash } from "node:crypto";
import type { Metainfo, TorrentFile } from "../../lib/metainfo.ts";
import { type Rand, randomBytes } from "../_gen.ts";

/** One file to put in a test torrent: its bytes, and whether it is a BEP 47 padding file (then all zeros). */
export interface FileSpec {
  readonly name?: string;
  readonly data: Uint8Array;
  readonly padding?: boolean;
}

/** A test torrent and the payload its pieces hash. */
export interface Geom {
  readonly meta: Metainfo;
  /** All files end to end (padding as zeros). */
  readonly payload: Uint8Array;
  /** Each file's bytes, by index. */
  readonly contents: readonly Uint8Array[];
  /** The bytes of piece `i`. */
  piece(i: number): Uint8Array;
}

/** Makes a torrent named `name` of `files` cut into `pieceLength` pieces, multi-file unless `single` is set. */
export function makeGeom(
  files: readonly FileSpec[],
  pieceLength: number,
  opts: { name?: string; single?: boolean; infoHashByte?: number } = {},
): Geom {
  const name = opts.name ?? "t";
  const single = opts.single ?? false;
  const tfiles: TorrentFile[] = [];
  let offset = 0;
  files.forEach((f, index) => {
    const path = single ? [name] : [name, ...(f.name ?? `f${index}`).split("/")];
    const padding = f.padding ?? false;
    tfiles.push({ index, path, length: f.data.length, offset, padding });
    offset += f.data.length;
  });
  const totalLength = offset;
  const payload = new Uint8Array(totalLength);
  const contents = files.map((f) => (f.padding ? new Uint8Array(f.data.length) : f.data));
  contents.forEach((c, i) => payload.set(c, tfiles[i].offset));
  const pieceCount = Math.ceil(totalLength / pieceLength);
  const pieceHashes = new Uint8Array(20 * pieceCount);
  for (let i = 0; i < pieceCount; i++) {
    const end = Math.min(totalLength, (i + 1) * pieceLength);
    pieceHashes.set(createHash("sha1").update(payload.subarray(i * pieceLength, end)).digest(), 20 * i);
  }
  const infoHash = new Uint8Array(20).fill(opts.infoHashByte ?? 0xab);
  const infoHashHex = Array.from(infoHash, (b) => b.toString(16).padStart(2, "0")).join("");
  const meta = {
    infoHash,
    infoHashHex,
    name,
    pieceLength,
    pieceCount,
    pieceHashes,
    totalLength,
    files: tfiles,
    multiFile: !single,
  } as unknown as Metainfo; // the fields storage uses; trackers and the rest are left out
  return {
    meta,
    payload,
    contents,
    piece: (i) => payload.subarray(i * pieceLength, Math.min(totalLength, (i + 1) * pieceLength)),
  };
}

/** Random files: `count` files of up to `maxLen` bytes (some empty, some padding when `padding` is set). */
export function randomFiles(rand: Rand, count: number, maxLen: number, padding = false): FileSpec[] {
  const out: FileSpec[] = [];
  for (let i = 0; i < count; i++) {
    const kind = rand.int(10);
    const len = kind === 0 ? 0 : 1 + rand.int(maxLen);
    out.push({ data: randomBytes(rand, len), padding: padding && kind === 1 });
  }
  return out;
}
