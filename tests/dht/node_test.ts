/**
 * `lib/dht/node.ts` proven on a simulated network (`_node_sim.ts`): hundreds of node instances with seeded random
 * ids exchange real KRPC datagrams through a priority queue on a virtual clock. No socket, no timer, no sleep.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { type Rand, randomBytes, seeded } from "../_gen.ts";
import { formatAddress, type PeerAddress } from "../../lib/address.ts";
import { decodeKrpc, encodeKrpc, KRPC_ERROR_CODE, type KrpcMessage } from "../../lib/dht/krpc.ts";
import { ALPHA, LONG_TIMEOUT_MS, SHORT_TIMEOUT_MS } from "../../lib/dht/lookup.ts";
import {
  type DhtNode,
  dhtStats,
  GLOBAL_QUERY_RATE_PER_S,
  MAX_LOOKUPS,
  MAX_PENDING_QUERIES,
  MAX_RATE_ENTRIES,
  QUERY_BURST,
  QUERY_RATE_PER_S,
  startLookup,
} from "../../lib/dht/node.ts";
import { commonPrefixBits, compareDistance, type NodeInfo, randomIdInBucket } from "../../lib/dht/node_id.ts";
import { getPeers, peerStoreSize } from "../../lib/dht/peer_store.ts";
import { BAD_AFTER_FAILURES, BUCKET_SIZE, MAX_BUCKETS, nodeState, tableStats } from "../../lib/dht/routing_table.ts";
import { TOKEN_BYTES } from "../../lib/dht/tokens.ts";
import {
  DHT_LOOKUP_MAX_QUERIES,
  DHT_MAX_PEERS_PER_INFOHASH,
  DHT_MAX_PEERS_PER_REPLY,
  DHT_MAX_STORED_INFOHASHES,
  DHT_REPLACEMENTS_PER_BUCKET,
  MAX_KRPC_NODES,
  MAX_KRPC_PACKET_BYTES,
} from "../../lib/limits.ts";
import {
  addMember,
  bootstrap,
  createSim,
  inject,
  runUntil,
  runUntilTrue,
  send,
  type Sim,
  type SimMember,
  TICK_MS,
  trueClosest,
} from "./_node_sim.ts";

const SEED = 8;
const NODES = 300;
/** Saved nodes each node restarts with in a warm start. */
const SAVED = 8;

function info(m: SimMember): NodeInfo {
  return { id: m.node.id, address: m.address };
}

function keys(nodes: readonly NodeInfo[]): string[] {
  return nodes.map((x) => formatAddress(x.address));
}

/** Good nodes per member, sorted: [min, 10th percentile, median]. */
function goodSpread(sim: Sim): [number, number, number] {
  const g = sim.members.map((m) => dhtStats(m.node, sim.now).good).sort((a, b) => a - b);
  return [g[0], g[Math.floor(g.length / 10)], g[Math.floor(g.length / 2)]];
}

function idle(sim: Sim): boolean {
  return sim.members.every((m) => m.node.lookups.size === 0);
}

/**
 * A network after a warm start: every node starts again with the bootstrap router (member 0) and {@linkcode SAVED}
 * nodes saved by an earlier run (random members), the seeds `dht.ts` gives its bootstrap; then, twice, every node
 * looks its own id up again, as its bucket refresh does in time. The second round is for the BUG below: a node is
 * handed out only once someone has queried it, so a newcomer stays hidden from lookups until its neighbours query it
 * in a lookup of their own; with one round, a few nodes of some seeds (13 of 1–16) are found by no lookup. No loss
 * while forming, for the same reason: a lost query can leave a node unfindable, and the exact-K-closest checks would
 * test the luck of the formation rather than the lookups.
 */
function warmNetwork(seed: number, n: number): Sim {
  const sim = createSim(seed, { n });
  const router = sim.members[0];
  for (const m of sim.members.slice(1)) {
    const saved = Array.from({ length: SAVED }, () => sim.members[1 + sim.rand.int(n - 1)]).filter((x) => x !== m);
    const routerId = m.node.id.slice();
    routerId[19] ^= 1;
    startLookup(
      m.node,
      {
        kind: "find_node",
        target: m.node.id,
        family: 4,
        seeds: [...saved.map(info), { id: routerId, address: router.address }],
        internal: true,
      },
      sim.now,
      m.io,
    );
  }
  assert(runUntilTrue(sim, () => idle(sim), 30_000), "warm start: bootstraps still running after 30 s");
  for (let round = 0; round < 2; round++) {
    for (const m of sim.members) {
      startLookup(m.node, { kind: "find_node", target: m.node.id, family: 4, internal: true }, sim.now, m.io);
    }
    assert(runUntilTrue(sim, () => idle(sim), sim.now + 30_000), "settling lookups still running after 30 s");
  }
  return sim;
}

/** What one lookup found, against the right answer. */
interface LookupReport {
  /** The addresses of the result's closest nodes, closest first. */
  readonly closest: string[];
  /** The true K closest (a global sort of the online members). */
  readonly want: string[];
  readonly queries: number;
  readonly peers: readonly PeerAddress[];
  /** Peers as `lookupPeers` reported them. */
  readonly reported: readonly PeerAddress[];
  /** Virtual ms from start to `lookupDone`. */
  readonly ms: number;
}

/** Runs a get_peers lookup of `target` from `m` until it ends (at most a virtual minute). */
function lookup(sim: Sim, m: SimMember, target: Uint8Array, announcePort: number | null = null): LookupReport {
  const start = sim.now;
  const id = startLookup(m.node, { kind: "get_peers", target, family: 4, announcePort }, sim.now, m.io);
  assert(id !== null, "startLookup refused");
  assert(runUntilTrue(sim, () => m.done.has(id), sim.now + 60_000), "lookup never ended");
  const done = m.done.get(id);
  assert(done !== undefined);
  return {
    closest: keys(done.result.closest.map((r) => r.node)),
    want: keys(trueClosest(sim, target, BUCKET_SIZE, m)),
    queries: done.result.queries,
    peers: done.result.peers,
    reported: m.found.get(id) ?? [],
    ms: done.at - start,
  };
}

let shared: Sim | null = null;
/** The warm network the scenarios share (built once). */
function network(): Sim {
  shared ??= warmNetwork(SEED, NODES);
  return shared;
}

/** What an address that is not a node heard: each datagram decoded, or null when it did not decode. */
interface Heard {
  readonly from: PeerAddress;
  readonly msg: KrpcMessage | null;
  readonly at: number;
}

/** Puts a listener at `address` (an attacker, a client) and returns what it hears, as it comes. */
function listen(sim: Sim, address: PeerAddress): Heard[] {
  const heard: Heard[] = [];
  sim.endpoints.set(formatAddress(address), (from, bytes, now) => {
    let msg: KrpcMessage | null = null;
    try {
      msg = decodeKrpc(bytes);
    } catch { /* kept as null: the test says whether that may happen */ }
    // the node checks a new asker with a find_node of its own (node.ts `verify`): a query, not a reply
    if (msg?.y === "q") return;
    heard.push({ from, msg, at: now });
  });
  return heard;
}

/** Whether a datagram is a query (the node checking an asker), not a reply. */
function isQuery(bytes: Uint8Array): boolean {
  try {
    return decodeKrpc(bytes).y === "q";
  } catch {
    return false;
  }
}

/** Address `i` of the outside world (attackers, clients): never a member's. */
function outside(i: number, port = 7000): PeerAddress {
  return { host: `11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port };
}

function tid(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

/** A well-formed query, as bytes. */
function queryBytes(kind: "ping" | "find_node" | "get_peers", t: number, id: Uint8Array, target: Uint8Array) {
  const msg: KrpcMessage = kind === "ping"
    ? { y: "q", q: "ping", t: tid(t), id }
    : kind === "find_node"
    ? { y: "q", q: "find_node", t: tid(t), id, target }
    : { y: "q", q: "get_peers", t: tid(t), id, infoHash: target };
  return encodeKrpc(msg);
}

function announceBytes(t: number, id: Uint8Array, infoHash: Uint8Array, port: number, token: Uint8Array) {
  return encodeKrpc({ y: "q", q: "announce_peer", t: tid(t), id, infoHash, port, impliedPort: false, token });
}

/** Everything a datagram could change in a node, deep-copied. */
function snapshot(n: DhtNode): unknown {
  return structuredClone({
    tables: n.tables,
    pending: n.pending,
    lookups: n.lookups,
    nextLookup: n.nextLookup,
    tokens: n.tokens,
    received: n.received,
    store: n.store,
    rates: n.rates,
    global: n.global,
    stats: n.stats,
  });
}

/** The answers (`r`) and errors (`e`) among what was heard since index `from`. */
function replies(heard: readonly Heard[], from = 0): { r: number; e: number[]; bad: number } {
  const out = { r: 0, e: [] as number[], bad: 0 };
  for (const h of heard.slice(from)) {
    if (h.msg === null) out.bad++;
    else if (h.msg.y === "r") out.r++;
    else if (h.msg.y === "e") out.e.push(h.msg.code);
  }
  return out;
}

/** An id next to `target`: its last 4 bytes random. */
function near(rand: Rand, target: Uint8Array): Uint8Array {
  const id = target.slice();
  id.set(randomBytes(rand, 4), 16);
  return id;
}

/** How a liar answers. */
type Liar = "garbage ids" | "16 bogus nodes" | "names the asker" | "garbage bytes" | "errors";
const LIARS: readonly Liar[] = ["garbage ids", "16 bogus nodes", "names the asker", "garbage bytes", "errors"];

/** Replaces member `m` by a liar of `kind` at its address (it answers every query, lying). */
function makeLiar(sim: Sim, m: SimMember, kind: Liar): void {
  m.online = false;
  const rand = seeded(m.index + 1);
  sim.endpoints.set(m.key, (from, bytes) => {
    let q: KrpcMessage;
    try {
      q = decodeKrpc(bytes);
    } catch {
      return;
    }
    if (q.y !== "q" || q.q === "unknown") return;
    const target = q.q === "find_node" ? q.target : q.q === "get_peers" ? q.infoHash : m.node.id;
    const token = randomBytes(rand, 8);
    const nowhere = (): PeerAddress => ({
      host: `10.250.${rand.int(256)}.${rand.int(256)}`,
      port: 1 + rand.int(65535),
    });
    let reply: Uint8Array;
    switch (kind) {
      case "garbage ids":
        reply = encodeKrpc({
          y: "r",
          t: q.t,
          id: randomBytes(rand, 20),
          nodes: Array.from({ length: 8 }, () => ({ id: randomBytes(rand, 20), address: nowhere() })),
          token,
        });
        break;
      case "16 bogus nodes":
        reply = encodeKrpc({
          y: "r",
          t: q.t,
          id: m.node.id,
          nodes: Array.from({ length: MAX_KRPC_NODES }, () => ({ id: near(rand, target), address: nowhere() })),
          token,
        });
        break;
      case "names the asker":
        reply = encodeKrpc({
          y: "r",
          t: q.t,
          id: m.node.id,
          nodes: [
            { id: q.id, address: from },
            { id: near(rand, target), address: from },
            { id: near(rand, target), address: m.address },
            { id: target, address: { host: from.host, port: from.port === 1 ? 2 : from.port - 1 } },
          ],
          token,
        });
        break;
      case "garbage bytes": {
        const real = encodeKrpc({
          y: "r",
          t: q.t,
          id: m.node.id,
          nodes: [{ id: near(rand, target), address: nowhere() }],
        });
        reply = rand() < 0.5 ? real.subarray(0, rand.int(real.length)) : flip(rand, real, 1 + rand.int(4));
        break;
      }
      case "errors":
        reply = encodeKrpc({ y: "e", t: q.t, code: KRPC_ERROR_CODE.server, message: "busy" });
        break;
    }
    send(sim, m.address, from, reply);
  });
}

/** A copy of `bytes` with `n` random bits flipped. */
function flip(rand: Rand, bytes: Uint8Array, n: number): Uint8Array {
  const out = bytes.slice();
  for (let i = 0; i < n; i++) out[rand.int(out.length)] ^= 1 << rand.int(8);
  return out;
}

function restore(sim: Sim, ms: readonly SimMember[]): void {
  for (const m of ms) {
    sim.endpoints.delete(m.key);
    m.online = true;
  }
}

Deno.test("node.ts on a simulated network of 300 nodes", async (t) => {
  // Regression (was a bug, fixed in node.ts: `verify` and the stalest-node check in `tick`): node.ts never verified a node that only queried it. `receive` files the asker with a `query` table
  // event (unverified: questionable, no ping: stepTable pings only for a verified newcomer to a full bucket), and
  // `answer` hands out `closest(..., { goodAt: now })`, good nodes only. Nothing in `tick` queries questionable nodes
  // before the bucket refresh of REFRESH_AFTER_MS (15 minutes). So a btfetch node used as the bootstrap router answers
  // every find_node with no nodes, each newcomer learns the router alone, and the DHT stays a star around it for 15
  // virtual minutes. Seed 8, after 30 virtual s: the router holds 55 nodes, 0 good; every other node 1 good node (the
  // router). libtorrent's node::tick sends a find_node to m_table.next_refresh() (the least recently queried entry,
  // unpinged ones first) every few seconds, which verifies the nodes that queried it.
  await t.step({
    name: "bootstrap from one node: after 30 virtual s every routing table holds K good nodes",
    fn: () => {
      const sim = createSim(SEED, { n: NODES });
      const router = sim.members[0];
      for (const m of sim.members.slice(1)) bootstrap(sim, m, router.address);
      runUntil(sim, 30_000);
      const [min, , median] = goodSpread(sim);
      assert(min >= BUCKET_SIZE && median >= 2 * BUCKET_SIZE, `good nodes: min ${min}, median ${median}`);
    },
  });

  await t.step("warm start (router + saved nodes): routing tables hold many good nodes within seconds", () => {
    const sim = network();
    const [min, p10, median] = goodSpread(sim);
    assert(sim.now < 10_000, `formed at ${sim.now} virtual ms`);
    assert(min >= BUCKET_SIZE, `a node holds only ${min} good nodes`);
    assert(p10 >= 2 * BUCKET_SIZE && median >= 2.5 * BUCKET_SIZE, `good nodes: p10 ${p10}, median ${median}`);
  });

  await t.step("get_peers lookups of random targets find the true K closest in a few round trips", () => {
    const sim = network();
    for (let i = 0; i < 40; i++) {
      const r = lookup(sim, sim.members[sim.rand.int(NODES)], randomBytes(sim.rand, 20));
      assertEquals(r.closest, r.want, `lookup ${i}`);
      assert(r.queries <= 30, `lookup ${i}: ${r.queries} queries`);
      assert(r.ms <= 1_500, `lookup ${i}: ${r.ms} virtual ms`); // 5 round trips of the slowest link
    }
    // With 2 % of the datagrams lost, a query or its answer is lost 4 % of the time: that node fails (no retry), is
    // missing from the result (8 × 0.96 ≈ 7.7 of the K found on average), and the lookup waits for its long time-out.
    sim.loss = 0.02;
    let found = 0;
    for (let i = 0; i < 40; i++) {
      const r = lookup(sim, sim.members[sim.rand.int(NODES)], randomBytes(sim.rand, 20));
      const hits = r.want.filter((k) => r.closest.includes(k)).length;
      assert(hits >= BUCKET_SIZE / 2, `lossy lookup ${i} found ${hits} of the ${BUCKET_SIZE} closest`);
      assert(r.queries <= 50, `lossy lookup ${i}: ${r.queries} queries`);
      assert(r.ms <= 2 * LONG_TIMEOUT_MS, `lossy lookup ${i}: ${r.ms} virtual ms`);
      found += hits;
    }
    assert(found >= 0.9 * 40 * BUCKET_SIZE, `lossy lookups found ${found} of ${40 * BUCKET_SIZE}`);
    sim.loss = 0;
  });

  await t.step("announce + find: A's announce_peer lands at the K closest, B's get_peers finds A's IP:port", () => {
    const sim = network();
    const infoHash = randomBytes(sim.rand, 20);
    const [a, b] = [sim.members[sim.rand.int(NODES)], sim.members[sim.rand.int(NODES)]];
    assert(a !== b);
    const port = 51413;
    const announced: string[] = [];
    let errors = 0;
    sim.tap = (from, to, bytes) => {
      const m = decodeKrpc(bytes);
      if (from === a.address && m.y === "q" && m.q === "announce_peer") announced.push(formatAddress(to));
      if (formatAddress(to) === a.key && m.y === "e") errors++;
    };
    const ra = lookup(sim, a, infoHash, port);
    assertEquals(ra.closest, ra.want);
    assertEquals(ra.reported, []);
    runUntil(sim, sim.now + 1_000); // the announces and their answers arrive
    sim.tap = null;
    // announced to the K closest with their tokens, and no node refused
    assertEquals([announced, errors], [ra.closest, 0]);
    const holders = sim.members.filter((m) => peerStoreSize(m.node.store).peers > 0);
    assertEquals(
      keys(holders.map(info).sort((x, y) => compareDistance(infoHash, x.id, y.id))),
      ra.closest,
    );
    for (const h of holders) {
      assertEquals(getPeers(h.node.store, infoHash, { now: sim.now, family: 4, random: sim.rand }), [
        { host: a.address.host, port },
      ]);
    }
    const rb = lookup(sim, b, infoHash);
    assertEquals(rb.reported, [{ host: a.address.host, port }]);
    assertEquals(rb.peers, [{ host: a.address.host, port }]);
  });

  await t.step("hostile KRPC at one node: it never throws, answers within its budget, ignores forgeries", async (t) => {
    const sim = network();
    const h = sim.members[sim.rand.int(NODES)];

    await t.step("malformed packets: truncated, bit-flipped, oversized, wrong types", () => {
      // real packets, as the network sends them
      const real: Uint8Array[] = [];
      sim.tap = (_from, _to, bytes) => {
        if (real.length < 300) real.push(bytes.slice());
      };
      for (let i = 0; i < 4; i++) lookup(sim, sim.members[sim.rand.int(NODES)], randomBytes(sim.rand, 20), 6881);
      runUntil(sim, sim.now + 1_000); // the announces
      sim.tap = null;
      assert(real.length >= 100, `${real.length} packets captured`);
      const text = new TextEncoder();
      const junk: Uint8Array[] = [
        new Uint8Array(0),
        new Uint8Array(MAX_KRPC_PACKET_BYTES + 1).fill(0x64),
        text.encode(
          `d1:ad2:id20:${"x".repeat(20)}e1:q4:ping1:t2:aa1:y1:q1:z${MAX_KRPC_PACKET_BYTES}:${
            "z".repeat(MAX_KRPC_PACKET_BYTES)
          }e`,
        ),
        text.encode("i42e"),
        text.encode("le"),
        text.encode("l".repeat(5_000)),
        text.encode("d1:t2:aa1:y1:q1:q4:pinge"), // no arguments
        text.encode("d1:ai5e1:q4:ping1:t2:aa1:y1:qe"), // arguments not a dictionary
        text.encode("d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe"), // a short id
        text.encode("d1:ad2:idi5ee1:q9:find_node1:t2:aa1:y1:qe"), // an integer id
        text.encode("d1:t2:aa1:yi1ee"), // y an integer
        text.encode("d1:tli1ee1:y1:qe"), // t a list
        text.encode("d1:t0:1:y1:qe"), // an empty t
        text.encode("d1:t2:aa1:y1:x1:q4:pinge"), // an unknown y
        text.encode(
          `d1:ad2:id20:${"x".repeat(20)}9:info_hash20:${
            "y".repeat(20)
          }4:porti0e5:token1:ae1:q13:announce_peer1:t2:aa1:y1:qe`,
        ),
        text.encode(`d1:rd2:id20:${"x".repeat(20)}5:nodes5:abcdee1:t2:aa1:y1:re`),
        text.encode("d1:eli201ee1:t2:aa1:y1:ee"),
        text.encode("d1:ad2:id20:xxxxxxxxxxxxxxxxxxxxe1:q3:get1:t2:aa1:y1:qe"), // an unknown method
      ];
      for (const r of real.slice(0, 40)) for (let n = 0; n < r.length; n++) junk.push(r.subarray(0, n));
      for (let i = 0; i < 3_000; i++) junk.push(flip(sim.rand, real[sim.rand.int(real.length)], 1 + sim.rand.int(3)));
      const heard: Heard[][] = [];
      for (let i = 0; i < 64; i++) heard.push(listen(sim, outside(i)));
      const before = dhtStats(h.node, sim.now);
      // 64 senders in turn, one packet every 2 ms: within every budget, so each query is answered
      junk.forEach((bytes, i) => {
        runUntil(sim, sim.now + 2);
        inject(sim, h, outside(i % 64), bytes);
      });
      runUntil(sim, sim.now + 1_000);
      const all = heard.flat();
      const got = replies(all);
      const after = dhtStats(h.node, sim.now);
      assertEquals(after.dropped, before.dropped);
      assertEquals(got.bad, 0); // whatever it sends decodes
      assert(got.e.every((c) => c === KRPC_ERROR_CODE.protocol || c === KRPC_ERROR_CODE.methodUnknown), `${got.e}`);
      assert(got.e.filter((c) => c === KRPC_ERROR_CODE.protocol).length >= 10, "malformed queries answered with 203");
      assert(got.e.includes(KRPC_ERROR_CODE.methodUnknown));
      assertEquals(got.r + got.e.length, all.length);
      assertEquals(after.queriesIn - before.queriesIn, all.length); // one reply per query
      // and it still answers, and finds, as before
      const r = lookup(sim, h, randomBytes(sim.rand, 20));
      assertEquals(r.closest, r.want);
    });

    await t.step("a flood of 10,000 queries from one IP in 1 virtual s is mostly dropped", async (t) => {
      const rows: [string, number, (i: number) => number][] = [
        ["from one port", 1_000, () => 7000],
        ["from a new port each time (the budget is the IP's)", 1_001, (i) => 1 + i],
      ];
      for (const [name, host, port] of rows) {
        await t.step(name, () => {
          const heard: Heard[] = [];
          const other = outside(1_100);
          const otherHeard = listen(sim, other);
          const before = dhtStats(h.node, sim.now);
          const t0 = sim.now;
          const kinds = ["ping", "find_node", "get_peers"] as const;
          for (let i = 0; i < 10_000; i++) {
            runUntil(sim, t0 + i / 10);
            const from = outside(host, port(i));
            if (!sim.endpoints.has(formatAddress(from))) {
              sim.endpoints.set(formatAddress(from), (_, bytes) => {
                if (!isQuery(bytes)) heard.push({ from, msg: decodeKrpc(bytes), at: 0 });
              });
            }
            inject(sim, h, from, queryBytes(kinds[i % 3], i, randomBytes(sim.rand, 20), randomBytes(sim.rand, 20)));
            // another node asks 10 times meanwhile: the flood does not eat its share
            if (i % 1_000 === 0) inject(sim, h, other, queryBytes("ping", i, randomBytes(sim.rand, 20), h.node.id));
          }
          runUntil(sim, t0 + 2_000);
          const after = dhtStats(h.node, sim.now);
          const answered = heard.length;
          // the flood, the other node's 10, and now and then a query of the network's own (nodes check each other)
          const queriesIn = after.queriesIn - before.queriesIn;
          assert(queriesIn >= 10_010 && queriesIn <= 10_010 + 20, `${queriesIn} queries in`);
          assertEquals(after.dropped - before.dropped, 10_000 - answered);
          assert(answered >= QUERY_BURST, `${answered} answers`);
          assert(answered <= QUERY_BURST + QUERY_RATE_PER_S * 1, `${answered} answers`);
          assertEquals(replies(heard).r, answered);
          assertEquals(replies(otherHeard), { r: 10, e: [], bad: 0 });
        });
      }
    });

    await t.step("transaction ids are 4 random bytes: one query seen says nothing of the next", () => {
      const before = h.node.pending.size;
      const ids: number[] = [];
      for (let i = 0; i < 200; i++) {
        const lookup = startLookup(
          h.node,
          { kind: "find_node", target: randomBytes(sim.rand, 20), family: 4 },
          sim.now,
          h.io,
        );
        assert(lookup !== null || h.node.lookups.size >= MAX_LOOKUPS);
      }
      for (const t of h.node.pending.keys()) ids.push(t);
      assert(ids.length > before + 50, `${ids.length} queries in flight`);
      let sequential = 0;
      for (let i = 1; i < ids.length; i++) if (ids[i] - ids[i - 1] >= 0 && ids[i] - ids[i - 1] < 16) sequential++;
      assert(sequential <= 2, `${sequential} of ${ids.length} ids follow the one before`);
      assert(ids.some((x) => x >= 0x10000), "every id fits in 2 bytes");
      runUntil(sim, sim.now + 2 * LONG_TIMEOUT_MS); // let them end
    });

    await t.step("forged replies change nothing", async (t) => {
      const target = randomBytes(sim.rand, 20);
      const id = startLookup(h.node, { kind: "get_peers", target, family: 4 }, sim.now, h.io);
      assert(id !== null);
      // ALPHA queries in flight; each row forges an answer to a different one, so the rows stay independent
      const inFlight = [...h.node.pending].filter(([, p]) => p.lookup === id);
      assertEquals(inFlight.length, 3);
      const [[tid0, q0], [tid1], [tid2, q2]] = inFlight;
      let unused = 0;
      while (h.node.pending.has(unused)) unused++;
      const forged = (t: Uint8Array): Uint8Array =>
        encodeKrpc({
          y: "r",
          t,
          id: near(sim.rand, target),
          nodes: Array.from({ length: 8 }, () => ({ id: near(sim.rand, target), address: outside(2_000) })),
          values: [outside(2_001)],
          token: randomBytes(sim.rand, 8),
        });
      const rows: [string, PeerAddress, Uint8Array][] = [
        ["a transaction id not in flight, from a queried address", q0.to, forged(tid(unused))],
        ["our transaction id, from an address never queried", outside(2_002), forged(tid(tid0))],
        ["our transaction id, from another queried address", q0.to, forged(tid(tid1))],
        [
          "our transaction id, from the queried IP on another port",
          { ...q2.to, port: q2.to.port + 1 },
          forged(tid(tid2)),
        ],
        [
          "our transaction id and 2 bytes more, from the queried address",
          q0.to,
          forged(new Uint8Array([...tid(tid0), 0, 0])),
        ],
        [
          "the low 2 bytes of our transaction id, from the queried address",
          q0.to,
          forged(tid(tid0).subarray(2)),
        ],
        [
          "an error with a transaction id not in flight",
          q0.to,
          encodeKrpc({ y: "e", t: tid(unused), code: KRPC_ERROR_CODE.generic, message: "x" }),
        ],
      ];
      for (const [name, from, bytes] of rows) {
        await t.step(name, () => {
          const before = snapshot(h.node);
          inject(sim, h, from, bytes);
          assertEquals(snapshot(h.node), before);
        });
      }
      assert(runUntilTrue(sim, () => h.done.has(id), sim.now + 60_000));
      const done = h.done.get(id);
      assertEquals(keys(done?.result.closest.map((r) => r.node) ?? []), keys(trueClosest(sim, target, BUCKET_SIZE, h)));
      assertEquals(done?.result.peers, []);
    });

    await t.step("announce_peer with a bad token: error 203, nothing stored", async (t) => {
      const infoHash = randomBytes(sim.rand, 20);
      const token = (from: PeerAddress): Uint8Array => {
        const heard = listen(sim, from);
        inject(sim, h, from, queryBytes("get_peers", 1, randomBytes(sim.rand, 20), infoHash));
        runUntil(sim, sim.now + 500);
        const m = heard[0]?.msg;
        assert(m?.y === "r" && m.token !== undefined, "no token");
        return m.token;
      };
      const fromX = outside(3_000);
      const issued = token(fromX);
      assertEquals(issued.length, TOKEN_BYTES);
      const rows: [string, PeerAddress, Uint8Array, "stored" | number][] = [
        ["a random token", outside(3_001), randomBytes(sim.rand, TOKEN_BYTES), KRPC_ERROR_CODE.protocol],
        ["an empty token", outside(3_002), new Uint8Array(0), KRPC_ERROR_CODE.protocol],
        ["the token of another IP", outside(3_003), issued, KRPC_ERROR_CODE.protocol],
        ["the right token with a byte more", fromX, new Uint8Array([...issued, 0]), KRPC_ERROR_CODE.protocol],
        ["the right token with a bit flipped", fromX, flip(seeded(1), issued, 1), KRPC_ERROR_CODE.protocol],
        ["the token issued to this IP (from another port)", { host: fromX.host, port: 7001 }, issued, "stored"],
      ];
      for (const [name, from, tok, want] of rows) {
        await t.step(name, () => {
          const heard = listen(sim, from);
          const start = heard.length;
          const before = peerStoreSize(h.node.store);
          inject(sim, h, from, announceBytes(9, randomBytes(sim.rand, 20), infoHash, 6881, tok));
          runUntil(sim, sim.now + 500);
          const got = replies(heard, start);
          if (want === "stored") {
            assertEquals(got, { r: 1, e: [], bad: 0 });
            assertEquals(peerStoreSize(h.node.store).peers, before.peers + 1);
            assertEquals(getPeers(h.node.store, infoHash, { now: sim.now, family: 4, random: sim.rand }), [
              { host: from.host, port: 6881 },
            ]);
          } else {
            assertEquals(got, { r: 0, e: [want], bad: 0 });
            assertEquals(peerStoreSize(h.node.store), before);
          }
        });
      }
    });

    await t.step("liars (garbage ids, 16 bogus nodes, ...): lookups still converge", () => {
      const liars = sim.members.filter((m) => m !== h && sim.rand() < 0.1);
      liars.forEach((m, i) => makeLiar(sim, m, LIARS[i % LIARS.length]));
      const truthful = new Set(
        liars.filter((_, i) =>
          LIARS[i % LIARS.length] === "16 bogus nodes" || LIARS[i % LIARS.length] === "names the asker"
        ),
      );
      let hits = 0;
      for (let i = 0; i < 20; i++) {
        const from = i === 0 ? h : sim.members.filter((m) => m.online)[sim.rand.int(NODES - liars.length)];
        const target = randomBytes(sim.rand, 20);
        const r = lookup(sim, from, target);
        // the right answer: the K closest of the nodes that answer under their own id
        const want = keys(
          sim.members.filter((m) => (m.online || truthful.has(m)) && m !== from).map(info)
            .sort((x, y) => compareDistance(target, x.id, y.id)).slice(0, BUCKET_SIZE),
        );
        const n = want.filter((k) => r.closest.includes(k)).length;
        assert(n >= BUCKET_SIZE - 2, `lookup ${i} found ${n} of the ${BUCKET_SIZE} closest`);
        hits += n;
        // bogus nodes closer than the truth hold a lookup until they fail: a long time-out, a second wave at most
        assert(r.ms <= 3 * LONG_TIMEOUT_MS, `lookup ${i}: ${r.ms} virtual ms`);
        assert(r.queries <= DHT_LOOKUP_MAX_QUERIES, `lookup ${i}: ${r.queries} queries`); // bogus nodes cost queries
        assertEquals(r.peers, []);
      }
      assert(hits >= 0.95 * 20 * BUCKET_SIZE, `found ${hits} of ${20 * BUCKET_SIZE}`);
      restore(sim, liars);
    });
  });

  await t.step("memory bounds: rate map, pending queries and stored peers stay within their limits", async (t) => {
    await t.step("10,000 source addresses: the rate map keeps MAX_RATE_ENTRIES, all answered in budget", () => {
      const sim = createSim(SEED, { n: 1 });
      const [h] = sim.members;
      let answers = 0;
      let most = 0;
      for (let i = 0; i < 10_000; i++) {
        sim.endpoints.set(formatAddress(outside(i)), (_from, bytes) => {
          if (!isQuery(bytes)) answers++;
        });
        runUntil(sim, i * 5); // 200 a second: within the global budget
        inject(sim, h, outside(i), queryBytes("find_node", i, randomBytes(sim.rand, 20), randomBytes(sim.rand, 20)));
        most = Math.max(most, h.node.rates.size);
      }
      runUntil(sim, sim.now + 1_000);
      assertEquals([most, h.node.rates.size], [MAX_RATE_ENTRIES, MAX_RATE_ENTRIES]);
      assertEquals([answers, dhtStats(h.node, sim.now).dropped], [10_000, 0]);
      // each asker is in the table unverified at most: 160 buckets and their caches bound it
      const s = tableStats(h.node.tables.get(4) ?? assertNever(), sim.now);
      assert(
        s.good === 0 && s.questionable + s.replacements <= MAX_BUCKETS * (BUCKET_SIZE + DHT_REPLACEMENTS_PER_BUCKET),
      );
    });

    await t.step("10,000 source addresses within 1 virtual s: the global budget answers at most 1,000", () => {
      const sim = createSim(SEED, { n: 1 });
      const [h] = sim.members;
      let answers = 0;
      for (let i = 0; i < 10_000; i++) {
        sim.endpoints.set(formatAddress(outside(i)), (_from, bytes) => {
          if (!isQuery(bytes)) answers++;
        });
        runUntil(sim, i / 10);
        inject(sim, h, outside(i), queryBytes("ping", i, randomBytes(sim.rand, 20), h.node.id));
        assert(h.node.rates.size <= MAX_RATE_ENTRIES);
      }
      runUntil(sim, 2_000);
      assert(answers <= GLOBAL_QUERY_RATE_PER_S * 2 && answers >= GLOBAL_QUERY_RATE_PER_S, `${answers} answers`);
      assertEquals(dhtStats(h.node, sim.now).dropped, 10_000 - answers);
    });

    await t.step("MAX_LOOKUPS lookups of silent nodes: at most MAX_PENDING_QUERIES queries in flight", () => {
      const sim = createSim(SEED, { n: 1 });
      const [h] = sim.members;
      const silent = (): NodeInfo[] =>
        Array.from({ length: 200 }, () => ({
          id: randomBytes(sim.rand, 20),
          address: { host: `10.200.${sim.rand.int(256)}.${sim.rand.int(256)}`, port: 6881 },
        }));
      const ids: (number | null)[] = [];
      for (let i = 0; i < MAX_LOOKUPS + 8; i++) {
        ids.push(
          startLookup(
            h.node,
            { kind: "get_peers", target: randomBytes(sim.rand, 20), family: 4, seeds: silent() },
            0,
            h.io,
          ),
        );
      }
      assertEquals(ids.filter((x) => x === null).length, 8);
      let most = 0;
      for (let now = TICK_MS; h.node.lookups.size > 0 && now <= 120_000; now += TICK_MS) {
        runUntil(sim, now);
        most = Math.max(most, h.node.pending.size);
      }
      assertEquals(most, MAX_PENDING_QUERIES); // reached, never passed
      assertEquals(h.done.size, MAX_LOOKUPS);
      for (const d of h.done.values()) {
        assertEquals([d.result.answered, d.result.closest.length], [0, 0]);
        assert(d.result.queries <= DHT_LOOKUP_MAX_QUERIES);
      }
      runUntil(sim, sim.now + LONG_TIMEOUT_MS);
      assertEquals(h.node.pending.size, 0);
    });

    await t.step("announces: DHT_MAX_PEERS_PER_INFOHASH per info-hash, DHT_MAX_STORED_INFOHASHES in all", () => {
      const sim = createSim(SEED, { n: 1 });
      const [h] = sim.members;
      const tokens = new Map<string, Uint8Array>();
      const popular = randomBytes(sim.rand, 20);
      const ask = (from: PeerAddress, q: Uint8Array) => {
        runUntil(sim, sim.now + 4); // 250 a second: within the global budget
        inject(sim, h, from, q);
      };
      for (let i = 0; i < 1_200; i++) {
        const from = outside(i);
        sim.endpoints.set(formatAddress(from), (_, bytes) => {
          const m = decodeKrpc(bytes);
          if (m.y === "r" && m.token) tokens.set(formatAddress(from), m.token);
        });
        ask(from, queryBytes("get_peers", i, randomBytes(sim.rand, 20), popular));
      }
      runUntil(sim, sim.now + 1_000);
      assertEquals(tokens.size, 1_200);
      // 150 peers of one torrent, then 1,200 torrents of one peer each
      for (let i = 0; i < 150; i++) {
        const from = outside(i);
        ask(
          from,
          announceBytes(i, randomBytes(sim.rand, 20), popular, 6881, tokens.get(formatAddress(from)) ?? assertNever()),
        );
      }
      runUntil(sim, sim.now + 1_000);
      assertEquals(peerStoreSize(h.node.store), { infoHashes: 1, peers: DHT_MAX_PEERS_PER_INFOHASH });
      const reply = listen(sim, outside(5_000));
      ask(outside(5_000), queryBytes("get_peers", 1, randomBytes(sim.rand, 20), popular));
      runUntil(sim, sim.now + 1_000);
      const m = reply[0]?.msg;
      assertEquals(m?.y === "r" ? m.values?.length : null, DHT_MAX_PEERS_PER_REPLY);
      for (let i = 0; i < 1_200; i++) {
        const from = outside(i);
        ask(
          from,
          announceBytes(
            i,
            randomBytes(sim.rand, 20),
            randomBytes(sim.rand, 20),
            6881,
            tokens.get(formatAddress(from)) ?? assertNever(),
          ),
        );
      }
      runUntil(sim, sim.now + 1_000);
      const size = peerStoreSize(h.node.store);
      assertEquals(size, { infoHashes: DHT_MAX_STORED_INFOHASHES, peers: DHT_MAX_STORED_INFOHASHES });
      assertEquals(dhtStats(h.node, sim.now).storedPeers, DHT_MAX_STORED_INFOHASHES);
    });
  });

  await t.step(
    "time-outs: silent nodes end a lookup after the long time-out; failed entries are replaced",
    async (t) => {
      for (const seeds of [1, 3, 8]) {
        await t.step(`a lookup of ${seeds} silent nodes ends at the long time-out of its last query`, () => {
          const sim = createSim(SEED, { n: 1 });
          const [h] = sim.members;
          runUntil(sim, 10 * TICK_MS);
          const t0 = sim.now;
          const silent = Array.from({ length: seeds }, (_, i) => ({
            id: randomBytes(sim.rand, 20),
            address: { host: `10.200.0.${i + 1}`, port: 6881 },
          }));
          const id = startLookup(
            h.node,
            { kind: "get_peers", target: randomBytes(sim.rand, 20), family: 4, seeds: silent },
            t0,
            h.io,
          );
          assert(id !== null);
          runUntil(sim, t0 + LONG_TIMEOUT_MS - TICK_MS);
          assertEquals(h.done.size, 0);
          assert(runUntilTrue(sim, () => h.done.has(id), t0 + 60_000));
          // ALPHA queries at once, ALPHA more each time those turn slow (the short time-out); each fails at the long one
          const lastSent = (Math.ceil(seeds / ALPHA) - 1) * SHORT_TIMEOUT_MS;
          assertEquals(h.done.get(id), {
            result: { closest: [], peers: [], queries: seeds, answered: 0, failed: seeds },
            at: t0 + lastSent + LONG_TIMEOUT_MS,
          });
          // the node's own time-out of its queries ended it: nothing left in flight
          assertEquals([h.node.pending.size, h.node.lookups.size, h.node.stats.failures], [0, 0, seeds]);
        });
      }

      await t.step("routing-table entries that stop answering become bad and are replaced", () => {
        const sim = network();
        // a node with a full bucket (not its last, which would split) whose range holds nodes enough to refill it:
        // three verified nodes of that bucket go away
        const tableOf = (m: SimMember) => m.node.tables.get(4) ?? assertNever();
        const inRange = (m: SimMember, bucket: number) =>
          sim.members.filter((x) => x !== m && commonPrefixBits(x.node.id, m.node.id) === bucket).length;
        const fullBucket = (m: SimMember) =>
          tableOf(m).buckets.findIndex((b, i) =>
            b.nodes.length === BUCKET_SIZE && i < tableOf(m).buckets.length - 1 && inRange(m, i) >= BUCKET_SIZE + 3 &&
            b.nodes.filter((n) => n.lastResponse !== null && n.failures === 0).length >= 3
          );
        const from = sim.rand.int(NODES);
        const h = sim.members.find((m) => m.index >= from && fullBucket(m) >= 0) ?? assertNever();
        const full = fullBucket(h);
        const table = () => tableOf(h).buckets[full].nodes;
        const verified = table().filter((n) => n.lastResponse !== null && n.failures === 0);
        const dead = verified.slice(0, 3).map((n) => sim.byKey.get(n.key) ?? assertNever());
        for (const d of dead) d.online = false;
        /** When h sent each dead node a query. */
        const sent = new Map<string, number[]>(dead.map((d) => [d.key, []]));
        sim.tap = (from, to) => {
          if (from === h.address) sent.get(formatAddress(to))?.push(sim.now);
        };
        /** The queries to `key` timed out by now, and those still in flight. */
        const asked = (key: string): [number, number] => {
          const times = sent.get(key) ?? [];
          const over = times.filter((at) => at + LONG_TIMEOUT_MS + TICK_MS <= sim.now).length;
          return [over, times.length - over];
        };
        const find = (target: Uint8Array): void => {
          const id = startLookup(h.node, { kind: "find_node", target, family: 4 }, sim.now, h.io);
          assert(id !== null && runUntilTrue(sim, () => h.done.has(id), sim.now + 60_000));
          runUntil(sim, sim.now + LONG_TIMEOUT_MS + TICK_MS); // every query of the lookup to a dead node has failed
          const r = h.done.get(id);
          assert(r?.result.closest.every((c) => !dead.some((x) => x.key === formatAddress(c.node.address))));
        };
        let secondChances = 0;
        // each dead node's id looked up twice, one lookup at a time
        for (const d of [...dead, ...dead]) {
          find(d.node.id);
          // one failure: the node stays (BEP 5's second chance); at BAD_AFTER_FAILURES it is bad, handed out to
          // nobody, and goes as soon as a replacement is at hand (at once when the bucket's cache holds one)
          for (const x of dead) {
            const [failed, inFlight] = asked(x.key);
            const entry = table().find((n) => n.key === x.key);
            if (failed + inFlight < BAD_AFTER_FAILURES) assertEquals(entry?.failures, failed, x.key);
            else if (failed >= BAD_AFTER_FAILURES) {
              assert(entry === undefined || nodeState(entry, sim.now) === "bad", `${x.key}: ${failed} failures`);
            }
            if (failed === 1 && inFlight === 0) secondChances++;
          }
        }
        assert(secondChances > 0, "no node was seen after a single failure");
        assert(dead.every((d) => asked(d.key)[0] >= BAD_AFTER_FAILURES));
        sim.tap = null;
        // a refresh of the bucket (a lookup in its range) brings the nodes that take the bad ones' places
        for (let i = 0; i < 5 && table().some((n) => dead.some((d) => d.key === n.key)); i++) {
          find(randomIdInBucket(h.node.id, full, sim.rand));
        }
        const now = sim.now;
        const bucket = table();
        assertEquals(bucket.filter((n) => dead.some((d) => d.key === n.key)), []);
        assertEquals(bucket.length, BUCKET_SIZE);
        assert(bucket.every((n) => nodeState(n, now) === "good"));
        restore(sim, dead);
      });
    },
  );

  // Regression (fixed with the one above): the same gap as the bootstrap above, in a settled network. A node that has just joined queried its
  // neighbours in its bootstrap; they hold it unverified (questionable), never query it, and answer find_node for its
  // own id without it. It is found only by a lookup whose starting node happens to hold it (seeded from questionable
  // nodes too), and spreads from there. Seed 8: of 10 newcomers' 8 closest neighbours, 0 of 80 name the newcomer.
  await t.step({
    name: "a node that has just joined is named by its neighbours' find_node answers",
    fn: () => {
      const sim = network();
      let named = 0;
      for (let j = 0; j < 10; j++) {
        const joiner = addMember(sim, randomBytes(sim.rand, 20));
        const saved = Array.from({ length: SAVED }, () => sim.members[sim.rand.int(NODES)]);
        startLookup(
          joiner.node,
          { kind: "find_node", target: joiner.node.id, family: 4, seeds: saved.map(info), internal: true },
          sim.now,
          joiner.io,
        );
        assert(runUntilTrue(sim, () => joiner.node.lookups.size === 0, sim.now + 30_000));
        runUntil(sim, sim.now + 5_000);
        const asker = outside(6_000 + j);
        const heard = listen(sim, asker);
        for (const n of trueClosest(sim, joiner.node.id, BUCKET_SIZE, joiner)) {
          const m = sim.byKey.get(formatAddress(n.address)) ?? assertNever();
          inject(sim, m, asker, queryBytes("find_node", j, randomBytes(sim.rand, 20), joiner.node.id));
        }
        runUntil(sim, sim.now + 1_000);
        for (const h of heard) {
          if (h.msg?.y === "r" && h.msg.nodes?.some((x) => formatAddress(x.address) === joiner.key)) named++;
        }
      }
      assertEquals(named, 10 * BUCKET_SIZE);
    },
  });
});

function assertNever(): never {
  throw new Error("unreachable");
}

// last in the file: it adds members to the shared network (taken offline again at the end)
Deno.test("a start from saved nodes that are all gone: the router is asked first, peers come before a short time-out", () => {
  const sim = network();
  const infoHash = randomBytes(sim.rand, 20);
  const seeder = sim.members[1 + sim.rand.int(NODES - 1)];
  const port = 51413;
  lookup(sim, seeder, infoHash, port);
  runUntil(sim, sim.now + 1_000); // the announces land
  // a node starting from a state file of another network: a dozen saved nodes, none there any more
  const gone: NodeInfo[] = Array.from({ length: 12 }, (_, i) => ({
    id: randomBytes(sim.rand, 20),
    address: { host: `10.250.0.${i + 1}`, port: 6881 },
  }));
  // its own id in the other half of the id space from the target, as it is for half of all lookups
  const own = randomBytes(sim.rand, 20);
  own[0] = (infoHash[0] ^ 0x80) & 0x80 | own[0] & 0x7f;
  const m = addMember(sim, own);
  const start = sim.now;
  const routers = [sim.members[0].address];
  const id = startLookup(m.node, { kind: "get_peers", target: infoHash, family: 4, seeds: gone, routers }, start, m.io);
  assert(id !== null);
  assert(runUntilTrue(sim, () => (m.found.get(id)?.length ?? 0) > 0, start + 30_000), "no peer found");
  const at = sim.now - start;
  assertEquals(m.found.get(id), [{ host: seeder.address.host, port }]);
  assert(at < SHORT_TIMEOUT_MS, `first peers after ${at} virtual ms: the dead saved nodes were waited out`);
  runUntilTrue(sim, () => m.done.has(id), sim.now + 60_000);
  m.online = false;
});
