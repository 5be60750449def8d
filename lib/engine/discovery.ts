/**
 * Peer discovery beyond trackers, as the engine sees it: a {@linkcode PeerFinder} (the DHT) and the pure schedule of
 * when to look up peers and when to announce ourselves. The engine does not depend on the DHT's runtime: anything
 * that finds peers by info-hash fits.
 * @module
 */
import type { PeerAddress } from "../address.ts";

/** What one lookup found. */
export interface FindPeersSummary {
  /** Distinct peers found. */
  readonly peers: number;
  /** Nodes queried. */
  readonly queries: number;
  /** Nodes that answered. */
  readonly answered: number;
}

/** Finds peers of a torrent by info-hash (the DHT), and announces us (our TCP port) to those who keep track. */
export interface PeerFinder {
  findPeers(
    infoHash: Uint8Array,
    o: { readonly announcePort?: number | null; readonly onPeers: (peers: readonly PeerAddress[]) => void },
  ): Promise<FindPeersSummary>;
  /** The finder's own counts, for reports: routing table size, and queries sent and answered so far. */
  stats(): { readonly nodes: number; readonly good: number; readonly queriesOut: number; readonly answers: number };
}

/** Between lookups while enough peers are connected (or seeding). */
export const LOOKUP_EVERY_MS = 5 * 60_000;
/** Between lookups while downloading with few peers. */
export const LOOKUP_EVERY_FEW_PEERS_MS = 30_000;
/** Fewer connected peers than this is "few". */
export const FEW_PEERS = 5;
/** Between announces of our port (BEP 5 nodes keep an announce for about 30 minutes). */
export const ANNOUNCE_EVERY_MS = 15 * 60_000;

/** When lookups and announces last happened. */
export interface DiscoverySchedule {
  /** When the last lookup ended (null: none yet). */
  readonly lastLookupAt: number | null;
  readonly lastAnnounceAt: number | null;
  /** A lookup is under way. */
  readonly running: boolean;
}

/**
 * Whether to start a lookup at `now`, and whether it should announce us; null when not now.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const s = { lastLookupAt: null, lastAnnounceAt: null, running: false };
 * eq(nextLookup(s, 0, { peers: 0, downloading: true, canAnnounce: true }), { announce: true });
 * eq(nextLookup({ ...s, lastLookupAt: 0, lastAnnounceAt: 0 }, 10_000, { peers: 0, downloading: true, canAnnounce: true }), null);
 * ```
 */
export function nextLookup(
  s: DiscoverySchedule,
  now: number,
  o: { readonly peers: number; readonly downloading: boolean; readonly canAnnounce: boolean },
): { readonly announce: boolean } | null {
  if (s.running) return null;
  const every = o.downloading && o.peers < FEW_PEERS ? LOOKUP_EVERY_FEW_PEERS_MS : LOOKUP_EVERY_MS;
  const announceDue = o.canAnnounce && (s.lastAnnounceAt === null || now - s.lastAnnounceAt >= ANNOUNCE_EVERY_MS);
  if (s.lastLookupAt !== null && now - s.lastLookupAt < every && !announceDue) return null;
  return { announce: announceDue };
}
