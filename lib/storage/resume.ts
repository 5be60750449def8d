/**
 * Resume state: which pieces were verified, kept beside the data so a rerun need not hash everything again.
 *
 * The record lives at `<outDir>/.btfetch/<info-hash hex>/resume.json`, never anywhere else. It holds the have-set
 * and, for each non-padding file, its size and mtime when the record was saved. It is trusted only while every file
 * still has exactly that size and mtime; otherwise the caller hashes the data again. So a hash always wins:
 * - any write to a file after the save changes its mtime, so a run killed after saving (with more pieces written, or
 *   a file touched or replaced by hand) is re-hashed on the next start;
 * - file timestamps have a coarse clock (milliseconds here, a kernel tick at worst), so a write just after a save may
 *   leave the mtime unchanged; that is still safe, because btfetch only ever writes whole verified pieces and the
 *   record names only pieces verified before the save: it can under-claim, never claim bytes that were not checked;
 * - the save flushes the data (`fdatasync`) before it writes the record, and writes the record atomically (a temporary
 *   file, `fsync`, `rename`), so a crash leaves the old record or the new one, never half of one.
 *
 * The record is an optimisation, so it never costs a result: a record that cannot be saved (a symlinked `.btfetch`, a
 * read-only mount, a full disk) is a warning, and one under a symlinked `.btfetch` is neither read nor written.
 * @module
 */
import type * as NodeFs from "node:fs";
import { nodeBuiltin } from "../node_builtin.ts";
import { join as joinPath } from "../path.ts";
import type { Metainfo } from "../metainfo.ts";
import { Bitfield } from "../bitfield.ts";
import { equalBytes } from "../bytes.ts";
import { checkDir, type PieceStore, StorageError } from "./disk.ts";
import { writeFully } from "./file_io.ts";
import type { WarningCode } from "./storage_error.ts";

/** `node:fs`, loaded when a record is first read or written: a download with none loads no `node:` module. */
const fs = (): typeof NodeFs => nodeBuiltin<typeof NodeFs>("node:fs");

/** The format version written in each record; records of another version are ignored. */
export const RESUME_VERSION = 1;

/** A file's size and modification time in milliseconds, or nulls when it did not exist. */
interface FileStamp {
  readonly index: number;
  readonly size: number | null;
  readonly mtimeMs: number | null;
}

/** The JSON record, as written. */
interface ResumeRecord {
  readonly version: number;
  readonly infoHash: string;
  readonly pieceLength: number;
  readonly pieceCount: number;
  readonly totalLength: number;
  readonly have: string;
  readonly files: readonly FileStamp[];
}

/**
 * The path of the resume record for `meta` under `outDir`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(resumePath("/dl", { infoHashHex: "ab".repeat(20) }), `/dl/.btfetch/${"ab".repeat(20)}/resume.json`);
 * ```
 */
export function resumePath(outDir: string, meta: Pick<Metainfo, "infoHashHex">): string {
  return joinPath(outDir, ".btfetch", meta.infoHashHex, "resume.json");
}

function stamp(store: PieceStore, index: number): FileStamp {
  try {
    const st = fs().lstatSync(store.filePath(index));
    if (!st.isFile()) return { index, size: null, mtimeMs: null };
    return { index, size: st.size, mtimeMs: st.mtimeMs };
  } catch {
    return { index, size: null, mtimeMs: null };
  }
}

function stamps(store: PieceStore, meta: Metainfo): FileStamp[] {
  const out: FileStamp[] = [];
  for (let i = 0; i < meta.files.length; i++) if (!meta.files[i].padding) out.push(stamp(store, i));
  return out;
}

/**
 * Saves `have` as the resume record for `meta` in `store.outDir`. Flushes the store's files first, then writes the
 * record atomically (temporary file, `fsync`, `rename`), unless the record on disk already says exactly that (a seed
 * writes nothing, so it also works on a read-only mount).
 *
 * The record only spares a later run some hashing, so failing to save it does not cost the result: the problem goes
 * to {@linkcode PieceStore.warn} and `false` is returned. The record is never written through a link: a symlinked
 * `.btfetch` or `.btfetch/<info-hash>` is left alone (`unsafe-path`), a stale temporary file is removed first and
 * the new one is created exclusively, and the temporary file is removed again on any failure (a full disk leaves
 * nothing behind).
 * Without `flushed`, the store's own files open for writing are flushed first ({@linkcode PieceStore.flush}); with
 * it, the caller has flushed the data already (a download's: the writer thread's `PieceWriter.flush`, after `have`
 * was taken), and the record is written at once. `code` goes with the warning when the record cannot be saved.
 * @returns true when the record on disk now holds `have`, false when it could not be saved (and was warned about).
 * @throws {RangeError} when `have` is not sized for the torrent.
 * @throws {StorageError} when flushing the data fails (that is the data, not the record).
 */
export function saveResume(
  store: PieceStore,
  meta: Metainfo,
  have: Bitfield,
  o: { readonly flushed?: boolean; readonly code?: WarningCode } = {},
): boolean {
  if (have.size !== meta.pieceCount) {
    throw new RangeError(`Cannot save resume: the have-set has ${have.size} pieces, the torrent ${meta.pieceCount}`);
  }
  if (!o.flushed) store.flush();
  const record: ResumeRecord = {
    version: RESUME_VERSION,
    infoHash: meta.infoHashHex,
    pieceLength: meta.pieceLength,
    pieceCount: meta.pieceCount,
    totalLength: meta.totalLength,
    have: have.bytes.toBase64(),
    files: stamps(store, meta),
  };
  const body = new TextEncoder().encode(JSON.stringify(record));
  const path = resumePath(store.outDir, meta);
  try {
    if (recordDirsExist(store.outDir, meta)) {
      const old = readRecordBytes(path, body.length);
      if (old !== null && equalBytes(old, body)) return true;
    }
    writeRecord(store.outDir, meta, path, body);
    return true;
  } catch (e) {
    if (!(e instanceof StorageError)) throw e;
    store.warn(new StorageError(e.code, e.path, `${e.detail}; the resume record was not saved`, { cause: e }), o.code);
    return false;
  }
}

/** Writes `body` as the record at `path` (temporary file, `fsync`, `rename`, directory `fsync`). */
function writeRecord(outDir: string, meta: Metainfo, path: string, body: Uint8Array): void {
  try {
    fs().mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw StorageError.fromOs("create", outDir, e);
  }
  const top = joinPath(outDir, ".btfetch");
  checkDir(top, true);
  const dir = joinPath(top, meta.infoHashHex);
  checkDir(dir, true);
  const tmp = `${path}.tmp`;
  try {
    fs().unlinkSync(tmp); // a stale one, or a link planted there: never open it, replace it
  } catch (e) {
    if (!isAbsent(e)) throw StorageError.fromOs("write", tmp, e);
  }
  let fd: number | undefined;
  let renamed = false;
  try {
    const c = fs().constants;
    fd = fs().openSync(tmp, c.O_WRONLY | c.O_CREAT | c.O_EXCL | (c.O_NOFOLLOW ?? 0), 0o644);
    writeFully(fs(), fd, body, 0, body.length, 0);
    fs().fsyncSync(fd);
    fs().closeSync(fd);
    fd = undefined;
    fs().renameSync(tmp, path);
    renamed = true;
  } catch (e) {
    throw StorageError.fromOs("write", tmp, e);
  } finally {
    if (fd !== undefined) {
      try {
        fs().closeSync(fd);
      } catch {
        // the write already failed; that error is the one to report
      }
    }
    if (!renamed) {
      try {
        fs().unlinkSync(tmp);
      } catch {
        // never created, or already gone
      }
    }
  }
  try {
    const dfd = fs().openSync(dir, fs().constants.O_RDONLY);
    try {
      fs().fsyncSync(dfd); // make the rename itself durable
    } finally {
      fs().closeSync(dfd);
    }
  } catch {
    // best effort: some file systems refuse fsync on a directory
  }
}

/**
 * Whether `.btfetch/<info-hash>` exists under `outDir` as real directories.
 * @throws {StorageError} `unsafe-path` when either is a symlink (a record there is neither read nor written).
 */
function recordDirsExist(outDir: string, meta: Pick<Metainfo, "infoHashHex">): boolean {
  const top = joinPath(outDir, ".btfetch");
  return checkDir(top, false) && checkDir(joinPath(top, meta.infoHashHex), false);
}

function isAbsent(e: unknown): boolean {
  return typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT";
}

function isRecord(v: unknown): v is ResumeRecord {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r.version === "number" && typeof r.infoHash === "string" && typeof r.pieceLength === "number" &&
    typeof r.pieceCount === "number" && typeof r.totalLength === "number" && typeof r.have === "string" &&
    Array.isArray(r.files);
}

function sameStamp(a: unknown, b: FileStamp): boolean {
  if (typeof a !== "object" || a === null) return false;
  const r = a as Record<string, unknown>;
  return r.index === b.index && r.size === b.size && r.mtimeMs === b.mtimeMs;
}

/** Reads the record's bytes, or null when absent or implausible; throws only on a permission error. */
function readRecordBytes(path: string, bound: number): Uint8Array | null {
  let fd: number;
  try {
    const c = fs().constants;
    fd = fs().openSync(path, c.O_RDONLY | (c.O_NOFOLLOW ?? 0) | (c.O_NONBLOCK ?? 0));
  } catch (e) {
    const err = StorageError.fromOs("read", path, e);
    if (err.code === "permission") throw err;
    return null;
  }
  try {
    const st = fs().fstatSync(fd);
    if (!st.isFile() || st.size > bound) return null;
    const buf = new Uint8Array(st.size);
    let done = 0;
    while (done < buf.length) {
      const n = fs().readSync(fd, buf, done, buf.length - done, done);
      if (n <= 0) return null;
      done += n;
    }
    return buf;
  } catch (e) {
    const err = StorageError.fromOs("read", path, e);
    if (err.code === "permission") throw err;
    return null;
  } finally {
    fs().closeSync(fd);
  }
}

/**
 * The have-set saved for `meta` in `store.outDir`, if the record parses, matches the torrent, and every non-padding
 * file still has the size and mtime recorded; otherwise null, and the caller hashes the data. A bad, foreign or stale
 * record is treated as absent.
 * @throws {StorageError} `permission` when the record or its directory cannot be read for lack of permission.
 */
export function loadResume(store: PieceStore, meta: Metainfo): Bitfield | null {
  const path = resumePath(store.outDir, meta);
  // Our own file, but read it like input: ~4/3 of the bitfield in base64, ~80 bytes a file, and some slack.
  const bound = 4096 + Math.ceil(meta.pieceCount / 6) + 128 * meta.files.length;
  try {
    if (!recordDirsExist(store.outDir, meta)) return null;
  } catch (e) {
    if (e instanceof StorageError && e.code === "permission") throw e;
    return null; // a symlinked .btfetch: its record is not ours to trust
  }
  const bytes = readRecordBytes(path, bound);
  if (bytes === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (!isRecord(v)) return null;
  if (
    v.version !== RESUME_VERSION || v.infoHash !== meta.infoHashHex || v.pieceLength !== meta.pieceLength ||
    v.pieceCount !== meta.pieceCount || v.totalLength !== meta.totalLength
  ) return null;
  const now = stamps(store, meta);
  if (v.files.length !== now.length) return null;
  for (let k = 0; k < now.length; k++) if (!sameStamp(v.files[k], now[k])) return null;
  let have: Bitfield;
  try {
    have = Bitfield.fromBytes(Uint8Array.fromBase64(v.have), meta.pieceCount);
  } catch {
    return null;
  }
  return claimsOnlyWholeFiles(meta, have, now) ? have : null;
}

/**
 * Whether every file holding a byte of a piece in `have` exists at the torrent's length: btfetch never leaves
 * another state behind (it sizes a file when it first writes it), so a record that says otherwise (a file deleted or
 * truncated by someone else while btfetch wrote into its open descriptor) is not trusted, whatever its stamps say.
 */
function claimsOnlyWholeFiles(meta: Metainfo, have: Bitfield, now: readonly FileStamp[]): boolean {
  if (have.count === 0) return true;
  const pl = meta.pieceLength;
  for (const st of now) {
    const f = meta.files[st.index];
    if (f.length === 0 || st.size === f.length) continue;
    const last = Math.floor((f.offset + f.length - 1) / pl);
    for (let p = Math.floor(f.offset / pl); p <= last; p++) if (have.has(p)) return false;
  }
  return true;
}

/** Options for {@linkcode loadOrVerify}. */
export interface LoadOrVerifyOptions {
  /** Ignore any resume record and hash the data (`--check`). */
  readonly check?: boolean;
  /** Hashing progress, as {@linkcode PieceStore.verify} reports it. */
  readonly onProgress?: (checked: number, total: number) => void;
  /** Aborts hashing. */
  readonly signal?: AbortSignal;
}

/**
 * What is already on disk: the resume record when it is still valid (and `check` is not set), else a full hash of
 * the data. Saves nothing; the caller saves a new record when it wants one.
 * @throws {StorageError} as {@linkcode loadResume} and {@linkcode PieceStore.verify} do.
 */
export async function loadOrVerify(
  store: PieceStore,
  meta: Metainfo,
  opts: LoadOrVerifyOptions = {},
): Promise<{ have: Bitfield; source: "resume" | "hash" }> {
  if (!opts.check) {
    const have = loadResume(store, meta);
    if (have !== null) return { have, source: "resume" };
  }
  const have = await store.verify({ onProgress: opts.onProgress, signal: opts.signal });
  return { have, source: "hash" };
}
