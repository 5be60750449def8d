import { assert, assertEquals } from "../_assert.ts";
import { addBytes, createBucket, createRateMeter, RATE_TAU_MS, rateOf, takeTokens } from "../../lib/engine/rate.ts";

function close(got: number, want: number, tolerance: number, what: string): void {
  assert(Math.abs(got - want) <= want * tolerance, `${what}: ${got}, expected ${want} ± ${tolerance * 100}%`);
}

Deno.test("rateOf() converges on a steady rate for several chunk sizes and rates", async (t) => {
  for (const rate of [1_000, 100_000, 10_000_000]) {
    for (const every of [10, 100, 500]) {
      await t.step(`${rate} B/s in chunks every ${every} ms`, () => {
        const m = createRateMeter(0);
        for (let now = every; now <= 20_000; now += every) addBytes(m, (rate * every) / 1000, now);
        // sampled just after a chunk and just before the next one, the estimate brackets the rate
        close(rateOf(m, 20_000), rate, 0.15, "after a chunk");
        close(rateOf(m, 20_000 + every - 1), rate, 0.15, "before the next");
        assertEquals(m.total, Math.round((rate * 20_000) / 1000));
      });
    }
  }
});

Deno.test("rateOf() follows a change of rate within a few time constants and decays to zero", () => {
  const m = createRateMeter(0);
  let now = 0;
  for (; now < 10_000; now += 50) addBytes(m, 50_000, now); // 1 MB/s
  close(rateOf(m, now), 1_000_000, 0.05, "1 MB/s");
  const until = now + 5 * RATE_TAU_MS;
  for (; now < until; now += 50) addBytes(m, 5_000, now); // 100 kB/s
  close(rateOf(m, now), 100_000, 0.1, "100 kB/s");
  assert(rateOf(m, now + 20 * RATE_TAU_MS) < 1, "silence decays to zero");
  // time going backwards does not blow up the estimate
  assert(Number.isFinite(rateOf(m, 0)) && rateOf(m, 0) >= 0);
});

/** Takes blocks as fast as the bucket allows for `ms`, sleeping exactly as told; returns bytes taken. */
function pace(rate: number, block: number, ms: number, burst?: number): { bytes: number; burst: number } {
  const b = createBucket(rate, 0, burst);
  let now = 0;
  let bytes = 0;
  for (let k = 0; k < 10_000_000; k++) {
    const wait = takeTokens(b, block, now);
    if (wait === 0) bytes += block;
    else {
      assert(wait > 0 && Number.isFinite(wait), `wait ${wait}`);
      now += wait;
    }
    if (now >= ms) return { bytes, burst: b.burst };
  }
  throw new Error("pace did not finish");
}

Deno.test("takeTokens() paces to the rate within 10% over 10 simulated seconds", async (t) => {
  const rows = [
    { rate: 16 * 1024, block: 1024 },
    { rate: 64 * 1024, block: 16 * 1024 },
    { rate: 1_000_000, block: 16 * 1024 },
    { rate: 10 * 1024 * 1024, block: 16 * 1024 },
    { rate: 50_000, block: 100_000 }, // blocks larger than the burst still flow
  ];
  for (const r of rows) {
    await t.step(`${r.rate} B/s in ${r.block}-byte takes`, () => {
      const { bytes, burst } = pace(r.rate, r.block, 10_000);
      // beyond the initial full bucket, the bytes taken match the rate
      close(bytes - burst, r.rate * 10, 0.1, "bytes after the burst");
      if (burst <= r.rate / 2) close(bytes, r.rate * 10, 0.1, "bytes");
    });
  }
});

Deno.test("takeTokens() with rate 0 is unlimited, and never asks to wait for more than a burst", () => {
  const free = createBucket(0, 0);
  for (let k = 0; k < 1000; k++) assertEquals(takeTokens(free, 1 << 20, 0), 0);
  const b = createBucket(1000, 0, 2000);
  assertEquals(takeTokens(b, 2000, 0), 0);
  assertEquals(takeTokens(b, 1, 0), 1); // 1 byte at 1000 B/s
  assertEquals(takeTokens(b, 1_000_000, 0), 2000); // waits for a full bucket, not for a million bytes
  assertEquals(takeTokens(b, 1_000_000, 2000), 0); // then goes negative
  assert(b.tokens < 0);
  assert(takeTokens(b, 1, 2000) > 0);
});
