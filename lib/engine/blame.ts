/**
 * Blame for pieces that fail their hash: which peers sent the bad bytes, and whom to ban.
 *
 * Policy: a piece that one peer sent alone and that fails counts a strike against it; {@linkcode BAN_STRIKES}
 * strikes ban it. A failed piece with several senders keeps each block's SHA-1 and who sent it; when the piece later
 * passes (fetched again), every peer whose block differs from the good one is banned at once (libtorrent's smart
 * ban). The digests come from the writer thread, which has the piece in hand, so the main thread hashes nothing.
 *
 * Senders are numbers the caller chooses; the swarm gives each peer address one, so strikes and smart bans follow an
 * address across reconnections (a liar cannot shed its strikes, or escape a smart ban, by hanging up).
 *
 * Pure: the runtime reports outcomes and performs the bans it is given.
 * @module
 */

/** A peer that alone supplied this many pieces that failed their hash is banned. */
export const BAN_STRIKES = 2;
/** Failed pieces whose block digests are kept for smart bans at once; the oldest is forgotten past it. */
export const MAX_SUSPECT_PIECES = 256;
/** Senders whose strikes are remembered at once; the oldest is forgotten past it. */
export const MAX_STRUCK_SENDERS = 4096;
/** Bytes in one SHA-1 digest. */
export const DIGEST_BYTES = 20;

/** Blame state of one torrent. */
export interface Blame {
  /** Strikes per peer id. */
  readonly strikes: Map<number, number>;
  /** Failed pieces with several senders: who sent each block, and each block's digest (20 bytes a block). */
  readonly suspects: Map<number, { readonly from: Int32Array; readonly digests: Uint8Array }>;
}

/** An empty blame record. */
export function createBlame(): Blame {
  return { strikes: new Map(), suspects: new Map() };
}

/**
 * A piece failed its hash. `from` has the sender's peer id per block; `digests` the failed blocks' SHA-1s. Returns
 * the peer ids to ban now.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const b = createBlame();
 * eq(pieceFailed(b, 0, Int32Array.of(7, 7), new Uint8Array(40)), []);
 * eq(pieceFailed(b, 1, Int32Array.of(7, 7), new Uint8Array(40)), [7]); // second strike
 * ```
 */
export function pieceFailed(b: Blame, index: number, from: Int32Array, digests: Uint8Array): number[] {
  const senders = new Set(from);
  senders.delete(0);
  if (senders.size === 1) {
    const [id] = senders;
    const n = (b.strikes.get(id) ?? 0) + 1;
    b.strikes.delete(id); // re-inserted last: the oldest entries go first when the map is full
    if (b.strikes.size >= MAX_STRUCK_SENDERS) b.strikes.delete(b.strikes.keys().next().value as number);
    b.strikes.set(id, n);
    return n >= BAN_STRIKES ? [id] : [];
  }
  if (b.suspects.size >= MAX_SUSPECT_PIECES && !b.suspects.has(index)) {
    b.suspects.delete(b.suspects.keys().next().value as number);
  }
  b.suspects.set(index, { from: from.slice(), digests: digests.slice() });
  return [];
}

/** Whether a passing piece's block digests are needed (it failed before with several senders). */
export function wantsDigests(b: Blame, index: number): boolean {
  return b.suspects.has(index);
}

/**
 * A piece passed its hash; `digests` are its blocks' SHA-1s when {@linkcode wantsDigests} said so. Returns the peer
 * ids whose earlier blocks differed from the good ones.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const b = createBlame();
 * const bad = new Uint8Array(40).fill(1, 20); // block 1 was bad
 * pieceFailed(b, 3, Int32Array.of(4, 5), bad);
 * eq(piecePassed(b, 3, new Uint8Array(40)), [5]);
 * ```
 */
export function piecePassed(b: Blame, index: number, digests: Uint8Array | undefined): number[] {
  const s = b.suspects.get(index);
  if (!s) return [];
  b.suspects.delete(index);
  if (!digests) return [];
  const out = new Set<number>();
  for (let k = 0; k < s.from.length; k++) {
    const at = k * DIGEST_BYTES;
    for (let i = 0; i < DIGEST_BYTES; i++) {
      if (s.digests[at + i] !== digests[at + i]) {
        if (s.from[k] !== 0) out.add(s.from[k]);
        break;
      }
    }
  }
  return [...out];
}

/** Forgets a sender's strikes. */
export function forgetPeer(b: Blame, id: number): void {
  b.strikes.delete(id);
}
