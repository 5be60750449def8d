/**
 * The request strategy: which blocks to ask one peer for now, given the picker, that peer's protocol state and
 * request queue, and a small read-only view of the other peers' queues (as anacrolix/torrent's request strategy sees
 * the torrent only through an input interface). Pure: no sockets, no clock.
 *
 * Policy, in prose:
 * - Pipelining: a peer gets as many requests as its queue wants ({@linkcode requestsWanted}: slow start, then the
 *   measured rate), topped up in batches of {@linkcode REQUEST_BATCH} so picking costs less than the blocks.
 * - Choked peers are asked only for their allowed-fast pieces (BEP 6); a block a peer rejected is not asked of it
 *   again for a while (`REJECT_BACKOFF_MS`).
 * - Time-outs and snubbing live in the queue (`expireRequests`): a peer that sends none of the blocks it was asked
 *   for in `REQUEST_TIMEOUT_MS` loses them all and is snubbed. Only blocks we asked for count, so a peer dripping
 *   unrequested data cannot keep its requests.
 * - Endgame: once every missing block is requested, an idle peer may ask for a block another peer holds, unless the
 *   holder will very likely deliver it first: the block sits within what the holder sends in
 *   {@linkcode ENDGAME_COMMIT_WINDOW_MS} at its measured rate. A slow, dripping or silent holder therefore loses its
 *   blocks to a fast peer wherever they sit in its queue, while a fast holder's queue is left alone (duplicating it
 *   would fetch every block twice). The first copy to arrive wins; the runtime cancels the others.
 * @module
 */
import { BLOCK_BYTES } from "../limits.ts";
import { type BlockRequest, ENDGAME_MAX_OUTSTANDING, pickBlocks, type Picker, requestsOut } from "./picker.ts";
import { type PeerState, recentlyRejected } from "./peer_state.ts";
import { rateOf } from "./rate.ts";
import { blockKey, DRY_MS, type RequestQueue, requestsWanted } from "./requests.ts";

/** Requests are topped up once at least this many are wanted (unless fewer are out). */
export const REQUEST_BATCH = 16;
/** In endgame, what a holder will send within this window at its current rate is left to it. */
export const ENDGAME_COMMIT_WINDOW_MS = 500;

/** What the strategy sees of the peer it picks for. */
export interface StrategyPeer {
  readonly state: PeerState;
  readonly queue: RequestQueue;
}

/**
 * The blocks to request from `peer` now (marked requested in the picker; the caller sends them and records them in
 * the queue). `others` lists the other peers' queues; `limit` may lower the count (a download rate limit).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { Bitfield } from "../bitfield.ts";
 * import { createPicker } from "./picker.ts";
 * import { createPeerState } from "./peer_state.ts";
 * import { createQueue } from "./requests.ts";
 * const picker = createPicker({ pieceCount: 4, pieceLength: 65536, totalLength: 262144, have: new Bitfield(4),
 *   wanted: Bitfield.full(4), random: () => 0 });
 * const state = createPeerState(4, true, true);
 * state.has = Bitfield.full(4);
 * state.amInterested = true;
 * state.peerChoking = false;
 * eq(planRequests(picker, { state, queue: createQueue(0) }, [], 0).length, 16);
 * ```
 */
export function planRequests(
  picker: Picker,
  peer: StrategyPeer,
  others: Iterable<RequestQueue> | (() => Iterable<RequestQueue>),
  now: number,
  limit?: (wanted: number) => number,
): BlockRequest[] {
  const s = peer.state;
  const q = peer.queue;
  if (!s.amInterested) return [];
  const choked = s.peerChoking;
  if (choked && s.allowedFast.size === 0) return [];
  let n = requestsWanted(q, now);
  if (n <= 0 || (n < REQUEST_BATCH && q.outstanding.size >= REQUEST_BATCH)) return [];
  // a pick that found nothing finds nothing again until the picker or the peer's pieces change: skip the scan (while
  // the started-pieces cap is full, every block that arrives asks for a top-up). Not in endgame, where what a pick finds
  // also depends on this peer's outstanding count (duplicates go only to peers with fewer than ENDGAME_MAX_OUTSTANDING
  // out), which falls as its own blocks arrive without any change to the picker
  const dry = q.dry;
  if (
    !choked && dry.version === picker.version && dry.bits === s.has && dry.has === s.has.count &&
    now - dry.at < DRY_MS && (picker.remaining > 0 || q.outstanding.size >= ENDGAME_MAX_OUTSTANDING)
  ) return [];
  if (limit) n = limit(n);
  if (n <= 0) return [];
  const all = typeof others === "function" ? others() : others; // a function: made only when blocks are picked
  const holders = Array.isArray(all) ? all as readonly RequestQueue[] : [...all]; // read more than once
  const got = pickBlocks(
    picker,
    s.has,
    n,
    now,
    (r) => {
      const key = blockKey(r.index, r.begin);
      return q.outstanding.has(key) || recentlyRejected(s, key, now) ||
        (requestsOut(picker, r.index, r.begin) > 0 && !worthDuplicating(holders, key, now));
    },
    choked ? s.allowedFast : undefined,
    q.outstanding.size,
  );
  if (got.length === 0 && !choked) {
    dry.version = picker.version;
    dry.bits = s.has;
    dry.has = s.has.count;
    dry.at = now;
  }
  return got;
}

/**
 * Endgame: whether a block that other peers hold requests for is worth asking for again. Not when some holder will
 * likely send it within {@linkcode ENDGAME_COMMIT_WINDOW_MS}: the block is among the first bytes of its queue that
 * its measured rate covers in that window.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { createQueue, requestsSent } from "./requests.ts";
 * const slow = createQueue(0); // has delivered nothing: its rate is 0
 * requestsSent(slow, [{ index: 0, begin: 0, length: 16384 }], 0);
 * eq(worthDuplicating([slow], 0, 1_000), true);
 * ```
 */
export function worthDuplicating(others: Iterable<RequestQueue>, key: number, now: number): boolean {
  for (const q of others) {
    if (!q.outstanding.has(key)) continue;
    const committed = (rateOf(q.rate, now) * ENDGAME_COMMIT_WINDOW_MS) / 1000;
    if (committed < BLOCK_BYTES) continue;
    let ahead = 0;
    for (const k of q.outstanding.keys()) {
      if (k === key) break;
      ahead += BLOCK_BYTES;
      if (ahead + BLOCK_BYTES > committed) break;
    }
    if (ahead + BLOCK_BYTES <= committed) return false;
  }
  return true;
}
