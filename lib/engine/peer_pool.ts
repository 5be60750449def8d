/**
 * The peer pool of one torrent: every address we know (from trackers, `--peer`, incoming connections, and later the
 * DHT, PEX and web seeds), which of them to dial and when, which are banned, how many connections may be open or
 * half-open, and whom to evict when the slots are full and someone useful is waiting.
 *
 * Pure: it reads no clock and opens no socket. The runtime calls {@linkcode takeDials} and dials what it returns,
 * reports each outcome ({@linkcode dialFailed}, {@linkcode peerConnected}, {@linkcode peerClosed}), and asks
 * {@linkcode admitIncoming} before it takes an incoming peer. Every state change happens here, once, so a dial can
 * never be counted twice.
 *
 * Policy:
 * - At most `maxPeers` connections, open and half-open together; at most `maxDialing` of them half-open (a dial plus
 *   its handshake), so a swarm of unreachable addresses cannot take every slot.
 * - A failed dial waits {@linkcode RETRY_BASE_MS}, doubling per failure up to {@linkcode RETRY_MAX_MS}; after
 *   {@linkcode MAX_DIAL_FAILURES} failures in a row the address is forgotten. A peer that disconnects is retried after
 *   {@linkcode RECONNECT_MS}.
 * - A banned address is never dialled or accepted again.
 * - Who is dialled first: addresses never tried before those that failed, and within each, those from a tracker, the
 *   DHT, the user or a web seed before those a peer told us of (PEX, unverified by anyone else); then the order they
 *   came in. So a peer that names a thousand dead addresses cannot keep a seed the DHT found waiting behind them.
 * - Eviction: a connected peer that has sent nothing at all since its handshake for {@linkcode SILENT_GRACE_MS}, or
 *   nothing useful (a block we asked for, a request we served) for {@linkcode USELESS_GRACE_MS}, gives up its slot
 *   to an incoming peer or a waiting candidate; the one idle longest goes first.
 * @module
 */
import { addressScope, formatAddress, ipv4Bytes, ipv6Bytes, type PeerAddress } from "../address.ts";
import { MAX_KNOWN_PEERS } from "../limits.ts";

/** Where we learnt of a peer. */
export type PeerSource = "tracker" | "manual" | "incoming" | "dht" | "pex" | "webseed";

/** First wait before redialling an address that failed; doubles per failure. */
export const RETRY_BASE_MS = 2_000;
/** The longest wait between dials of one address. */
export const RETRY_MAX_MS = 120_000;
/** Failed dials in a row after which an address is forgotten. */
export const MAX_DIAL_FAILURES = 8;
/** The wait before redialling a peer that disconnected. */
export const RECONNECT_MS = 8_000;
/** A peer that sent no message at all after its handshake for this long may be evicted. */
export const SILENT_GRACE_MS = 2_000;
/** A peer that gave nothing useful for this long may be evicted when someone is waiting. */
export const USELESS_GRACE_MS = 20_000;
/** Half-open connections (dial plus handshake) at once, by default. */
export const DEFAULT_MAX_DIALING = 16;

/** What the pool knows of one address. */
export interface Candidate {
  readonly key: string;
  readonly address: PeerAddress;
  readonly source: PeerSource;
  /** `idle`: may be dialled once `nextDialAt` passes; `dialing`: half-open; `connected`: a peer of the session. */
  state: "idle" | "dialing" | "connected";
  failures: number;
  nextDialAt: number;
  banned: boolean;
}

/** The pool's state (mutated in place by the functions here). */
export interface PeerPool {
  readonly maxPeers: number;
  readonly maxDialing: number;
  readonly candidates: Map<string, Candidate>;
  /** Addresses that are ourselves (our listening port on a local address). */
  readonly self: Set<string>;
  dialing: number;
  connected: number;
  /** Addresses banned in this session. */
  bans: number;
  /** Candidates added, per source (for the summary). */
  readonly found: Record<PeerSource, number>;
}

/** What eviction needs to know of a connected peer. */
export interface EvictionView {
  readonly id: number;
  readonly key: string;
  /** When the peer's handshake completed. */
  readonly connectedAt: number;
  /** When the peer last sent any message, or null when it sent none since the handshake. */
  readonly lastMessageAt: number | null;
  /** When the peer last did something useful: sent a block we asked for, or asked for one we served. */
  readonly lastUsefulAt: number | null;
}

/** Options for {@linkcode createPool}. */
export interface PoolOptions {
  readonly maxPeers: number;
  readonly maxDialing?: number;
}

/**
 * Makes an empty pool.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const pool = createPool({ maxPeers: 2 });
 * addCandidate(pool, { host: "10.0.0.1", port: 6881 }, "tracker");
 * eq(takeDials(pool, 0).length, 1);
 * eq(pool.dialing, 1);
 * ```
 */
export function createPool(o: PoolOptions): PeerPool {
  return {
    maxPeers: Math.max(1, o.maxPeers),
    maxDialing: Math.max(1, o.maxDialing ?? DEFAULT_MAX_DIALING),
    candidates: new Map(),
    self: new Set(),
    dialing: 0,
    connected: 0,
    bans: 0,
    found: { tracker: 0, manual: 0, incoming: 0, dht: 0, pex: 0, webseed: 0 },
  };
}

/** Marks an address as ourselves: it is never dialled. */
export function addSelf(pool: PeerPool, address: PeerAddress): void {
  const key = formatAddress(address);
  pool.self.add(key);
  const c = pool.candidates.get(key);
  if (c && c.state === "idle") pool.candidates.delete(key);
}

/**
 * Learns an address; returns whether it was new. Bounded by {@linkcode MAX_KNOWN_PEERS}. An IP address no connection
 * can reach (0.0.0.0/8, `::`, multicast, broadcast) is not learnt from a tracker, the DHT or a peer, as PEX already
 * refuses it; `--peer` takes what the user says.
 */
export function addCandidate(pool: PeerPool, address: PeerAddress, source: PeerSource): boolean {
  if (source !== "manual" && isUnreachableIp(address.host)) return false;
  const key = formatAddress(address);
  if (pool.candidates.has(key) || pool.self.has(key)) return false;
  if (pool.candidates.size >= MAX_KNOWN_PEERS && !forgetOneIdle(pool)) return false;
  pool.candidates.set(key, { key, address, source, state: "idle", failures: 0, nextDialAt: 0, banned: false });
  pool.found[source]++;
  return true;
}

function isUnreachableIp(host: string): boolean {
  return (ipv4Bytes(host) !== null || ipv6Bytes(host) !== null) && addressScope(host) === "unusable";
}

function forgetOneIdle(pool: PeerPool): boolean {
  for (const [k, c] of pool.candidates) {
    if (c.state === "idle" && !c.banned && c.failures > 0) {
      pool.candidates.delete(k);
      return true;
    }
  }
  return false;
}

/** Whether there is room for one more connection (open or half-open). */
export function hasRoom(pool: PeerPool): boolean {
  return pool.connected + pool.dialing < pool.maxPeers;
}

/** How many candidates could be dialled now if there were room. */
export function readyCount(pool: PeerPool, now: number): number {
  let n = 0;
  for (const c of pool.candidates.values()) if (isReady(c, now)) n++;
  return n;
}

function isReady(c: Candidate, now: number): boolean {
  return c.state === "idle" && !c.banned && c.nextDialAt <= now;
}

/**
 * Picks the candidates to dial now and marks them half-open; the runtime must report each one's outcome.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const pool = createPool({ maxPeers: 1 });
 * addCandidate(pool, { host: "10.0.0.1", port: 1 }, "tracker");
 * addCandidate(pool, { host: "10.0.0.2", port: 1 }, "tracker");
 * eq(takeDials(pool, 0).length, 1); // one slot
 * eq(takeDials(pool, 0).length, 0);
 * ```
 */
export function takeDials(pool: PeerPool, now: number): Candidate[] {
  const out: Candidate[] = [];
  // four passes in order of trust: untried and vouched for, untried from PEX, failed before, failed from PEX
  for (let tier = 0; tier < 4; tier++) {
    for (const c of pool.candidates.values()) {
      if (!hasRoom(pool) || pool.dialing >= pool.maxDialing) return out;
      if (!isReady(c, now) || dialTier(c) !== tier) continue;
      c.state = "dialing";
      pool.dialing++;
      out.push(c);
    }
  }
  return out;
}

/** 0: never failed, not from PEX; 1: never failed, from PEX; 2: failed before; 3: failed before, from PEX. */
function dialTier(c: Candidate): number {
  return (c.failures > 0 ? 2 : 0) + (c.source === "pex" ? 1 : 0);
}

/** A dial (or its handshake) failed: back off, or forget the address after too many failures. */
export function dialFailed(pool: PeerPool, key: string, now: number): void {
  const c = pool.candidates.get(key);
  if (!c || c.state !== "dialing") return;
  pool.dialing--;
  c.state = "idle";
  c.failures++;
  if (c.failures >= MAX_DIAL_FAILURES) {
    pool.candidates.delete(key);
    return;
  }
  c.nextDialAt = now + Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (c.failures - 1));
}

/**
 * Whether an incoming peer may take a slot, and whom to evict for it first (a peer id) when the slots are full.
 * A banned address or a connection we already have from that address is refused.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const pool = createPool({ maxPeers: 1 });
 * eq(admitIncoming(pool, { host: "10.0.0.9", port: 5 }, 0, []), { accept: true });
 * ```
 */
export function admitIncoming(
  pool: PeerPool,
  address: PeerAddress,
  now: number,
  peers: Iterable<EvictionView>,
): { readonly accept: true; readonly evict?: number } | { readonly accept: false; readonly reason: string } {
  const c = pool.candidates.get(formatAddress(address));
  if (c?.banned) return { accept: false, reason: "banned" };
  if (c?.state === "connected") return { accept: false, reason: "already connected" };
  if (pool.connected + (c?.state === "dialing" ? pool.dialing - 1 : pool.dialing) < pool.maxPeers) {
    return { accept: true };
  }
  const victim = pickEviction(peers, now);
  return victim === null ? { accept: false, reason: "no free slot" } : { accept: true, evict: victim };
}

/**
 * The connected peer to evict for someone waiting, or null when every peer is pulling its weight: a peer silent
 * since its handshake for {@linkcode SILENT_GRACE_MS}, else one idle for {@linkcode USELESS_GRACE_MS}, idle longest
 * first.
 */
export function pickEviction(peers: Iterable<EvictionView>, now: number): number | null {
  let best: number | null = null;
  let bestScore = -Infinity;
  for (const p of peers) {
    let score: number;
    if (p.lastMessageAt === null && now - p.connectedAt >= SILENT_GRACE_MS) {
      score = 1e15 + (now - p.connectedAt); // silent ones first
    } else {
      const idleSince = p.lastUsefulAt ?? p.connectedAt;
      if (now - idleSince < USELESS_GRACE_MS) continue;
      score = now - idleSince;
    }
    if (score > bestScore) {
      bestScore = score;
      best = p.id;
    }
  }
  return best;
}

/**
 * A peer's handshake completed (dialled or incoming): it holds a slot until {@linkcode peerClosed}. Returns false,
 * counting nothing, when that address is already connected (our dial and its connection to us crossed): the caller
 * closes the second connection.
 */
export function peerConnected(pool: PeerPool, address: PeerAddress, source: PeerSource): boolean {
  const key = formatAddress(address);
  let c = pool.candidates.get(key);
  if (c?.state === "connected") return false;
  if (c?.state === "dialing") pool.dialing--;
  if (!c) {
    c = { key, address, source, state: "idle", failures: 0, nextDialAt: 0, banned: false };
    pool.candidates.set(key, c);
    pool.found[source]++;
  }
  c.state = "connected";
  c.failures = 0;
  pool.connected++;
  return true;
}

/**
 * A connected peer went away; `ban` bans its address for the rest of the session. An incoming peer's address (its
 * ephemeral port) is not worth dialling, so it is forgotten unless banned.
 */
export function peerClosed(pool: PeerPool, address: PeerAddress, now: number, o: { ban?: boolean } = {}): void {
  const key = formatAddress(address);
  const c = pool.candidates.get(key);
  if (!c || c.state !== "connected") return;
  pool.connected--;
  c.state = "idle";
  c.nextDialAt = now + RECONNECT_MS;
  if (o.ban) banCandidate(pool, c);
  else if (c.source === "incoming") pool.candidates.delete(key);
}

/** Bans an address (known or not); dialling stops at once. Returns false when it was banned already. */
export function ban(pool: PeerPool, address: PeerAddress): boolean {
  const key = formatAddress(address);
  let c = pool.candidates.get(key);
  if (!c) {
    c = { key, address, source: "manual", state: "idle", failures: 0, nextDialAt: Infinity, banned: false };
    pool.candidates.set(key, c);
  }
  if (c.banned) return false;
  banCandidate(pool, c);
  return true;
}

function banCandidate(pool: PeerPool, c: Candidate): void {
  if (!c.banned) pool.bans++;
  c.banned = true;
  c.nextDialAt = Infinity;
}

/** Whether an address is banned. */
export function isBanned(pool: PeerPool, address: PeerAddress): boolean {
  return pool.candidates.get(formatAddress(address))?.banned ?? false;
}
