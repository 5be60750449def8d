/**
 * Our requests to one peer: what is outstanding, how deep the pipeline should be, and when to give up on it.
 * Pure: the runtime passes `now` and performs the sends and cancels.
 *
 * The pipeline starts at {@linkcode INITIAL_DEPTH} requests and grows by one for every block that arrives (a slow
 * start that doubles each round trip) up to what the peer's measured rate needs to keep
 * {@linkcode QUEUE_SECONDS} of data in flight, capped by the peer's advertised `reqq` and
 * {@linkcode MAX_OUTSTANDING_REQUESTS}. When no block has arrived for {@linkcode REQUEST_TIMEOUT_MS} while requests
 * are out, every outstanding request is released for other peers and the peer is marked snubbed (depth 1).
 * @module
 */
import { BLOCK_BYTES, MAX_OUTSTANDING_REQUESTS } from "../limits.ts";
import type { Bitfield } from "../bitfield.ts";
import { addBytes, createRateMeter, type RateMeter, rateOf } from "./rate.ts";

/** The pipeline depth of a new peer. */
export const INITIAL_DEPTH = 16;
/** How much data, in seconds at the peer's rate, to keep requested ahead. */
export const QUEUE_SECONDS = 1;
/** How long outstanding requests may go unanswered before they are handed to other peers. */
export const REQUEST_TIMEOUT_MS = 10_000;
/**
 * After a top-up found nothing to ask for, further top-ups for that peer skip the picker's scan for this long unless
 * the picker or the peer's pieces changed (a bound on what a change the picker did not count could delay).
 */
export const DRY_MS = 5;
/** The request queue most clients accept when they do not say (`reqq` of BEP 10). */
export const DEFAULT_PEER_REQQ = 250;

/** A request in flight. */
export interface Outstanding {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
  readonly sentAt: number;
}

/** The request state of one peer. */
export interface RequestQueue {
  readonly outstanding: Map<number, Outstanding>;
  depth: number;
  maxDepth: number;
  /** When a block last arrived (or the first request was sent after a quiet spell). */
  lastBlockAt: number;
  readonly rate: RateMeter;
  snubbed: boolean;
  /** How many times requests timed out in a row. */
  timeouts: number;
  /**
   * The last top-up that found nothing to ask for (the picker's version, the peer's bitfield and its count, and the
   * time), so the next ones skip the scan until something changed or {@linkcode DRY_MS} passed (`planRequests`).
   */
  dry: { version: number; bits: Bitfield | null; has: number; at: number };
}

/** The key of a block in {@linkcode RequestQueue.outstanding}. */
export function blockKey(index: number, begin: number): number {
  return index * 16384 + begin / BLOCK_BYTES;
}

/** A new queue for a peer. */
export function createQueue(now: number): RequestQueue {
  return {
    outstanding: new Map(),
    depth: INITIAL_DEPTH,
    maxDepth: Math.min(DEFAULT_PEER_REQQ, MAX_OUTSTANDING_REQUESTS),
    lastBlockAt: now,
    rate: createRateMeter(now),
    snubbed: false,
    timeouts: 0,
    dry: { version: -1, bits: null, has: -1, at: -Infinity },
  };
}

/** Applies the peer's advertised request queue size (`reqq`). */
export function setPeerReqq(q: RequestQueue, reqq: number): void {
  q.maxDepth = Math.max(1, Math.min(reqq, MAX_OUTSTANDING_REQUESTS));
  q.depth = Math.min(q.depth, q.maxDepth);
}

/**
 * How many more requests to send now.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const q = createQueue(0);
 * eq(requestsWanted(q, 0), 16);
 * ```
 */
export function requestsWanted(q: RequestQueue, now: number): number {
  return Math.max(0, pipelineTarget(q, now) - q.outstanding.size);
}

/**
 * The pipeline depth wanted now: what the measured rate needs for {@linkcode QUEUE_SECONDS}, or the slow-start
 * depth while the rate is still being learnt, but never more than twice the rate's need (plus the initial depth),
 * so a slow peer does not hoard blocks that faster peers could fetch.
 */
export function pipelineTarget(q: RequestQueue, now: number): number {
  if (q.snubbed) return 1;
  const byRate = Math.ceil((rateOf(q.rate, now) * QUEUE_SECONDS) / BLOCK_BYTES);
  const slowStart = Math.min(q.depth, 2 * byRate + INITIAL_DEPTH);
  return Math.min(q.maxDepth, Math.max(slowStart, byRate, 1));
}

/** Records requests just sent. */
export function requestsSent(
  q: RequestQueue,
  reqs: readonly { index: number; begin: number; length: number }[],
  now: number,
): void {
  if (q.outstanding.size === 0) q.lastBlockAt = now;
  for (const r of reqs) {
    q.outstanding.set(blockKey(r.index, r.begin), { index: r.index, begin: r.begin, length: r.length, sentAt: now });
  }
}

/** Whether a request for this block is out to the peer. */
export function isOutstanding(q: RequestQueue, index: number, begin: number): boolean {
  return q.outstanding.has(blockKey(index, begin));
}

/**
 * A block arrived: returns whether we had asked for it (a request out for that block, of that length). Only such a
 * block is progress: it feeds the rate, grows the pipeline and resets the time-out. A block nobody asked for (pushed
 * at us, or late after a cancel) changes nothing here, so a peer dripping unrequested blocks cannot hold its
 * requests hostage.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const q = createQueue(0);
 * requestsSent(q, [{ index: 0, begin: 0, length: 16384 }], 0);
 * eq(blockArrived(q, 0, 16384, 16384, 5_000), false); // not asked: the time-out still runs
 * eq(expireRequests(q, 10_000).length, 1);
 * ```
 */
export function blockArrived(q: RequestQueue, index: number, begin: number, length: number, now: number): boolean {
  const k = blockKey(index, begin);
  const o = q.outstanding.get(k);
  if (!o || o.length !== length) return false;
  q.outstanding.delete(k);
  addBytes(q.rate, length, now);
  q.lastBlockAt = now;
  q.timeouts = 0;
  q.snubbed = false;
  if (q.depth < q.maxDepth) q.depth++;
  return true;
}

/** The peer rejected a request (BEP 6) or we cancelled it: returns it if it was outstanding. */
export function dropRequest(q: RequestQueue, index: number, begin: number): Outstanding | undefined {
  const k = blockKey(index, begin);
  const o = q.outstanding.get(k);
  if (o) q.outstanding.delete(k);
  return o;
}

/** Every outstanding request ends (choke, disconnect): returns them for release. */
export function dropAll(q: RequestQueue): Outstanding[] {
  const all = [...q.outstanding.values()];
  q.outstanding.clear();
  return all;
}

/**
 * Checks the time-out at `now`: when requests are out and nothing arrived for {@linkcode REQUEST_TIMEOUT_MS}, returns
 * every outstanding request (to release), marks the peer snubbed and counts the time-out; else returns [].
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const q = createQueue(0);
 * requestsSent(q, [{ index: 0, begin: 0, length: 16384 }], 0);
 * eq(expireRequests(q, 5_000).length, 0);
 * eq(expireRequests(q, 10_000).length, 1);
 * eq(q.snubbed, true);
 * ```
 */
export function expireRequests(q: RequestQueue, now: number): Outstanding[] {
  if (q.outstanding.size === 0 || now - q.lastBlockAt < REQUEST_TIMEOUT_MS) return [];
  q.snubbed = true;
  q.timeouts++;
  q.depth = INITIAL_DEPTH;
  q.lastBlockAt = now;
  return dropAll(q);
}
