/**
 * Hashes and writes completed pieces on a worker thread, so SHA-1 and disk writes overlap with the network instead
 * of stalling it. A piece's ArrayBuffer is transferred to the thread and back with the outcome, so nothing is copied
 * between threads (a SharedArrayBuffer would avoid the hand-over, but V8 fills one a byte at a time from unaligned
 * sources, which cost the main thread a quarter of a second per GiB); the piece is hashed from memory (never re-read
 * from disk) and written only if its hash matches, to files the main thread's {@linkcode PieceStore} created and
 * checked. The worker opens them itself (never following a symbolic link) and
 * writes only if what it opened is the very file the store checked (same device and inode) and has no other hard
 * link, so a path swapped in between is refused (`unsafe-path`), never written through.
 *
 * For blame, the outcome can carry each 16 KiB block's SHA-1, computed on the worker too: always for a piece that
 * failed, and for one that passed when the submit asks.
 *
 * The thread itself (its inline module source, and starting it ahead of need) is in `writer_thread.ts`.
 * @module
 */
import { type PieceStore, StorageError, type WritePlan } from "./disk.ts";
import { takeWriterThread } from "./writer_thread.ts";

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
  readonly error?: {
    readonly span: number;
    readonly code?: string;
    readonly message: string;
    readonly unsafe: boolean;
  };
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
  #closed = false;

  /** Starts the worker; outcomes arrive in `onOutcome`, write failures in `onError`. */
  constructor(store: PieceStore, onOutcome: PieceOutcome, onError: (e: StorageError) => void) {
    this.#store = store;
    this.#onOutcome = onOutcome;
    this.#onError = onError;
    this.#worker = takeWriterThread();
    this.#worker.onmessage = (e: MessageEvent<Reply>) => this.#reply(e.data);
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#onError(new StorageError("write", this.#store.outDir, `the piece writer failed: ${e.message}`));
    };
  }

  /** Pieces submitted and not yet reported. */
  get pending(): number {
    return this.#jobs.size;
  }

  /**
   * Hashes piece `index` (whose bytes are `data`, a view of an ArrayBuffer) against `expected` and writes it if it
   * matches. `data.buffer` is transferred to the writer thread, so `data` is detached (empty) until the outcome hands
   * the bytes back. With `opts.blockDigests`, a piece that passes is reported with its block digests too.
   * @throws {StorageError} when a file cannot be opened for the write (`unsafe-path` for a link).
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
      spans: plan.spans.map((s) => [s.path, s.pieceOffset, s.length, s.fileOffset, s.dev, s.ino]),
      blocks: opts.blockDigests === true,
    }, [buffer]);
  }

  #reply(r: Reply): void {
    const job = this.#jobs.get(r.id);
    if (!job) return;
    this.#jobs.delete(r.id);
    if (r.error) {
      const span = job.plan.spans[r.error.span];
      const path = span ? this.#store.filePath(span.fileIndex) : this.#store.outDir;
      const cause = Object.assign(new Error(r.error.message), { code: r.error.code });
      this.#onError(
        r.error.unsafe
          ? new StorageError("unsafe-path", path, r.error.message, { cause })
          : StorageError.fromOs("write", path, cause),
      );
    } else if (!this.#closed) {
      this.#onOutcome(job.index, r.ok, r.blocks, new Uint8Array(r.buffer, job.byteOffset, job.length));
    }
    if (this.#jobs.size === 0) {
      const waiters = this.#drained;
      this.#drained = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves once every submitted piece has been reported, or after `timeoutMs`. */
  drain(timeoutMs = 30_000): Promise<void> {
    if (this.#jobs.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#drained.push(() => {
        clearTimeout(timer);
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
  }
}
