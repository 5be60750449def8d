/**
 * SHA-1 of consecutive pieces on worker threads (`create`): either chunks the caller read into SharedArrayBuffers
 * (nothing is copied between threads), or file ranges each thread reads itself, so reading spreads over the threads. The workers are built from an inline module, so the
 * bundle and the compiled binary stay one file.
 * @module
 */

const WORKER_SOURCE = `
import { createHash } from "node:crypto";
import * as fs from "node:fs";
const fds = new Map();
let own = new Uint8Array(0);
function fdOf(path) {
  let fd = fds.get(path);
  if (fd === undefined) {
    if (fds.size >= 16) {
      for (const [p, old] of fds) { fs.closeSync(old); fds.delete(p); break; }
    }
    fd = fs.openSync(path, "r");
    fds.set(path, fd);
  }
  return fd;
}
function read(spans, length) {
  if (own.length < length) own = new Uint8Array(length);
  let at = 0;
  for (const [path, pos, len] of spans) {
    const fd = fdOf(path);
    let done = 0;
    while (done < len) {
      const n = fs.readSync(fd, own, at + done, len - done, pos + done);
      if (n <= 0) throw new Error(path + " shrank while being hashed");
      done += n;
    }
    at += len;
  }
  return own.subarray(0, length);
}
self.onmessage = (e) => {
  const { id, buffer, length, pieceLength, spans } = e.data;
  let view;
  try {
    view = spans ? read(spans, length) : new Uint8Array(buffer, 0, length);
  } catch (err) {
    self.postMessage({ id, error: String(err && err.message || err) });
    return;
  }
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
  readonly #waiting = new Map<number, { ok: (digests: Uint8Array) => void; fail: (e: Error) => void }>();
  #next = 0;
  #id = 1;

  /**
   * Starts `threads` workers (default: the number of CPUs, at most {@linkcode MAX_HASH_THREADS}; with the threads
   * reading their own chunks, measured on 2 cores, 2 threads beat 3).
   */
  constructor(threads = Math.min(MAX_HASH_THREADS, Math.max(1, navigator.hardwareConcurrency || 1))) {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    try {
      for (let i = 0; i < threads; i++) {
        const w = new Worker(url, { type: "module" });
        w.onmessage = (e: MessageEvent<{ id: number; digests?: Uint8Array; error?: string }>) => {
          const done = this.#waiting.get(e.data.id);
          this.#waiting.delete(e.data.id);
          if (e.data.digests) done?.ok(e.data.digests);
          else done?.fail(new Error(e.data.error ?? "hashing failed"));
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
    return this.#send({ buffer: chunk.buffer, length: chunk.length, pieceLength });
  }

  /**
   * The SHA-1 of each `pieceLength` piece of the bytes the `spans` name (`[path, position, length]`, concatenated;
   * `length` in all), read by the hashing thread itself, so reading spreads over the threads too.
   * @throws {Error} (the promise rejects) when a file cannot be read.
   */
  hashFileSpans(
    spans: readonly (readonly [string, number, number])[],
    length: number,
    pieceLength: number,
  ): Promise<Uint8Array> {
    return this.#send({ spans, length, pieceLength });
  }

  #send(msg: Record<string, unknown>): Promise<Uint8Array> {
    const id = this.#id++;
    const w = this.#workers[this.#next++ % this.#workers.length];
    return new Promise((ok, fail) => {
      this.#waiting.set(id, { ok, fail });
      w.postMessage({ id, ...msg });
    });
  }

  /** Stops the threads. */
  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers.length = 0;
  }
}
