/**
 * The choker: which peers we upload to. A pure function of peer statistics and time.
 *
 * Every {@linkcode CHOKE_ROUND_MS} the regular slots go to the interested peers that give us the most (download rate
 * from them) while we download, or take the most (our upload rate to them) while we seed. Peers that are snubbing
 * us (no data for {@linkcode SNUB_MS} while we want theirs) lose their regular slot while we download
 * (anti-snubbing). One more slot, the optimistic unchoke, goes to a random choked interested peer and moves every
 * {@linkcode OPTIMISTIC_ROUND_MS}, so newcomers get a chance to prove themselves.
 * @module
 */

/** How often the regular slots are re-decided. */
export const CHOKE_ROUND_MS = 10_000;
/** How often the optimistic unchoke moves. */
export const OPTIMISTIC_ROUND_MS = 30_000;
/** A peer that sent us no block for this long while we were interested in it is snubbing us. */
export const SNUB_MS = 60_000;
/** Upload slots by default, the optimistic one included. */
export const DEFAULT_UPLOAD_SLOTS = 4;

/** What the choker knows of a peer. */
export interface ChokePeer {
  readonly id: number;
  readonly interested: boolean;
  /** Bytes per second the peer sends us. */
  readonly downloadRate: number;
  /** Bytes per second we send the peer. */
  readonly uploadRate: number;
  /** When the peer last sent us a block (ms), or -Infinity. */
  readonly lastBlockAt: number;
  /** Whether we are interested in the peer (its data would help us). */
  readonly amInterested: boolean;
}

/** What carries from one round to the next. */
export interface ChokerState {
  readonly optimistic: number | null;
  readonly optimisticAt: number;
  readonly roundAt: number;
  readonly unchoked: ReadonlySet<number>;
}

/** The state before any round. */
export const INITIAL_CHOKER: ChokerState = {
  optimistic: null,
  optimisticAt: -Infinity,
  roundAt: -Infinity,
  unchoked: new Set(),
};

/** Options of a round. */
export interface ChokeOptions {
  readonly slots: number;
  readonly seeding: boolean;
  readonly now: number;
  readonly random: () => number;
  /** Re-decide even if the round is not due (a peer left or became interested). */
  readonly force?: boolean;
}

/**
 * Decides which peers are unchoked. Returns the previous state when no round is due (and not forced).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const peer = (id: number, downloadRate: number) =>
 *   ({ id, interested: true, downloadRate, uploadRate: 0, lastBlockAt: 0, amInterested: true });
 * const s = decideChokes(INITIAL_CHOKER, [peer(1, 10), peer(2, 30), peer(3, 20)],
 *   { slots: 2, seeding: false, now: 0, random: () => 0 });
 * eq([...s.unchoked].sort(), [1, 2]); // the fastest regular slot, and an optimistic one among the rest
 * ```
 */
export function decideChokes(state: ChokerState, peers: readonly ChokePeer[], o: ChokeOptions): ChokerState {
  if (!o.force && o.now - state.roundAt < CHOKE_ROUND_MS) return state;
  const byId = new Map(peers.map((p) => [p.id, p]));
  const candidates = peers.filter((p) => p.interested);
  const rateOf = (p: ChokePeer) => (o.seeding ? p.uploadRate : p.downloadRate);
  const snubbing = (p: ChokePeer) => !o.seeding && p.amInterested && o.now - p.lastBlockAt >= SNUB_MS;
  const regular = candidates
    .filter((p) => !snubbing(p))
    .sort((a, b) => rateOf(b) - rateOf(a) || a.id - b.id)
    .slice(0, Math.max(0, o.slots - 1));
  const unchoked = new Set(regular.map((p) => p.id));

  let optimistic = state.optimistic;
  let optimisticAt = state.optimisticAt;
  const current = optimistic === null ? undefined : byId.get(optimistic);
  const due = o.now - state.optimisticAt >= OPTIMISTIC_ROUND_MS;
  if (!current || !current.interested || unchoked.has(current.id) || due) {
    let pool = candidates.filter((p) => !unchoked.has(p.id));
    if (pool.length > 1) pool = pool.filter((p) => p.id !== optimistic); // move on when there is somewhere to go
    if (pool.length > 0) {
      optimistic = pool[Math.floor(o.random() * pool.length)].id;
      optimisticAt = o.now;
    } else {
      optimistic = null;
    }
  }
  if (optimistic !== null) unchoked.add(optimistic);
  // fill slots left empty (few interested peers) so capacity is not wasted
  for (const p of candidates) {
    if (unchoked.size >= o.slots) break;
    unchoked.add(p.id);
  }
  return { optimistic, optimisticAt, roundAt: o.now, unchoked };
}
