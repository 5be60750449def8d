/**
 * A simulated DHT on a virtual clock, for lookup tests: a few hundred nodes with random ids, each with a routing
 * table built by `routing_table.ts` from a global view, answering with its own K closest after some latency. Some
 * never answer, some answer late, some lie (they name nodes that do not exist, with ids right next to the target).
 * @module
 */
import { formatAddress, type PeerAddress } from "../../lib/address.ts";
import { compareDistance, type NodeInfo } from "../../lib/dht/node_id.ts";
import {
  createLookup,
  type Lookup,
  type LookupAction,
  lookupDeadline,
  type LookupEvent,
  type LookupKind,
  type LookupOptions,
  type LookupResult,
  stepLookup,
} from "../../lib/dht/lookup.ts";
import { BUCKET_SIZE, closest, createTable, type RoutingTable, stepTable } from "../../lib/dht/routing_table.ts";
import { type Rand, randomBytes } from "../_gen.ts";

/** How a simulated node behaves when queried. */
export type Behaviour = "honest" | "silent" | "late" | "liar";

/** One simulated node. */
export interface SimNode {
  readonly info: NodeInfo;
  readonly behaviour: Behaviour;
  /** Milliseconds from query to answer. */
  readonly latency: number;
  table: RoutingTable;
  /** Peers announced to it, per info-hash (hex of the first bytes is enough here). */
  readonly peers: Map<string, PeerAddress[]>;
}

/** The whole network. */
export interface SimNetwork {
  readonly nodes: SimNode[];
  readonly byKey: Map<string, SimNode>;
  readonly rand: Rand;
}

/** The share of nodes of each misbehaviour. */
export interface Mix {
  readonly silent?: number;
  readonly late?: number;
  readonly liar?: number;
}

function address(i: number): PeerAddress {
  return { host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 6881 };
}

/** Builds `n` nodes; each one's table holds what it would learn from every other node answering it once. */
export function buildNetwork(rand: Rand, n: number, mix: Mix = {}): SimNetwork {
  const nodes: SimNode[] = [];
  for (let i = 0; i < n; i++) {
    const r = rand();
    const silent = mix.silent ?? 0;
    const late = mix.late ?? 0;
    const liar = mix.liar ?? 0;
    const behaviour: Behaviour = r < silent
      ? "silent"
      : r < silent + late
      ? "late"
      : r < silent + late + liar
      ? "liar"
      : "honest";
    const latency = behaviour === "late" ? 2_000 + rand.int(4_000) : 10 + rand.int(140);
    const info = { id: randomBytes(rand, 20), address: address(i + 1) };
    nodes.push({ info, behaviour, latency, table: createTable(info.id, { family: 4, now: 0 }), peers: new Map() });
  }
  for (const node of nodes) node.table = tableOf(node.info.id, nodes, rand);
  return { nodes, byKey: new Map(nodes.map((x) => [formatAddress(x.info.address), x])), rand };
}

/**
 * A routing table for `own` learnt from every node of the network (in a random order). Each silent node has been
 * found dead (failed twice) in half of the tables, as a live DHT drops dead nodes in time; in the other half it is a
 * stale entry still named in answers.
 */
export function tableOf(own: Uint8Array, nodes: readonly SimNode[], rand: Rand): RoutingTable {
  let t = createTable(own, { family: 4, now: 0 });
  const order = nodes.slice();
  for (let i = order.length - 1; i > 0; i--) {
    const j = rand.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (const other of order) [t] = stepTable(t, { type: "response", node: other.info }, 0);
  for (const other of nodes) {
    if (other.behaviour !== "silent" || rand() < 0.5) continue;
    for (let i = 0; i < 2; i++) [t] = stepTable(t, { type: "failure", node: other.info }, 1);
  }
  return t;
}

/** The `k` nodes closest to `target` that answer queries at all (the lookup's right answer). */
export function trueClosest(net: SimNetwork, target: Uint8Array, k = BUCKET_SIZE): NodeInfo[] {
  return net.nodes.filter((x) => x.behaviour !== "silent").map((x) => x.info)
    .sort((a, b) => compareDistance(target, a.id, b.id)).slice(0, k);
}

/** The token a simulated node gives: its id's first 4 bytes. */
export function simToken(node: NodeInfo): Uint8Array {
  return node.id.slice(0, 4);
}

/** What one lookup did. */
export interface RunReport {
  readonly result: LookupResult;
  /** Virtual milliseconds from start to done. */
  readonly elapsed: number;
  /** Queries per address (each must be 1). */
  readonly perAddress: Map<string, number>;
  /** Peers as reported by `peers` actions, in order. */
  readonly reported: PeerAddress[];
  /** The most queries in flight at once, not counting slow ones. */
  readonly maxInFlight: number;
  /** Round trips: the longest chain seed → named node → … among the nodes queried (a seed is round 1). */
  readonly rounds: number;
}

/** Runs one lookup from a node that is not part of the network, on a virtual clock, until it is done. */
export function runLookup(
  net: SimNetwork,
  target: Uint8Array,
  kind: LookupKind,
  opts: Partial<LookupOptions> & { readonly seeds?: readonly NodeInfo[] } = {},
): RunReport {
  const ownId = randomBytes(net.rand, 20);
  const { seeds: given, ...lookupOpts } = opts;
  const seeds = given ?? closest(tableOf(ownId, net.nodes, net.rand), target);
  const queue: { at: number; ev: LookupEvent }[] = [];
  const perAddress = new Map<string, number>();
  const reported: PeerAddress[] = [];
  const sent = new Map<string, number>();
  let result: LookupResult | null = null;
  let maxInFlight = 0;
  const round = new Map<string, number>(seeds.map((x) => [formatAddress(x.address), 1]));
  let rounds = 0;

  const act = (actions: LookupAction[], now: number) => {
    for (const a of actions) {
      switch (a.type) {
        case "query": {
          const key = formatAddress(a.node.address);
          perAddress.set(key, (perAddress.get(key) ?? 0) + 1);
          rounds = Math.max(rounds, round.get(key) ?? 0);
          sent.set(key, now);
          const node = net.byKey.get(key);
          if (node === undefined || node.behaviour === "silent") break; // nobody there, or never answers
          queue.push({ at: now + node.latency, ev: answer(net, node, target, kind) });
          queue.sort((x, y) => x.at - y.at);
          break;
        }
        case "peers":
          reported.push(...a.peers);
          break;
        case "done":
          result = a.result;
          break;
      }
    }
  };

  let [l, actions]: [Lookup, LookupAction[]] = createLookup(target, seeds, { kind, now: 0, ownId, ...lookupOpts });
  act(actions, 0);
  let now = 0;
  for (let steps = 0; result === null; steps++) {
    if (steps > 100_000) throw new Error("lookup never finished");
    const deadline = lookupDeadline(l);
    const next = queue[0]?.at ?? Infinity;
    if (deadline === null && next === Infinity) throw new Error("lookup stuck: nothing in flight, not done");
    if (next <= (deadline ?? Infinity)) {
      now = next;
      const item = queue.shift();
      if (item === undefined) throw new Error("unreachable");
      [l, actions] = stepLookup(l, item.ev, now);
      if (item.ev.type === "response") {
        const r = (round.get(formatAddress(item.ev.from.address)) ?? 0) + 1;
        for (const n of item.ev.nodes) if (!round.has(formatAddress(n.address))) round.set(formatAddress(n.address), r);
      }
    } else {
      now = deadline ?? now;
      [l, actions] = stepLookup(l, { type: "timer" }, now);
    }
    act(actions, now);
    maxInFlight = Math.max(maxInFlight, l.nodes.filter((n) => n.state === "waiting").length);
  }
  return { result, elapsed: now, perAddress, reported, maxInFlight, rounds };
}

function hexKey(id: Uint8Array): string {
  return Array.from(id.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Stores `peers` at `node` for `infoHash` (as if they had announced there). */
export function storePeers(node: SimNode, infoHash: Uint8Array, peers: readonly PeerAddress[]): void {
  node.peers.set(hexKey(infoHash), peers.slice());
}

function answer(net: SimNetwork, node: SimNode, target: Uint8Array, kind: LookupKind): LookupEvent {
  let nodes: NodeInfo[];
  if (node.behaviour === "liar") {
    // ids right next to the target, at addresses where nobody answers
    nodes = Array.from({ length: BUCKET_SIZE }, () => {
      const id = target.slice();
      id.set(randomBytes(net.rand, 4), 16);
      return {
        id,
        address: { host: `10.250.${net.rand.int(256)}.${net.rand.int(256)}`, port: 1 + net.rand.int(65535) },
      };
    });
  } else {
    nodes = closest(node.table, target);
  }
  const values = kind === "get_peers" ? node.peers.get(hexKey(target)) : undefined;
  return {
    type: "response",
    from: node.info,
    nodes,
    ...(values !== undefined ? { values } : {}),
    ...(kind === "get_peers" ? { token: simToken(node.info) } : {}),
  };
}
