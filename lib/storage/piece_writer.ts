/**
 * Hashes and writes completed pieces on a worker thread, so SHA-1 and disk writes overlap with the network instead
 * of stalling it. A piece's ArrayBuffer is transferred to the thread and back with the outcome, so nothing is copied
 * between threads (a SharedArrayBuffer would avoid the hand-over, but V8 fills one a byte at a time from unaligned
 * sources, which cost the main thread a quarter of a second per GiB); the piece is hashed from memory (never re-read
 * from disk) and written only if its hash matches. The thread owns the files it writes: it creates, sizes and checks
 * them itself on first write (`openForWrite` of `file_io.ts`: no symbolic link, no other hard link, the descriptor
 * where the {@linkcode PieceStore}'s plan expects it), so a path swapped in is refused (`unsafe-path`), never written
 * through; and it flushes them ({@linkcode PieceWriter.flush}) before a resume record claims their data. The main
 * thread then opens no file for a download into an empty folder, and loads no `node:fs` for it.
 *
 * For blame, the outcome can carry each 16 KiB block's SHA-1, computed on the worker too: always for a piece that
 * failed, and for one that passed when the submit asks.
 *
 * The thread itself (its inline module source, and starting it ahead of need) is in `writer_thread.ts`.
 * @module
 */
import type { PieceStore, WritePlan } from "./disk.ts";
import { refusalOrWrap, StorageError } from "./storage_error.ts";
import { takeWriterThread } from "./writer_thread.ts";
import { clearTimer, setTimer } from "../timers.ts";

export { discardWriterThread, prestartWriterThread } from "./writer_thread.ts";

interface Job {
  readonly index: number;
  readonly plan: WritePlan;
  /** Where the piece's bytes sit in the transferred buffer. */
  readonly byteOffset: number;
  readonly length: number;
}

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  /** The piece's buffer, handed back. */
  readonly buffer: ArrayBuffer;
  readonly blocks?: Uint8Array;
  readonly error?: ReplyError;
}

interface ReplyError {
  readonly span: number;
  /** What failed: the checked open (which creates the file) or the write itself. */
  readonly op: "create" | "write";
  /** The file it failed on when it is not the span's (closing another file, to make room). */
  readonly path?: string;
  readonly code?: string;
  readonly message: string;
  /** Set when the file was refused (see `openForWrite`). */
  readonly refusal?: string;
}

/** Buffers made ready by {@linkcode PieceWriter.prepare}, a MiB or more of them a message. */
interface PreparedReply {
  readonly prepared: readonly ArrayBuffer[];
}

/** The thread's answer to a flush. */
interface FlushReply {
  readonly flushed: number;
  readonly error: { readonly path: string; readonly code?: string; readonly message: string } | null;
}

/**
 * Reports a piece's outcome: `ok` means it matched its hash and is on disk. `blockDigests`, when present, holds the
 * SHA-1 of each 16 KiB block of the piece (the last may be shorter), 20 bytes each, in order: always given for a piece
 * that failed, and for one that passed when its submit asked for them. `data` is the piece's bytes handed back: a view
 * like the one submitted, of the same (transferred) buffer.
 */
export type PieceOutcome = (index: number, ok: boolean, blockDigests: Uint8Array | undefined, data: Uint8Array) => void;

/** Options for {@linkcode PieceWriter.submit}. */
export interface SubmitOptions {
  /** Also compute the block digests of a piece that passes (a failed piece always gets them). */
  readonly blockDigests?: boolean;
}

/** A worker thread that verifies and stores pieces. Owns the worker: call {@linkcode PieceWriter.close}. */
export class PieceWriter {
  readonly #store: PieceStore;
  readonly #worker: Worker;
  readonly #jobs = new Map<number, Job>();
  readonly #onOutcome: PieceOutcome;
  readonly #onError: (e: StorageError) => void;
  #nextId = 1;
  #drained: (() => void)[] = [];
  readonly #flushes = new Map<number, { resolve: () => void; reject: (e: StorageError) => void }>();
  #closed = false;
  #onPrepared: ((buf: Uint8Array) => void) | null = null;

  /** Starts the worker; outcomes arrive in `onOutcome`, write failures in `onError`. */
  constructor(store: PieceStore, onOutcome: PieceOutcome, onError: (e: StorageError) => void) {
    this.#store = store;
    this.#onOutcome = onOutcome;
    this.#onError = onError;
    this.#worker = takeWriterThread();
    this.#worker.onmessage = (e: MessageEvent<Reply | FlushReply | PreparedReply>) => {
      if ("prepared" in e.data) {
        if (!this.#closed) { for (const b of e.data.prepared) this.#onPrepared?.(new Uint8Array(b)); }
      } else if ("flushed" in e.data) this.#flushed(e.data);
      else this.#reply(e.data);
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const error = new StorageError("write", this.#store.outDir, `the piece writer failed: ${e.message}`);
      for (const f of this.#flushes.values()) f.reject(error); // a dead thread answers no flush
      this.#flushes.clear();
      this.#onError(error);
    };
  }

  /**
   * Asks the thread for `count` buffers of `length` bytes whose memory is mapped in already (each page written once),
   * handed to `onReady` one by one as they come. Fresh memory costs a page fault per 4 KiB on its first write; made
   * there while the thread waits for its first piece, those faults are not taken on the caller's thread while the first
   * blocks arrive (a quarter of a millisecond per MiB on a plain machine, more in a VM).
   */
  prepare(length: number, count: number, onReady: (buf: Uint8Array) => void): void {
    if (this.#closed || count <= 0) return;
    this.#onPrepared = onReady;
    this.#worker.postMessage({ prepare: { length, count } });
  }

  /** Pieces submitted and not yet reported. */
  get pending(): number {
    return this.#jobs.size;
  }

  /**
   * Hashes piece `index` (whose bytes are `data`, a view of an ArrayBuffer) against `expected` and writes it if it
   * matches. `data.buffer` is transferred to the writer thread, so `data` is detached (empty) until the outcome hands
   * the bytes back. With `opts.blockDigests`, a piece that passes is reported with its block digests too.
   * @throws {StorageError} when a directory on the way cannot be made (`unsafe-path` for a link); a file that cannot
   * be created or written is reported to `onError`.
   * @throws {TypeError} when `data` is a view of a SharedArrayBuffer or of a detached buffer.
   */
  submit(index: number, data: Uint8Array, expected: Uint8Array, opts: SubmitOptions = {}): void {
    const buffer = data.buffer;
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0) {
      throw new TypeError("PieceWriter needs a view of an ArrayBuffer it can transfer");
    }
    const plan = this.#store.planWrite(index);
    const id = this.#nextId++;
    this.#jobs.set(id, { index, plan, byteOffset: data.byteOffset, length: data.length });
    this.#worker.postMessage({
      id,
      buffer,
      byteOffset: data.byteOffset,
      length: data.length,
      expected: expected.slice(),
      spans: plan.spans.map((s) => [
        s.path,
        s.pieceOffset,
        s.length,
        s.fileOffset,
        s.fileLength,
        s.expected,
        s.holdsData,
      ]),
      blocks: opts.blockDigests === true,
    }, [buffer]);
  }

  #reply(r: Reply): void {
    const job = this.#jobs.get(r.id);
    if (!job) return;
    this.#jobs.delete(r.id);
    if (r.error) {
      const span = job.plan.spans[r.error.span];
      const path = r.error.path || (span ? this.#store.filePath(span.fileIndex) : this.#store.outDir);
      const cause = Object.assign(new Error(r.error.message), { code: r.error.code, refusal: r.error.refusal });
      this.#onError(refusalOrWrap(r.error.op, path, cause));
    } else if (!this.#closed) {
      this.#onOutcome(job.index, r.ok, r.blocks, new Uint8Array(r.buffer, job.byteOffset, job.length));
    }
    if (this.#jobs.size === 0) {
      const waiters = this.#drained;
      this.#drained = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Flushes the data the thread has written (`fdatasync` of the files it has open for writing) once the pieces
   * submitted before are written; the device works on the thread, not on the caller's.
   * @throws {StorageError} (rejects) when the device reports an error, or the writer is closed first.
   */
  flush(): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new StorageError("write", this.#store.outDir, "the piece writer is closed"));
    }
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      this.#flushes.set(id, { resolve, reject });
      this.#worker.postMessage({ flush: id });
    });
  }

  #flushed(r: FlushReply): void {
    const waiter = this.#flushes.get(r.flushed);
    if (!waiter) return;
    this.#flushes.delete(r.flushed);
    if (r.error === null) waiter.resolve();
    else {
      waiter.reject(StorageError.fromOs("write", r.error.path, Object.assign(new Error(r.error.message), r.error)));
    }
  }

  /** Resolves once every submitted piece has been reported, or after `timeoutMs`. */
  drain(timeoutMs = 30_000): Promise<void> {
    if (this.#jobs.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimer(resolve, timeoutMs);
      this.#drained.push(() => {
        clearTimer(timer);
        resolve();
      });
    });
  }

  /** Stops the worker; outcomes still pending are dropped (their pieces stay unverified). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.terminate();
    this.#jobs.clear();
    for (const w of this.#drained) w();
    this.#drained = [];
    for (const f of this.#flushes.values()) {
      f.reject(new StorageError("write", this.#store.outDir, "the piece writer was closed before its flush"));
    }
    this.#flushes.clear();
  }
}
