/**
 * Making a v1 .torrent from a file or a folder: a deterministic file list, an automatic piece size, and hashing that
 * streams through one reused buffer, so memory stays bounded whatever the size.
 * @module
 */
import * as fs from "node:fs";
import { basename, join } from "node:path";
import { type BencodeInput, encodeBencode } from "./bencode.ts";
import { hashSources, type HashThreads, hashThreadsFor } from "./hash_claim.ts";
import { MAX_FILES, MAX_PIECE_LENGTH } from "./limits.ts";
import { type Metainfo, parseMetainfo } from "./metainfo.ts";

/** The smallest automatic piece size. */
export const MIN_AUTO_PIECE = 16 * 1024;
/** The largest automatic piece size. */
export const MAX_AUTO_PIECE = 16 * 1024 * 1024;
/** The automatic piece size aims at no more pieces than this. */
export const TARGET_PIECES = 1500;
/**
 * How much a hashing thread claims at a time (rounded down to whole pieces, at least one): small, so the threads
 * finish together; each claim is read in slices of `HASH_READ_BYTES`.
 */
const HASH_CHUNK = 1024 * 1024;

/** Why a torrent could not be made. */
export class CreateError extends Error {
  override readonly name = "CreateError";
  /** Makes the error; `code` says what was wrong. */
  constructor(
    readonly code: "not-found" | "empty" | "read" | "too-many-files",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Options of {@linkcode createTorrent}. */
export interface CreateOptions {
  /** Piece length in bytes (a power of two); automatic when absent. */
  readonly pieceLength?: number;
  /** Tracker tiers: `announce` is the first URL, `announce-list` is written when there is more than one. */
  readonly announce?: readonly (readonly string[])[];
  /** Web seeds (BEP 19 `url-list`). */
  readonly webSeeds?: readonly string[];
  readonly private?: boolean;
  readonly comment?: string;
  /** `created by`; default "btfetch". */
  readonly createdBy?: string;
  /** `creation date` in seconds since 1970; absent: none is written, so the output is reproducible. */
  readonly creationDate?: number;
  /** Called after each chunk with bytes hashed and the total. */
  readonly onProgress?: (hashed: number, total: number) => void;
  /**
   * Hashing threads the caller started ahead (see {@linkcode hashThreadsFor}), used instead of starting new ones;
   * the caller closes them.
   */
  readonly threads?: HashThreads;
}

/**
 * The automatic piece size for `total` bytes: the smallest power of two giving at most {@linkcode TARGET_PIECES}
 * pieces, within [{@linkcode MIN_AUTO_PIECE}, {@linkcode MAX_AUTO_PIECE}].
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(autoPieceLength(1024), 16384);
 * eq(autoPieceLength(1024 ** 3), 1024 * 1024);
 * ```
 */
export function autoPieceLength(total: number): number {
  let p = MIN_AUTO_PIECE;
  while (p < MAX_AUTO_PIECE && Math.ceil(total / p) > TARGET_PIECES) p *= 2;
  return p;
}

interface Source {
  readonly abs: string;
  readonly path: string[];
  readonly length: number;
}

function compareBytes(x: Uint8Array, y: Uint8Array): number {
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** Regular files under `dir`, in directory order; symbolic links are not followed. */
function walk(dir: string, prefix: string[], out: Source[]): void {
  for (const name of fs.readdirSync(dir)) {
    const abs = join(dir, name);
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) walk(abs, [...prefix, name], out);
    else if (st.isFile()) {
      out.push({ abs, path: [...prefix, name], length: st.size });
      if (out.length > MAX_FILES) throw new CreateError("too-many-files", `More than ${MAX_FILES} files under ${dir}`);
    }
  }
}

/**
 * Makes a v1 torrent of the file or folder at `path`. Files are listed in byte order of their paths, so the same
 * tree always gives the same info-hash.
 * @throws {CreateError} when the path does not exist, holds no data, or cannot be read.
 */
export async function createTorrent(
  path: string,
  o: CreateOptions = {},
): Promise<{ bytes: Uint8Array; meta: Metainfo }> {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (e) {
    throw new CreateError("not-found", `Cannot read ${path}: ${e instanceof Error ? e.message : e}`, { cause: e });
  }
  const name = basename(path.replace(/\/+$/, "")) || "torrent";
  const sources: Source[] = [];
  try {
    if (st.isDirectory()) {
      walk(path, [], sources);
      // the byte order of the whole "/"-joined path, as mktorrent sorts ("a-b" before "a/b")
      const keyed = sources.map((s) => ({ s, key: new TextEncoder().encode(s.path.join("/")) }));
      keyed.sort((x, y) => compareBytes(x.key, y.key));
      sources.splice(0, sources.length, ...keyed.map((k) => k.s));
    } else {
      sources.push({ abs: path, path: [name], length: st.size });
    }
  } catch (e) {
    if (e instanceof CreateError) throw e;
    throw new CreateError("read", `Cannot read ${path}: ${e instanceof Error ? e.message : e}`, { cause: e });
  }
  const total = sources.reduce((n, s) => n + s.length, 0);
  if (total === 0) throw new CreateError("empty", `Nothing to share in ${path}: no file holds any data`);
  const pieceLength = o.pieceLength ?? autoPieceLength(total);
  if (pieceLength > MAX_PIECE_LENGTH) throw new RangeError(`Piece length ${pieceLength} is over the limit`);
  const pieces = await hashFiles(sources, pieceLength, total, o.threads, o.onProgress);

  const info = new Map<string, BencodeInput>();
  if (st.isDirectory()) {
    info.set("files", sources.map((s) => new Map<string, BencodeInput>([["length", s.length], ["path", s.path]])));
  } else {
    info.set("length", total);
  }
  info.set("name", name);
  info.set("piece length", pieceLength);
  info.set("pieces", pieces);
  if (o.private) info.set("private", 1);
  const top = new Map<string, BencodeInput>();
  const tiers = (o.announce ?? []).map((t) => [...t]).filter((t) => t.length > 0);
  if (tiers.length > 0) top.set("announce", tiers[0][0]);
  if (tiers.length > 1 || (tiers.length === 1 && tiers[0].length > 1)) top.set("announce-list", tiers);
  if (o.comment) top.set("comment", o.comment);
  top.set("created by", o.createdBy ?? "btfetch");
  if (o.creationDate !== undefined) top.set("creation date", o.creationDate);
  top.set("info", info);
  if (o.webSeeds && o.webSeeds.length > 0) top.set("url-list", [...o.webSeeds]);
  const bytes = encodeBencode(top);
  return { bytes, meta: parseMetainfo(bytes) };
}

async function hashFiles(
  sources: readonly Source[],
  pieceLength: number,
  total: number,
  started: HashThreads | undefined,
  onProgress?: (hashed: number, total: number) => void,
): Promise<Uint8Array> {
  // whole pieces per chunk; this thread and the workers claim chunks and read them themselves
  const chunkBytes = pieceLength * Math.max(1, Math.floor(HASH_CHUNK / pieceLength));
  const threads = started ?? hashThreadsFor(total);
  try {
    const digests = await hashSources(
      sources.map((s) => ({ path: s.abs, length: s.length })),
      pieceLength,
      chunkBytes,
      threads,
    );
    onProgress?.(total, total);
    return digests;
  } catch (e) {
    throw new CreateError("read", `Cannot read while hashing: ${e instanceof Error ? e.message : e}`, { cause: e });
  }
}
