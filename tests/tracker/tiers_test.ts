import { assertEquals } from "../_assert.ts";
import { seeded } from "../_gen.ts";
import {
  createTiers,
  currentTracker,
  type TierState,
  trackerFailed,
  trackerSucceeded,
} from "../../lib/tracker/tiers.ts";

Deno.test("createTiers() shuffles each tier with the given random, keeps tiers in order", () => {
  const s = createTiers([["a", "b", "c"], ["d", "e"]], () => 0.99);
  assertEquals(s.tiers, [["a", "b", "c"], ["d", "e"]]); // 0.99 picks j = i: identity
  const r = seeded(3);
  const t = createTiers([["a", "b", "c", "d"], ["e"]], r);
  assertEquals([[...t.tiers[0]].sort(), t.tiers[1]], [["a", "b", "c", "d"], ["e"]]);
});

Deno.test("createTiers() drops empty tiers and repeated URLs", () => {
  assertEquals(createTiers([[], ["a", "a"], ["b", "a"]], () => 0.5).tiers, [["a"], ["b"]]);
  assertEquals(currentTracker(createTiers([], () => 0)), null);
});

Deno.test("createTiers() gives each order of a tier about equally often", () => {
  const r = seeded(11);
  const counts = new Map<string, number>();
  for (let i = 0; i < 6000; i++) {
    const k = createTiers([["a", "b", "c"]], r).tiers[0].join("");
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  assertEquals(counts.size, 6);
  for (const [k, n] of counts) assertEquals(n > 800 && n < 1200, true, `${k}: ${n}`);
});

Deno.test("trackerFailed() walks the tiers in order and reports exhaustion", () => {
  let s: TierState = { tiers: [["a", "b"], ["c"]], tier: 0, index: 0 };
  const seen: string[] = [];
  let exhausted = false;
  while (!exhausted) {
    seen.push(currentTracker(s) ?? "-");
    ({ state: s, exhausted } = trackerFailed(s, currentTracker(s) ?? ""));
  }
  assertEquals(seen, ["a", "b", "c"]);
  assertEquals(currentTracker(s), "a");
});

Deno.test("trackerFailed() ignores a stale failure", () => {
  const s: TierState = { tiers: [["a", "b"]], tier: 0, index: 1 };
  assertEquals(trackerFailed(s, "a"), { state: s, exhausted: false });
});

Deno.test("trackerSucceeded() moves the tracker to the front of its tier and restarts at tier 0", () => {
  const s: TierState = { tiers: [["a", "b"], ["c", "d", "e"]], tier: 1, index: 2 };
  assertEquals(trackerSucceeded(s, "e"), { tiers: [["a", "b"], ["e", "c", "d"]], tier: 0, index: 0 });
  assertEquals(trackerSucceeded(s, "a").tiers, [["a", "b"], ["c", "d", "e"]]);
});
