/**
 * Hashing a file set's pieces on several threads at once, the calling thread included: threads claim chunks of
 * whole pieces from a shared counter (Atomics), read them themselves and write the digests into a shared array, so
 * no chunk travels between threads and the workers' start-up overlaps with work. Used by `create`.
 *
 * This module loads no `node:` module until it hashes, so a caller can start the threads ({@linkcode HashThreads})
 * before it loads its own: a thread's start-up then overlaps the caller's.
 * @module
 */
import type * as fs from "node:fs";
import type { createHash } from "node:crypto";
import { FdCache, IO_SOURCE, readFully } from "./storage/file_io.ts";

/** The most hashing threads `create` starts besides its own. */
export const MAX_HASH_THREADS = 4;

/**
 * A hashing thread is started for every this many bytes at most: a thread takes ~50 ms to start (an isolate that
 * loads `node:fs` and `node:crypto`), in which the calling thread alone hashes ~80 MiB (2 cores, /dev/shm: 64 MiB
 * takes 52 ms alone, 57 ms with a thread; 128 MiB 102 ms alone, 79 ms with a thread).
 */
export const MIN_BYTES_PER_THREAD = 96 * 1024 * 1024;

/**
 * How many hashing threads are worth starting for `total` bytes besides the calling thread: one per other core, at
 * most {@linkcode MAX_HASH_THREADS}, none on one core or for less than {@linkcode MIN_BYTES_PER_THREAD} per thread.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(hashThreadsFor(1024, 8), 0);
 * eq(hashThreadsFor(1024 ** 3, 2), 1);
 * eq(hashThreadsFor(1024 ** 3, 1), 0);
 * eq(hashThreadsFor(1024 ** 3, 64), 4);
 * ```
 */
export function hashThreadsFor(total: number, cores: number = navigator.hardwareConcurrency || 1): number {
  return Math.max(0, Math.min(MAX_HASH_THREADS, cores - 1, Math.floor(total / MIN_BYTES_PER_THREAD)));
}

/**
 * How much each thread reads at a time: small enough to stay in a core's L2 cache between the read and the hash
 * (1 GiB on /dev/shm: reads of 1 MiB or more cost 0.5 s of kernel copying, reads of 128 KiB 0.13 s).
 */
export const HASH_READ_BYTES = 128 * 1024;

/** One file of the payload, in order. */
export interface ClaimSource {
  readonly path: string;
  readonly length: number;
}

/** The shared job: sources, geometry, and the SharedArrayBuffers for the counter and the digests. */
export interface ClaimJob {
  readonly sources: readonly ClaimSource[];
  readonly total: number;
  readonly pieceLength: number;
  /** Bytes claimed at a time: whole pieces. */
  readonly chunkBytes: number;
  /** Bytes read at a time within a chunk. */
  readonly readBytes: number;
  /** Int32 [next chunk, chunks done, error flag]. */
  readonly counter: SharedArrayBuffer;
  /** 20 bytes per piece. */
  readonly digests: SharedArrayBuffer;
}

/** The shared IO of `storage/file_io.ts`, passed in so {@linkcode claimLoop} stays self-contained. */
export interface ClaimIo {
  readonly FdCache: typeof FdCache;
  readonly readFully: typeof readFully;
}

/**
 * Claims and hashes chunks until none are left; returns an error message, or null. Self-contained (it is also the
 * body of the worker threads, via `toString()`), so it uses only its parameters.
 *
 * A chunk is read `readBytes` at a time into one small buffer and hashed as it comes: a buffer that fits the core's
 * cache makes the kernel's copy and the hash's read of it several times cheaper than a chunk-sized one.
 */
export function claimLoop(job: ClaimJob, fsm: typeof fs, hash: typeof createHash, io: ClaimIo): string | null {
  const ctr = new Int32Array(job.counter);
  const dig = new Uint8Array(job.digests);
  const chunks = Math.ceil(job.total / job.chunkBytes);
  const buf = new Uint8Array(Math.max(1, Math.min(job.readBytes, job.chunkBytes, job.total)));
  const starts: number[] = [];
  let acc = 0;
  for (const s of job.sources) {
    starts.push(acc);
    acc += s.length;
  }
  const fds = new io.FdCache<number>(fsm, 8, (i) => fsm.openSync(job.sources[i].path, "r"));
  try {
    for (;;) {
      if (Atomics.load(ctr, 2) !== 0) return null;
      const k = Atomics.add(ctr, 0, 1);
      if (k >= chunks) return null;
      const begin = k * job.chunkBytes;
      const end = Math.min(job.total, begin + job.chunkBytes);
      let piece = begin / job.pieceLength;
      let pieceEnd = Math.min(job.total, (piece + 1) * job.pieceLength);
      let h = hash("sha1");
      for (let pos = begin; pos < end;) {
        const length = Math.min(buf.length, end - pos);
        // find the first source that holds `pos` (binary search), then read across sources
        let lo = 0;
        let hi = job.sources.length - 1;
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1;
          if (starts[mid] <= pos) lo = mid;
          else hi = mid - 1;
        }
        let at = 0;
        for (let i = lo; at < length && i < job.sources.length; i++) {
          const s = job.sources[i];
          const from = pos + at - starts[i];
          if (from >= s.length) continue;
          const take = Math.min(length - at, s.length - from);
          const fd = fds.get(i, false);
          if (fd === null || io.readFully(fsm, fd, buf, at, take, from) < take) {
            throw new Error(`${s.path} shrank while being hashed`);
          }
          at += take;
        }
        // feed the pieces this read covers; a piece ends here or in a later read
        for (let off = 0; off < length;) {
          const take = Math.min(length - off, pieceEnd - pos - off);
          h.update(buf.subarray(off, off + take));
          off += take;
          if (pos + off === pieceEnd) {
            dig.set(h.digest(), piece * 20);
            piece++;
            pieceEnd = Math.min(job.total, (piece + 1) * job.pieceLength);
            if (pos + off < end) h = hash("sha1");
          }
        }
        pos += length;
      }
      Atomics.add(ctr, 1, 1);
    }
  } catch (e) {
    Atomics.store(ctr, 2, 1);
    return e instanceof Error ? e.message : String(e);
  } finally {
    fds.closeAll();
  }
}

const WORKER_SOURCE = `
import * as fs from "node:fs";
import { createHash } from "node:crypto";
${IO_SOURCE}
const claimLoop = ${claimLoop.toString()};
self.onmessage = (e) => {
  const error = claimLoop(e.data, fs, createHash, { FdCache, readFully });
  self.postMessage({ error });
};
`;

/**
 * Hashing worker threads, started ahead of their job so that their start-up overlaps the caller's own work; each
 * runs one job. Close them when done (`using` does): until then they keep the process alive.
 * @example
 * ```ts
 * using threads = HashThreads.start(0);
 * console.log(threads.size); // 0
 * ```
 */
export class HashThreads {
  readonly #workers: Worker[] = [];
  readonly #finished: Promise<string | null>[] = [];
  #used = false;

  private constructor() {}

  /**
   * Starts `count` threads. Each blocks this thread for a while (~25 ms here: Deno makes the isolate before `new
   * Worker` returns); they load their modules on their own.
   */
  static start(count: number): HashThreads {
    const t = new HashThreads();
    if (count <= 0) return t;
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    try {
      for (let i = 0; i < count; i++) {
        const w = new Worker(url, { type: "module" });
        t.#workers.push(w);
        t.#finished.push(
          new Promise((resolve) => {
            w.onmessage = (e: MessageEvent<{ error: string | null }>) => resolve(e.data.error);
            w.onerror = (e: ErrorEvent) => {
              e.preventDefault();
              resolve(e.message);
            };
          }),
        );
      }
    } catch (e) {
      t.close();
      throw e;
    } finally {
      URL.revokeObjectURL(url);
    }
    return t;
  }

  /** How many threads there are. */
  get size(): number {
    return this.#workers.length;
  }

  /**
   * Hands `job` to every thread; resolves with each thread's outcome (an error message, or null).
   * @throws {Error} when these threads already ran a job.
   */
  run(job: ClaimJob): Promise<(string | null)[]> {
    if (this.#used) throw new Error("These hashing threads already ran a job");
    this.#used = true;
    for (const w of this.#workers) w.postMessage(job);
    return Promise.all(this.#finished);
  }

  /** Ends the threads (at once, whatever they are doing). */
  close(): void {
    for (const w of this.#workers.splice(0)) w.terminate();
  }

  /** {@linkcode HashThreads.close} */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Hashes every piece of `sources` (concatenated) on this thread and `threads`: a number of worker threads to start
 * (and end), or threads the caller started (and ends). Resolves with the digests, 20 bytes per piece. Threads claim
 * `chunkBytes` (whole pieces) at a time and read `readBytes` at a time.
 * @throws {Error} (the promise rejects) with the first read error a thread met.
 */
export async function hashSources(
  sources: readonly ClaimSource[],
  pieceLength: number,
  chunkBytes: number,
  threads: number | HashThreads,
  readBytes: number = HASH_READ_BYTES,
): Promise<Uint8Array> {
  const total = sources.reduce((n, s) => n + s.length, 0);
  const pieces = Math.ceil(total / pieceLength);
  const job: ClaimJob = {
    sources: sources.map((s) => ({ path: s.path, length: s.length })),
    total,
    pieceLength,
    chunkBytes,
    readBytes,
    counter: new SharedArrayBuffer(12),
    digests: new SharedArrayBuffer(pieces * 20),
  };
  const own = typeof threads === "number" ? HashThreads.start(threads) : null;
  try {
    const finished = (own ?? threads as HashThreads).run(job);
    const [fsm, crypto] = await Promise.all([import("node:fs"), import("node:crypto")]);
    const mine = claimLoop(job, fsm, crypto.createHash, { FdCache, readFully });
    const errors = [mine, ...(await finished)].filter((e): e is string => e !== null);
    if (errors.length > 0) throw new Error(errors[0]);
    return new Uint8Array(job.digests).slice();
  } finally {
    own?.close();
  }
}
