/**
 * The piece picker: which blocks to ask a peer for next. Pure: no IO, no clock, randomness passed in.
 *
 * Policy, in order:
 * 1. Blocks of pieces already started (fewest blocks left first), so pieces complete and free their buffers.
 * 2. A new piece: the rarest among the peer's pieces that we want and lack, ties broken by a random order fixed
 *    when the picker is made (so two downloads of one swarm start at different places). `sequential` uses index order.
 * 3. Endgame: once every missing block is requested, a block may be requested from a second and third peer; the
 *    first copy to arrive wins and the runtime cancels the others.
 *
 * The number of started pieces is capped (`maxPartial`), which bounds the memory held in piece buffers.
 *
 * For speed on the hot path (thousands of blocks a second), the state is a mutable record that these functions
 * update in place; nothing in it refers to sockets or time.
 * @module
 */
import type { Bitfield } from "../bitfield.ts";
import { BLOCK_BYTES } from "../limits.ts";

/** Block states inside a started piece. */
const FREE = 0;
const REQUESTED = 1;
const RECEIVED = 2;

/** How long a pick order may lag behind availability changes: rebuilding sorts every piece. */
export const ORDER_REBUILD_MS = 1000;

/** How many peers may hold a request for the same block in endgame. */
export const ENDGAME_MAX_DUPLICATES = 2;

/**
 * In endgame a peer takes duplicate requests only while it has fewer than this many requests out, so duplicates go
 * to idle peers and little is fetched twice.
 */
export const ENDGAME_MAX_OUTSTANDING = 4;

/** A piece that has been started: which of its blocks are free, requested or received. */
export interface PartialPiece {
  readonly index: number;
  readonly length: number;
  /** One entry per block: 0 free, 1 requested, 2 received. */
  readonly blocks: Uint8Array;
  /** Outstanding requests per block (more than one only in endgame). */
  readonly requests: Uint8Array;
  received: number;
  /** How many blocks are free: a piece with none is passed over without a scan. */
  free: number;
  /** No block before this one is free: scans for free blocks start here. */
  firstFree: number;
}

/** The picker's state; see the module doc for why it is mutated in place. */
export interface Picker {
  readonly pieceCount: number;
  readonly pieceLength: number;
  readonly totalLength: number;
  /** Pieces verified and stored. */
  readonly have: Bitfield;
  /** Pieces the user selected (all by default). */
  readonly wanted: Bitfield;
  /** How many connected peers have each piece. */
  readonly availability: Uint32Array;
  /** Started pieces by index. */
  readonly partial: Map<number, PartialPiece>;
  /** A random rank per piece: the tie-break among equally rare pieces. */
  readonly rank: Uint32Array;
  readonly sequential: boolean;
  /** The most pieces started at once (outside endgame). */
  maxPartial: number;
  /** Pieces in pick order; rebuilt lazily when availability changes. */
  order: Uint32Array;
  orderDirty: boolean;
  /** When `order` was last rebuilt (ms); a stale order is kept for {@linkcode ORDER_REBUILD_MS}. */
  orderBuiltAt: number;
  /** Every entry of `order` before this position is had or started. */
  cursor: number;
  /** Wanted pieces neither had nor started. */
  remaining: number;
  /**
   * Counts changes that may give a peer something new to pick: a block freed, a piece verified, failed, started or newly
   * wanted, the cap changed. A pick that found nothing at one version finds nothing again at the same version (for the
   * same peer state), which is how a request top-up skips a futile scan ({@linkcode planRequests}).
   */
  version: number;
}

/** A block to request: piece, offset in the piece and length. */
export interface BlockRequest {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

/** Options for {@linkcode createPicker}. */
export interface PickerOptions {
  readonly pieceCount: number;
  readonly pieceLength: number;
  readonly totalLength: number;
  readonly have: Bitfield;
  readonly wanted: Bitfield;
  /** A source of randomness in [0, 1) for the tie-break order. */
  readonly random: () => number;
  readonly sequential?: boolean;
  readonly maxPartial?: number;
}

/**
 * Makes a picker for a torrent's geometry.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { Bitfield } from "../bitfield.ts";
 * const p = createPicker({ pieceCount: 2, pieceLength: 32768, totalLength: 40000, have: new Bitfield(2),
 *   wanted: Bitfield.full(2), random: () => 0.5 });
 * eq(pieceLength(p, 1), 7232);
 * eq(p.remaining, 2);
 * ```
 */
export function createPicker(o: PickerOptions): Picker {
  const rank = new Uint32Array(o.pieceCount);
  for (let i = 0; i < o.pieceCount; i++) rank[i] = Math.floor(o.random() * 0xffff_ffff);
  let remaining = 0;
  for (let i = 0; i < o.pieceCount; i++) if (o.wanted.has(i) && !o.have.has(i)) remaining++;
  return {
    pieceCount: o.pieceCount,
    pieceLength: o.pieceLength,
    totalLength: o.totalLength,
    have: o.have,
    wanted: o.wanted,
    availability: new Uint32Array(o.pieceCount),
    partial: new Map(),
    rank,
    sequential: o.sequential ?? false,
    maxPartial: o.maxPartial ?? 64,
    order: new Uint32Array(0),
    orderDirty: true,
    orderBuiltAt: -Infinity,
    cursor: 0,
    remaining,
    version: 0,
  };
}

/** The length of piece `index` (the last may be short). */
export function pieceLength(p: Picker, index: number): number {
  return index === p.pieceCount - 1 ? p.totalLength - index * p.pieceLength : p.pieceLength;
}

/** The number of blocks in piece `index`. */
export function blockCount(p: Picker, index: number): number {
  return Math.ceil(pieceLength(p, index) / BLOCK_BYTES);
}

/** Counts a peer's pieces into availability (on its bitfield or have-all). */
export function addPeerPieces(p: Picker, bits: Bitfield): void {
  for (let i = 0; i < p.pieceCount; i++) if (bits.has(i)) p.availability[i]++;
  p.orderDirty = true;
}

/** Removes a departed peer's pieces from availability. */
export function removePeerPieces(p: Picker, bits: Bitfield): void {
  for (let i = 0; i < p.pieceCount; i++) if (bits.has(i) && p.availability[i] > 0) p.availability[i]--;
  p.orderDirty = true;
}

/** Counts one `have` from a peer. */
export function addPeerPiece(p: Picker, index: number): void {
  p.availability[index]++;
  p.orderDirty = true;
}

/** Whether some piece the peer has is one we want and lack. */
export function isInteresting(p: Picker, peerHas: Bitfield): boolean {
  for (let i = 0; i < p.pieceCount; i++) {
    if (peerHas.has(i) && p.wanted.has(i) && !p.have.has(i)) return true;
  }
  return false;
}

/** Whether every wanted piece is verified. */
export function isDone(p: Picker): boolean {
  return p.remaining === 0 && p.partial.size === 0;
}

/** Whether every missing block has been requested at least once (endgame applies). */
export function inEndgame(p: Picker): boolean {
  if (p.remaining > 0) return false;
  for (const pp of p.partial.values()) if (pp.free > 0) return false;
  return true;
}

function rebuildOrder(p: Picker, now: number): void {
  p.orderBuiltAt = now;
  const idx: number[] = [];
  for (let i = 0; i < p.pieceCount; i++) if (p.wanted.has(i) && !p.have.has(i)) idx.push(i);
  if (!p.sequential) {
    const a = p.availability;
    const r = p.rank;
    idx.sort((x, y) => a[x] - a[y] || r[x] - r[y]);
  }
  p.order = Uint32Array.from(idx);
  p.orderDirty = false;
  p.cursor = 0;
}

function startPiece(p: Picker, index: number): PartialPiece {
  const n = blockCount(p, index);
  const pp: PartialPiece = {
    index,
    length: pieceLength(p, index),
    blocks: new Uint8Array(n),
    requests: new Uint8Array(n),
    received: 0,
    free: n,
    firstFree: 0,
  };
  p.partial.set(index, pp);
  p.remaining--;
  p.version++; // its blocks are free for every peer
  return pp;
}

function takeFree(pp: PartialPiece, out: BlockRequest[], max: number, skip?: (r: BlockRequest) => boolean): void {
  let b = pp.firstFree;
  let stillFree = -1; // the first free block this scan passed over (skipped), if any
  for (; b < pp.blocks.length && pp.free > 0 && out.length < max; b++) {
    if (pp.blocks[b] !== FREE) continue;
    const begin = b * BLOCK_BYTES;
    const r = { index: pp.index, begin, length: Math.min(BLOCK_BYTES, pp.length - begin) };
    if (skip?.(r)) {
      if (stillFree < 0) stillFree = b;
      continue;
    }
    pp.blocks[b] = REQUESTED;
    pp.free--;
    pp.requests[b]++;
    out.push(r);
  }
  pp.firstFree = stillFree >= 0 ? stillFree : pp.free === 0 ? pp.blocks.length : b;
}

/**
 * Picks up to `max` blocks to request from a peer that has `peerHas`, marking them requested. `isOutstanding`
 * tells whether this peer must not be asked for a block: it has a request out for it (so endgame never asks one
 * peer twice) or it refused it (BEP 6 reject); `allowed`,
 * when given, limits the choice to those pieces (BEP 6 allowed-fast while choked); `outstanding` is how many
 * requests the peer has out (endgame duplicates go only to peers with fewer than
 * {@linkcode ENDGAME_MAX_OUTSTANDING}).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * import { Bitfield } from "../bitfield.ts";
 * const p = createPicker({ pieceCount: 1, pieceLength: 32768, totalLength: 20000, have: new Bitfield(1),
 *   wanted: Bitfield.full(1), random: () => 0 });
 * eq(pickBlocks(p, Bitfield.full(1), 10, 0), [{ index: 0, begin: 0, length: 16384 }, { index: 0, begin: 16384, length: 3616 }]);
 * eq(pickBlocks(p, Bitfield.full(1), 10, 0), []); // all requested, and the caller already has them out
 * ```
 */
export function pickBlocks(
  p: Picker,
  peerHas: Bitfield,
  max: number,
  now: number,
  isOutstanding?: (r: BlockRequest) => boolean,
  allowed?: ReadonlySet<number>,
  outstanding = 0,
): BlockRequest[] {
  const out: BlockRequest[] = [];
  if (max <= 0) return out;
  const ok = (i: number) => peerHas.has(i) && (!allowed || allowed.has(i));
  // 0. streaming (`sequential`): the head piece, the one a reader waits for, is taken from a slow holder by any peer
  //    the caller lets duplicate it (the request strategy allows it when the holder will not deliver soon)
  if (p.sequential && isOutstanding && p.partial.size > 0) {
    let head = Infinity;
    for (const k of p.partial.keys()) if (k < head) head = k;
    const pp = p.partial.get(head);
    if (pp && ok(head)) {
      for (let b = 0; b < pp.blocks.length && out.length < max; b++) {
        if (pp.blocks[b] !== REQUESTED || pp.requests[b] >= ENDGAME_MAX_DUPLICATES) continue;
        const begin = b * BLOCK_BYTES;
        const r = { index: head, begin, length: Math.min(BLOCK_BYTES, pp.length - begin) };
        if (isOutstanding(r)) continue;
        pp.requests[b]++;
        out.push(r);
      }
    }
  }
  // 1. started pieces with free blocks, fewest missing blocks first (most started pieces have none free: every block
  //    is requested, so they are passed over without a scan)
  if (p.partial.size > 0) {
    const open: PartialPiece[] = [];
    // forEach, not for-of: no iterator result per started piece before the code is optimised (this runs per top-up)
    p.partial.forEach((pp) => {
      if (pp.free > 0 && ok(pp.index)) open.push(pp);
    });
    if (open.length > 0) {
      if (open.length > 1) open.sort((a, b) => (a.blocks.length - a.received) - (b.blocks.length - b.received));
      for (const pp of open) {
        takeFree(pp, out, max, isOutstanding);
        if (out.length >= max) return out;
      }
    }
  }
  // 2. new pieces, rarest first
  // whether the peer has some piece started before this call (asked only past the cap)
  let hasStarted: boolean | null = null;
  const fresh: number[] = [];
  const startedHere = (): boolean => {
    if (hasStarted === null) {
      hasStarted = false;
      for (const k of p.partial.keys()) {
        if (ok(k) && !fresh.includes(k)) {
          hasStarted = true;
          break;
        }
      }
    }
    return hasStarted;
  };
  if (p.remaining > 0) {
    if (p.orderDirty && (now - p.orderBuiltAt >= ORDER_REBUILD_MS || p.order.length === 0)) rebuildOrder(p, now);
    while (p.cursor < p.order.length && (p.have.has(p.order[p.cursor]) || p.partial.has(p.order[p.cursor]))) {
      p.cursor++;
    }
    for (let k = p.cursor; k < p.order.length && out.length < max; k++) {
      // past the cap, start a piece only for a peer that has none of the started ones, and never past twice the cap
      if (p.partial.size >= p.maxPartial && (out.length > 0 || p.partial.size >= 2 * p.maxPartial || startedHere())) {
        break;
      }
      const i = p.order[k];
      if (p.have.has(i) || p.partial.has(i) || !ok(i)) continue;
      fresh.push(i);
      takeFree(startPiece(p, i), out, max, isOutstanding);
      if (p.partial.size >= p.maxPartial) break;
    }
  }
  // 3. endgame: duplicate requests for blocks still in flight elsewhere, to peers that are nearly idle
  const room = Math.min(max, ENDGAME_MAX_OUTSTANDING - outstanding);
  if (out.length === 0 && room > 0 && inEndgame(p)) {
    // newest first: the other peer has most likely not sent those yet, so cancelling its copy still saves the bytes
    for (const pp of [...p.partial.values()].reverse()) {
      if (!ok(pp.index)) continue;
      for (let b = pp.blocks.length - 1; b >= 0 && out.length < room; b--) {
        if (pp.blocks[b] !== REQUESTED || pp.requests[b] >= ENDGAME_MAX_DUPLICATES) continue;
        const begin = b * BLOCK_BYTES;
        const r = { index: pp.index, begin, length: Math.min(BLOCK_BYTES, pp.length - begin) };
        if (!isOutstanding || isOutstanding(r)) continue; // without the callback, no duplicates
        pp.requests[b]++;
        out.push(r);
      }
    }
  }
  return out;
}

/**
 * Returns a request that will not be answered (choke, reject, time-out, disconnect) so the block can be picked
 * again. A block already received stays received.
 */
export function releaseBlock(p: Picker, index: number, begin: number): void {
  const pp = p.partial.get(index);
  if (!pp) return;
  const b = begin / BLOCK_BYTES;
  if (pp.requests[b] > 0) {
    pp.requests[b]--;
    p.version++; // free again, or one holder fewer (another peer may duplicate it now)
  }
  if (pp.blocks[b] === REQUESTED && pp.requests[b] === 0) {
    pp.blocks[b] = FREE;
    pp.free++;
    if (b < pp.firstFree) pp.firstFree = b;
  }
}

/** What {@linkcode receiveBlock} made of an arriving block. */
export type ReceiveResult = "new" | "duplicate" | "unwanted";

/**
 * Records an arriving block. `new` means the caller should keep its bytes; `duplicate` (already received, e.g. in
 * endgame) and `unwanted` (a piece not started, or a bad offset) mean they are wasted.
 */
export function receiveBlock(p: Picker, index: number, begin: number, length: number): ReceiveResult {
  const pp = p.partial.get(index);
  if (!pp || begin % BLOCK_BYTES !== 0) return "unwanted";
  const b = begin / BLOCK_BYTES;
  if (b >= pp.blocks.length) return "unwanted";
  if (length !== Math.min(BLOCK_BYTES, pp.length - begin)) return "unwanted";
  if (pp.requests[b] > 0) pp.requests[b]--;
  if (pp.blocks[b] === RECEIVED) return "duplicate";
  if (pp.blocks[b] === FREE) pp.free--; // a block that came after its request was given up
  pp.blocks[b] = RECEIVED;
  pp.received++;
  return "new";
}

/** How many requests for this block are still out (after a copy arrived: the duplicates to cancel). */
export function requestsOut(p: Picker, index: number, begin: number): number {
  const pp = p.partial.get(index);
  return pp ? pp.requests[begin / BLOCK_BYTES] ?? 0 : 0;
}

/** Whether every block of a started piece has arrived. */
export function pieceComplete(p: Picker, index: number): boolean {
  const pp = p.partial.get(index);
  return pp !== undefined && pp.received === pp.blocks.length;
}

/** A complete piece passed its hash: it is ours. */
export function pieceVerified(p: Picker, index: number): void {
  p.version++;
  p.partial.delete(index);
  if (!p.have.has(index)) p.have.set(index);
}

/** A complete piece failed its hash: every block goes back to free so it is fetched again. */
export function pieceFailed(p: Picker, index: number): void {
  const pp = p.partial.get(index);
  if (!pp) return;
  p.version++;
  p.partial.delete(index);
  p.remaining++;
  p.cursor = 0;
}

/** Adds pieces to the wanted set (e.g. `--select` changed); returns how many were new. */
export function wantPieces(p: Picker, pieces: Iterable<number>): number {
  let n = 0;
  for (const i of pieces) {
    if (p.wanted.set(i) && !p.have.has(i) && !p.partial.has(i)) {
      p.remaining++;
      n++;
    }
  }
  if (n > 0) {
    p.version++;
    p.orderDirty = true;
    p.order = new Uint32Array(0);
  }
  return n;
}

/**
 * Web seeds (BEP 19) read files in order, so they take runs of consecutive pieces: claims the first run of at most
 * `maxPieces` wanted pieces that nobody has started and `serves(i)` allows, starting at `from` and wrapping around;
 * every block of the run is marked requested. Returns the blocks (for the seed's request queue) and the run, or null
 * when there is no such piece. Bounded by the partial-piece cap like any peer's picks.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * import { Bitfield } from "../bitfield.ts";
 * const p = createPicker({ pieceCount: 4, pieceLength: 16384, totalLength: 65536, have: new Bitfield(4),
 *   wanted: Bitfield.full(4), random: () => 0 });
 * eq(claimRun(p, 2, 0, () => true)?.run, { first: 0, last: 1 });
 * eq(claimRun(p, 8, 0, () => true)?.run, { first: 2, last: 3 });
 * eq(claimRun(p, 8, 0, () => true), null);
 * ```
 */
export function claimRun(
  p: Picker,
  maxPieces: number,
  from: number,
  serves: (index: number) => boolean,
): { readonly run: { readonly first: number; readonly last: number }; readonly blocks: BlockRequest[] } | null {
  const n = p.pieceCount;
  // a piece that nobody has started, or one started whose requests all ended without it completing (a run cut
  // short, a peer gone): its missing blocks are free for the taking
  const idle = (i: number): boolean => {
    const pp = p.partial.get(i);
    if (!pp) return p.wanted.has(i) && !p.have.has(i);
    if (pp.received === pp.blocks.length) return false;
    for (let b = 0; b < pp.blocks.length; b++) if (pp.blocks[b] === REQUESTED) return false;
    return true;
  };
  const claimable = (i: number) => serves(i) && idle(i) && (p.partial.has(i) || p.partial.size < 2 * p.maxPartial);
  const limit = Math.max(1, Math.min(maxPieces, p.maxPartial - p.partial.size));
  for (let k = 0; k < n; k++) {
    const first = (from + k) % n;
    if (!claimable(first)) continue;
    let last = first;
    while (last + 1 < n && last + 1 - first + 1 <= limit && claimable(last + 1)) last++;
    const blocks: BlockRequest[] = [];
    for (let i = first; i <= last; i++) takeFree(p.partial.get(i) ?? startPiece(p, i), blocks, Infinity);
    return { run: { first, last }, blocks };
  }
  return null;
}
