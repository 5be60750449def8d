/**
 * A simulated network of DHT nodes (`lib/dht/node.ts` instances) on a virtual clock: datagrams wait in a priority
 * queue ordered by delivery time (a fixed latency per link, some loss), each node's `send` enqueues bytes for the
 * destination address, and every node ticks every {@linkcode TICK_MS}. No socket, no timer, no sleep: a few hundred
 * nodes run minutes of virtual time in a second or two. Addresses that are no node (attackers, scripted liars) are
 * {@linkcode Endpoint} functions; an offline node (or an address nobody holds) swallows what is sent to it.
 * @module
 */
import { formatAddress, type PeerAddress } from "../../lib/address.ts";
import type { LookupResult } from "../../lib/dht/lookup.ts";
import { createDhtNode, type DhtIO, type DhtNode, receive, startLookup, tick } from "../../lib/dht/node.ts";
import { compareDistance, type NodeInfo } from "../../lib/dht/node_id.ts";
import { type Rand, randomBytes, seeded } from "../_gen.ts";

/** How often every node ticks (as `dht.ts` does). */
export const TICK_MS = 250;
/** The shortest one-way latency of a link. */
export const MIN_LATENCY_MS = 5;
/** The longest one-way latency of a link. */
export const MAX_LATENCY_MS = 150;

/** One node of the network with what its runtime saw. */
export interface SimMember {
  readonly index: number;
  readonly address: PeerAddress;
  readonly key: string;
  readonly node: DhtNode;
  readonly io: DhtIO;
  /** Offline: it neither ticks nor receives (datagrams to it are lost). */
  online: boolean;
  /** Peers reported by `lookupPeers`, per lookup. */
  readonly found: Map<number, PeerAddress[]>;
  /** Lookups ended (`lookupDone`), with the virtual time they ended. */
  readonly done: Map<number, { readonly result: LookupResult; readonly at: number }>;
}

/** Something at an address that is not a node: it gets each datagram sent there. */
export type Endpoint = (from: PeerAddress, bytes: Uint8Array, now: number) => void;

interface Datagram {
  readonly at: number;
  readonly seq: number;
  readonly from: PeerAddress;
  readonly to: PeerAddress;
  readonly bytes: Uint8Array;
}

/** The network. */
export interface Sim {
  readonly rand: Rand;
  now: number;
  readonly members: SimMember[];
  readonly byKey: Map<string, SimMember>;
  /** Handlers of addresses that are not nodes. */
  readonly endpoints: Map<string, Endpoint>;
  /** Probability that a datagram is lost. */
  loss: number;
  /** Datagrams sent, delivered, lost (to loss, or to nobody). */
  readonly counts: { sent: number; delivered: number; lost: number };
  /** Sees every datagram sent (before loss), e.g. to collect real packets. */
  tap: ((from: PeerAddress, to: PeerAddress, bytes: Uint8Array) => void) | null;
  readonly queue: Datagram[];
  seq: number;
  nextTick: number;
}

/** Options for {@linkcode createSim}. */
export interface SimOptions {
  /** Nodes. */
  readonly n: number;
  /** Probability that a datagram is lost (default 0). */
  readonly loss?: number;
}

/** The address of member `i`. */
export function simAddress(i: number): PeerAddress {
  const j = i + 1;
  return { host: `10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}`, port: 6881 };
}

/** A network of `o.n` nodes with random ids (from `seed`), empty tables, all online, at virtual time 0. */
export function createSim(seed: number, o: SimOptions): Sim {
  const rand = seeded(seed);
  const sim: Sim = {
    rand,
    now: 0,
    members: [],
    byKey: new Map(),
    endpoints: new Map(),
    loss: o.loss ?? 0,
    counts: { sent: 0, delivered: 0, lost: 0 },
    tap: null,
    queue: [],
    seq: 0,
    nextTick: TICK_MS,
  };
  for (let i = 0; i < o.n; i++) addMember(sim, randomBytes(rand, 20));
  return sim;
}

/** Adds a node with id `id` (online, empty tables) at the next free address. */
export function addMember(sim: Sim, id: Uint8Array): SimMember {
  const index = sim.members.length;
  const address = simAddress(index);
  const found = new Map<number, PeerAddress[]>();
  const done = new Map<number, { result: LookupResult; at: number }>();
  const io: DhtIO = {
    send: (to, bytes) => send(sim, address, to, bytes),
    lookupPeers: (lookup, peers) => found.set(lookup, [...(found.get(lookup) ?? []), ...peers]),
    lookupDone: (lookup, result) => done.set(lookup, { result, at: sim.now }),
  };
  const node = createDhtNode({ id, families: [4], now: sim.now, random: seeded(sim.rand.int(0x7fffffff) + 1) });
  const m: SimMember = { index, address, key: formatAddress(address), node, io, online: true, found, done };
  sim.members.push(m);
  sim.byKey.set(m.key, m);
  return m;
}

/** One-way latency of the link between two addresses: fixed per link, in [MIN_LATENCY_MS, MAX_LATENCY_MS]. */
export function linkLatency(a: PeerAddress, b: PeerAddress): number {
  const ka = formatAddress(a);
  const kb = formatAddress(b);
  const s = ka < kb ? `${ka}|${kb}` : `${kb}|${ka}`;
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return MIN_LATENCY_MS + (h % (MAX_LATENCY_MS - MIN_LATENCY_MS + 1));
}

/** Queues a datagram from `from` to `to` (unless the network loses it). */
export function send(sim: Sim, from: PeerAddress, to: PeerAddress, bytes: Uint8Array): void {
  sim.counts.sent++;
  sim.tap?.(from, to, bytes);
  if (sim.loss > 0 && sim.rand() < sim.loss) {
    sim.counts.lost++;
    return;
  }
  push(sim.queue, { at: sim.now + linkLatency(from, to), seq: sim.seq++, from, to, bytes: bytes.slice() });
}

/** Hands `bytes` to the member at `to` now, as if it had just arrived from `from` (for scripted attacks). */
export function inject(sim: Sim, to: SimMember, from: PeerAddress, bytes: Uint8Array): void {
  receive(to.node, from, bytes, sim.now, to.io);
}

function deliver(sim: Sim, d: Datagram): void {
  const key = formatAddress(d.to);
  const m = sim.byKey.get(key);
  if (m !== undefined && m.online) {
    sim.counts.delivered++;
    receive(m.node, d.from, d.bytes, sim.now, m.io);
    return;
  }
  const e = sim.endpoints.get(key);
  if (e !== undefined) {
    sim.counts.delivered++;
    e(d.from, d.bytes, sim.now);
    return;
  }
  sim.counts.lost++;
}

/** Runs the network until virtual time `until`: datagrams in delivery order, every online node ticking on time. */
export function runUntil(sim: Sim, until: number): void {
  for (;;) {
    const next = sim.queue[0]?.at ?? Infinity;
    if (next <= sim.nextTick && next <= until) {
      const d = pop(sim.queue);
      sim.now = d.at;
      deliver(sim, d);
    } else if (sim.nextTick <= until) {
      sim.now = sim.nextTick;
      sim.nextTick += TICK_MS;
      for (const m of sim.members) if (m.online) tick(m.node, sim.now, m.io);
    } else {
      sim.now = until;
      return;
    }
  }
}

/**
 * Runs until `cond` holds (checked after every datagram and tick) or virtual time `limit`; returns whether it held.
 */
export function runUntilTrue(sim: Sim, cond: () => boolean, limit: number): boolean {
  while (!cond()) {
    if (sim.now >= limit) return false;
    const next = Math.min(sim.queue[0]?.at ?? Infinity, sim.nextTick, limit);
    runUntil(sim, next);
  }
  return true;
}

/** Starts `m`'s bootstrap as `dht.ts` does: a `find_node` of its own id, seeded with a router known by address only. */
export function bootstrap(sim: Sim, m: SimMember, router: PeerAddress): number | null {
  const id = m.node.id.slice();
  id[19] ^= 1;
  return startLookup(
    m.node,
    {
      kind: "find_node",
      target: m.node.id,
      family: 4,
      seeds: [{ id, address: router }],
      internal: true,
    },
    sim.now,
    m.io,
  );
}

/** The `k` online members closest to `target`, closest first (the right answer of a lookup), skipping `except`. */
export function trueClosest(sim: Sim, target: Uint8Array, k: number, except?: SimMember): NodeInfo[] {
  return sim.members.filter((m) => m.online && m !== except)
    .map((m) => ({ id: m.node.id, address: m.address }))
    .sort((a, b) => compareDistance(target, a.id, b.id))
    .slice(0, k);
}

// ---- a binary heap of datagrams by (at, seq) ----

function less(a: Datagram, b: Datagram): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function push(h: Datagram[], d: Datagram): void {
  h.push(d);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!less(h[i], h[p])) break;
    [h[i], h[p]] = [h[p], h[i]];
    i = p;
  }
}

function pop(h: Datagram[]): Datagram {
  const top = h[0];
  const last = h.pop() as Datagram;
  if (h.length > 0) {
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && less(h[l], h[m])) m = l;
      if (r < h.length && less(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
  return top;
}
