/**
 * The one place that owns a torrent's files: writes verified pieces, reads pieces and blocks back, and hashes what is
 * on disk.
 *
 * Policy:
 * - Files land at `outDir/<path>` where `path` comes from the metainfo (its first component is the torrent's name).
 *   Nothing is created until a piece is written (or {@linkcode PieceStore.ensureFiles} runs): parent directories are
 *   made one component at a time, and a file is created with `ftruncate` to its full length, which is sparse; no
 *   region is ever pre-written. A file that exists with another length is truncated or extended to the torrent's length
 *   the first time it is opened for writing.
 * - No symlink is followed under `outDir`: every existing component is `lstat`ed (a symlink gives `unsafe-path`) and
 *   files are opened with `O_NOFOLLOW` (and `O_NONBLOCK`, so a FIFO never blocks; non-regular files give
 *   `not-a-file`). `outDir` itself is the user's choice and may be a symlink.
 * - Nothing is written through a link: a file opened for writing is checked on its descriptor (`fstat`, so there is no
 *   window between check and use): one with other hard links (`nlink > 1`) is refused with `unsafe-path`, and on
 *   Linux the path the descriptor really has (`/proc/self/fd`) must be the expected one, so a directory swapped for a
 *   symlink after its `lstat` is refused too. That last check applies to files opened for reading as well, so data
 *   served to peers or streamed never comes from outside `outDir` through a directory swapped later. Reading through
 *   a hard link is allowed (seeding data that was hard-linked into place works); bytes read are only trusted once
 *   their piece hash matches.
 * - Files are opened for reading until a write needs them: `verify` and a seed of complete data never open a file
 *   for writing, so they work on a read-only mount. Unless the store is opened `readOnly`,
 *   {@linkcode PieceStore.open} first checks that `outDir` can be created and written ({@linkcode checkOutputDir}),
 *   so an output that can never be written fails at once instead of at the first piece.
 * - Padding files (BEP 47) are never created, written or read: they read as zeros.
 * - A piece that spans a file the user did not select is still written whole, like aria2c does: the bytes are verified
 *   and it keeps pieces and files consistent; unselected files may therefore appear, partially filled and sparse.
 * - IO is synchronous `pread`/`pwrite` through `node:fs` on a small LRU of open descriptors
 *   ({@linkcode MAX_OPEN_FILES}), straight from and into the caller's buffer; the LRU, the loops and the checked open
 *   for writing are those of `file_io.ts`, shared with the writer thread and `create`.
 * - `node:fs` and `node:crypto` are loaded on first use (`node_builtin.ts`), not with this module: a download whose
 *   pieces the writer thread stores ({@linkcode PieceStore.planWrite}) into an empty folder never loads them on the
 *   main thread. Directories, the output check and `lstat`s go through Deno's own file API.
 * @module
 */
import type * as NodeFs from "node:fs";
import type * as NodeCrypto from "node:crypto";
import { dirname, join as joinPath, resolve as resolvePath } from "../path.ts";
import type { Metainfo } from "../metainfo.ts";
import { Bitfield } from "../bitfield.ts";
import { MAX_OPEN_FILES } from "../limits.ts";
import { FdCache, openDirChecked, openForRead, openForWrite, readFully, writeFully } from "./file_io.ts";
import { nodeBuiltin } from "../node_builtin.ts";
import { blockSpans, type FileSpan, payloadSpans, pieceSpans } from "./layout.ts";
import { osCode, refusalOrWrap, StorageError, type WarningCode } from "./storage_error.ts";
import { nextTurn } from "../turns.ts";
import { sleep } from "../timers.ts";

export { StorageError, type StorageErrorCode } from "./storage_error.ts";

/** Wraps an OS error met while doing `op` on `path` in a {@linkcode StorageError}. */
const wrap = StorageError.fromOs;

function isMissing(e: unknown): boolean {
  const c = osCode(e);
  return c === "ENOENT" || c === "ENOTDIR";
}

/** Bytes read per `readSync` while verifying; also how often verify yields to the event loop. */
const VERIFY_CHUNK_BYTES = 8 * 1024 * 1024;
/** How often a check lets the event loop wait on the OS (a timer turn), so that a signal is seen (ms). */
const SIGNAL_TURN_MS = 100;

/** `node:fs`, loaded on first use. */
const fs = (): typeof NodeFs => nodeBuiltin<typeof NodeFs>("node:fs");

/**
 * One span of a piece write: write `length` bytes from `pieceOffset` in the piece to `fileOffset` in `path`, a file
 * of `fileLength` bytes. The writer opens `path` itself with the store's checks (`openForWrite` of `file_io.ts`);
 * `expected` is where the kernel must say its descriptor is (outDir's symlinks resolved), or null when that cannot
 * be known.
 */
export interface WriteSpan {
  readonly path: string;
  readonly fileIndex: number;
  readonly pieceOffset: number;
  readonly length: number;
  readonly fileOffset: number;
  readonly fileLength: number;
  readonly expected: string | null;
  /** The file holds verified data: the writer must not create it or extend it (see `openForWrite`). */
  readonly holdsData: boolean;
}

/** Where {@linkcode PieceStore.planWrite} says one piece goes. */
export interface WritePlan {
  readonly piece: number;
  readonly spans: readonly WriteSpan[];
}

/** Options for {@linkcode PieceStore.open}. */
export interface PieceStoreOptions {
  /** File indexes the user wants (default: all); {@linkcode PieceStore.ensureFiles} creates only these. */
  readonly selected?: ReadonlySet<number>;
  /**
   * The caller means to read (`verify`, `seed`): {@linkcode PieceStore.open} does not check that `outDir` is writable,
   * so data on a read-only mount can be used. Writes remain possible and open their files when they happen.
   */
  readonly readOnly?: boolean;
  /**
   * Receives problems that do not cost the result, each message once: a resume record that could not be saved (a
   * symlinked `.btfetch`, a read-only mount, a full disk). Default: one `Warning: ...` line on stderr.
   */
  readonly onWarning?: (e: StorageError, code?: WarningCode) => void;
}

/** Options for {@linkcode PieceStore.verify}. */
export interface VerifyOptions {
  /** Which pieces to check (default: all). */
  readonly pieces?: Bitfield;
  /** Called after each chunk with pieces checked so far and the number to check. */
  readonly onProgress?: (checked: number, total: number) => void;
  /** Aborts the check: verify rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/**
 * A torrent's pieces on disk under `outDir`. Owns file descriptors: call {@linkcode PieceStore.close} when done.
 * Not safe to use from two processes at once.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const store = PieceStore.open({ files: [], pieceCount: 0 } as never, "/tmp/nowhere", { readOnly: true });
 * eq(store.outDir, "/tmp/nowhere");
 * store.close();
 * ```
 */
export class PieceStore {
  /** The absolute output directory; files land at `outDir/<path>`. */
  readonly outDir: string;
  /** The files the user selected, or undefined for all. */
  readonly selected: ReadonlySet<number> | undefined;
  readonly #meta: Metainfo;
  /** Open descriptors by file index. */
  readonly #fds: FdCache<number>;
  /** Directories under outDir already checked (or made) to be real directories. */
  readonly #safeDirs = new Set<string>();
  /** By file index, 1 when the file holds verified data ({@linkcode PieceStore.noteVerified}). */
  readonly #holds: Uint8Array;
  readonly #onWarning: (e: StorageError, code?: WarningCode) => void;
  readonly #warned = new Set<string>();
  #outDirMade = false;
  /** outDir with every symlink resolved, once it exists; undefined until then. */
  #realOutDir: string | undefined;

  private constructor(meta: Metainfo, outDir: string, opts: PieceStoreOptions) {
    this.#meta = meta;
    this.#holds = new Uint8Array(meta.files.length);
    this.outDir = outDir;
    this.selected = opts.selected;
    this.#onWarning = opts.onWarning ?? ((e) => console.error(`Warning: ${e.message}`));
    this.#fds = new FdCache<number>(
      { closeSync: (fd) => fs().closeSync(fd) },
      MAX_OPEN_FILES,
      (i, write) => this.#openFile(i, write),
      (i, writable, e) => {
        throw wrap(writable ? "write" : "read", this.filePath(i), e);
      },
    );
  }

  /**
   * Prepares to store `meta`'s files under `outDir` (made absolute). Unless `opts.readOnly` is set, checks that
   * `outDir` can be created and written ({@linkcode checkOutputDir}, which leaves nothing behind); nothing else is
   * touched until a piece is written.
   * @throws {StorageError} when `outDir` cannot be created or written (and `readOnly` is not set).
   * @example
   * ```ts
   * import { strictEqual as eq } from "node:assert/strict";
   * const files = [{ index: 0, path: ["t", "a"], length: 1, offset: 0, padding: false }];
   * const store = PieceStore.open({ files, pieceCount: 1 } as never, "/tmp/x", { selected: new Set([0]), readOnly: true });
   * eq(store.filePath(0), "/tmp/x/t/a");
   * ```
   */
  static open(meta: Metainfo, outDir: string, opts: PieceStoreOptions = {}): PieceStore {
    const abs = resolvePath(outDir);
    if (!opts.readOnly) checkOutputDir(abs);
    return new PieceStore(meta, abs, opts);
  }

  /**
   * Reports a problem that does not cost the result to the `onWarning` option (with `code` when a program may act on
   * it), once per message.
   * @example
   * ```ts
   * import { strictEqual as eq } from "node:assert/strict";
   * const seen: string[] = [];
   * const store = PieceStore.open({ files: [], pieceCount: 0 } as never, "/tmp/w", {
   *   readOnly: true,
   *   onWarning: (e) => seen.push(e.code),
   * });
   * const e = new StorageError("unsafe-path", "/tmp/w/.btfetch", "it is a symbolic link");
   * store.warn(e);
   * store.warn(e);
   * eq(seen.join(), "unsafe-path");
   * ```
   */
  warn(e: StorageError, code?: WarningCode): void {
    if (this.#warned.has(e.message)) return;
    this.#warned.add(e.message);
    this.#onWarning(e, code);
  }

  /**
   * The absolute path of file `fileIndex` on disk.
   * @throws {RangeError} when there is no such file.
   */
  filePath(fileIndex: number): string {
    const f = this.#meta.files[fileIndex];
    if (f === undefined) {
      throw new RangeError(`Cannot find file ${fileIndex}: the torrent has ${this.#meta.files.length} files`);
    }
    return joinPath(this.outDir, ...f.path);
  }

  #pieceLength(piece: number): number {
    const m = this.#meta;
    if (!Number.isInteger(piece) || piece < 0 || piece >= m.pieceCount) {
      throw new RangeError(`Cannot use piece ${piece}: the torrent has ${m.pieceCount} pieces`);
    }
    return Math.min(m.pieceLength, m.totalLength - piece * m.pieceLength);
  }

  /**
   * Writes a whole, verified piece to every non-padding file it spans, creating directories and files as needed.
   * Writes straight from `data` (no copy).
   * @throws {RangeError} when the piece does not exist or `data` is not exactly its length.
   * @throws {StorageError} when a file cannot be created or written; `unsafe-path` when it is a link.
   */
  writePiece(piece: number, data: Uint8Array): void {
    const plen = this.#pieceLength(piece);
    if (data.length !== plen) {
      throw new RangeError(`Cannot write piece ${piece}: got ${data.length} bytes, the piece has ${plen}`);
    }
    const files = this.#meta.files;
    for (const s of pieceSpans(this.#meta, piece)) {
      if (files[s.fileIndex].padding) continue;
      const fd = this.#writable(s.fileIndex);
      try {
        writeFully(fs(), fd, data, s.pieceOffset, s.length, s.fileOffset);
      } catch (e) {
        throw wrap("write", this.filePath(s.fileIndex), e);
      }
    }
    this.noteVerified(piece);
  }

  /**
   * Records that piece `piece` is verified and on disk (written, or found there): the files it spans now hold data
   * that a write must never replace with zeros, so from now on they are never created or extended again (a file
   * removed or cut while btfetch runs is then an error, not a file of zeros passed off as the data).
   * @throws {RangeError} when the piece does not exist.
   */
  noteVerified(piece: number): void {
    for (const s of pieceSpans(this.#meta, piece)) this.#holds[s.fileIndex] = 1;
  }

  /** {@linkcode PieceStore.noteVerified} for every piece of `have` (what a resume record or a hash found). */
  noteHave(have: Bitfield): void {
    for (let p = 0; p < this.#meta.pieceCount; p++) if (have.has(p)) this.noteVerified(p);
  }

  /**
   * Where piece `piece` goes, for a writer on another thread (descriptors cannot cross threads in Deno): each
   * non-padding span's file, with the checks it must pass when the writer opens it (see {@linkcode WriteSpan}).
   * Makes (and checks, refusing links) the directories on the way; the writer creates and checks the files.
   * @throws {StorageError} when a directory cannot be made; `unsafe-path` when one is a link.
   */
  planWrite(piece: number): WritePlan {
    const files = this.#meta.files;
    const spans: WriteSpan[] = [];
    for (const s of pieceSpans(this.#meta, piece)) {
      const f = files[s.fileIndex];
      if (f.padding) continue;
      this.#checkParents(s.fileIndex, true);
      const real = this.#realOut();
      spans.push({
        path: this.filePath(s.fileIndex),
        fileIndex: s.fileIndex,
        pieceOffset: s.pieceOffset,
        length: s.length,
        fileOffset: s.fileOffset,
        fileLength: f.length,
        expected: real === null ? null : joinPath(real, ...f.path),
        holdsData: this.#holds[s.fileIndex] === 1,
      });
    }
    return { piece, spans };
  }

  /** A writable descriptor for file `i`, created as needed. */
  #writable(i: number): number {
    const fd = this.#fds.get(i, true);
    if (fd === null) throw new StorageError("create", this.filePath(i), "the file could not be opened");
    return fd;
  }

  /**
   * Reads piece `piece` into `into` (or a new buffer); padding reads as zeros.
   * @returns the piece's bytes (a view of `into` when given), or null when a file it needs is missing or too short.
   * @throws {RangeError} when the piece does not exist or `into` is too small.
   * @throws {StorageError} when a file exists but cannot be read.
   */
  readPiece(piece: number, into?: Uint8Array): Uint8Array | null {
    const plen = this.#pieceLength(piece);
    const buf = this.#buffer(plen, into);
    return this.#readSpans(pieceSpans(this.#meta, piece), buf) < 0 ? buf : null;
  }

  /**
   * Reads `length` bytes at `begin` in piece `piece` (to serve a peer's request); padding reads as zeros.
   * @returns the bytes (a view of `into` when given).
   * @throws {RangeError} when the range is not inside the piece or `into` is too small.
   * @throws {StorageError} `read` when a file is missing or too short, or cannot be read.
   */
  readBlock(piece: number, begin: number, length: number, into?: Uint8Array): Uint8Array {
    // blockSpans counts pieceOffset from the piece's start; here the buffer starts at `begin`
    const spans = blockSpans(this.#meta, piece, begin, length).map((s) => ({
      ...s,
      pieceOffset: s.pieceOffset - begin,
    }));
    const buf = this.#buffer(length, into);
    const bad = this.#readSpans(spans, buf);
    if (bad >= 0) {
      throw new StorageError("read", this.filePath(bad), `the file is missing or shorter than piece ${piece} needs`);
    }
    return buf;
  }

  #buffer(length: number, into: Uint8Array | undefined): Uint8Array {
    if (into === undefined) return new Uint8Array(length);
    if (into.length < length) throw new RangeError(`Cannot read ${length} bytes into a ${into.length}-byte buffer`);
    return into.subarray(0, length);
  }

  /**
   * Reads the spans into `buf` at their piece offsets; returns -1, or the index of a missing or short file (then
   * `got.bytes` says how many bytes of its span were read: 0 for a missing file).
   */
  #readSpans(spans: readonly FileSpan[], buf: Uint8Array, missing?: Set<number>, got?: { bytes: number }): number {
    const files = this.#meta.files;
    for (const s of spans) {
      if (files[s.fileIndex].padding) {
        buf.fill(0, s.pieceOffset, s.pieceOffset + s.length);
        continue;
      }
      if (got) got.bytes = 0;
      if (missing?.has(s.fileIndex)) return s.fileIndex;
      const fd = this.#fds.get(s.fileIndex, false);
      if (fd === null) {
        missing?.add(s.fileIndex);
        return s.fileIndex;
      }
      let n: number;
      try {
        n = readFully(fs(), fd, buf, s.pieceOffset, s.length, s.fileOffset);
      } catch (e) {
        throw wrap("read", this.filePath(s.fileIndex), e);
      }
      if (n < s.length) {
        if (got) got.bytes = n;
        return s.fileIndex;
      }
    }
    return -1;
  }

  /**
   * Hashes the pieces on disk against the torrent's piece hashes. Reads in chunks of several MiB and yields to the
   * event loop after each, so the process stays responsive. Missing or short files make their pieces absent.
   * @returns the pieces whose data matches.
   * @throws {StorageError} when a file exists but cannot be read, or a path is unsafe.
   * @throws when `signal` aborts: its `reason`.
   */
  async verify(opts: VerifyOptions = {}): Promise<Bitfield> {
    const m = this.#meta;
    const pl = m.pieceLength;
    const want = opts.pieces ?? Bitfield.full(m.pieceCount);
    const total = want.count;
    const have = new Bitfield(m.pieceCount);
    const perChunk = Math.max(1, Math.floor(VERIFY_CHUNK_BYTES / pl));
    const buf = new Uint8Array(Math.min(perChunk * pl, Math.max(m.totalLength, 1)));
    const bad = new Uint8Array(perChunk);
    const missing = new Set<number>();
    let checked = 0;
    let p = 0;
    let lastWait = performance.now();
    while (p < m.pieceCount) {
      opts.signal?.throwIfAborted();
      if (!want.has(p)) {
        p++;
        continue;
      }
      let q = p + 1;
      while (q < m.pieceCount && q - p < perChunk && want.has(q)) q++;
      const start = p * pl;
      const length = Math.min(q * pl, m.totalLength) - start;
      bad.fill(0);
      const got = { bytes: 0 };
      for (const s of payloadSpans(m, start, length)) {
        if (this.#readSpans([s], buf, missing, got) >= 0) {
          // a short file: the pieces it covers in full still count; bad from the first one it cuts short
          const last = Math.floor((s.pieceOffset + s.length - 1) / pl);
          for (let k = Math.floor((s.pieceOffset + got.bytes) / pl); k <= last; k++) bad[k] = 1;
        }
      }
      let hashedAny = false;
      for (let i = p; i < q; i++) {
        if (bad[i - p]) continue;
        hashedAny = true;
        const off = (i - p) * pl;
        const digest = nodeBuiltin<typeof NodeCrypto>("node:crypto").createHash("sha1")
          .update(buf.subarray(off, off + Math.min(pl, m.totalLength - i * pl))).digest();
        if (equal20(digest, m.pieceHashes, i * 20)) have.set(i);
      }
      checked += q - p;
      opts.onProgress?.(checked, total);
      p = q;
      // yield to the event loop after real work (a missing file costs nothing; a timer would cost ~2 ms a turn), and
      // let it wait on the OS at least every SIGNAL_TURN_MS: a turn through a message alone never polls for signals
      // (tokio's driver is polled when the loop waits), so SIGINT would go unseen until the whole check ended
      if (hashedAny) {
        if (performance.now() - lastWait >= SIGNAL_TURN_MS) {
          await sleep(0);
          lastWait = performance.now();
        } else await nextTurn();
      }
    }
    opts.signal?.throwIfAborted();
    return have;
  }

  /**
   * Makes the selected non-padding files whole at completion: creates the zero-length ones that do not exist yet (no
   * piece ever writes them) and sizes one that exists at another length to the torrent's; a regular file that
   * exists at its length is left untouched (not even opened, so complete data on a read-only mount passes). A
   * non-empty file that is missing is not made again: every piece of it was verified and written, so it was removed
   * while btfetch ran, and a file of zeros in its place would pass for the data.
   * @throws {StorageError} when a file or directory cannot be created; `write` for a removed file; `unsafe-path` for a
   * link on the way.
   */
  ensureFiles(): void {
    const files = this.#meta.files;
    for (let i = 0; i < files.length; i++) {
      if (files[i].padding || (this.selected !== undefined && !this.selected.has(i))) continue;
      if (this.#checkParents(i, false)) {
        const path = this.filePath(i);
        let st: Deno.FileInfo | null = null;
        try {
          st = Deno.lstatSync(path);
        } catch (e) {
          if (!isMissing(e)) throw wrap("read", path, e);
        }
        if (st !== null && st.isFile && st.size === files[i].length) continue;
        if (st === null && files[i].length > 0) {
          throw new StorageError(
            "write",
            path,
            "it is gone (removed while btfetch ran), and its verified data with it",
          );
        }
      } else if (files[i].length > 0) {
        throw new StorageError("write", this.filePath(i), "its folder is gone (removed while btfetch ran)");
      }
      this.#writable(i);
    }
  }

  /**
   * Flushes written data of the open files to the device (`fdatasync`); files only read are left alone.
   * @throws {StorageError} when the device reports an error.
   */
  flush(): void {
    for (const [i, h] of this.#fds.entries()) {
      if (!h.writable) continue;
      try {
        fs().fdatasyncSync(h.fd);
      } catch (e) {
        throw wrap("write", this.filePath(i), e);
      }
    }
  }

  /**
   * Closes every open file; the store stays usable and reopens files on demand.
   * @throws {StorageError} when closing a file reports an error (after trying to close them all).
   */
  close(): void {
    this.#fds.closeAll();
  }

  /**
   * Opens file `i` for the descriptor cache. For writing, creates directories and the file (sized to the torrent's
   * length) and refuses links (see the module policy); for reading, returns null when the file or a parent is missing.
   */
  #openFile(i: number, write: boolean): number | null {
    const path = this.filePath(i);
    if (!this.#checkParents(i, write)) return null;
    if (write) {
      try {
        return openForWrite(fs(), path, this.#meta.files[i].length, this.#expectedAt(i), this.#holds[i] === 1);
      } catch (e) {
        throw refusalOrWrap("create", path, e);
      }
    }
    try {
      Deno.lstatSync(path); // a missing file needs no node:fs to say so (the check of a fresh download)
    } catch (e) {
      if (!isMissing(e)) throw wrap("read", path, e);
      return null;
    }
    try {
      // data served to peers must not come from outside outDir through a directory swapped for a link after its
      // check (checked directories are remembered; the descriptor is not)
      return openForRead(fs(), path, this.#expectedAt(i));
    } catch (e) {
      if (isMissing(e)) return null;
      throw refusalOrWrap("read", path, e);
    }
  }

  /** outDir with its symlinks resolved (once it exists), or null when that cannot be known. */
  #realOut(): string | null {
    if (this.#realOutDir === undefined) {
      try {
        this.#realOutDir = Deno.realPathSync(this.outDir);
      } catch {
        return null; // not made yet: asked again next time
      }
    }
    return this.#realOutDir;
  }

  /**
   * Where the kernel must say a descriptor of file `i` is (Linux `/proc/self/fd`): `outDir/<path of file i>` with
   * outDir's own symlinks resolved. Anything else means a directory on the way was swapped for a symlink after it was
   * checked. Null where that cannot be known.
   */
  #expectedAt(i: number): string | null {
    const real = this.#realOut();
    return real === null ? null : joinPath(real, ...this.#meta.files[i].path);
  }

  /**
   * Checks (and with `create`, makes) each directory between outDir and file `i`, refusing symlinks.
   * @returns false when a directory is missing (or is not a directory) and `create` is false.
   */
  #checkParents(i: number, create: boolean): boolean {
    if (create && !this.#outDirMade) {
      try {
        Deno.mkdirSync(this.outDir, { recursive: true });
      } catch (e) {
        throw wrap("create", this.outDir, e);
      }
      this.#outDirMade = true;
    }
    const parts = this.#meta.files[i].path;
    let dir = this.outDir;
    for (let k = 0; k < parts.length - 1; k++) {
      const parent = dir;
      dir = joinPath(dir, parts[k]);
      if (this.#safeDirs.has(dir)) continue;
      const real = this.#realOut();
      const made = create && real !== null
        ? () => makeDirIn(parent, joinPath(real, ...parts.slice(0, k)), parts[k])
        : undefined;
      if (!checkDir(dir, create, made)) return false;
      this.#safeDirs.add(dir);
    }
    return true;
  }
}

/**
 * Checks that `outDir` can hold output, before any work that would be lost otherwise: every part of it that exists is
 * a directory, the missing ones can be made, and a file can be created in it. It does so for real (makes the missing
 * directories, creates and deletes a probe file, then removes the directories it made), so it leaves nothing behind
 * and catches what permission bits do not show (a read-only mount, `/proc`, root on a read-only bind mount).
 * @throws {StorageError} `not-a-file` when `outDir` is a file; `create` when a part of it is a file or it cannot be
 * made; `permission` on a read-only mount or without permission.
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * checkOutputDir("/tmp/btfetch-doc-out/sub"); // fine, and /tmp/btfetch-doc-out is not left behind
 * throws(() => checkOutputDir("/proc/btfetch-doc-out"), StorageError);
 * ```
 */
export function checkOutputDir(outDir: string): void {
  const abs = resolvePath(outDir);
  const missing: string[] = [];
  for (let p = abs;;) {
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(p); // outDir and its parents are the user's choice and may be symlinks
    } catch (e) {
      if (osCode(e) !== "ENOENT") throw wrap("create", abs, e);
      missing.unshift(p);
      const up = dirname(p);
      if (up === p) break;
      p = up;
      continue;
    }
    if (!st.isDirectory) {
      throw p === abs
        ? new StorageError("not-a-file", abs, "it exists and is not a directory")
        : new StorageError("create", abs, `${p} is a file, not a directory`);
    }
    break;
  }
  const made: string[] = [];
  try {
    for (const d of missing) {
      try {
        Deno.mkdirSync(d);
        made.push(d);
      } catch (e) {
        if (osCode(e) !== "EEXIST") throw wrap("create", abs, e);
      }
    }
    const probe = joinPath(abs, `.btfetch-probe-${Deno.pid}-${Math.random().toString(36).slice(2)}`);
    let file: Deno.FsFile;
    try {
      // O_EXCL: a link planted at the probe's name is never followed
      file = Deno.openSync(probe, { write: true, createNew: true, mode: 0o600 });
    } catch (e) {
      // say what failed without the probe's name, which means nothing to the user
      const os = e instanceof Error ? e.message.replace(/(, |: )open '.*'$/s, "") : String(e);
      throw new StorageError(wrap("create", abs, e).code, abs, `cannot create a file in it: ${os}`, { cause: e });
    }
    file.close();
    Deno.removeSync(probe);
  } finally {
    for (const d of made.reverse()) {
      try {
        Deno.removeSync(d); // only when still empty
      } catch {
        // something else put a file there meanwhile: leave it
      }
    }
  }
}

/**
 * Makes directory `name` in `parent`, on Linux through the descriptor of `parent` once it is found at `expectedParent`
 * ({@linkcode openDirChecked}: never by path where that check can be made), elsewhere by path.
 * @throws {StorageError} `unsafe-path` when `parent` is elsewhere; the OS error (`EEXIST` when it exists).
 */
function makeDirIn(parent: string, expectedParent: string, name: string): void {
  const path = joinPath(parent, name);
  if (Deno.build.os !== "linux") {
    Deno.mkdirSync(path);
    return;
  }
  let dir: { fd: number; via: string | null };
  try {
    dir = openDirChecked(fs(), parent, expectedParent);
  } catch (e) {
    throw (e as { refusal?: string }).refusal ? refusalOrWrap("create", path, e) : e;
  }
  const at = dir.via === null ? path : `${dir.via}/${name}`;
  try {
    Deno.mkdirSync(at);
  } catch (e) {
    // the OS names the path it was given: name the folder's own
    if (e instanceof Error) e.message = e.message.split(at).join(path);
    throw e;
  } finally {
    fs().closeSync(dir.fd);
  }
}

/**
 * Whether `dir` is a real directory, making it when missing and `create` is set (with `make` when given: see
 * {@linkcode makeDirIn}).
 * @throws {StorageError} `unsafe-path` for a symlink; with `create`, when it is not a directory or cannot be made.
 */
export function checkDir(dir: string, create: boolean, make?: () => void): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(dir);
    } catch (e) {
      if (!isMissing(e)) throw wrap(create ? "create" : "read", dir, e);
      if (!create) return false;
      try {
        if (make) make();
        else Deno.mkdirSync(dir);
        return true;
      } catch (e2) {
        if (e2 instanceof StorageError) throw e2;
        if (osCode(e2) === "EEXIST") continue; // made by someone else meanwhile: look again
        throw wrap("create", dir, e2);
      }
    }
    if (st.isSymlink) throw new StorageError("unsafe-path", dir, "it is a symbolic link");
    if (st.isDirectory) return true;
    if (!create) return false;
    throw new StorageError("create", dir, "it exists and is not a directory");
  }
  throw new StorageError("create", dir, "it keeps changing while being created");
}

function equal20(a: Uint8Array, b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 20; i++) if (a[i] !== b[at + i]) return false;
  return true;
}
