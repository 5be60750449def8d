/**
 * Transfer rates and rate limits as pure values: an exponentially decaying byte counter and a token bucket.
 * @module
 */

/** Time constant of {@linkcode RateMeter}, in ms: rates follow a change within a few seconds. */
export const RATE_TAU_MS = 2000;

/** A decaying sum of bytes; `rate` is bytes per second over roughly the last {@linkcode RATE_TAU_MS}. */
export interface RateMeter {
  value: number;
  at: number;
  total: number;
}

/** A meter that has seen nothing. */
export function createRateMeter(now: number): RateMeter {
  return { value: 0, at: now, total: 0 };
}

function decay(m: RateMeter, now: number): void {
  if (now > m.at) {
    m.value *= Math.exp(-(now - m.at) / RATE_TAU_MS);
    m.at = now;
  }
}

/** Counts `bytes` moved at `now`. */
export function addBytes(m: RateMeter, bytes: number, now: number): void {
  decay(m, now);
  m.value += bytes;
  m.total += bytes;
}

/**
 * Bytes per second at `now`.
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * const m = createRateMeter(0);
 * for (let t = 0; t <= 10_000; t += 100) addBytes(m, 100_000, t); // 1 MB/s for 10 s
 * const r = rateOf(m, 10_000);
 * ok(r > 950_000 && r < 1_100_000, String(r));
 * ```
 */
export function rateOf(m: RateMeter, now: number): number {
  decay(m, now);
  return (m.value * 1000) / RATE_TAU_MS;
}

/** A token bucket: `rate` bytes per second, holding at most `burst` bytes. A rate of 0 means unlimited. */
export interface TokenBucket {
  readonly rate: number;
  readonly burst: number;
  tokens: number;
  at: number;
}

/** A full bucket; `burst` defaults to a quarter second of `rate`, at least 32 KiB. */
export function createBucket(rate: number, now: number, burst?: number): TokenBucket {
  const b = burst ?? Math.max(32 * 1024, rate / 4);
  return { rate, burst: b, tokens: b, at: now };
}

function refill(b: TokenBucket, now: number): void {
  if (now > b.at) {
    b.tokens = Math.min(b.burst, b.tokens + ((now - b.at) * b.rate) / 1000);
    b.at = now;
  }
}

/**
 * Takes `bytes` if the bucket has them and returns 0, else takes nothing and returns the ms to wait before asking
 * again. Unlimited buckets (rate 0) always return 0. A request larger than the burst is allowed once the bucket is
 * full, driving it negative, so large blocks are never starved.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const b = createBucket(16384, 0, 16384);
 * eq(takeTokens(b, 16384, 0), 0);
 * eq(takeTokens(b, 16384, 0), 1000);
 * eq(takeTokens(b, 16384, 1000), 0);
 * ```
 */
export function takeTokens(b: TokenBucket, bytes: number, now: number): number {
  if (b.rate <= 0) return 0;
  refill(b, now);
  if (b.tokens >= bytes || b.tokens >= b.burst) {
    b.tokens -= bytes;
    return 0;
  }
  return Math.ceil(((Math.min(bytes, b.burst) - b.tokens) * 1000) / b.rate);
}
