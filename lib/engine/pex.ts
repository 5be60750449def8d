/**
 * Peer exchange (BEP 11, `ut_pex`) for one torrent, as pure state: what each connected peer told us and when, and
 * what we told it. The swarm calls {@linkcode pexReceived} with each ut_pex payload a peer sends us (and adds the
 * peers it returns to its pool with source `pex`, or drops the peer), and {@linkcode pexTick} now and then with a view
 * of its connected peers (and sends each message it returns as an extended message with the recipient's ut_pex id).
 * It reads no clock and opens no socket; the functions mutate the state in place, like the peer pool's.
 *
 * Receiving:
 * - One message per peer per {@linkcode PEX_MIN_RECEIVE_INTERVAL_MS} (45 s: BEP 11 asks for one a minute, the slack
 *   absorbs delays on the way): the first at any time, a later one sooner than that gets the verdict `drop`, as does a
 *   malformed message or one listing more than `PEX_MAX_RECEIVED_ENTRIES` peers (the codec refuses it). libtorrent
 *   also disconnects such peers.
 * - One host (IP) teaches us peers at most {@linkcode PEX_TEACHINGS_PER_HOST} times per
 *   {@linkcode PEX_MIN_RECEIVE_INTERVAL_MS}, over all its connections (a few peers may share a NAT's address): past
 *   that, a message is taken, its `dropped` too, but its `added` are not learnt. So reconnecting does not buy a
 *   flooder a fresh allowance. The last {@linkcode PEX_MAX_HOSTS_REMEMBERED} hosts are remembered.
 * - Of the peers added, at most {@linkcode PEX_MAX_LEARNT_PER_MESSAGE} go to the pool, first come first kept: never
 *   our own address, nor the sender itself, nor an address without a use (a host name, 0.0.0.0, multicast), no
 *   address twice, no public IP address twice with different ports (BEP 11's defence against being used to flood a
 *   victim with connection attempts), and loopback or private addresses only from a peer that is itself local (see
 *   {@linkcode mayShare}). Their flags come along, so the swarm can, say, leave seeds alone once it is complete.
 *
 * Sending (per peer that speaks ut_pex, i.e. gave a non-zero `ut_pex` id in its extended handshake):
 * - The first message as soon as there is something to say; then at most one every {@linkcode PEX_SEND_INTERVAL_MS}.
 * - The message is the difference between the peers we told this peer about and the peers it may hear of now:
 *   `added` are peers we are connected to (handshake complete) that it has not heard of, `dropped` the ones it heard
 *   of that are gone; {@linkcode PEX_MAX_SENT_ENTRIES} of each at most (IPv4 and IPv6 together), the rest in the next
 *   message. So a peer that came and went between two messages is never mentioned, and every peer added is dropped
 *   in a later message once it goes (BEP 11).
 * - Who may be mentioned: never the recipient itself; an outgoing peer by the address we dialled; an incoming peer by
 *   its IP and the listen port its extended handshake gave (`p`), and not at all without one (its source port is not
 *   one anybody can dial); loopback and private addresses only to peers that are themselves local.
 * - Flags: 0x02 (seed) for a peer that has every piece, 0x10 (reachable) for a peer we dialled ourselves. An
 *   incoming peer's listen port is only its word, so it does not earn 0x10; libtorrent sets neither bit beyond seed
 *   and encryption.
 *
 * Private torrents (BEP 27) must not use PEX at all: the swarm neither offers ut_pex nor calls these functions.
 * @module
 */
import { type AddressScope, addressScope, formatAddress, ipv4Bytes, mayShare, type PeerAddress } from "../address.ts";
import { PEX_MAX_LEARNT_PER_MESSAGE, PEX_MIN_RECEIVE_INTERVAL_MS } from "../limits.ts";
import { WireError } from "../wire/frame.ts";
import { decodePex, encodePex, PexFlag, type PexMessage } from "../wire/pex.ts";

/** Our message id for ut_pex in the `m` of our extended handshake (libtorrent's choice too). */
export const OUR_UT_PEX_ID = 1;
/** The shortest gap between two ut_pex messages we send to one peer (BEP 11: at most one a minute). */
export const PEX_SEND_INTERVAL_MS = 60_000;
/** The most peers we add, and the most we drop, in one message (BEP 11: 50 of each, IPv4 and IPv6 together). */
export const PEX_MAX_SENT_ENTRIES = 50;

/** What one peer told us and what we told it. */
export interface PexPeerState {
  /** When its last ut_pex message arrived; null before the first. */
  lastReceivedAt: number | null;
  /** When we last sent it one; null before the first. */
  lastSentAt: number | null;
  /** The peers we told it were added and have not told it were dropped, by address key. */
  readonly told: Map<string, PeerAddress>;
}

/** The PEX state of one torrent (mutated in place by the functions here). */
export interface PexState {
  /** Our own addresses (keys as {@linkcode formatAddress} writes them), never learnt: the pool's `self`, shared. */
  readonly self: ReadonlySet<string>;
  /** Per connected peer, by the swarm's peer id. */
  readonly peers: Map<number, PexPeerState>;
  /** Per host (IP), over all its connections: when its current window began and how often it taught us since. */
  readonly taught: Map<string, { since: number; count: number }>;
}

/** Hosts {@linkcode PexState.taught} remembers, the most recent kept (a few hundred KiB at most). */
export const PEX_MAX_HOSTS_REMEMBERED = 4096;
/** Messages whose `added` one host may teach us per {@linkcode PEX_MIN_RECEIVE_INTERVAL_MS}, over all its connections. */
export const PEX_TEACHINGS_PER_HOST = 4;

/**
 * Makes the PEX state of a torrent.
 * @param o `self`: our own addresses (the peer pool's `self` set, passed by reference so later additions count).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const pex = createPex({ self: new Set(["127.0.0.1:6881"]) });
 * eq(pex.peers.size, 0);
 * ```
 */
export function createPex(o: { readonly self: ReadonlySet<string> }): PexState {
  return { self: o.self, peers: new Map(), taught: new Map() };
}

/** Forgets a peer that went away (its state would also go at the next {@linkcode pexTick}). */
export function forgetPexPeer(pex: PexState, id: number): void {
  pex.peers.delete(id);
}

function peerState(pex: PexState, id: number): PexPeerState {
  let s = pex.peers.get(id);
  if (!s) {
    s = { lastReceivedAt: null, lastSentAt: null, told: new Map() };
    pex.peers.set(id, s);
  }
  return s;
}

// ---- receiving -----------------------------------------------------------------------------------------------------

/** A ut_pex message that arrived from a connected peer. */
export interface PexArrival {
  /** The swarm's id of the sender. */
  readonly peer: number;
  /** The sender's address (the socket's remote end). */
  readonly address: PeerAddress;
  /** The sender's listen port, from `p` in its extended handshake. */
  readonly listenPort?: number;
  /** The bytes after the extended message's id byte. */
  readonly payload: Uint8Array;
}

/** A peer learnt from a message: where it listens, and its {@linkcode PexFlag} byte when the sender gave one. */
export interface LearntPeer {
  readonly address: PeerAddress;
  readonly flags?: number;
}

/** What to make of a ut_pex message: peers for the pool, or drop the sender. */
export type PexVerdict =
  | {
    readonly kind: "accept";
    /** Peers to add to the pool with source `pex`, at most {@linkcode PEX_MAX_LEARNT_PER_MESSAGE}. */
    readonly learnt: readonly LearntPeer[];
    /** Peers the sender says it disconnected from (for information: they may still be worth a dial). */
    readonly dropped: readonly PeerAddress[];
  }
  | {
    readonly kind: "drop";
    /** Why, for the peer's `disconnected` event. */
    readonly reason: string;
    /** The codec's error when the message was malformed or over the limits. */
    readonly error?: WireError;
  };

/**
 * A peer sent us a ut_pex message at `now`: checks its rate and content, and picks the peers worth a dial.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * import { encodePex } from "../wire/pex.ts";
 * const pex = createPex({ self: new Set() });
 * const payload = encodePex({ added: [{ host: "1.2.3.4", port: 6881 }], addedFlags: [2], added6: [],
 *   added6Flags: [], dropped: [], dropped6: [] });
 * const from = { peer: 1, address: { host: "5.6.7.8", port: 51413 }, payload };
 * eq(pexReceived(pex, from, 0), { kind: "accept", learnt: [{ address: { host: "1.2.3.4", port: 6881 }, flags: 2 }],
 *   dropped: [] });
 * eq(pexReceived(pex, from, 10_000).kind, "drop"); // 10 s later: too soon
 * ```
 */
export function pexReceived(pex: PexState, ev: PexArrival, now: number): PexVerdict {
  const s = peerState(pex, ev.peer);
  if (s.lastReceivedAt !== null && now - s.lastReceivedAt < PEX_MIN_RECEIVE_INTERVAL_MS) {
    return {
      kind: "drop",
      reason: `ut_pex messages ${
        Math.round(now - s.lastReceivedAt)
      } ms apart, under the minimum of ${PEX_MIN_RECEIVE_INTERVAL_MS}`,
    };
  }
  s.lastReceivedAt = now;
  let m: PexMessage;
  try {
    m = decodePex(ev.payload);
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    return { kind: "drop", reason: `bad ut_pex message: ${e.message}`, error: e };
  }
  const senderScope = addressScope(ev.address.host);
  const sender = new Set([formatAddress(ev.address)]);
  if (ev.listenPort !== undefined) sender.add(formatAddress({ host: ev.address.host, port: ev.listenPort }));
  const seenKeys = new Set<string>();
  const seenPublicIps = new Set<string>();
  const learnt: LearntPeer[] = [];
  const consider = (list: readonly PeerAddress[], flags: readonly number[]): void => {
    for (let i = 0; i < list.length && learnt.length < PEX_MAX_LEARNT_PER_MESSAGE; i++) {
      const a = list[i];
      const key = formatAddress(a);
      const scope = addressScope(a.host);
      if (!mayShare(scope, senderScope) || pex.self.has(key) || sender.has(key) || seenKeys.has(key)) continue;
      if (scope === "public" && seenPublicIps.has(a.host)) continue;
      seenKeys.add(key);
      if (scope === "public") seenPublicIps.add(a.host);
      learnt.push(flags.length === list.length ? { address: a, flags: flags[i] } : { address: a });
    }
  };
  const host = ev.address.host;
  let w = pex.taught.get(host);
  if (w === undefined || now - w.since >= PEX_MIN_RECEIVE_INTERVAL_MS) w = { since: now, count: 0 };
  pex.taught.delete(host); // re-inserted last: the map stays least recent first
  pex.taught.set(host, w);
  while (pex.taught.size > PEX_MAX_HOSTS_REMEMBERED) pex.taught.delete(pex.taught.keys().next().value as string);
  if (w.count < PEX_TEACHINGS_PER_HOST) {
    w.count++;
    consider(m.added, m.addedFlags);
    consider(m.added6, m.added6Flags);
  }
  const droppedKeys = new Set<string>();
  const dropped: PeerAddress[] = [];
  for (const a of [...m.dropped, ...m.dropped6]) {
    const key = formatAddress(a);
    if (droppedKeys.has(key)) continue;
    droppedKeys.add(key);
    dropped.push(a);
  }
  return { kind: "accept", learnt, dropped };
}

// ---- sending -------------------------------------------------------------------------------------------------------

/** What {@linkcode pexTick} needs to know of a connected peer (its handshake is complete). */
export interface PexPeerView {
  /** The swarm's id of the peer. */
  readonly id: number;
  /** The socket's remote address. */
  readonly address: PeerAddress;
  /** It connected to us (we did not dial it). */
  readonly incoming: boolean;
  /** Its listen port, from `p` in its extended handshake. */
  readonly listenPort?: number;
  /** Its message id for ut_pex, from its extended handshake; absent or 0 when it does not speak ut_pex. */
  readonly utPexId?: number;
  /** It has every piece. */
  readonly seed: boolean;
}

/** A message to send: an extended message with id `extId` (the recipient's ut_pex id) and this payload. */
export interface PexSend {
  /** The swarm's id of the recipient. */
  readonly peer: number;
  /** The recipient's ut_pex id. */
  readonly extId: number;
  readonly message: PexMessage;
  /** `message` encoded. */
  readonly payload: Uint8Array;
}

/** A connected peer as others may hear of it. */
interface Advert {
  readonly key: string;
  readonly address: PeerAddress;
  readonly scope: AddressScope;
  readonly flags: number;
  /** The swarm's id of the peer (never told about itself). */
  readonly id: number;
}

/** How other peers may hear of a connected peer, or null when they may not. */
function advertOf(v: PexPeerView): Advert | null {
  let address = v.address;
  if (v.incoming) {
    if (v.listenPort === undefined) return null;
    address = { host: v.address.host, port: v.listenPort };
  }
  const scope = addressScope(address.host);
  if (scope === "unusable") return null;
  const flags = (v.seed ? PexFlag.seed : 0) | (v.incoming ? 0 : PexFlag.reachable);
  return { key: formatAddress(address), address, scope, flags, id: v.id };
}

/**
 * Decides, at `now`, which peers get a ut_pex message and what it says (see the module notes for the policy), and
 * records it as sent. Forgets the state of peers no longer in `peers`. The first message to a peer goes at the first
 * tick with something to say; call this about once a second.
 * @param peers Every connected peer, in the order they connected (older peers are mentioned first).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const pex = createPex({ self: new Set() });
 * const peers = [
 *   { id: 1, address: { host: "1.1.1.1", port: 1 }, incoming: false, utPexId: 3, seed: false },
 *   { id: 2, address: { host: "2.2.2.2", port: 2 }, incoming: false, seed: true },
 * ];
 * const out = pexTick(pex, 0, peers);
 * eq(out.length, 1); // peer 2 does not speak ut_pex
 * eq(out[0].extId, 3);
 * eq(out[0].message.added[0].host, "2.2.2.2");
 * eq(out[0].message.addedFlags[0], 0x12); // seed, reachable
 * eq(pexTick(pex, 59_999, peers).length, 0);
 * ```
 */
export function pexTick(pex: PexState, now: number, peers: readonly PexPeerView[]): PexSend[] {
  const present = new Set(peers.map((p) => p.id));
  for (const id of pex.peers.keys()) if (!present.has(id)) pex.peers.delete(id);
  const adverts: Advert[] = [];
  const advertised = new Set<string>();
  for (const v of peers) {
    const a = advertOf(v);
    if (a === null || advertised.has(a.key)) continue; // two connections to one listener: one entry
    advertised.add(a.key);
    adverts.push(a);
  }
  const out: PexSend[] = [];
  for (const r of peers) {
    if (!r.utPexId) continue;
    const s = peerState(pex, r.id);
    if (s.lastSentAt !== null && now - s.lastSentAt < PEX_SEND_INTERVAL_MS) continue;
    const itself = new Set([formatAddress(r.address)]);
    if (r.listenPort !== undefined) itself.add(formatAddress({ host: r.address.host, port: r.listenPort }));
    const recipientScope = addressScope(r.address.host);
    const current = new Map<string, Advert>();
    for (const a of adverts) {
      if (a.id === r.id || itself.has(a.key) || !mayShare(a.scope, recipientScope)) continue;
      current.set(a.key, a);
    }
    const added: Advert[] = [];
    for (const a of current.values()) {
      if (added.length >= PEX_MAX_SENT_ENTRIES) break;
      if (!s.told.has(a.key)) added.push(a);
    }
    const dropped: [string, PeerAddress][] = [];
    for (const [key, address] of s.told) {
      if (dropped.length >= PEX_MAX_SENT_ENTRIES) break;
      if (!current.has(key)) dropped.push([key, address]);
    }
    if (added.length === 0 && dropped.length === 0) continue;
    const message = buildMessage(added, dropped.map(([, a]) => a));
    for (const a of added) s.told.set(a.key, a.address);
    for (const [key] of dropped) s.told.delete(key);
    s.lastSentAt = now;
    out.push({ peer: r.id, extId: r.utPexId, message, payload: encodePex(message) });
  }
  return out;
}

function buildMessage(added: readonly Advert[], dropped: readonly PeerAddress[]): PexMessage {
  const isV4 = (a: PeerAddress): boolean => ipv4Bytes(a.host) !== null;
  const a4 = added.filter((a) => isV4(a.address));
  const a6 = added.filter((a) => !isV4(a.address));
  return {
    added: a4.map((a) => a.address),
    addedFlags: a4.map((a) => a.flags),
    added6: a6.map((a) => a.address),
    added6Flags: a6.map((a) => a.flags),
    dropped: dropped.filter(isV4),
    dropped6: dropped.filter((a) => !isV4(a)),
  };
}
