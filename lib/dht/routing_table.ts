/**
 * The DHT routing table (BEP 5): the nodes we know, in buckets of {@linkcode BUCKET_SIZE} by their distance from our
 * own id, each node good, questionable or bad. Pure: a step takes an event and `now` and returns the next table and
 * actions (pings to send); the runtime sends the pings and reports what came back.
 *
 * Layout. Bucket `i` holds the nodes whose ids share exactly `i` leading bits with ours; the last bucket holds every
 * node sharing at least as many. That is BEP 5's tree in which only the bucket containing our own id splits: when
 * the last bucket is full and a newcomer falls in it, it splits into "exactly `i` bits" and "at least `i + 1`", up to
 * {@linkcode MAX_BUCKETS}. So the table holds at most 160 × ({@linkcode BUCKET_SIZE} +
 * {@linkcode DHT_REPLACEMENTS_PER_BUCKET}) nodes, and in practice a few hundred.
 *
 * Node states. A node is *good* when it answered one of our queries in the last {@linkcode GOOD_FOR_MS}, or answered
 * one ever and queried us in that time; *bad* when it failed {@linkcode BAD_AFTER_FAILURES} of our queries in a row;
 * *questionable* otherwise (quiet for 15 minutes, or never answered us at all).
 *
 * Policy. Only events enter nodes: a node that answered us (`response`, verified) or queried us (`query`,
 * unverified: it may sit in a free slot but never displaces anyone). Nodes merely named in another node's answer are
 * queried by a lookup first and enter when they answer. A newcomer goes into a free slot; in a full bucket it
 * replaces a bad node; failing that, a verified newcomer has the least recently seen questionable node pinged (the
 * `ping` action) and waits in the bucket's replacement cache: if the ping fails twice in a row the node is bad and
 * the newcomer takes its place, if it answers the node stays. When every node is good, the newcomer only waits in the
 * cache (bounded, the most recent kept), from which slots freed later are filled.
 *
 * One node per host (an IPv4 address, an IPv6 /64), loopback excepted: another node of the same host keeps its place
 * unless it is bad, or only queried us while the newcomer answered (see `makeRoomForHost`). So a node that restarts
 * on another port with a new id waits until its old entry has failed twice (pinged once it is questionable, after 15
 * quiet minutes), and a second node behind the same NAT address does not enter at all; libtorrent does the same.
 *
 * Identity. A node is its id at its address. The same address with another id is a new node: the old entry goes. The
 * same id at another address is believed only from an answer, and only if the entry we hold is not good (a good node
 * keeps its place against anyone claiming its id). Our own id, an address of the other family (IPv4 and IPv6 tables
 * are separate instances, BEP 32), a port of 0 and an id that is not 20 bytes are ignored.
 *
 * Refresh. A bucket whose nodes have not changed for {@linkcode REFRESH_AFTER_MS} is due for a refresh:
 * {@linkcode refreshDue} names it with a random id in its range, the runtime looks that id up and reports the
 * `refreshing` event, which counts as a change.
 * @module
 */
import { addressScope, formatAddress } from "../address.ts";
import { DHT_REPLACEMENTS_PER_BUCKET } from "../limits.ts";
import { hostKey, ipFamily } from "./_ip.ts";
import { commonPrefixBits, compareDistance, ID_BYTES, type NodeInfo, randomIdInBucket, sameId } from "./node_id.ts";

/** K: nodes per bucket, and the number of closest nodes a lookup or an answer is about (BEP 5). */
export const BUCKET_SIZE = 8;
/** How long an answer keeps a node good (BEP 5). */
export const GOOD_FOR_MS = 15 * 60_000;
/** Failed queries in a row that make a node bad (BEP 5 suggests trying a ping once more before dropping a node). */
export const BAD_AFTER_FAILURES = 2;
/** A bucket unchanged this long is refreshed (BEP 5). */
export const REFRESH_AFTER_MS = 15 * 60_000;
/** How long a ping the table asked for stays pending; after it, the node may be pinged again. */
export const PING_PENDING_MS = 20_000;
/** Buckets at most: one per bit of the id. */
export const MAX_BUCKETS = ID_BYTES * 8;

/** One node as the table keeps it. */
export interface TableNode {
  readonly id: Uint8Array;
  readonly address: NodeInfo["address"];
  /** `formatAddress(address)`. */
  readonly key: string;
  /** `hostKey(address.host)`: its host, for the one-node-per-host rule. */
  readonly host: string;
  /** When it last answered one of our queries, or null if it never did. */
  readonly lastResponse: number | null;
  /** When it last queried us, or null. */
  readonly lastQuery: number | null;
  /** Our queries it failed in a row. */
  readonly failures: number;
  /** When we asked the runtime to ping it (pending until an answer or failure, or {@linkcode PING_PENDING_MS}). */
  readonly pingedAt: number | null;
}

/** One bucket: its nodes, the newcomers waiting for a slot, and when its nodes last changed. */
export interface Bucket {
  readonly nodes: readonly TableNode[];
  /** Most recently seen last; at most {@linkcode DHT_REPLACEMENTS_PER_BUCKET}. */
  readonly replacements: readonly TableNode[];
  readonly lastChanged: number;
}

/** The routing table of one address family. */
export interface RoutingTable {
  readonly ownId: Uint8Array;
  readonly family: 4 | 6;
  /** Bucket `i`: ids sharing exactly `i` leading bits with `ownId`; the last bucket: at least that many. */
  readonly buckets: readonly Bucket[];
}

/** A node's standing (BEP 5). */
export type NodeState = "good" | "questionable" | "bad";

/**
 * What happened: a node answered one of our queries, queried us, or failed a query of ours (no answer in time, or
 * an error); or a refresh lookup started for a bucket.
 */
export type TableEvent =
  | { readonly type: "response"; readonly node: NodeInfo }
  | { readonly type: "query"; readonly node: NodeInfo }
  | { readonly type: "failure"; readonly node: NodeInfo }
  | { readonly type: "refreshing"; readonly bucket: number };

/**
 * What the runtime should do: ping `node` and report the answer (`response`) or its failure (`failure`); if it
 * fails, `candidate` (waiting in the replacement cache) takes its place.
 */
export type TableAction = { readonly type: "ping"; readonly node: NodeInfo; readonly candidate: NodeInfo };

/** Options for {@linkcode createTable}. */
export interface TableOptions {
  /** The address family of the nodes it holds (BEP 32: one table per family). */
  readonly family: 4 | 6;
  /** The time the table starts (buckets count as changed then). */
  readonly now: number;
}

/**
 * An empty table around `ownId`.
 * @throws {RangeError} when `ownId` is not 20 bytes.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const t = createTable(new Uint8Array(20), { family: 4, now: 0 });
 * eq(t.buckets.length, 1);
 * eq(tableSize(t), 0);
 * ```
 */
export function createTable(ownId: Uint8Array, o: TableOptions): RoutingTable {
  if (ownId.length !== ID_BYTES) {
    throw new RangeError(`Cannot create a routing table: own id has ${ownId.length} bytes`);
  }
  return { ownId: ownId.slice(), family: o.family, buckets: [{ nodes: [], replacements: [], lastChanged: o.now }] };
}

/**
 * A node's standing at `now`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const n = { lastResponse: 0, lastQuery: null, failures: 0 };
 * eq(nodeState(n, 1000), "good");
 * eq(nodeState(n, GOOD_FOR_MS), "questionable");
 * eq(nodeState({ ...n, failures: BAD_AFTER_FAILURES }, 1000), "bad");
 * ```
 */
export function nodeState(
  n: Pick<TableNode, "lastResponse" | "lastQuery" | "failures">,
  now: number,
): NodeState {
  if (n.failures >= BAD_AFTER_FAILURES) return "bad";
  if (n.lastResponse === null) return "questionable";
  if (now - n.lastResponse < GOOD_FOR_MS) return "good";
  if (n.lastQuery !== null && now - n.lastQuery < GOOD_FOR_MS) return "good";
  return "questionable";
}

/**
 * The bucket index `id` falls in.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const t = createTable(new Uint8Array(20), { family: 4, now: 0 });
 * eq(bucketIndex(t, new Uint8Array(20).fill(0xff)), 0);
 * ```
 */
export function bucketIndex(t: RoutingTable, id: Uint8Array): number {
  return Math.min(commonPrefixBits(t.ownId, id), t.buckets.length - 1);
}

/** Nodes in the table's buckets (not counting replacement caches). */
export function tableSize(t: RoutingTable): number {
  return t.buckets.reduce((n, b) => n + b.nodes.length, 0);
}

/**
 * Advances the table by one event.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const own = new Uint8Array(20);
 * let t = createTable(own, { family: 4, now: 0 });
 * const id = new Uint8Array(20).fill(0x80);
 * const node = { id, address: { host: "10.0.0.1", port: 6881 } };
 * [t] = stepTable(t, { type: "response", node }, 1000);
 * eq(closest(t, id, { k: 1 }), [node]);
 * [t] = stepTable(t, { type: "failure", node }, 2000);
 * [t] = stepTable(t, { type: "failure", node }, 3000);
 * eq(closest(t, id, { k: 1 }), []); // bad now
 * ```
 */
export function stepTable(t: RoutingTable, ev: TableEvent, now: number): [RoutingTable, TableAction[]] {
  switch (ev.type) {
    case "response":
    case "query":
      if (!acceptable(t, ev.node)) return [t, []];
      return heard(t, ev.node, ev.type === "response", now);
    case "failure":
      return failed(t, ev.node, now);
    case "refreshing": {
      const b = t.buckets[ev.bucket];
      if (b === undefined) return [t, []];
      return [withBucket(t.buckets.slice(), ev.bucket, { ...b, lastChanged: now }, t), []];
    }
  }
}

/** Options for {@linkcode closest}. */
export interface ClosestOptions {
  /** How many; {@linkcode BUCKET_SIZE} by default. */
  readonly k?: number;
  /** When given, only nodes good at this time (for answers to other nodes); otherwise every node that is not bad. */
  readonly goodAt?: number;
}

/**
 * The nodes closest to `target`, closest first: for answering `find_node` and `get_peers`, and to seed lookups.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * let t = createTable(new Uint8Array(20), { family: 4, now: 0 });
 * const a = { id: new Uint8Array(20).fill(1), address: { host: "10.0.0.1", port: 1 } };
 * const b = { id: new Uint8Array(20).fill(2), address: { host: "10.0.0.2", port: 1 } };
 * [t] = stepTable(t, { type: "response", node: a }, 0);
 * [t] = stepTable(t, { type: "query", node: b }, 0);
 * eq(closest(t, b.id), [b, a]);
 * eq(closest(t, b.id, { goodAt: 0 }), [a]); // b never answered us
 * ```
 */
export function closest(t: RoutingTable, target: Uint8Array, o: ClosestOptions = {}): NodeInfo[] {
  const k = o.k ?? BUCKET_SIZE;
  const all: TableNode[] = [];
  for (const b of t.buckets) {
    for (const n of b.nodes) {
      const s = nodeState(n, o.goodAt ?? 0);
      if (s === "bad" || (o.goodAt !== undefined && s !== "good")) continue;
      all.push(n);
    }
  }
  all.sort((x, y) => compareDistance(target, x.id, y.id));
  return all.slice(0, k).map(info);
}

/**
 * Where a lookup for `target` starts: the `k` closest nodes that have answered one of our queries at some time, closest
 * first. Only when fewer than {@linkcode BUCKET_SIZE} of those are known is the list topped up, after all of them, with
 * nodes that only queried us: anyone can send a query with a made-up id from a forged address, and each such node
 * queried costs the lookup a slot and a time-out.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * let t = createTable(new Uint8Array(20), { family: 4, now: 0 });
 * const a = { id: new Uint8Array(20).fill(1), address: { host: "10.0.0.1", port: 1 } };
 * const b = { id: new Uint8Array(20).fill(2), address: { host: "10.0.0.2", port: 1 } };
 * [t] = stepTable(t, { type: "response", node: a }, 0);
 * [t] = stepTable(t, { type: "query", node: b }, 0);
 * eq(lookupSeeds(t, b.id, 16), [a, b]); // fewer than 8 answered: b is tried too, after a
 * ```
 */
export function lookupSeeds(t: RoutingTable, target: Uint8Array, k: number): NodeInfo[] {
  const answered: TableNode[] = [];
  const others: TableNode[] = [];
  for (const b of t.buckets) {
    for (const n of b.nodes) {
      if (n.failures >= BAD_AFTER_FAILURES) continue;
      (n.lastResponse !== null ? answered : others).push(n);
    }
  }
  const byDistance = (x: TableNode, y: TableNode) => compareDistance(target, x.id, y.id);
  answered.sort(byDistance);
  if (answered.length >= BUCKET_SIZE) return answered.slice(0, k).map(info);
  // every node that answered stays; the others only fill the rest, however close their (forgeable) ids are
  return [...answered, ...others.sort(byDistance)].slice(0, k).map(info);
}

/** A bucket due for a refresh, and the id to look up for it. */
export interface Refresh {
  readonly bucket: number;
  readonly target: Uint8Array;
}

/**
 * The buckets unchanged for {@linkcode REFRESH_AFTER_MS}, each with a random id in its range (from `random`, values
 * in [0, 1)). Report `refreshing` for each one looked up, or it stays due.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const t = createTable(new Uint8Array(20), { family: 4, now: 0 });
 * eq(refreshDue(t, REFRESH_AFTER_MS - 1, () => 0.5), []);
 * eq(refreshDue(t, REFRESH_AFTER_MS, () => 0).map((r) => r.bucket), [0]);
 * ```
 */
export function refreshDue(t: RoutingTable, now: number, random: () => number): Refresh[] {
  const out: Refresh[] = [];
  t.buckets.forEach((b, i) => {
    if (now - b.lastChanged >= REFRESH_AFTER_MS) out.push({ bucket: i, target: randomIdInBucket(t.ownId, i, random) });
  });
  return out;
}

/**
 * The good nodes, closest buckets first: what to save for the next start.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * let t = createTable(new Uint8Array(20), { family: 4, now: 0 });
 * const node = { id: new Uint8Array(20).fill(7), address: { host: "10.0.0.1", port: 1 } };
 * [t] = stepTable(t, { type: "response", node }, 0);
 * eq(goodNodes(t, 1).length, 1);
 * eq(goodNodes(t, GOOD_FOR_MS).length, 0);
 * ```
 */
export function goodNodes(t: RoutingTable, now: number): NodeInfo[] {
  const out: NodeInfo[] = [];
  for (let i = t.buckets.length - 1; i >= 0; i--) {
    for (const n of t.buckets[i].nodes) if (nodeState(n, now) === "good") out.push(info(n));
  }
  return out;
}

/** Counts for reports. */
export interface TableStats {
  readonly buckets: number;
  readonly good: number;
  readonly questionable: number;
  readonly bad: number;
  readonly replacements: number;
}

/**
 * How many nodes of each standing the table holds at `now`.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const t = createTable(new Uint8Array(20), { family: 6, now: 0 });
 * eq(tableStats(t, 0), { buckets: 1, good: 0, questionable: 0, bad: 0, replacements: 0 });
 * ```
 */
export function tableStats(t: RoutingTable, now: number): TableStats {
  const s = { buckets: t.buckets.length, good: 0, questionable: 0, bad: 0, replacements: 0 };
  for (const b of t.buckets) {
    for (const n of b.nodes) s[nodeState(n, now)]++;
    s.replacements += b.replacements.length;
  }
  return s;
}

// ---- internals ----

function info(n: TableNode): NodeInfo {
  return { id: n.id, address: n.address };
}

function acceptable(t: RoutingTable, node: NodeInfo): boolean {
  const p = node.address.port;
  return node.id.length === ID_BYTES && !sameId(node.id, t.ownId) && Number.isInteger(p) && p >= 1 && p <= 65535 &&
    ipFamily(node.address.host) === t.family;
}

function withBucket(bs: Bucket[], i: number, b: Bucket, t: RoutingTable): RoutingTable {
  bs[i] = b;
  return { ownId: t.ownId, family: t.family, buckets: bs };
}

function fresh(node: NodeInfo, verified: boolean, now: number): TableNode {
  return {
    id: node.id.slice(),
    address: { host: node.address.host, port: node.address.port },
    key: formatAddress(node.address),
    host: hostKey(node.address.host),
    lastResponse: verified ? now : null,
    lastQuery: verified ? null : now,
    failures: 0,
    pingedAt: null,
  };
}

function touched(n: TableNode, verified: boolean, now: number): TableNode {
  return verified ? { ...n, lastResponse: now, failures: 0, pingedAt: null } : { ...n, lastQuery: now };
}

/** When a node was last heard from at all. */
function lastSeen(n: TableNode): number {
  return Math.max(n.lastResponse ?? -Infinity, n.lastQuery ?? -Infinity);
}

function heard(t: RoutingTable, node: NodeInfo, verified: boolean, now: number): [RoutingTable, TableAction[]] {
  const bs = t.buckets.slice();
  const key = formatAddress(node.address);
  const i = bucketIndex(t, node.id);
  let b = bs[i];
  /** The entry of this very node waiting in the replacement cache, whose history it keeps. */
  let prior: TableNode | null = null;

  // Known by id, in the bucket or in its replacement cache?
  const at = b.nodes.findIndex((n) => sameId(n.id, node.id));
  if (at >= 0) {
    const n = b.nodes[at];
    if (n.key === key) {
      const nodes = b.nodes.slice();
      nodes[at] = touched(n, verified, now);
      return [withBucket(bs, i, { ...b, nodes, lastChanged: verified ? now : b.lastChanged }, t), []];
    }
    if (!verified || nodeState(n, now) === "good") return [t, []]; // a good node keeps its id against anyone
    b = { ...b, nodes: b.nodes.filter((_, j) => j !== at), lastChanged: now };
  }
  const rat = b.replacements.findIndex((n) => sameId(n.id, node.id));
  if (rat >= 0) {
    const n = b.replacements[rat];
    if (n.key === key) prior = n;
    else if (!verified) return [t, []];
    b = { ...b, replacements: b.replacements.filter((_, j) => j !== rat) };
  }
  bs[i] = b;

  // The same address with another id is a new node: the old entry goes. Not on a query, though: anyone can send one
  // with a spoofed source address, and one packet per known node would empty the table; the new id's own answer to
  // our query (verified) is needed to displace a node in a bucket.
  if (!verified && bs.some((o) => o.nodes.some((n) => n.key === key))) return [t, []];
  for (let j = 0; j < bs.length; j++) {
    const o = bs[j];
    if (!o.nodes.some((n) => n.key === key) && !o.replacements.some((n) => n.key === key)) continue;
    const nodes = o.nodes.filter((n) => n.key !== key);
    const replacements = o.replacements.filter((n) => n.key !== key);
    if (nodes.length === o.nodes.length && replacements.length === o.replacements.length) continue;
    bs[j] = { nodes, replacements, lastChanged: nodes.length !== o.nodes.length ? now : o.lastChanged };
  }

  if (!makeRoomForHost(bs, node.address.host, verified, now)) return [t, []];

  const entry = prior !== null ? touched(prior, verified, now) : fresh(node, verified, now);
  const [next, actions] = insert({ ownId: t.ownId, family: t.family, buckets: bs }, entry, verified, now);
  return [fillAll(next, now), actions];
}

/**
 * One node per host, an IPv4 address or an IPv6 /64 ({@linkcode hostKey}; BEP 5 leaves it open, libtorrent restricts
 * its table likewise): whoever controls one host could otherwise answer from many ports with made-up ids and fill
 * buckets with itself. Loopback addresses are exempt (nodes on this very host, as in a test network). Another entry of
 * the host keeps its place and the newcomer is ignored (false), unless that entry is bad, or only queried us while the
 * newcomer answered us: then it goes from `bs` (in place) and the newcomer may enter (true).
 */
function makeRoomForHost(bs: Bucket[], host: string, verified: boolean, now: number): boolean {
  if (addressScope(host) === "loopback") return true;
  const key = hostKey(host);
  const same = (n: TableNode) => n.host === key;
  const yields = (n: TableNode) => n.failures >= BAD_AFTER_FAILURES || (verified && n.lastResponse === null);
  for (const o of bs) {
    for (const n of o.nodes) if (same(n) && !yields(n)) return false;
    for (const n of o.replacements) if (same(n) && !yields(n)) return false;
  }
  for (let j = 0; j < bs.length; j++) {
    const o = bs[j];
    const nodes = o.nodes.filter((n) => !same(n));
    const replacements = o.replacements.filter((n) => !same(n));
    if (nodes.length === o.nodes.length && replacements.length === o.replacements.length) continue;
    bs[j] = { nodes, replacements, lastChanged: nodes.length !== o.nodes.length ? now : o.lastChanged };
  }
  return true;
}

/** Moves waiting replacements into any free slots. */
function fillAll(t: RoutingTable, now: number): RoutingTable {
  if (!t.buckets.some((b) => b.nodes.length < BUCKET_SIZE && b.replacements.length > 0)) return t;
  return { ownId: t.ownId, family: t.family, buckets: t.buckets.map((b) => fill(b, now)) };
}

function insert(t: RoutingTable, entry: TableNode, verified: boolean, now: number): [RoutingTable, TableAction[]] {
  const bs = t.buckets.slice();
  for (;;) {
    const i = Math.min(commonPrefixBits(t.ownId, entry.id), bs.length - 1);
    const b = bs[i];
    if (b.nodes.length < BUCKET_SIZE) {
      bs[i] = { ...b, nodes: [...b.nodes, entry], lastChanged: now };
      return [{ ...t, buckets: bs }, []];
    }
    if (i === bs.length - 1 && bs.length < MAX_BUCKETS) {
      split(bs, t.ownId, now);
      continue;
    }
    // Full: a bad node makes room.
    const bad = worstBad(b.nodes);
    if (bad >= 0) {
      const nodes = b.nodes.slice();
      nodes[bad] = entry;
      bs[i] = { ...b, nodes, lastChanged: now };
      return [{ ...t, buckets: bs }, []];
    }
    const replacements = remember(b.replacements, entry);
    if (!verified) {
      bs[i] = { ...b, replacements };
      return [{ ...t, buckets: bs }, []];
    }
    // Ping the least recently seen questionable node, unless one of them is being pinged already.
    const pending = b.nodes.some((n) => n.pingedAt !== null && now - n.pingedAt < PING_PENDING_MS);
    const q = pending ? -1 : leastRecentQuestionable(b.nodes, now);
    if (q < 0) {
      bs[i] = { ...b, replacements };
      return [{ ...t, buckets: bs }, []];
    }
    const nodes = b.nodes.slice();
    nodes[q] = { ...nodes[q], pingedAt: now };
    bs[i] = { ...b, nodes, replacements };
    return [{ ...t, buckets: bs }, [{ type: "ping", node: info(nodes[q]), candidate: info(entry) }]];
  }
}

/** Splits the last bucket (the one containing our id) in two. */
function split(bs: Bucket[], ownId: Uint8Array, now: number): void {
  const i = bs.length - 1;
  const b = bs[i];
  const near = (n: TableNode) => commonPrefixBits(ownId, n.id) > i;
  bs[i] = fill({
    nodes: b.nodes.filter((n) => !near(n)),
    replacements: b.replacements.filter((n) => !near(n)),
    lastChanged: b.lastChanged,
  }, now);
  bs.push(
    fill({ nodes: b.nodes.filter(near), replacements: b.replacements.filter(near), lastChanged: b.lastChanged }, now),
  );
}

/** Moves replacements into free slots, the most recently verified first. */
function fill(b: Bucket, now: number): Bucket {
  if (b.nodes.length >= BUCKET_SIZE || b.replacements.length === 0) return b;
  const nodes = b.nodes.slice();
  const replacements = b.replacements.slice();
  while (nodes.length < BUCKET_SIZE && replacements.length > 0) {
    const j = bestReplacement(replacements);
    nodes.push(replacements[j]);
    replacements.splice(j, 1);
  }
  return { nodes, replacements, lastChanged: now };
}

/** Adds a newcomer to a replacement cache, dropping the least useful entry when over the bound. */
function remember(cache: readonly TableNode[], entry: TableNode): TableNode[] {
  const out = cache.filter((n) => n.key !== entry.key && !sameId(n.id, entry.id));
  out.push(entry);
  if (out.length > DHT_REPLACEMENTS_PER_BUCKET) {
    // the oldest unverified one goes first, else the oldest
    const unverified = out.findIndex((n) => n.lastResponse === null);
    out.splice(unverified >= 0 ? unverified : 0, 1);
  }
  return out;
}

/** The replacement to promote: the most recently verified, else the most recently seen. */
function bestReplacement(cache: readonly TableNode[]): number {
  let best = -1;
  for (let j = 0; j < cache.length; j++) {
    const n = cache[j];
    if (n.failures > 0) continue;
    if (best < 0) {
      best = j;
      continue;
    }
    const m = cache[best];
    const nv = n.lastResponse ?? -Infinity;
    const mv = m.lastResponse ?? -Infinity;
    if (nv > mv || (nv === mv && lastSeen(n) >= lastSeen(m))) best = j;
  }
  return best >= 0 ? best : cache.length - 1;
}

function worstBad(nodes: readonly TableNode[]): number {
  let worst = -1;
  nodes.forEach((n, j) => {
    if (n.failures < BAD_AFTER_FAILURES) return;
    if (worst < 0 || n.failures > nodes[worst].failures) worst = j;
  });
  return worst;
}

function leastRecentQuestionable(nodes: readonly TableNode[], now: number): number {
  let q = -1;
  nodes.forEach((n, j) => {
    if (nodeState(n, now) !== "questionable") return;
    if (q < 0 || lastSeen(n) < lastSeen(nodes[q])) q = j;
  });
  return q;
}

function failed(t: RoutingTable, node: NodeInfo, now: number): [RoutingTable, TableAction[]] {
  if (node.id.length !== ID_BYTES) return [t, []];
  const key = formatAddress(node.address);
  const i = bucketIndex(t, node.id);
  const b = t.buckets[i];
  const at = b.nodes.findIndex((n) => n.key === key && sameId(n.id, node.id));
  if (at < 0) {
    const rat = b.replacements.findIndex((n) => n.key === key && sameId(n.id, node.id));
    if (rat < 0) return [t, []];
    const r = b.replacements[rat];
    const replacements = b.replacements.slice();
    if (r.failures + 1 >= BAD_AFTER_FAILURES) replacements.splice(rat, 1);
    else replacements[rat] = { ...r, failures: r.failures + 1 };
    return [withBucket(t.buckets.slice(), i, { ...b, replacements }, t), []];
  }
  const n = b.nodes[at];
  const wasPinged = n.pingedAt !== null;
  const nodes = b.nodes.slice();
  nodes[at] = { ...n, failures: n.failures + 1, pingedAt: null };
  if (b.replacements.length === 0) return [withBucket(t.buckets.slice(), i, { ...b, nodes }, t), []];
  const r = bestReplacement(b.replacements);
  if (nodes[at].failures >= BAD_AFTER_FAILURES) {
    nodes[at] = b.replacements[r];
    const replacements = b.replacements.filter((_, j) => j !== r);
    return [withBucket(t.buckets.slice(), i, { nodes, replacements, lastChanged: now }, t), []];
  }
  if (!wasPinged) return [withBucket(t.buckets.slice(), i, { ...b, nodes }, t), []];
  // BEP 5: try a failed ping once more before replacing the node.
  nodes[at] = { ...nodes[at], pingedAt: now };
  return [
    withBucket(t.buckets.slice(), i, { ...b, nodes }, t),
    [{ type: "ping", node: info(n), candidate: info(b.replacements[r]) }],
  ];
}
