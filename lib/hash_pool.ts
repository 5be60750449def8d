/**
 * SHA-1 of consecutive pieces on worker threads, so reading data and hashing it overlap (`create`). Chunks live in
 * SharedArrayBuffers, so nothing is copied between threads. The workers are built from an inline module, so the
 * bundle and the compiled binary stay one file.
 * @module
 */

const WORKER_SOURCE = `
import { createHash } from "node:crypto";
self.onmessage = (e) => {
  const { id, buffer, length, pieceLength } = e.data;
  const view = new Uint8Array(buffer, 0, length);
  const n = Math.ceil(length / pieceLength);
  const out = new Uint8Array(n * 20);
  for (let i = 0; i < n; i++) {
    const end = Math.min(length, (i + 1) * pieceLength);
    out.set(createHash("sha1").update(view.subarray(i * pieceLength, end)).digest(), i * 20);
  }
  self.postMessage({ id, digests: out }, [out.buffer]);
};
`;

/** The most hashing threads a pool starts. */
export const MAX_HASH_THREADS = 4;

/** A few hashing threads. Owns them: call {@linkcode HashPool.close}. */
export class HashPool {
  readonly #workers: Worker[] = [];
  readonly #waiting = new Map<number, (digests: Uint8Array) => void>();
  #next = 0;
  #id = 1;

  /**
   * Starts `threads` workers (default: one more than the CPUs, at most {@linkcode MAX_HASH_THREADS}: the reading
   * thread mostly waits on the kernel, and measured on 2 cores, 3 hashing threads beat 2).
   */
  constructor(threads = Math.min(MAX_HASH_THREADS, Math.max(1, navigator.hardwareConcurrency || 1) + 1)) {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    try {
      for (let i = 0; i < threads; i++) {
        const w = new Worker(url, { type: "module" });
        w.onmessage = (e: MessageEvent<{ id: number; digests: Uint8Array }>) => {
          const done = this.#waiting.get(e.data.id);
          this.#waiting.delete(e.data.id);
          done?.(e.data.digests);
        };
        this.#workers.push(w);
      }
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  /** How many threads hash. */
  get threads(): number {
    return this.#workers.length;
  }

  /**
   * The SHA-1 of each `pieceLength` piece of `chunk` (a view from offset 0 of a SharedArrayBuffer; the last piece
   * may be short), 20 bytes each. `chunk` must not change until the promise settles.
   */
  hashPieces(chunk: Uint8Array, pieceLength: number): Promise<Uint8Array> {
    if (!(chunk.buffer instanceof SharedArrayBuffer) || chunk.byteOffset !== 0) {
      throw new TypeError("hashPieces needs a view from the start of a SharedArrayBuffer");
    }
    const id = this.#id++;
    const w = this.#workers[this.#next++ % this.#workers.length];
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      w.postMessage({ id, buffer: chunk.buffer, length: chunk.length, pieceLength });
    });
  }

  /** Stops the threads. */
  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers.length = 0;
  }
}
