/**
 * The multitracker tier list (BEP 12) as plain data and functions.
 *
 * Policy: each tier is shuffled once, when the list is made. An announce round tries the trackers in order, tier by
 * tier, one at a time; a tracker that answers moves to the front of its tier and the next round starts again from
 * the first tier (so a tier-0 tracker that comes back is used again); a tracker that fails hands over to the next
 * one; when the last one fails the round is exhausted and the cursor goes back to the start.
 * @module
 */

/** The tiers (each already shuffled) and the cursor: the tracker the current round is trying. */
export interface TierState {
  readonly tiers: readonly (readonly string[])[];
  readonly tier: number;
  readonly index: number;
}

/**
 * Makes the tier list: drops empty tiers and repeated URLs (keeping the first), shuffles each tier with `random`.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const s = createTiers([["a", "b"], [], ["c", "a"]], () => 0);
 * eq(s.tiers, [["b", "a"], ["c"]]);
 * eq(currentTracker(s), "b");
 * ```
 */
export function createTiers(tiers: readonly (readonly string[])[], random: () => number): TierState {
  const seen = new Set<string>();
  const out: string[][] = [];
  for (const tier of tiers) {
    const t = tier.filter((u) => !seen.has(u) && (seen.add(u), true));
    for (let i = t.length - 1; i > 0; i--) {
      const j = Math.min(i, Math.floor(random() * (i + 1)));
      [t[i], t[j]] = [t[j], t[i]];
    }
    if (t.length > 0) out.push(t);
  }
  return { tiers: out, tier: 0, index: 0 };
}

/**
 * The tracker to try now, or null when the list is empty.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(currentTracker({ tiers: [["a"], ["b"]], tier: 1, index: 0 }), "b");
 * eq(currentTracker({ tiers: [], tier: 0, index: 0 }), null);
 * ```
 */
export function currentTracker(s: TierState): string | null {
  return s.tiers[s.tier]?.[s.index] ?? null;
}

/**
 * Records that `url` answered: it moves to the front of its tier and the cursor goes back to the first tier.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(trackerSucceeded({ tiers: [["a", "b", "c"]], tier: 0, index: 2 }, "c"), { tiers: [["c", "a", "b"]], tier: 0, index: 0 });
 * ```
 */
export function trackerSucceeded(s: TierState, url: string): TierState {
  const tiers = s.tiers.map((t) => (t.includes(url) ? [url, ...t.filter((u) => u !== url)] : t));
  return { tiers, tier: 0, index: 0 };
}

/**
 * Records that `url` failed: the cursor moves to the next tracker, or back to the start with `exhausted` set when
 * that was the last one. A failure of a tracker that is not the current one (a stale result) changes nothing.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const s = { tiers: [["a", "b"], ["c"]], tier: 0, index: 1 };
 * eq(trackerFailed(s, "b"), { state: { ...s, tier: 1, index: 0 }, exhausted: false });
 * eq(trackerFailed({ ...s, tier: 1, index: 0 }, "c"), { state: { ...s, tier: 0, index: 0 }, exhausted: true });
 * ```
 */
export function trackerFailed(s: TierState, url: string): { state: TierState; exhausted: boolean } {
  if (currentTracker(s) !== url) return { state: s, exhausted: false };
  if (s.index + 1 < s.tiers[s.tier].length) return { state: { ...s, index: s.index + 1 }, exhausted: false };
  if (s.tier + 1 < s.tiers.length) return { state: { ...s, tier: s.tier + 1, index: 0 }, exhausted: false };
  return { state: { ...s, tier: 0, index: 0 }, exhausted: true };
}
