/**
 * Upload scheduling: each peer's queue of blocks it asked us for, and the piece cache they are served from.
 *
 * Policy: a peer may queue at most {@linkcode MAX_PEER_QUEUED_REQUESTS} requests (more is a flood and drops it); a
 * cancel removes its request; choking it rejects (Fast) or forgets its queue. Blocks are served in request order
 * while the connection's write backlog is under {@linkcode UPLOAD_BACKLOG_BYTES}, so a slow reader never makes us
 * buffer its whole queue. Pieces are read from disk once and kept in an LRU cache of {@linkcode CACHE_BYTES}, where
 * freshly verified pieces also go while some peer may want them.
 *
 * Pure: the runtime reads a missing piece from disk and writes what {@linkcode nextUpload} returns.
 * @module
 */
import { MAX_PEER_QUEUED_REQUESTS } from "../limits.ts";

/** Pieces kept in the upload cache, in bytes. */
export const CACHE_BYTES = 32 * 1024 * 1024;
/** Blocks are queued for a peer's socket only while its unsent backlog is under this. */
export const UPLOAD_BACKLOG_BYTES = 256 * 1024;

/** A block a peer asked us for. */
export interface UploadRequest {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

/** One peer's upload queue. */
export type UploadQueue = UploadRequest[];

/**
 * Queues a request; returns false when the peer already has {@linkcode MAX_PEER_QUEUED_REQUESTS} queued (a flood).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const q: UploadQueue = [];
 * eq(queueUpload(q, { index: 0, begin: 0, length: 16384 }), true);
 * eq(q.length, 1);
 * ```
 */
export function queueUpload(q: UploadQueue, r: UploadRequest): boolean {
  if (q.length >= MAX_PEER_QUEUED_REQUESTS) return false;
  q.push(r);
  return true;
}

/** Removes a cancelled request; returns whether it was queued. */
export function cancelUpload(q: UploadQueue, index: number, begin: number): boolean {
  const i = q.findIndex((u) => u.index === index && u.begin === begin);
  if (i < 0) return false;
  q.splice(i, 1);
  return true;
}

/** The next request to serve, taken off the queue, or null while the queue is empty or the backlog is full. */
export function nextUpload(q: UploadQueue, backlog: number): UploadRequest | null {
  if (q.length === 0 || backlog >= UPLOAD_BACKLOG_BYTES) return null;
  return q.shift() ?? null;
}

/** An LRU cache of whole pieces for uploading, bounded in bytes. */
export class PieceCache {
  readonly #pieces = new Map<number, Uint8Array>();
  #bytes = 0;

  /** A cache of at most `maxBytes`. */
  constructor(readonly maxBytes: number = CACHE_BYTES) {}

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** A cached piece, marked recently used. */
  get(index: number): Uint8Array | undefined {
    const hit = this.#pieces.get(index);
    if (hit) {
      this.#pieces.delete(index);
      this.#pieces.set(index, hit);
    }
    return hit;
  }

  /**
   * Caches a piece; returns the pieces evicted to make room (for the caller to recycle).
   * @example
   * ```ts
   * import { deepStrictEqual as eq } from "node:assert/strict";
   * const c = new PieceCache(10);
   * eq(c.put(0, new Uint8Array(6)), []);
   * eq(c.put(1, new Uint8Array(6)).length, 1); // piece 0 goes
   * eq(c.get(0), undefined);
   * ```
   */
  put(index: number, data: Uint8Array): Uint8Array[] {
    const evicted: Uint8Array[] = [];
    if (this.#pieces.has(index)) return evicted;
    if (data.length > this.maxBytes) return [data]; // a piece larger than the whole cache is not kept
    this.#pieces.set(index, data);
    this.#bytes += data.length;
    for (const [k, v] of this.#pieces) {
      if (this.#bytes <= this.maxBytes || k === index) break;
      this.#pieces.delete(k);
      this.#bytes -= v.length;
      evicted.push(v);
    }
    return evicted;
  }
}
