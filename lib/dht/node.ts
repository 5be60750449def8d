/**
 * A DHT node (BEP 5, BEP 32) as a state machine: the routing tables (one per address family), our queries in
 * flight, the lookups under way, the tokens we issue and received, the peers announced to us, and the answers to
 * other nodes' queries. The runtime (`dht.ts`) hands it each datagram and the clock, and sends what it asks through a
 * {@linkcode DhtIO}; the node opens no socket and reads no clock, so a network of hundreds of nodes runs in a test.
 *
 * Policy:
 * - Incoming queries are answered within a per-address budget ({@linkcode QUERY_RATE_PER_S} a second, bursts of
 *   {@linkcode QUERY_BURST}) and a global one; beyond it they are dropped silently, as libtorrent does.
 * - A reply counts only from the address the query went to, with the transaction id we chose; anything else is
 *   ignored. A malformed query that got as far as its `t` is answered with error 203.
 * - Our queries give up after the lookup's long time-out; the routing table hears of every answer and failure.
 * - `get_peers` answers carry a token bound to the asker's IP; `announce_peer` needs it (error 203 otherwise).
 * @module
 */
import { formatAddress, type PeerAddress } from "../address.ts";
import {
  decodeKrpc,
  DhtError,
  encodeKrpc,
  KRPC_ERROR_CODE,
  type KrpcMessage,
  type KrpcQuery,
  type KrpcResponse,
  type KrpcWant,
} from "./krpc.ts";
import {
  createLookup,
  LONG_TIMEOUT_MS,
  type Lookup,
  type LookupAction,
  lookupDeadline,
  type LookupKind,
  type LookupResult,
  stepLookup,
} from "./lookup.ts";
import { ID_BYTES, type NodeInfo, randomBytes } from "./node_id.ts";
import { createPeerStore, expirePeers, getPeers, type PeerStore, storePeer } from "./peer_store.ts";
import {
  closest,
  createTable,
  goodNodes,
  lookupSeeds,
  nodeState,
  refreshDue,
  type RoutingTable,
  stepTable,
  type TableAction,
  type TableEvent,
  tableSize,
  type TableStats,
  tableStats,
} from "./routing_table.ts";
import {
  checkToken,
  createReceivedTokens,
  createTokenSecrets,
  issueToken,
  type ReceivedTokens,
  rememberToken,
  rotateSecret,
  rotationDue,
  tokenFor,
  type TokenSecrets,
} from "./tokens.ts";

/** Queries a second one address may make of us. */
export const QUERY_RATE_PER_S = 20;
/** A burst of queries one address may make. */
export const QUERY_BURST = 40;
/** Queries a second we answer in all. */
export const GLOBAL_QUERY_RATE_PER_S = 500;
/** Addresses whose query budget is remembered; the oldest is forgotten past it. */
export const MAX_RATE_ENTRIES = 4096;
/** Our queries in flight at once; past it the oldest counts as failed. */
export const MAX_PENDING_QUERIES = 1024;
/** Lookups under way at once. */
export const MAX_LOOKUPS = 64;
/** How often the least recently heard-from questionable node is checked (libtorrent's routing-table refresh). */
export const VERIFY_EVERY_MS = 5_000;
/** A node that queried us is checked at most this often. */
export const VERIFY_AGAIN_MS = 60_000;
/** Addresses whose last check is remembered; the oldest is forgotten past it. */
export const MAX_VERIFY_ENTRIES = 4096;
/** Our client version in `v` (BEP 20 style: two letters, two bytes). */
const CLIENT_VERSION = new Uint8Array([0x62, 0x46, 0x01, 0x00]); // "bF" 1.0

/** What the node asks of the runtime. */
export interface DhtIO {
  /** Sends a datagram. */
  send(to: PeerAddress, bytes: Uint8Array): void;
  /** A lookup found peers (not reported before). */
  lookupPeers(lookup: number, peers: readonly PeerAddress[]): void;
  /** A lookup ended. */
  lookupDone(lookup: number, result: LookupResult): void;
}

/** What the node was asked to do with a lookup when it ends. */
interface LookupRun {
  readonly id: number;
  readonly family: 4 | 6;
  lookup: Lookup;
  /** For `get_peers`: announce our TCP port to the closest nodes with their tokens, at the end. */
  readonly announcePort: number | null;
  /** Bucket refreshes and bootstraps feed nothing back to a caller. */
  readonly internal: boolean;
}

interface Pending {
  readonly to: PeerAddress;
  readonly key: string;
  /** The id we expect, or null for a node known by address only (a bootstrap router). */
  readonly id: Uint8Array | null;
  readonly q: KrpcQuery["q"];
  readonly sentAt: number;
  readonly lookup: number | null;
  readonly family: 4 | 6;
  /** For `get_peers` queries, the info-hash (to file the token under). */
  readonly infoHash: Uint8Array | null;
}

/** The node's state (mutated in place by the functions here). */
export interface DhtNode {
  readonly id: Uint8Array;
  readonly random: () => number;
  readonly tables: Map<4 | 6, RoutingTable>;
  /**
   * Queries awaiting an answer, by transaction id: 4 random bytes each (BEP 5 lets a querier choose), so an attacker
   * who sees one of our queries cannot guess the next, and a forged answer from a spoofed address must hit one of the
   * few thousand ids in flight out of 2^32.
   */
  readonly pending: Map<number, Pending>;
  readonly lookups: Map<number, LookupRun>;
  nextLookup: number;
  tokens: TokenSecrets;
  readonly received: ReceivedTokens;
  readonly store: PeerStore;
  /** Per source IP: tokens left and when counted. */
  readonly rates: Map<string, { tokens: number; at: number }>;
  global: { tokens: number; at: number };
  /** When each address was last checked with a query of ours (nodes that only queried us are not yet trusted). */
  readonly verified: Map<string, number>;
  lastVerifyAt: number;
  /** Counters for reports. */
  readonly stats: { queriesIn: number; dropped: number; queriesOut: number; answers: number; failures: number };
}

/** Options for {@linkcode createDhtNode}. */
export interface DhtNodeOptions {
  readonly id: Uint8Array;
  /** The families we have sockets for. */
  readonly families: readonly (4 | 6)[];
  readonly now: number;
  /** Values in [0, 1): transaction ids, refresh targets, token secrets. */
  readonly random: () => number;
}

/** A node with empty tables. */
export function createDhtNode(o: DhtNodeOptions): DhtNode {
  if (o.id.length !== ID_BYTES) throw new RangeError(`Cannot start a DHT node with an id of ${o.id.length} bytes`);
  const tables = new Map<4 | 6, RoutingTable>();
  for (const f of o.families) tables.set(f, createTable(o.id, { family: f, now: o.now }));
  return {
    id: o.id.slice(),
    random: o.random,
    tables,
    pending: new Map(),
    lookups: new Map(),
    nextLookup: 1,
    tokens: createTokenSecrets(randomBytes(o.random, 16), o.now),
    received: createReceivedTokens(),
    store: createPeerStore(),
    rates: new Map(),
    global: { tokens: GLOBAL_QUERY_RATE_PER_S, at: o.now },
    verified: new Map(),
    lastVerifyAt: o.now,
    stats: { queriesIn: 0, dropped: 0, queriesOut: 0, answers: 0, failures: 0 },
  };
}

/** The address family of a host (IPv6 when it has a colon). */
export function familyOf(a: PeerAddress): 4 | 6 {
  return a.host.includes(":") ? 6 : 4;
}

// ---- lookups ---------------------------------------------------------------------------------------------------------

/** Options for {@linkcode startLookup}. */
export interface StartLookup {
  readonly kind: LookupKind;
  readonly target: Uint8Array;
  readonly family: 4 | 6;
  /** Nodes to start from besides the routing table's closest (saved nodes). */
  readonly seeds?: readonly NodeInfo[];
  /**
   * Bootstrap routers, known by address only. Until the family's table has a good node, a router stands in next to
   * the target, so it is asked first: saved nodes may all be gone (a state file from another network, or days old),
   * and a lookup that asked only them would wait out a short time-out for every three of them. Once the
   * table has a good node, a router stands in next to our own id: the bootstrap and refreshes of our own id ask it
   * first, and a lookup of anything else leaves it alone.
   */
  readonly routers?: readonly PeerAddress[];
  /** `get_peers` only: announce this TCP port to the closest nodes when the lookup ends. */
  readonly announcePort?: number | null;
  /** A lookup of the node's own (bootstrap, refresh): its results are not reported to the runtime. */
  readonly internal?: boolean;
}

/** An id at distance 1 from `id`: where a node whose id is unknown stands in to be asked first. */
function nextTo(id: Uint8Array): Uint8Array {
  const out = id.slice();
  out[ID_BYTES - 1] ^= 1;
  return out;
}

/**
 * Starts a lookup; returns its number (reported with its peers and its end through `io`), or null when too many are
 * under way or the family has no table.
 */
export function startLookup(n: DhtNode, s: StartLookup, now: number, io: DhtIO): number | null {
  const table = n.tables.get(s.family);
  if (!table || n.lookups.size >= MAX_LOOKUPS) return null;
  const stand = tableStats(table, now).good > 0 ? n.id : s.target;
  const seeds = [
    ...lookupSeeds(table, s.target, 16),
    ...(s.seeds ?? []).filter((x) => familyOf(x.address) === s.family),
    ...(s.routers ?? []).filter((a) => familyOf(a) === s.family).map((address) => ({ id: nextTo(stand), address })),
  ];
  const id = n.nextLookup++;
  const [lookup, actions] = createLookup(s.target, seeds, { kind: s.kind, now, ownId: n.id });
  const run: LookupRun = {
    id,
    family: s.family,
    lookup,
    announcePort: s.kind === "get_peers" ? s.announcePort ?? null : null,
    internal: s.internal ?? false,
  };
  n.lookups.set(id, run);
  performLookup(n, run, actions, now, io);
  return id;
}

function performLookup(n: DhtNode, run: LookupRun, actions: readonly LookupAction[], now: number, io: DhtIO): void {
  for (const a of actions) {
    switch (a.type) {
      case "query":
        sendQuery(n, a.node, run.lookup.kind, run.lookup.target, run.id, run.family, now, io);
        break;
      case "peers":
        if (!run.internal) io.lookupPeers(run.id, a.peers);
        break;
      case "done":
        n.lookups.delete(run.id);
        if (run.announcePort !== null) announceTo(n, run, a.result, now, io);
        if (!run.internal) io.lookupDone(run.id, a.result);
        break;
    }
  }
}

function announceTo(n: DhtNode, run: LookupRun, result: LookupResult, now: number, io: DhtIO): void {
  for (const r of result.closest) {
    const token = r.token ?? tokenFor(n.received, { address: r.node.address, infoHash: run.lookup.target }, now);
    if (!token || run.announcePort === null) continue;
    const t = takeTid(n, {
      to: r.node.address,
      key: formatAddress(r.node.address),
      id: r.node.id,
      q: "announce_peer",
      sentAt: now,
      lookup: null,
      family: run.family,
      infoHash: null,
    });
    io.send(
      r.node.address,
      encodeKrpc({
        y: "q",
        q: "announce_peer",
        t,
        id: n.id,
        infoHash: run.lookup.target,
        port: run.announcePort,
        impliedPort: false,
        token,
        v: CLIENT_VERSION,
      }),
    );
    n.stats.queriesOut++;
  }
}

function takeTid(n: DhtNode, p: Pending): Uint8Array {
  if (n.pending.size >= MAX_PENDING_QUERIES) {
    const [oldest] = n.pending.keys();
    const old = n.pending.get(oldest);
    n.pending.delete(oldest);
    if (old) onQueryFailed(n, old, old.sentAt, null);
  }
  let tid: number;
  do tid = Math.floor(n.random() * 0x1_0000_0000) >>> 0; while (n.pending.has(tid));
  n.pending.set(tid, p);
  return new Uint8Array([tid >>> 24, (tid >>> 16) & 0xff, (tid >>> 8) & 0xff, tid & 0xff]);
}

function sendQuery(
  n: DhtNode,
  node: NodeInfo,
  kind: LookupKind | "ping",
  target: Uint8Array,
  lookup: number | null,
  family: 4 | 6,
  now: number,
  io: DhtIO,
): void {
  const t = takeTid(n, {
    to: node.address,
    key: formatAddress(node.address),
    id: node.id,
    q: kind,
    sentAt: now,
    lookup,
    family,
    infoHash: kind === "get_peers" ? target : null,
  });
  const want: KrpcWant[] = [family === 4 ? "n4" : "n6"];
  const msg: KrpcMessage = kind === "ping"
    ? { y: "q", q: "ping", t, id: n.id, v: CLIENT_VERSION }
    : kind === "find_node"
    ? { y: "q", q: "find_node", t, id: n.id, target, want, v: CLIENT_VERSION }
    : { y: "q", q: "get_peers", t, id: n.id, infoHash: target, want, v: CLIENT_VERSION };
  io.send(node.address, encodeKrpc(msg));
  n.stats.queriesOut++;
}

// ---- datagrams -----------------------------------------------------------------------------------------------------

/** A datagram arrived from `from`. Malformed input is answered (203) or ignored; it never throws. */
export function receive(n: DhtNode, from: PeerAddress, bytes: Uint8Array, now: number, io: DhtIO): void {
  let msg: KrpcMessage;
  try {
    msg = decodeKrpc(bytes);
  } catch (e) {
    if (!(e instanceof DhtError)) throw e;
    if (e.messageType !== "q" || !e.transactionId) return;
    n.stats.queriesIn++;
    if (!allowQuery(n, from, now)) n.stats.dropped++;
    else io.send(from, encodeKrpc(errorReply(e.transactionId, KRPC_ERROR_CODE.protocol, "malformed query")));
    return;
  }
  if (msg.y === "q") {
    n.stats.queriesIn++;
    if (!allowQuery(n, from, now)) {
      n.stats.dropped++;
      return;
    }
    if (msg.q === "unknown") {
      io.send(from, encodeKrpc(errorReply(msg.t, KRPC_ERROR_CODE.methodUnknown, "method unknown")));
      return;
    }
    answer(n, from, msg, now, io);
    if (!msg.ro) {
      const node = { id: msg.id, address: from };
      tableEvent(n, { type: "query", node }, now, io);
      // a node that only queried us is not handed out until it answers a query of ours: ask it now, so a network
      // that grows from one bootstrap node learns of its members at once, not at the next bucket refresh
      if (isUnverified(n, node)) verify(n, node, now, io);
    }
    return;
  }
  if (msg.t.length !== 4) return;
  const tid = ((msg.t[0] << 24) | (msg.t[1] << 16) | (msg.t[2] << 8) | msg.t[3]) >>> 0;
  const p = n.pending.get(tid);
  if (!p || p.key !== formatAddress(from)) return; // not ours, or not from where it went
  n.pending.delete(tid);
  if (msg.y === "e") {
    onQueryFailed(n, p, now, io);
    return;
  }
  onResponse(n, p, msg, now, io);
}

function onResponse(n: DhtNode, p: Pending, r: KrpcResponse, now: number, io: DhtIO): void {
  n.stats.answers++;
  const from: NodeInfo = { id: r.id, address: p.to };
  tableEvent(n, { type: "response", node: from }, now, io);
  if (p.infoHash && r.token) rememberToken(n.received, { address: p.to, infoHash: p.infoHash, token: r.token }, now);
  if (p.lookup === null) return;
  const run = n.lookups.get(p.lookup);
  if (!run) return;
  const nodes = (run.family === 4 ? r.nodes : r.nodes6) ?? [];
  const [lookup, actions] = stepLookup(run.lookup, {
    type: "response",
    from: p.id === null ? from : { id: r.id, address: p.to },
    nodes,
    values: r.values,
    token: r.token,
  }, now);
  run.lookup = lookup;
  performLookup(n, run, actions, now, io);
}

function onQueryFailed(n: DhtNode, p: Pending, now: number, io: DhtIO | null): void {
  n.stats.failures++;
  if (p.id) tableEventQuiet(n, { type: "failure", node: { id: p.id, address: p.to } }, now, io);
  if (p.lookup === null || !io) return;
  const run = n.lookups.get(p.lookup);
  if (!run) return;
  const [lookup, actions] = stepLookup(run.lookup, {
    type: "failure",
    from: { id: p.id ?? run.lookup.target, address: p.to },
  }, now);
  run.lookup = lookup;
  performLookup(n, run, actions, now, io);
}

function tableEvent(n: DhtNode, ev: TableEvent & { node: NodeInfo }, now: number, io: DhtIO): void {
  tableEventQuiet(n, ev, now, io);
}

function tableEventQuiet(n: DhtNode, ev: TableEvent & { node: NodeInfo }, now: number, io: DhtIO | null): void {
  const f = familyOf(ev.node.address);
  const t = n.tables.get(f);
  if (!t) return;
  const [next, actions] = stepTable(t, ev, now);
  n.tables.set(f, next);
  if (io) pingFor(n, actions, now, io);
}

function pingFor(n: DhtNode, actions: readonly TableAction[], now: number, io: DhtIO): void {
  for (const a of actions) sendQuery(n, a.node, "ping", n.id, null, familyOf(a.node.address), now, io);
}

/** Whether a node sits in our table without ever having answered us. */
function isUnverified(n: DhtNode, node: NodeInfo): boolean {
  const t = n.tables.get(familyOf(node.address));
  if (!t) return false;
  const key = formatAddress(node.address);
  for (const b of t.buckets) for (const e of b.nodes) if (e.key === key) return e.lastResponse === null;
  return false;
}

/** Sends a node a `find_node` for our own id (its answer proves it, and names nodes near us), at most once a minute. */
function verify(n: DhtNode, node: NodeInfo, now: number, io: DhtIO): void {
  const key = formatAddress(node.address);
  const last = n.verified.get(key);
  if (last !== undefined && now - last < VERIFY_AGAIN_MS) return;
  n.verified.delete(key);
  if (n.verified.size >= MAX_VERIFY_ENTRIES) n.verified.delete(n.verified.keys().next().value as string);
  n.verified.set(key, now);
  sendQuery(n, node, "find_node", n.id, null, familyOf(node.address), now, io);
}

/** The questionable node heard from least recently, over every table (never-answered ones first), or null. */
function stalest(n: DhtNode, now: number): NodeInfo | null {
  let best: NodeInfo | null = null;
  let bestAt = Infinity;
  for (const t of n.tables.values()) {
    for (const b of t.buckets) {
      for (const e of b.nodes) {
        if (e.pingedAt !== null || nodeState(e, now) !== "questionable") continue;
        const at = e.lastResponse ?? -1;
        if (at < bestAt) {
          bestAt = at;
          best = { id: e.id, address: e.address };
        }
      }
    }
  }
  return best;
}

function allowQuery(n: DhtNode, from: PeerAddress, now: number): boolean {
  const g = n.global;
  g.tokens = Math.min(GLOBAL_QUERY_RATE_PER_S, g.tokens + ((now - g.at) * GLOBAL_QUERY_RATE_PER_S) / 1000);
  g.at = now;
  if (g.tokens < 1) return false;
  let r = n.rates.get(from.host);
  if (!r) {
    if (n.rates.size >= MAX_RATE_ENTRIES) n.rates.delete(n.rates.keys().next().value as string);
    r = { tokens: QUERY_BURST, at: now };
    n.rates.set(from.host, r);
  }
  r.tokens = Math.min(QUERY_BURST, r.tokens + ((now - r.at) * QUERY_RATE_PER_S) / 1000);
  r.at = now;
  if (r.tokens < 1) return false;
  r.tokens--;
  g.tokens--;
  return true;
}

function errorReply(t: Uint8Array, code: number, message: string): KrpcMessage {
  return { y: "e", t, code, message };
}

function nodesFor(
  n: DhtNode,
  target: Uint8Array,
  want: readonly KrpcWant[] | undefined,
  from: PeerAddress,
  now: number,
) {
  const wants = want && want.length > 0 ? want : [familyOf(from) === 4 ? "n4" : "n6"];
  const out: { nodes?: NodeInfo[]; nodes6?: NodeInfo[] } = {};
  const t4 = n.tables.get(4);
  const t6 = n.tables.get(6);
  if (wants.includes("n4") && t4) out.nodes = closest(t4, target, { goodAt: now });
  if (wants.includes("n6") && t6) out.nodes6 = closest(t6, target, { goodAt: now });
  return out;
}

function answer(n: DhtNode, from: PeerAddress, q: KrpcQuery, now: number, io: DhtIO): void {
  const base = { y: "r" as const, t: q.t, id: n.id, v: CLIENT_VERSION };
  switch (q.q) {
    case "ping":
      io.send(from, encodeKrpc(base));
      return;
    case "find_node":
      io.send(from, encodeKrpc({ ...base, ...nodesFor(n, q.target, q.want, from, now) }));
      return;
    case "get_peers": {
      const values = getPeers(n.store, q.infoHash, { now, family: familyOf(from), random: n.random });
      const reply: KrpcResponse = {
        ...base,
        token: issueToken(n.tokens, from.host),
        ...(values.length > 0 ? { values } : {}),
        ...nodesFor(n, q.infoHash, q.want, from, now),
      };
      io.send(from, encodeKrpc(reply));
      return;
    }
    case "announce_peer": {
      if (!checkToken(n.tokens, from.host, q.token, now)) {
        io.send(from, encodeKrpc(errorReply(q.t, KRPC_ERROR_CODE.protocol, "bad token")));
        return;
      }
      const port = q.impliedPort ? from.port : q.port;
      storePeer(n.store, { infoHash: q.infoHash, address: { host: from.host, port } }, now);
      io.send(from, encodeKrpc(base));
      return;
    }
  }
}

// ---- time ----------------------------------------------------------------------------------------------------------

/**
 * The clock ticked: expired queries fail, lookups advance, the token secret rotates, stale buckets are refreshed,
 * expired announces go. Call it every few hundred ms.
 */
export function tick(n: DhtNode, now: number, io: DhtIO): void {
  for (const [tid, p] of n.pending) {
    if (now - p.sentAt < LONG_TIMEOUT_MS) continue;
    n.pending.delete(tid);
    onQueryFailed(n, p, now, io);
  }
  for (const run of [...n.lookups.values()]) {
    const d = lookupDeadline(run.lookup);
    if (d === null || d > now) continue;
    const [lookup, actions] = stepLookup(run.lookup, { type: "timer" }, now);
    run.lookup = lookup;
    performLookup(n, run, actions, now, io);
  }
  if (now - n.lastVerifyAt >= VERIFY_EVERY_MS) {
    n.lastVerifyAt = now;
    const stale = stalest(n, now);
    if (stale) verify(n, stale, now, io);
  }
  if (rotationDue(n.tokens, now)) n.tokens = rotateSecret(n.tokens, randomBytes(n.random, 16), now);
  for (const [family, table] of n.tables) {
    if (tableSize(table) === 0) continue;
    for (const r of refreshDue(table, now, n.random)) {
      const [next] = stepTable(n.tables.get(family) ?? table, { type: "refreshing", bucket: r.bucket }, now);
      n.tables.set(family, next);
      startLookup(n, { kind: "find_node", target: r.target, family, internal: true }, now, io);
    }
  }
  expirePeers(n.store, now);
}

/** The good nodes of every table, for saving. */
export function nodesToSave(n: DhtNode, now: number): NodeInfo[] {
  const out: NodeInfo[] = [];
  for (const t of n.tables.values()) out.push(...goodNodes(t, now));
  return out;
}

/** Counts for the `dht` event. */
export interface DhtStats {
  readonly nodes: number;
  readonly good: number;
  readonly lookups: number;
  readonly queriesIn: number;
  readonly queriesOut: number;
  readonly answers: number;
  readonly failures: number;
  readonly dropped: number;
  readonly storedPeers: number;
}

/** The node's counts at `now`. */
export function dhtStats(n: DhtNode, now: number): DhtStats {
  let nodes = 0;
  let good = 0;
  for (const t of n.tables.values()) {
    const s: TableStats = tableStats(t, now);
    nodes += s.good + s.questionable + s.bad;
    good += s.good;
  }
  let storedPeers = 0;
  for (const m of n.store.hashes.values()) storedPeers += m.size;
  return { nodes, good, lookups: n.lookups.size, ...n.stats, storedPeers };
}
