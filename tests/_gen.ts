/**
 * A small seeded xorshift generator for property and fuzz tests: the seed goes in every failure message.
 * @module
 */

/** A seeded source of pseudo-random numbers. */
export interface Rand {
  /** A float in [0, 1). */
  (): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** The seed it started from. */
  readonly seed: number;
}

/** Makes a deterministic generator from `seed` (xorshift32). */
export function seeded(seed: number): Rand {
  let s = (seed >>> 0) || 0x9e3779b9;
  const next = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
  const r = next as Rand;
  r.int = (n: number): number => Math.floor(next() * n);
  Object.defineProperty(r, "seed", { value: seed });
  return r;
}

/** `n` random bytes from `rand`. */
export function randomBytes(rand: Rand, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rand.int(256);
  return out;
}

/** The fuzz seed: `FUZZ_SEED` from the environment, else `fallback`. */
export function fuzzSeed(fallback = 1): number {
  return Number(Deno.env.get("FUZZ_SEED") ?? fallback);
}

/** How many fuzz iterations to run: `FUZZ_ITERATIONS` from the environment (for long runs on demand), else `fallback`. */
export function fuzzIterations(fallback: number): number {
  return Number(Deno.env.get("FUZZ_ITERATIONS") ?? fallback);
}
