/**
 * Hashing a file set's pieces on several threads at once, the calling thread included: threads claim chunks of
 * whole pieces from a shared counter (Atomics), read them themselves and write the digests into a shared array, so
 * no chunk travels between threads and the workers' start-up overlaps with work. Used by `create`.
 * @module
 */
import * as fs from "node:fs";
import { createHash } from "node:crypto";
import { FdCache, IO_SOURCE, readFully } from "./storage/file_io.ts";

/** The most hashing threads `create` starts besides its own. */
export const MAX_HASH_THREADS = 4;

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
  readonly chunkBytes: number;
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
 */
export function claimLoop(job: ClaimJob, fsm: typeof fs, hash: typeof createHash, io: ClaimIo): string | null {
  const ctr = new Int32Array(job.counter);
  const dig = new Uint8Array(job.digests);
  const chunks = Math.ceil(job.total / job.chunkBytes);
  const buf = new Uint8Array(job.chunkBytes);
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
      const length = Math.min(job.chunkBytes, job.total - begin);
      // find the first source that holds `begin` (binary search), then read across sources
      let lo = 0;
      let hi = job.sources.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid] <= begin) lo = mid;
        else hi = mid - 1;
      }
      let at = 0;
      for (let i = lo; at < length && i < job.sources.length; i++) {
        const s = job.sources[i];
        const from = begin + at - starts[i];
        if (from >= s.length) continue;
        const take = Math.min(length - at, s.length - from);
        const fd = fds.get(i, false);
        if (fd === null || io.readFully(fsm, fd, buf, at, take, from) < take) {
          throw new Error(`${s.path} shrank while being hashed`);
        }
        at += take;
      }
      const first = begin / job.pieceLength;
      for (let p = 0; p * job.pieceLength < length; p++) {
        const end = Math.min(length, (p + 1) * job.pieceLength);
        dig.set(hash("sha1").update(buf.subarray(p * job.pieceLength, end)).digest(), (first + p) * 20);
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
 * Hashes every piece of `sources` (concatenated) on `threads` worker threads and this one; resolves with the
 * digests, 20 bytes per piece.
 * @throws {Error} (the promise rejects) with the first read error a thread met.
 */
export async function hashSources(
  sources: readonly ClaimSource[],
  pieceLength: number,
  chunkBytes: number,
  threads: number,
): Promise<Uint8Array> {
  const total = sources.reduce((n, s) => n + s.length, 0);
  const pieces = Math.ceil(total / pieceLength);
  const job: ClaimJob = {
    sources: sources.map((s) => ({ path: s.path, length: s.length })),
    total,
    pieceLength,
    chunkBytes,
    counter: new SharedArrayBuffer(12),
    digests: new SharedArrayBuffer(pieces * 20),
  };
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
  const workers: Worker[] = [];
  const finished: Promise<string | null>[] = [];
  try {
    for (let i = 0; i < threads; i++) {
      const w = new Worker(url, { type: "module" });
      workers.push(w);
      finished.push(
        new Promise((resolve) => {
          w.onmessage = (e: MessageEvent<{ error: string | null }>) => resolve(e.data.error);
          w.onerror = (e: ErrorEvent) => {
            e.preventDefault();
            resolve(e.message);
          };
        }),
      );
      w.postMessage(job);
    }
  } finally {
    URL.revokeObjectURL(url);
  }
  try {
    const mine = claimLoop(job, fs, createHash, { FdCache, readFully });
    const errors = [mine, ...(await Promise.all(finished))].filter((e): e is string => e !== null);
    if (errors.length > 0) throw new Error(errors[0]);
    return new Uint8Array(job.digests).slice();
  } finally {
    for (const w of workers) w.terminate();
  }
}
