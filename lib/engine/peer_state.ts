/**
 * One peer's protocol state: who chokes whom, who is interested, which pieces it has, the pieces it lets us fetch
 * while choked (BEP 6 allowed fast), the blocks it rejected, and what its extension handshake (BEP 10) said.
 *
 * Pure: {@linkcode applyMessage} takes a decoded message and the time, updates the record, and returns what the
 * message means for the torrent (an {@linkcode PeerEffect}); it throws {@linkcode WireError} for a message that
 * breaks the protocol (a `have` past the last piece, `have-all` without the Fast extension), which drops that peer
 * only. Blocks (`piece`) and requests are passed through as effects: the request strategy and the upload queue own them.
 * @module
 */
import { Bitfield, BitfieldError } from "../bitfield.ts";
import { decodeExtHandshake, type ExtHandshake } from "../wire/extension.ts";
import { WireError } from "../wire/frame.ts";
import type { Message } from "../wire/messages.ts";
import { blockKey } from "./requests.ts";

/** How long a block a peer rejected is not asked of it again. */
export const REJECT_BACKOFF_MS = 1_000;
/** A peer that unchokes us yet rejects this many requests in a row, sending nothing, is dropped. */
export const MAX_REJECTS_IN_A_ROW = 64;
/** Allowed-fast pieces we remember per peer (BEP 6 suggests 10; a peer may send more, we keep the first few). */
export const MAX_ALLOWED_FAST = 64;
/** Extension names remembered per peer (BEP 10 `m`): a handful are in use; more is a peer growing our memory. */
export const MAX_EXTENSIONS = 64;
/** Rejected blocks remembered per peer; older entries go first. */
export const MAX_REJECTED_REMEMBERED = 4096;

/** The protocol state of one connected peer. */
export interface PeerState {
  readonly pieceCount: number;
  /** It supports the Fast extension (BEP 6). */
  readonly fast: boolean;
  /** It supports the extension protocol (BEP 10). */
  readonly extended: boolean;
  /** The pieces it has. */
  has: Bitfield;
  /** Whether `has` is counted in the picker's availability. */
  hasCounted: boolean;
  amChoking: boolean;
  amInterested: boolean;
  peerChoking: boolean;
  peerInterested: boolean;
  /** Pieces it lets us request while it chokes us. */
  readonly allowedFast: Set<number>;
  /** Block keys it rejected, with when. */
  readonly rejected: Map<number, number>;
  /** Rejects since the last block it sent. */
  rejectsInARow: number;
  /** Its extension message ids by name (`ut_metadata`, `ut_pex`), from its extension handshake. */
  readonly extensions: Map<string, number>;
  /** Its request queue size (`reqq`), when it said. */
  reqq: number | undefined;
  /** When it last sent any message (null: none since the handshake). */
  lastMessageAt: number | null;
}

/** What a message means for the torrent; the runtime acts on it. */
export type PeerEffect =
  | { readonly kind: "none" }
  /** It choked us: requests not in allowed-fast pieces will not be answered. */
  | { readonly kind: "choked" }
  /** It unchoked us: time to request. */
  | { readonly kind: "unchoked" }
  /** It became interested in us (the choker may act at once). */
  | { readonly kind: "interested" }
  | { readonly kind: "not-interested" }
  /** It has one more piece. */
  | { readonly kind: "have"; readonly index: number }
  /** Its whole set changed: `previous` (when counted) leaves the availability, `has` enters it. */
  | { readonly kind: "pieces"; readonly previous: Bitfield | null }
  | { readonly kind: "request"; readonly index: number; readonly begin: number; readonly length: number }
  | { readonly kind: "cancel"; readonly index: number; readonly begin: number }
  /** It refused a request of ours. */
  | { readonly kind: "rejected"; readonly index: number; readonly begin: number; readonly tooMany: boolean }
  | { readonly kind: "allowed-fast"; readonly index: number }
  | { readonly kind: "block"; readonly index: number; readonly begin: number; readonly data: Uint8Array }
  | { readonly kind: "ext-handshake"; readonly handshake: ExtHandshake }
  | { readonly kind: "ext-message"; readonly id: number; readonly payload: Uint8Array };

/** The state of a peer just after the handshake. */
export function createPeerState(pieceCount: number, fast: boolean, extended: boolean): PeerState {
  return {
    pieceCount,
    fast,
    extended,
    has: new Bitfield(pieceCount),
    hasCounted: false,
    amChoking: true,
    amInterested: false,
    peerChoking: true,
    peerInterested: false,
    allowedFast: new Set(),
    rejected: new Map(),
    rejectsInARow: 0,
    extensions: new Map(),
    reqq: undefined,
    lastMessageAt: null,
  };
}

/**
 * Applies one message from the peer at `now`.
 * @throws {WireError} `bad-payload` when the message breaks the protocol.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const s = createPeerState(4, true, false);
 * eq(applyMessage(s, { type: "have", index: 2 }, 0), { kind: "have", index: 2 });
 * eq(s.has.has(2), true);
 * eq(applyMessage(s, { type: "have", index: 2 }, 0), { kind: "none" }); // already known
 * ```
 */
export function applyMessage(s: PeerState, msg: Message, now: number): PeerEffect {
  s.lastMessageAt = now;
  switch (msg.type) {
    case "keep-alive":
    case "port":
    case "suggest":
    case "unknown":
      return NONE;
    case "choke":
      if (s.peerChoking) return NONE;
      s.peerChoking = true;
      return { kind: "choked" };
    case "unchoke":
      if (!s.peerChoking) return NONE;
      s.peerChoking = false;
      s.rejected.clear();
      return { kind: "unchoked" };
    case "interested":
      if (s.peerInterested) return NONE;
      s.peerInterested = true;
      return { kind: "interested" };
    case "not-interested":
      if (!s.peerInterested) return NONE;
      s.peerInterested = false;
      return { kind: "not-interested" };
    case "have":
      if (msg.index >= s.pieceCount) throw new WireError("bad-payload", 0, `have for piece ${msg.index}`);
      return s.has.set(msg.index) ? { kind: "have", index: msg.index } : NONE;
    case "bitfield":
    case "have-all":
    case "have-none": {
      // aria2c sends a fresh bitfield mid-connection instead of `have`s: it replaces the peer's set
      let bits: Bitfield;
      if (msg.type === "bitfield") {
        try {
          bits = Bitfield.fromBytes(msg.bits, s.pieceCount);
        } catch (e) {
          if (e instanceof BitfieldError) throw new WireError("bad-payload", 0, e.message);
          throw e;
        }
      } else {
        if (!s.fast) throw new WireError("bad-payload", 0, `${msg.type} without the Fast extension`);
        bits = msg.type === "have-all" ? Bitfield.full(s.pieceCount) : new Bitfield(s.pieceCount);
      }
      const previous = s.hasCounted ? s.has : null;
      s.has = bits;
      return { kind: "pieces", previous };
    }
    case "request":
      return { kind: "request", index: msg.index, begin: msg.begin, length: msg.length };
    case "cancel":
      return { kind: "cancel", index: msg.index, begin: msg.begin };
    case "reject": {
      if (!s.fast) throw new WireError("bad-payload", 0, "reject without the Fast extension");
      if (s.rejected.size >= MAX_REJECTED_REMEMBERED) s.rejected.delete(s.rejected.keys().next().value as number);
      s.rejected.set(blockKey(msg.index, msg.begin), now);
      const tooMany = !s.peerChoking && ++s.rejectsInARow >= MAX_REJECTS_IN_A_ROW;
      return { kind: "rejected", index: msg.index, begin: msg.begin, tooMany };
    }
    case "allowed-fast":
      if (msg.index >= s.pieceCount || s.allowedFast.size >= MAX_ALLOWED_FAST) return NONE;
      s.allowedFast.add(msg.index);
      return { kind: "allowed-fast", index: msg.index };
    case "extended":
      if (msg.id === 0) {
        const h = decodeExtHandshake(msg.payload);
        for (const [name, id] of h.m) {
          if (id === 0) s.extensions.delete(name);
          else if (s.extensions.has(name) || s.extensions.size < MAX_EXTENSIONS) s.extensions.set(name, id);
        }
        if (h.reqq !== undefined && h.reqq > 0) s.reqq = h.reqq;
        return { kind: "ext-handshake", handshake: h };
      }
      return { kind: "ext-message", id: msg.id, payload: msg.payload };
    case "piece":
      return { kind: "block", index: msg.index, begin: msg.begin, data: msg.block };
  }
}

/** Whether we may ask this peer for a block of `index` now (unchoked, or an allowed-fast piece). */
export function mayRequest(s: PeerState, index: number): boolean {
  return !s.peerChoking || s.allowedFast.has(index);
}

/** Whether we asked this peer for the block recently enough that its reject still stands. */
export function recentlyRejected(s: PeerState, key: number, now: number): boolean {
  const at = s.rejected.get(key);
  return at !== undefined && now - at < REJECT_BACKOFF_MS;
}

const NONE: PeerEffect = { kind: "none" };
