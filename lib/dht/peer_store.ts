/**
 * The peers other nodes announced to us (`announce_peer`, BEP 5), which we hand out in `get_peers` answers. Pure:
 * `now` and randomness come from the caller; the store is mutated in place.
 *
 * Bounds. At most {@linkcode DHT_MAX_PEERS_PER_INFOHASH} peers per info-hash and
 * {@linkcode DHT_MAX_STORED_INFOHASHES} info-hashes (so at most 100,000 entries, a few MiB). A peer's entry lasts
 * {@linkcode PEER_TTL_MS} after its last announce (clients announce every 15 to 30 minutes). When an info-hash is full
 * the peer announced longest ago goes; when the store is full the info-hash announced to longest ago goes. A peer is
 * its address and port; an announce from it again refreshes its entry.
 *
 * One host cannot crowd others out. An info-hash lists at most {@linkcode DHT_MAX_PORTS_PER_IP} ports of one IP
 * address (a new one replaces that address's oldest), and the whole store at most {@linkcode DHT_MAX_STORED_PER_IP}
 * entries of one address (past that, its new announces are not stored; its entries expire as any do). Announces need a
 * token we gave that address, and queries are rate-limited per address, but a token serves any number of announces.
 *
 * Answers. {@linkcode getPeers} returns a random sample of one address family (BEP 32: `values` of an IPv4 answer
 * hold IPv4 peers) of at most {@linkcode DHT_MAX_PEERS_PER_REPLY}, which fits one UDP packet.
 * @module
 */
import { formatAddress, type PeerAddress } from "../address.ts";
import { toHex } from "../bytes.ts";
import {
  DHT_MAX_PEERS_PER_INFOHASH,
  DHT_MAX_PEERS_PER_REPLY,
  DHT_MAX_PORTS_PER_IP,
  DHT_MAX_STORED_INFOHASHES,
  DHT_MAX_STORED_PER_IP,
} from "../limits.ts";
import { ipFamily } from "./_ip.ts";
import { ID_BYTES } from "./node_id.ts";

/** How long an announce keeps a peer listed: 30 minutes, the longest usual re-announce interval. */
export const PEER_TTL_MS = 30 * 60_000;

/** One stored peer. */
export interface StoredPeer {
  readonly address: PeerAddress;
  readonly family: 4 | 6;
  /** When it last announced. */
  readonly at: number;
}

/**
 * The store. `hashes` is keyed by info-hash hex, each map by `formatAddress`; both oldest announce first. `perHost`
 * counts the entries of each IP address (its `host` as stored) over every info-hash.
 */
export interface PeerStore {
  readonly maxPeersPerHash: number;
  readonly maxHashes: number;
  readonly maxPortsPerHost: number;
  readonly maxPerHost: number;
  readonly hashes: Map<string, Map<string, StoredPeer>>;
  readonly perHost: Map<string, number>;
}

/** Options for {@linkcode createPeerStore} (the defaults are the limits). */
export interface PeerStoreOptions {
  readonly maxPeersPerHash?: number;
  readonly maxHashes?: number;
  readonly maxPortsPerHost?: number;
  readonly maxPerHost?: number;
}

/**
 * An empty store.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(peerStoreSize(createPeerStore()), { infoHashes: 0, peers: 0 });
 * ```
 */
export function createPeerStore(o: PeerStoreOptions = {}): PeerStore {
  return {
    maxPeersPerHash: Math.max(1, o.maxPeersPerHash ?? DHT_MAX_PEERS_PER_INFOHASH),
    maxHashes: Math.max(1, o.maxHashes ?? DHT_MAX_STORED_INFOHASHES),
    maxPortsPerHost: Math.max(1, o.maxPortsPerHost ?? DHT_MAX_PORTS_PER_IP),
    maxPerHost: Math.max(1, o.maxPerHost ?? DHT_MAX_STORED_PER_IP),
    hashes: new Map(),
    perHost: new Map(),
  };
}

/** A checked `announce_peer`: the info-hash and the address to list (the sender's IP, and its port or `implied_port`). */
export interface Announce {
  readonly infoHash: Uint8Array;
  readonly address: PeerAddress;
}

/**
 * Stores (or refreshes) a peer announced at `now`. Returns false, storing nothing, when the info-hash is not 20 bytes,
 * the port is not 1–65535, the host is not an IP address, or the host already has
 * {@linkcode DHT_MAX_STORED_PER_IP} entries in the store (and this is not one of them).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const store = createPeerStore();
 * const infoHash = new Uint8Array(20).fill(1);
 * eq(storePeer(store, { infoHash, address: { host: "10.0.0.1", port: 6881 } }, 0), true);
 * eq(getPeers(store, infoHash, { now: 1, family: 4, random: () => 0 }), [{ host: "10.0.0.1", port: 6881 }]);
 * eq(getPeers(store, infoHash, { now: 1, family: 6, random: () => 0 }), []);
 * ```
 */
export function storePeer(store: PeerStore, a: Announce, now: number): boolean {
  const { host, port } = a.address;
  const family = ipFamily(host);
  if (a.infoHash.length !== ID_BYTES || !Number.isInteger(port) || port < 1 || port > 65535 || family === null) {
    return false;
  }
  const hash = toHex(a.infoHash);
  const key = formatAddress(a.address);
  let peers = store.hashes.get(hash);
  if (peers !== undefined) dropExpired(store, peers, now);
  const known = peers?.has(key) ?? false;
  if (!known && (store.perHost.get(host) ?? 0) >= store.maxPerHost) return false;
  if (peers === undefined) {
    peers = new Map();
  } else {
    store.hashes.delete(hash); // re-inserted last: the map stays in order of the latest announce
  }
  store.hashes.set(hash, peers);
  if (known) {
    peers.delete(key);
  } else {
    // this host's oldest port in this swarm makes room for the new one
    let ports = 0;
    let oldest: string | undefined;
    for (const [k, p] of peers) {
      if (p.address.host !== host) continue;
      oldest ??= k;
      ports++;
    }
    if (oldest !== undefined && ports >= store.maxPortsPerHost) removePeer(store, peers, oldest);
    store.perHost.set(host, (store.perHost.get(host) ?? 0) + 1);
  }
  peers.set(key, { address: { host, port }, family, at: now });
  while (peers.size > store.maxPeersPerHash) removePeer(store, peers, peers.keys().next().value as string);
  while (store.hashes.size > store.maxHashes) {
    const [oldest, gone] = store.hashes.entries().next().value as [string, Map<string, StoredPeer>];
    for (const k of [...gone.keys()]) removePeer(store, gone, k);
    store.hashes.delete(oldest);
  }
  return true;
}

/** What {@linkcode getPeers} needs. */
export interface GetPeersOptions {
  readonly now: number;
  /** The family of the answer's `values`. */
  readonly family: 4 | 6;
  /** Values in [0, 1), for the sample. */
  readonly random: () => number;
  /** At most this many; capped at {@linkcode DHT_MAX_PEERS_PER_REPLY}. */
  readonly max?: number;
}

/**
 * A random sample of the live peers of `family` stored for `infoHash`, at most `max`
 * ({@linkcode DHT_MAX_PEERS_PER_REPLY} by default and at most); empty when none.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const store = createPeerStore();
 * const infoHash = new Uint8Array(20);
 * for (let i = 1; i <= 80; i++) storePeer(store, { infoHash, address: { host: `10.0.0.${i}`, port: 6881 } }, 0);
 * eq(getPeers(store, infoHash, { now: 0, family: 4, random: () => 0.5 }).length, 50); // DHT_MAX_PEERS_PER_REPLY
 * eq(getPeers(store, infoHash, { now: PEER_TTL_MS, family: 4, random: () => 0.5 }).length, 0);
 * ```
 */
export function getPeers(store: PeerStore, infoHash: Uint8Array, o: GetPeersOptions): PeerAddress[] {
  const hash = toHex(infoHash);
  const peers = store.hashes.get(hash);
  if (peers === undefined) return [];
  dropExpired(store, peers, o.now);
  if (peers.size === 0) {
    store.hashes.delete(hash);
    return [];
  }
  const pool: PeerAddress[] = [];
  for (const p of peers.values()) if (p.family === o.family) pool.push(p.address);
  const want = Math.max(0, Math.min(o.max ?? DHT_MAX_PEERS_PER_REPLY, DHT_MAX_PEERS_PER_REPLY, pool.length));
  // a partial Fisher-Yates shuffle: the first `want` are a uniform sample
  for (let i = 0; i < want; i++) {
    const j = i + Math.min(pool.length - i - 1, Math.floor(o.random() * (pool.length - i)));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, want).map((p) => ({ host: p.host, port: p.port }));
}

/**
 * Drops every expired entry (the runtime calls it now and then, e.g. each minute); returns how many peers went.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const store = createPeerStore();
 * storePeer(store, { infoHash: new Uint8Array(20), address: { host: "::1", port: 1 } }, 0);
 * eq(expirePeers(store, PEER_TTL_MS - 1), 0);
 * eq(expirePeers(store, PEER_TTL_MS), 1);
 * eq(store.hashes.size, 0);
 * ```
 */
export function expirePeers(store: PeerStore, now: number): number {
  let gone = 0;
  for (const [hash, peers] of store.hashes) {
    gone += dropExpired(store, peers, now);
    if (peers.size === 0) store.hashes.delete(hash);
  }
  return gone;
}

/** How many info-hashes and peers the store holds (expired ones included until dropped). */
export function peerStoreSize(store: PeerStore): { infoHashes: number; peers: number } {
  let peers = 0;
  for (const m of store.hashes.values()) peers += m.size;
  return { infoHashes: store.hashes.size, peers };
}

/** Drops expired peers from the front (the map is in announce order); returns how many. */
function dropExpired(store: PeerStore, peers: Map<string, StoredPeer>, now: number): number {
  let gone = 0;
  for (const [key, p] of peers) {
    if (now - p.at < PEER_TTL_MS) break;
    removePeer(store, peers, key);
    gone++;
  }
  return gone;
}

/** Deletes the entry `key` of `peers`, keeping `perHost` true. */
function removePeer(store: PeerStore, peers: Map<string, StoredPeer>, key: string): void {
  const p = peers.get(key);
  if (p === undefined) return;
  peers.delete(key);
  const n = (store.perHost.get(p.address.host) ?? 1) - 1;
  if (n > 0) store.perHost.set(p.address.host, n);
  else store.perHost.delete(p.address.host);
}
