/**
 * An iterative DHT lookup (BEP 5 `find_node` or `get_peers`) as a pure state machine: events in (a node answered, a
 * query failed, the clock moved), actions out (query this node, here are new peers, done). The runtime sends the
 * queries, reports what came back, and calls {@linkcode stepLookup} with a `timer` event at
 * {@linkcode lookupDeadline}.
 *
 * Policy, after Kademlia and libtorrent's traversal:
 * - Nodes are kept sorted by XOR distance to the target. Up to `alpha` ({@linkcode ALPHA}) queries are in flight,
 *   always to the closest nodes not yet asked, and only while fewer than `k` ({@linkcode BUCKET_SIZE}) nodes closer
 *   than them have answered.
 * - A query unanswered after {@linkcode SHORT_TIMEOUT_MS} becomes slow: it stops counting against `alpha`, so another
 *   query goes out, but its answer is still taken until {@linkcode LONG_TIMEOUT_MS}, when it counts as failed.
 * - The lookup is done when the `k` closest nodes that did not fail have all answered and no closer query is in
 *   flight; or when nothing is left to ask. At most `maxQueries` ({@linkcode DHT_LOOKUP_MAX_QUERIES}) are sent;
 *   once they are spent, the lookup ends when the queries in flight near the top have answered or failed.
 * - A node is its address: one entry per address (the first id heard for it), so a liar cannot have one address
 *   asked many times under many ids. One answer per host (an IPv4 address, an IPv6 /64; loopback excepted) counts:
 *   once one of its addresses has answered, its others not yet asked are dropped, no new one is taken, and a later
 *   answer from another counts as failed; so one host naming itself on many ports costs a lookup at most the queries
 *   in flight, while a liar naming a real node's host at a dead port cannot keep that node out. Named addresses no one
 *   can reach are skipped, and loopback ones unless their namer is on loopback too; of the peers (`values`), only
 *   those the answering node may tell of, as PEX decides (`mayShare`: private addresses only from local nodes,
 *   loopback ones only from loopback). An answer is taken only from an address with a query in flight. If it answers
 *   under another id than the one we were told (a stale entry, or a lie), the entry takes the id it gave: so a seed
 *   whose id is unknown (a bootstrap router) can be given any id, such as the target itself to ask it first.
 * - At most `maxNodes` ({@linkcode DHT_LOOKUP_MAX_NODES}) nodes wait to be asked (the closest kept); peers and tokens
 *   are bounded too ({@linkcode DHT_LOOKUP_MAX_PEERS}, {@linkcode MAX_KRPC_TOKEN_BYTES}).
 * - `get_peers`: the `values` are collected (each new peer is reported at once, in a `peers` action, so the runtime
 *   can dial while the lookup goes on), and each answering node's token is kept with it: the result's `closest`
 *   nodes and their tokens are where to `announce_peer`.
 *
 * Deliberately not done here: the routing table is told nothing (the runtime reports answers and failures to it),
 * and ids are not checked against addresses (BEP 42).
 * @module
 */
import { type AddressScope, addressScope, formatAddress, mayShare, type PeerAddress } from "../address.ts";
import { hostKey } from "./_ip.ts";
import { DHT_LOOKUP_MAX_NODES, DHT_LOOKUP_MAX_PEERS, DHT_LOOKUP_MAX_QUERIES, MAX_KRPC_TOKEN_BYTES } from "../limits.ts";
import { compareDistance, ID_BYTES, type NodeInfo, sameId } from "./node_id.ts";
import { BUCKET_SIZE } from "./routing_table.ts";

/** Queries in flight at once (Kademlia's α). */
export const ALPHA = 3;
/** After this long unanswered a query no longer counts against α (libtorrent's short time-out is 1 s). */
export const SHORT_TIMEOUT_MS = 1_000;
/** After this long unanswered a query has failed, and a late answer is ignored. */
export const LONG_TIMEOUT_MS = 10_000;

/** Which query the lookup sends. */
export type LookupKind = "find_node" | "get_peers";

/** Where a node stands in a lookup. */
export type LookupNodeState = "new" | "waiting" | "slow" | "answered" | "failed";

/** One node a lookup knows of. */
export interface LookupNode {
  readonly node: NodeInfo;
  /** `formatAddress(node.address)`: the node's identity in the lookup. */
  readonly key: string;
  /** `hostKey` of its address (an IPv4 address, an IPv6 /64), or null on loopback: one answer per host counts. */
  readonly host: string | null;
  readonly state: LookupNodeState;
  /** When it was queried. */
  readonly sentAt: number | null;
  /** The token it gave with its answer (`get_peers`), if any. */
  readonly token: Uint8Array | null;
}

/** A lookup's state. */
export interface Lookup {
  readonly kind: LookupKind;
  readonly target: Uint8Array;
  /** Our own id, never queried. */
  readonly ownId: Uint8Array | null;
  readonly alpha: number;
  readonly k: number;
  readonly maxQueries: number;
  readonly maxNodes: number;
  readonly maxPeers: number;
  readonly shortTimeoutMs: number;
  readonly longTimeoutMs: number;
  /** Closest to the target first. */
  readonly nodes: readonly LookupNode[];
  /** Queries sent. */
  readonly queries: number;
  /** Distinct peers found, in the order found. */
  readonly peers: readonly PeerAddress[];
  readonly peerKeys: ReadonlySet<string>;
  readonly done: boolean;
}

/** What happened. `from` is the answering node as it answered: the packet's address and the id it gave. */
export type LookupEvent =
  | {
    readonly type: "response";
    readonly from: NodeInfo;
    /** Nodes it named (`nodes`, or `nodes6` for an IPv6 lookup). */
    readonly nodes: readonly NodeInfo[];
    /** Peers it gave (`values`, `get_peers` only). */
    readonly values?: readonly PeerAddress[];
    readonly token?: Uint8Array;
  }
  /** Our query to it failed: an error answer, or the runtime's own time-out. */
  | { readonly type: "failure"; readonly from: NodeInfo }
  | { readonly type: "timer" };

/** A node of the result, with the token it gave (`get_peers`). */
export interface LookupResponder {
  readonly node: NodeInfo;
  readonly token: Uint8Array | null;
}

/** What a lookup found. */
export interface LookupResult {
  /** The `k` closest nodes that answered, closest first. */
  readonly closest: readonly LookupResponder[];
  /** Every distinct peer found (`get_peers`). */
  readonly peers: readonly PeerAddress[];
  readonly queries: number;
  readonly answered: number;
  readonly failed: number;
}

/** What the runtime should do. */
export type LookupAction =
  /** Send the lookup's query (`find_node` or `get_peers` for the target) to `node`. */
  | { readonly type: "query"; readonly node: NodeInfo }
  /** Peers not reported before. */
  | { readonly type: "peers"; readonly peers: readonly PeerAddress[] }
  /** The lookup is over; later events change nothing. Queries still in flight may be forgotten. */
  | { readonly type: "done"; readonly result: LookupResult };

/** Options for {@linkcode createLookup}. */
export interface LookupOptions {
  readonly kind: LookupKind;
  readonly now: number;
  /** Our own id: never queried. */
  readonly ownId?: Uint8Array;
  readonly alpha?: number;
  readonly k?: number;
  readonly maxQueries?: number;
  readonly maxNodes?: number;
  readonly maxPeers?: number;
  readonly shortTimeoutMs?: number;
  readonly longTimeoutMs?: number;
}

/**
 * Starts a lookup of `target` from `seeds` (e.g. the routing table's closest nodes); returns it and the first
 * queries. With no usable seed, the first action is `done`.
 * @throws {RangeError} when `target` is not 20 bytes.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const target = new Uint8Array(20);
 * const seeds = [1, 2, 3, 4].map((i) => ({ id: new Uint8Array(20).fill(i), address: { host: `10.0.0.${i}`, port: 1 } }));
 * const [, actions] = createLookup(target, seeds, { kind: "find_node", now: 0 });
 * eq(actions, seeds.slice(0, 3).map((node) => ({ type: "query", node })));
 * ```
 */
export function createLookup(
  target: Uint8Array,
  seeds: readonly NodeInfo[],
  o: LookupOptions,
): [Lookup, LookupAction[]] {
  if (target.length !== ID_BYTES) throw new RangeError(`Cannot look up a target of ${target.length} bytes`);
  const l: Draft = {
    kind: o.kind,
    target: target.slice(),
    ownId: o.ownId?.slice() ?? null,
    alpha: Math.max(1, o.alpha ?? ALPHA),
    k: Math.max(1, o.k ?? BUCKET_SIZE),
    maxQueries: Math.max(1, o.maxQueries ?? DHT_LOOKUP_MAX_QUERIES),
    maxNodes: Math.max(1, o.maxNodes ?? DHT_LOOKUP_MAX_NODES),
    maxPeers: Math.max(0, o.maxPeers ?? DHT_LOOKUP_MAX_PEERS),
    shortTimeoutMs: o.shortTimeoutMs ?? SHORT_TIMEOUT_MS,
    longTimeoutMs: o.longTimeoutMs ?? LONG_TIMEOUT_MS,
    nodes: [],
    queries: 0,
    peers: [],
    peerKeys: new Set(),
    done: false,
    out: [],
  };
  addNodes(l, seeds, null);
  return advance(l, o.now);
}

/**
 * Advances a lookup by one event.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const target = new Uint8Array(20);
 * const a = { id: new Uint8Array(20).fill(1), address: { host: "10.0.0.1", port: 1 } };
 * const b = { id: new Uint8Array(20).fill(2), address: { host: "10.0.0.2", port: 1 } };
 * let [l] = createLookup(target, [a], { kind: "get_peers", now: 0, k: 2 });
 * const peer = { host: "10.9.9.9", port: 6881 };
 * let actions;
 * [l, actions] = stepLookup(l, { type: "response", from: a, nodes: [b], values: [peer] }, 10);
 * eq(actions, [{ type: "peers", peers: [peer] }, { type: "query", node: b }]);
 * [l, actions] = stepLookup(l, { type: "failure", from: b }, 20);
 * eq(actions.map((x) => x.type), ["done"]);
 * ```
 */
export function stepLookup(l: Lookup, ev: LookupEvent, now: number): [Lookup, LookupAction[]] {
  if (l.done) return [l, []];
  switch (ev.type) {
    case "response": {
      const at = inFlight(l, formatAddress(ev.from.address));
      if (at < 0 || ev.from.id.length !== ID_BYTES) return [l, []]; // not asked, or asked and given up on
      const d = draft(l);
      onResponse(d, at, ev.from, now, ev);
      return advance(d, now);
    }
    case "failure": {
      const at = inFlight(l, formatAddress(ev.from.address));
      if (at < 0) return [l, []];
      const d = draft(l);
      d.nodes[at] = { ...d.nodes[at], state: "failed" };
      return advance(d, now);
    }
    case "timer": {
      const d = draft(l);
      let changed = false;
      d.nodes.forEach((n, i) => {
        if (n.sentAt === null || (n.state !== "waiting" && n.state !== "slow")) return;
        if (now - n.sentAt >= d.longTimeoutMs) d.nodes[i] = { ...n, state: "failed" };
        else if (n.state === "waiting" && now - n.sentAt >= d.shortTimeoutMs) d.nodes[i] = { ...n, state: "slow" };
        else return;
        changed = true;
      });
      return changed ? advance(d, now) : [l, []];
    }
  }
}

/**
 * When the lookup next needs a `timer` event (a query in flight turns slow or fails), or null when none is due.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const seed = { id: new Uint8Array(20).fill(1), address: { host: "10.0.0.1", port: 1 } };
 * const [l] = createLookup(new Uint8Array(20), [seed], { kind: "find_node", now: 100 });
 * eq(lookupDeadline(l), 100 + SHORT_TIMEOUT_MS);
 * ```
 */
export function lookupDeadline(l: Lookup): number | null {
  if (l.done) return null;
  let at: number | null = null;
  for (const n of l.nodes) {
    if (n.sentAt === null) continue;
    const t = n.state === "waiting"
      ? n.sentAt + l.shortTimeoutMs
      : n.state === "slow"
      ? n.sentAt + l.longTimeoutMs
      : null;
    if (t !== null && (at === null || t < at)) at = t;
  }
  return at;
}

/**
 * What the lookup has found so far (the same as its `done` action's result once it is over).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const [l] = createLookup(new Uint8Array(20), [], { kind: "find_node", now: 0 });
 * eq(lookupResult(l), { closest: [], peers: [], queries: 0, answered: 0, failed: 0 });
 * ```
 */
export function lookupResult(l: Lookup): LookupResult {
  const closest: LookupResponder[] = [];
  let answered = 0;
  let failed = 0;
  for (const n of l.nodes) {
    if (n.state === "answered") {
      answered++;
      if (closest.length < l.k) closest.push({ node: n.node, token: n.token });
    } else if (n.state === "failed") failed++;
  }
  return { closest, peers: l.peers, queries: l.queries, answered, failed };
}

// ---- internals ----

/** The mutable copy a step works on. */
interface Draft extends Omit<Lookup, "nodes" | "peers" | "peerKeys" | "queries" | "done"> {
  nodes: LookupNode[];
  peers: PeerAddress[];
  peerKeys: Set<string>;
  queries: number;
  done: boolean;
  readonly out: LookupAction[];
}

function draft(l: Lookup): Draft {
  return {
    ...l,
    nodes: l.nodes.slice(),
    peers: l.peers as PeerAddress[],
    peerKeys: l.peerKeys as Set<string>,
    out: [],
  };
}

function freeze(d: Draft): Lookup {
  const { out: _out, ...l } = d;
  return l;
}

function inFlight(l: Lookup, key: string): number {
  return l.nodes.findIndex((n) => n.key === key && (n.state === "waiting" || n.state === "slow"));
}

function onResponse(
  d: Draft,
  at: number,
  from: NodeInfo,
  now: number,
  ev: { readonly nodes: readonly NodeInfo[]; readonly values?: readonly PeerAddress[]; readonly token?: Uint8Array },
): void {
  const entry = d.nodes[at];
  if (d.ownId !== null && sameId(from.id, d.ownId)) {
    // an answer under our own id is a lie (we never ask ourselves): nothing it says is taken, and it counts as failed,
    // so a host cannot dodge the one-answer-per-host rule below by never being "answered"
    d.nodes[at] = { ...entry, state: "failed" };
    return;
  }
  if (entry.host !== null && d.nodes.some((n) => n.host === entry.host && n.state === "answered")) {
    d.nodes[at] = { ...entry, state: "failed" }; // its host answered already: one answer per host counts
    return;
  }
  // the host has answered: its other addresses not asked yet are dropped, and their later answers not counted
  if (entry.host !== null) d.nodes = d.nodes.filter((n, i) => i === at || n.host !== entry.host || n.state !== "new");
  at = d.nodes.indexOf(entry);
  const token = d.kind === "get_peers" && ev.token !== undefined && ev.token.length <= MAX_KRPC_TOKEN_BYTES
    ? ev.token.slice()
    : null;
  if (sameId(entry.node.id, from.id)) {
    d.nodes[at] = { ...entry, state: "answered", token };
  } else {
    // It answered under another id: the entry takes that id (and its place in the order).
    d.nodes.splice(at, 1);
    insertSorted(d, {
      node: { id: from.id.slice(), address: entry.node.address },
      key: entry.key,
      host: entry.host,
      state: "answered",
      sentAt: entry.sentAt ?? now,
      token,
    });
  }
  const namedBy = addressScope(entry.node.address.host);
  if (d.kind === "get_peers" && ev.values !== undefined) addPeers(d, ev.values, namedBy);
  addNodes(d, ev.nodes, namedBy);
}

/**
 * Adds the peers an answer gave (`from`: the scope of the answering node's address). Like PEX, only those its sender
 * may tell us of ({@linkcode mayShare}): a node elsewhere naming a loopback or private address would have us dial a
 * service on this host or its network.
 */
function addPeers(d: Draft, values: readonly PeerAddress[], from: AddressScope): void {
  const fresh: PeerAddress[] = [];
  for (const p of values) {
    if (d.peers.length >= d.maxPeers) break;
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) continue;
    if (!mayShare(addressScope(p.host), from)) continue;
    const key = formatAddress(p);
    if (d.peerKeys.has(key)) continue;
    // copy on first write: the previous state keeps its arrays
    if (fresh.length === 0) {
      d.peers = d.peers.slice();
      d.peerKeys = new Set(d.peerKeys);
    }
    const copy = { host: p.host, port: p.port };
    d.peers.push(copy);
    d.peerKeys.add(key);
    fresh.push(copy);
  }
  if (fresh.length > 0) d.out.push({ type: "peers", peers: fresh });
}

/** Adds the nodes an answer named (`namedBy`: the scope of its sender's address), or the seeds (null). */
function addNodes(d: Draft, nodes: readonly NodeInfo[], namedBy: AddressScope | null): void {
  for (const n of nodes) {
    const p = n.address.port;
    if (n.id.length !== ID_BYTES || !Number.isInteger(p) || p < 1 || p > 65535) continue;
    if (d.ownId !== null && sameId(n.id, d.ownId)) continue;
    const key = formatAddress(n.address);
    if (d.nodes.some((e) => e.key === key)) continue; // one entry per address
    const scope = addressScope(n.address.host);
    // an address no one can reach, or this host's own named by a node elsewhere (its loopback is not ours)
    if (scope === "unusable" || (scope === "loopback" && namedBy !== null && namedBy !== "loopback")) continue;
    const host = scope === "loopback" ? null : hostKey(n.address.host);
    if (host !== null && d.nodes.some((e) => e.host === host && e.state === "answered")) continue; // heard already
    const entry: LookupNode = {
      node: { id: n.id.slice(), address: { host: n.address.host, port: p } },
      key,
      host,
      state: "new",
      sentAt: null,
      token: null,
    };
    insertSorted(d, entry);
    trim(d);
  }
}

function insertSorted(d: Draft, e: LookupNode): void {
  let lo = 0;
  let hi = d.nodes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareDistance(d.target, d.nodes[mid].node.id, e.node.id) <= 0) lo = mid + 1;
    else hi = mid;
  }
  d.nodes.splice(lo, 0, e);
}

/** Drops the farthest nodes not yet asked while more than `maxNodes` wait. */
function trim(d: Draft): void {
  let waiting = 0;
  for (const n of d.nodes) if (n.state === "new") waiting++;
  for (let i = d.nodes.length - 1; i >= 0 && waiting > d.maxNodes; i--) {
    if (d.nodes[i].state !== "new") continue;
    d.nodes.splice(i, 1);
    waiting--;
  }
}

/** Sends what may be sent, and ends the lookup when the stop rule holds. */
function advance(d: Draft, now: number): [Lookup, LookupAction[]] {
  let inflight = 0;
  for (const n of d.nodes) if (n.state === "waiting") inflight++;
  let answered = 0;
  for (let i = 0; i < d.nodes.length && answered < d.k; i++) {
    const n = d.nodes[i];
    if (n.state === "answered") answered++;
    if (n.state !== "new" || inflight >= d.alpha || d.queries >= d.maxQueries) continue;
    d.nodes[i] = { ...n, state: "waiting", sentAt: now };
    d.queries++;
    inflight++;
    d.out.push({ type: "query", node: n.node });
  }
  if (finished(d)) {
    d.done = true;
    const l = freeze(d);
    d.out.push({ type: "done", result: lookupResult(l) });
    return [l, d.out];
  }
  return [freeze(d), d.out];
}

/** The stop rule: the `k` closest that did not fail have answered, and nothing closer is in flight or still to ask. */
function finished(d: Draft): boolean {
  let answered = 0;
  for (const n of d.nodes) {
    if (answered >= d.k) return true;
    switch (n.state) {
      case "answered":
        answered++;
        break;
      case "failed":
        break;
      case "waiting":
      case "slow":
        return false;
      case "new":
        if (d.queries < d.maxQueries) return false;
        break;
    }
  }
  return true;
}
