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
 * Hashes every piece of `sources` (concatenated) on `threads` worker threads and this one; resolves with the
 * digests, 20 bytes per piece. Threads claim `chunkBytes` (whole pieces) at a time and read `readBytes` at a time.
 * @throws {Error} (the promise rejects) with the first read error a thread met.
 */
export async function hashSources(
  sources: readonly ClaimSource[],
  pieceLength: number,
  chunkBytes: number,
  threads: number,
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
