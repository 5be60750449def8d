import { assert, assertEquals } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { commonPrefixBits, compareDistance, type NodeInfo, randomIdInBucket } from "../../lib/dht/node_id.ts";
import {
  BAD_AFTER_FAILURES,
  BUCKET_SIZE,
  closest,
  createTable,
  GOOD_FOR_MS,
  goodNodes,
  lookupSeeds,
  MAX_BUCKETS,
  nodeState,
  PING_PENDING_MS,
  REFRESH_AFTER_MS,
  refreshDue,
  type RoutingTable,
  stepTable,
  type TableAction,
  type TableEvent,
  tableSize,
  tableStats,
} from "../../lib/dht/routing_table.ts";
import { DHT_REPLACEMENTS_PER_BUCKET } from "../../lib/limits.ts";

const OWN = new Uint8Array(20); // all zeros: a node's bucket is the number of leading zero bits of its id
let counter = 0;

/** A node whose id shares exactly `prefix` leading bits with OWN, at a fresh address. */
function nodeIn(prefix: number, rand = seeded(++counter)): NodeInfo {
  const n = ++counter;
  return {
    id: randomIdInBucket(OWN, prefix, rand),
    address: { host: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, port: 6881 },
  };
}

function run(t: RoutingTable, events: [TableEvent, number][]): [RoutingTable, TableAction[]] {
  const all: TableAction[] = [];
  for (const [ev, now] of events) {
    const [next, actions] = stepTable(t, ev, now);
    t = next;
    all.push(...actions);
  }
  return [t, all];
}

const response = (node: NodeInfo): TableEvent => ({ type: "response", node });
const query = (node: NodeInfo): TableEvent => ({ type: "query", node });
const failure = (node: NodeInfo): TableEvent => ({ type: "failure", node });

/** A table whose bucket 0 is full of nodes that answered at `at`; bucket 0 is not the last one. */
function fullBucket0(at: number): [RoutingTable, NodeInfo[]] {
  const nodes = Array.from({ length: BUCKET_SIZE }, () => nodeIn(0));
  const near = nodeIn(5); // makes the table split, so bucket 0 can no longer split
  const [t] = run(createTable(OWN, { family: 4, now: 0 }), [...nodes, near].map((n) => [response(n), at]));
  assertEquals(t.buckets.length >= 2, true);
  assertEquals(t.buckets[0].nodes.length, BUCKET_SIZE);
  return [t, nodes];
}

function ids(nodes: readonly NodeInfo[]): string[] {
  return nodes.map((n) => Array.from(n.id).join(","));
}

Deno.test("nodeState() follows BEP 5's good, questionable and bad", async (t) => {
  const rows: [string, { lastResponse: number | null; lastQuery: number | null; failures: number }, number, string][] =
    [
      ["answered just now", { lastResponse: 0, lastQuery: null, failures: 0 }, 0, "good"],
      ["answered 15 min ago", { lastResponse: 0, lastQuery: null, failures: 0 }, GOOD_FOR_MS, "questionable"],
      [
        "answered once, queried us lately",
        { lastResponse: 0, lastQuery: GOOD_FOR_MS, failures: 0 },
        GOOD_FOR_MS + 1,
        "good",
      ],
      ["queried us but never answered", { lastResponse: null, lastQuery: 0, failures: 0 }, 1, "questionable"],
      ["one failure after an answer", { lastResponse: 0, lastQuery: null, failures: 1 }, 1, "good"],
      ["failed twice in a row", { lastResponse: 0, lastQuery: null, failures: BAD_AFTER_FAILURES }, 1, "bad"],
    ];
  for (const [name, n, now, want] of rows) await t.step(name, () => assertEquals(nodeState(n, now), want));
});

Deno.test("stepTable() ignores our own id, the other family, port 0 and ids of the wrong size", async (t) => {
  const rows: [string, NodeInfo, 4 | 6][] = [
    ["own id", { id: OWN, address: { host: "10.0.0.1", port: 1 } }, 4],
    ["IPv6 node in the IPv4 table", { id: new Uint8Array(20).fill(1), address: { host: "::2", port: 1 } }, 4],
    ["IPv4 node in the IPv6 table", { id: new Uint8Array(20).fill(1), address: { host: "10.0.0.1", port: 1 } }, 6],
    ["IPv4-mapped node in the IPv6 table", {
      id: new Uint8Array(20).fill(1),
      address: { host: "::ffff:1.2.3.4", port: 1 },
    }, 6],
    ["host name", { id: new Uint8Array(20).fill(1), address: { host: "example.org", port: 1 } }, 4],
    ["port 0", { id: new Uint8Array(20).fill(1), address: { host: "10.0.0.1", port: 0 } }, 4],
    ["19-byte id", { id: new Uint8Array(19).fill(1), address: { host: "10.0.0.1", port: 1 } }, 4],
  ];
  for (const [name, node, family] of rows) {
    await t.step(name, () => {
      const [tb] = run(createTable(OWN, { family, now: 0 }), [[response(node), 0], [query(node), 0]]);
      assertEquals(tableSize(tb), 0);
    });
  }
  await t.step("an IPv6 node in the IPv6 table is kept", () => {
    const node = { id: new Uint8Array(20).fill(1), address: { host: "2001:db8::1", port: 1 } };
    const [tb] = run(createTable(OWN, { family: 6, now: 0 }), [[response(node), 0]]);
    assertEquals(closest(tb, node.id), [node]);
  });
});

Deno.test("stepTable() splits only the bucket holding our own id", () => {
  // 8 far nodes fill the single bucket; a 9th far node splits it, then waits in bucket 0's cache
  const far = Array.from({ length: BUCKET_SIZE + 1 }, () => nodeIn(0));
  let [t, actions] = run(createTable(OWN, { family: 4, now: 0 }), far.map((n) => [response(n), 0]));
  assertEquals(actions, []);
  assertEquals(t.buckets.length, 2);
  assertEquals([t.buckets[0].nodes.length, t.buckets[0].replacements.length], [BUCKET_SIZE, 1]);
  assertEquals(t.buckets[1].nodes.length, 0);
  // more far nodes never split bucket 0 again; near ones split the last bucket, one bit at a time
  [t] = run(t, Array.from({ length: 30 }, () => [response(nodeIn(0)), 0]));
  assertEquals(t.buckets.length, 2);
  assertEquals(t.buckets[0].replacements.length, DHT_REPLACEMENTS_PER_BUCKET);
  [t] = run(t, Array.from({ length: BUCKET_SIZE + 1 }, () => [response(nodeIn(3)), 0]));
  assertEquals(t.buckets.length, 5);
  assertEquals(t.buckets.map((b) => b.nodes.length), [8, 0, 0, 8, 0]);
});

Deno.test("stepTable() keeps every bucket's invariant and bound under thousands of random nodes", () => {
  for (const seed of [1, 2, 3]) {
    const rand = seeded(seed);
    const own = randomBytes(rand, 20);
    let t = createTable(own, { family: 4, now: 0 });
    for (let i = 0; i < 5000; i++) {
      const node = {
        id: randomBytes(rand, 20),
        address: { host: `10.0.${i >> 8}.${i & 255}`, port: 1 + rand.int(65535) },
      };
      [t] = stepTable(t, rand.int(2) === 0 ? response(node) : query(node), i);
    }
    assert(t.buckets.length <= MAX_BUCKETS);
    // ~ log2(5000 / 8) splits: about ten buckets, each full
    assert(t.buckets.length >= 8 && t.buckets.length <= 16, `seed ${seed}: ${t.buckets.length} buckets`);
    t.buckets.forEach((b, i) => {
      assert(b.nodes.length <= BUCKET_SIZE && b.replacements.length <= DHT_REPLACEMENTS_PER_BUCKET, `seed ${seed}`);
      for (const n of [...b.nodes, ...b.replacements]) {
        const cpb = commonPrefixBits(own, n.id);
        assert(
          i === t.buckets.length - 1 ? cpb >= i : cpb === i,
          `seed ${seed}: node with prefix ${cpb} in bucket ${i}`,
        );
      }
    });
    const keys = t.buckets.flatMap((b) => [...b.nodes, ...b.replacements].map((n) => n.key));
    assertEquals(new Set(keys).size, keys.length, `seed ${seed}: an address twice`);
  }
});

Deno.test("stepTable() puts a newcomer in place of a bad node in a full bucket", () => {
  let [t, nodes] = fullBucket0(0);
  [t] = run(t, [[failure(nodes[3]), 10], [failure(nodes[3]), 20]]);
  assertEquals(nodeState(t.buckets[0].nodes[3], 20), "bad");
  const newcomer = nodeIn(0);
  let actions;
  [t, actions] = run(t, [[response(newcomer), 30]]);
  assertEquals(actions, []);
  assertEquals(ids(t.buckets[0].nodes).includes(ids([newcomer])[0]), true);
  assertEquals(ids(t.buckets[0].nodes).includes(ids([nodes[3]])[0]), false);
});

Deno.test("stepTable() pings the least recently seen questionable node; two failures let the newcomer in", () => {
  let [t, nodes] = fullBucket0(0);
  // everyone but nodes[5] answers again later, so nodes[5] is the least recently seen once all are questionable
  [t] = run(t, nodes.filter((_, i) => i !== 5).map((n) => [response(n), 1000]));
  const now = 1000 + GOOD_FOR_MS;
  const a = nodeIn(0);
  const b = nodeIn(0);
  let actions: TableAction[];
  [t, actions] = run(t, [[response(a), now]]);
  assertEquals(actions, [{ type: "ping", node: nodes[5], candidate: a }]);
  // a second newcomer while the ping is pending: no second ping
  [t, actions] = run(t, [[response(b), now + 1]]);
  assertEquals(actions, []);
  // the ping fails once: BEP 5 tries once more
  [t, actions] = run(t, [[failure(nodes[5]), now + 2]]);
  assertEquals(actions.length, 1);
  assertEquals(actions[0].node, nodes[5]);
  // and fails again: the most recently verified newcomer takes the slot
  [t, actions] = run(t, [[failure(nodes[5]), now + 3]]);
  assertEquals(actions, []);
  const held = ids(t.buckets[0].nodes);
  assertEquals([held.includes(ids([nodes[5]])[0]), held.includes(ids([b])[0])], [false, true]);
  assertEquals(ids(t.buckets[0].replacements), ids([a]));
  assertEquals(t.buckets[0].lastChanged, now + 3);
});

Deno.test("stepTable() keeps a pinged node that answers, and the newcomer waits", () => {
  let [t, nodes] = fullBucket0(0);
  const now = GOOD_FOR_MS + 1;
  const a = nodeIn(0);
  let actions: TableAction[];
  [t, actions] = run(t, [[response(a), now]]);
  assertEquals(actions.length, 1);
  const pinged = actions[0].node;
  [t, actions] = run(t, [[response(pinged), now + 50]]);
  assertEquals(actions, []);
  assertEquals(ids(t.buckets[0].nodes), ids(nodes));
  assertEquals(ids(t.buckets[0].replacements), ids([a]));
  const entry = t.buckets[0].nodes.find((n) => n.key === `${pinged.address.host}:6881`);
  assert(entry !== undefined);
  assertEquals(nodeState(entry, now + 50), "good");
  // the next newcomer pings the next questionable node (the pending ping was answered)
  [t, actions] = run(t, [[response(nodeIn(0)), now + 60]]);
  assertEquals(actions.length, 1);
  assert(ids([actions[0].node])[0] !== ids([pinged])[0]);
  // a ping left unanswered is pending for PING_PENDING_MS, then another may be sent
  [t, actions] = run(t, [[response(nodeIn(0)), now + 60 + PING_PENDING_MS - 1]]);
  assertEquals(actions, []);
  [t, actions] = run(t, [[response(nodeIn(0)), now + 60 + PING_PENDING_MS]]);
  assertEquals(actions.length, 1);
});

Deno.test("stepTable() lets no unverified newcomer ping or displace anyone, and drops newcomers when all are good", () => {
  let [t, nodes] = fullBucket0(0);
  let actions: TableAction[];
  [t, actions] = run(t, [[query(nodeIn(0)), GOOD_FOR_MS + 1]]); // all questionable, but the newcomer never answered
  assertEquals(actions, []);
  assertEquals(ids(t.buckets[0].nodes), ids(nodes));
  [t, actions] = run(t, [[response(nodeIn(0)), 10]]); // all good: the newcomer only waits
  assertEquals(actions, []);
  assertEquals(ids(t.buckets[0].nodes), ids(nodes));
  assertEquals(t.buckets[0].replacements.length, 2);
});

Deno.test("stepTable() replaces a node that fails twice with a waiting replacement", () => {
  let [t, nodes] = fullBucket0(0);
  const waiting = nodeIn(0);
  [t] = run(t, [[response(waiting), 5]]);
  [t] = run(t, [[failure(nodes[0]), 10]]);
  assertEquals(ids(t.buckets[0].nodes).includes(ids([nodes[0]])[0]), true);
  [t] = run(t, [[failure(nodes[0]), 20]]);
  assertEquals(ids(t.buckets[0].nodes).includes(ids([nodes[0]])[0]), false);
  assertEquals(ids(t.buckets[0].nodes).includes(ids([waiting])[0]), true);
  // an answer resets the count of failures
  [t] = run(t, [[failure(nodes[1]), 30], [response(nodes[1]), 31], [failure(nodes[1]), 32]]);
  assertEquals(t.buckets[0].nodes.find((n) => n.key === `${nodes[1].address.host}:6881`)?.failures, 1);
});

Deno.test("stepTable() treats a new id at a known address as a new node and removes the old entry", () => {
  const old = nodeIn(2);
  const renamed = { id: nodeIn(7).id, address: old.address };
  const [t] = run(createTable(OWN, { family: 4, now: 0 }), [[response(old), 0], [response(renamed), 1]]);
  assertEquals(tableSize(t), 1);
  assertEquals(closest(t, OWN), [renamed]);
});

Deno.test("stepTable() believes a known id at a new address only from an answer, and only if not good", async (t) => {
  const node = nodeIn(1);
  const moved = { id: node.id, address: { host: "10.99.0.1", port: 7000 } };
  const rows: [string, [TableEvent, number][], NodeInfo][] = [
    ["a good node keeps its address", [[response(node), 0], [response(moved), 1]], node],
    ["a query cannot move a node", [[response(node), 0], [query(moved), GOOD_FOR_MS]], node],
    ["an answer moves a questionable node", [[response(node), 0], [response(moved), GOOD_FOR_MS]], moved],
    [
      "an answer moves a bad node",
      [[response(node), 0], [failure(node), 1], [failure(node), 2], [response(moved), 3]],
      moved,
    ],
  ];
  for (const [name, events, want] of rows) {
    await t.step(name, () => {
      const [tb] = run(createTable(OWN, { family: 4, now: 0 }), events);
      assertEquals(closest(tb, OWN, { k: 8 }).length <= 1, true);
      assertEquals(tb.buckets.flatMap((b) => b.nodes).map((n) => n.address), [want.address]);
    });
  }
});

Deno.test("stepTable() keeps one node per IP address, except on loopback", async (t) => {
  const host = "10.66.0.1";
  /** A node with an id in bucket `prefix` at `host`:`port`. */
  const at = (port: number, prefix = 0, h = host): NodeInfo => ({ ...nodeIn(prefix), address: { host: h, port } });
  const hosts = (tb: RoutingTable) =>
    tb.buckets.flatMap((b) => [...b.nodes, ...b.replacements]).map((n) => `${n.address.host}:${n.address.port}`);
  const fresh = () => createTable(OWN, { family: 4, now: 0 });
  await t.step("one host answering from 50 ports with 50 ids is one node", () => {
    const [tb] = run(fresh(), Array.from({ length: 50 }, (_, i) => [response(at(2000 + i, i % 6)), i] as const));
    assertEquals(hosts(tb), [`${host}:2000`]);
  });
  await t.step("the same with queries", () => {
    const [tb] = run(fresh(), Array.from({ length: 50 }, (_, i) => [query(at(2000 + i, i % 6)), i] as const));
    assertEquals(hosts(tb), [`${host}:2000`]);
  });
  await t.step("a node that answered keeps its place against another port of its host", () => {
    const [tb] = run(fresh(), [[response(at(1)), 0], [response(at(2)), 1], [query(at(3)), 2]]);
    assertEquals(hosts(tb), [`${host}:1`]);
  });
  await t.step("an answer displaces a node of the same host that only queried us", () => {
    const [tb] = run(fresh(), [[query(at(1)), 0], [response(at(2)), 1]]);
    assertEquals(hosts(tb), [`${host}:2`]);
  });
  await t.step("a query does not displace one that only queried us", () => {
    const [tb] = run(fresh(), [[query(at(1)), 0], [query(at(2)), 1]]);
    assertEquals(hosts(tb), [`${host}:1`]);
  });
  await t.step("a bad node gives way to another port of its host", () => {
    const first = at(1);
    const [tb] = run(fresh(), [[response(first), 0], [failure(first), 1], [failure(first), 2], [query(at(2)), 3]]);
    assertEquals(hosts(tb), [`${host}:2`]);
  });
  await t.step("a node waiting in a replacement cache counts too", () => {
    let [tb] = fullBucket0(0);
    const waiting = at(1);
    [tb] = run(tb, [[response(waiting), 1], [response(at(2, 1)), 2]]);
    assertEquals(hosts(tb).filter((h) => h.startsWith(`${host}:`)), [`${host}:1`]);
  });
  await t.step("IPv6: one node per /64 (an ordinary user's whole prefix)", () => {
    const v6 = createTable(OWN, { family: 6, now: 0 });
    const [tb] = run(v6, [
      [response(at(1, 0, "2001:db8:1:2::5")), 0],
      [response(at(1, 1, "2001:db8:1:2:ffff::9")), 1],
      [response(at(1, 2, "2001:db8:1:3::5")), 2],
    ]);
    assertEquals(hosts(tb), ["2001:db8:1:2::5:1", "2001:db8:1:3::5:1"]);
  });
  await t.step("loopback nodes are this host's own: every port is kept", () => {
    const [tb] = run(fresh(), [
      ...Array.from({ length: 5 }, (_, i) => [response(at(2000 + i, 0, "127.0.0.1")), i] as [TableEvent, number]),
      [response(at(3000, 0, "127.0.0.2")), 9],
    ]);
    assertEquals(tableSize(tb), 6);
  });
});

Deno.test("stepTable() moves a replacement into a slot freed by an id change", () => {
  let [t, nodes] = fullBucket0(0);
  const waiting = nodeIn(0);
  [t] = run(t, [[response(waiting), 5]]);
  // nodes[2]'s address now answers with an id in another bucket: its slot in bucket 0 goes to `waiting`
  [t] = run(t, [[response({ id: randomIdInBucket(OWN, 3, seeded(9)), address: nodes[2].address }), 10]]);
  assertEquals(t.buckets[0].nodes.length, BUCKET_SIZE);
  assertEquals(ids(t.buckets[0].nodes).includes(ids([waiting])[0]), true);
  assertEquals(t.buckets[0].replacements.length, 0);
});

Deno.test("closest() returns the k nearest nodes that are not bad, nearest first", () => {
  const rand = seeded(42);
  let t = createTable(OWN, { family: 4, now: 0 });
  const all: NodeInfo[] = [];
  for (let i = 0; i < 300; i++) {
    const node = { id: randomBytes(rand, 20), address: { host: `10.1.${i >> 8}.${i & 255}`, port: 1000 + i } };
    all.push(node);
    [t] = stepTable(t, response(node), 0);
  }
  const held = t.buckets.flatMap((b) => b.nodes.map((n) => ({ id: n.id, address: n.address })));
  for (let r = 0; r < 20; r++) {
    const target = randomBytes(rand, 20);
    const want = held.slice().sort((a, b) => compareDistance(target, a.id, b.id)).slice(0, BUCKET_SIZE);
    assertEquals(closest(t, target), want);
  }
  // a bad node is skipped; goodAt skips questionable ones
  const target = held[0].id;
  [t] = run(t, [[failure(held[0]), 1], [failure(held[0]), 2]]);
  assertEquals(closest(t, target, { k: 300 }).some((n) => n.address.port === held[0].address.port), false);
  assertEquals(closest(t, target, { k: 300, goodAt: GOOD_FOR_MS }).length, 0);
  assertEquals(closest(t, target, { k: 3 }).length, 3);
});

Deno.test("refreshDue() names buckets unchanged for 15 minutes, with a target inside each", () => {
  const rand = seeded(5);
  let t = createTable(OWN, { family: 4, now: 0 });
  for (const p of [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 9]) [t] = stepTable(t, response(nodeIn(p)), 0);
  const n = t.buckets.length;
  assertEquals(n, 3);
  assertEquals(refreshDue(t, REFRESH_AFTER_MS - 1, rand), []);
  // bucket 1 changes (a node answers) at 1000; the others are due at 15 minutes
  [t] = stepTable(t, response(t.buckets[1].nodes[0]), 1000);
  const due = refreshDue(t, REFRESH_AFTER_MS, rand);
  assertEquals(due.map((d) => d.bucket), [0, 2]);
  for (const d of due) {
    const cpb = commonPrefixBits(OWN, d.target);
    assert(d.bucket === n - 1 ? cpb >= d.bucket : cpb === d.bucket);
  }
  // a refresh started counts as a change
  [t] = stepTable(t, { type: "refreshing", bucket: 0 }, REFRESH_AFTER_MS);
  assertEquals(refreshDue(t, REFRESH_AFTER_MS, rand).map((d) => d.bucket), [2]);
  assertEquals(refreshDue(t, REFRESH_AFTER_MS + 1000, rand).map((d) => d.bucket), [1, 2]);
  // a query from a known node is no change
  [t] = stepTable(t, query(t.buckets[2].nodes[0]), REFRESH_AFTER_MS + 1000);
  assertEquals(refreshDue(t, REFRESH_AFTER_MS + 1000, rand).map((d) => d.bucket), [1, 2]);
});

Deno.test("goodNodes() and tableStats() report standings", () => {
  let t = createTable(OWN, { family: 4, now: 0 });
  const [a, b, c, d] = [nodeIn(0), nodeIn(1), nodeIn(2), nodeIn(3)];
  [t] = run(t, [[response(a), 0], [response(b), GOOD_FOR_MS], [query(c), GOOD_FOR_MS], [response(d), 0]]);
  [t] = run(t, [[failure(d), 1], [failure(d), 2]]);
  assertEquals(goodNodes(t, GOOD_FOR_MS + 1), [b]);
  assertEquals(tableStats(t, GOOD_FOR_MS + 1), { buckets: 1, good: 1, questionable: 2, bad: 1, replacements: 0 });
});

Deno.test("stepTable(): a query from a known node's address with another id does not displace it; an answer does", () => {
  const a = nodeIn(3);
  const [t0] = run(createTable(OWN, { family: 4, now: 0 }), [[response(a), 0]]);
  const spoof: NodeInfo = { id: nodeIn(3).id, address: a.address }; // anyone can claim a's address in a query
  const [t1] = run(t0, [[query(spoof), 10]]);
  assertEquals(ids(t1.buckets.flatMap((b) => b.nodes)), ids([a]), "one spoofed query empties nothing");
  const [t2] = run(t1, [[response(spoof), 20]]); // the new id answered our query from that address: it is the node now
  assertEquals(ids(t2.buckets.flatMap((b) => b.nodes)), ids([spoof]));
});

Deno.test("lookupSeeds(): nodes that answered us go first; nodes that only queried us only fill in when few answered", () => {
  const own = new Uint8Array(20);
  const target = new Uint8Array(20).fill(0xf0);
  // queried us only: ids right next to the target (a forger picks them so), all in bucket 0
  const forged = Array.from({ length: 12 }, (_, i): NodeInfo => {
    const id = new Uint8Array(20).fill(i + 1);
    id[0] = 0xf0;
    return { id, address: { host: `10.0.240.${i + 1}`, port: 6881 } };
  });
  // answered us: farther from the target, one in each of buckets 1 to 12 (i + 1 leading zero bits)
  const real = Array.from({ length: 12 }, (_, i): NodeInfo => {
    const id = new Uint8Array(20).fill(0x55);
    id[0] = 0;
    id[1] = 0;
    id[(i + 1) >> 3] = 0x80 >> ((i + 1) & 7);
    return { id, address: { host: `10.0.1.${i + 1}`, port: 6881 } };
  });
  let t = createTable(own, { family: 4, now: 0 });
  for (const n of forged) [t] = stepTable(t, { type: "query", node: n }, 0);
  for (const n of real.slice(0, 3)) [t] = stepTable(t, { type: "response", node: n }, 0);
  // 3 answered: too few, so the query-only nodes fill in, closest first
  const few = lookupSeeds(t, target, 16);
  assertEquals(few.length, Math.min(16, tableSize(t)));
  assert(few.some((n) => n.address.host.startsWith("10.0.240.")), "with few answered, the others are tried too");
  for (const n of real.slice(3)) [t] = stepTable(t, { type: "response", node: n }, 0);
  // enough answered: only they seed the lookup
  const seeds = lookupSeeds(t, target, 16);
  assert(seeds.length >= BUCKET_SIZE, `${seeds.length} seeds`);
  assertEquals(seeds.filter((n) => n.address.host.startsWith("10.0.240.")), [], "a query-only node seeds the lookup");
  const answeredInTable = closest(t, target, { k: 160 }).filter((n) => !n.address.host.startsWith("10.0.240."));
  assertEquals(seeds.map((n) => n.address.host), answeredInTable.slice(0, 16).map((n) => n.address.host));
});

Deno.test("lookupSeeds(): with few nodes that answered, every one of them stays, however many forged ids are closer", () => {
  const target = new Uint8Array(20).fill(0xf0);
  // answered: ids with 4 to 6 leading zero bits, far from the target
  const real = [0x08, 0x04, 0x02].map((first, i): NodeInfo => {
    const id = new Uint8Array(20).fill(0x11);
    id[0] = first;
    return { id, address: { host: `10.2.0.${i + 1}`, port: 6881 } };
  });
  // queried us only: 8 each in buckets 0, 1 and 2, all of them closer to the target than any node above
  const forged = [0x80, 0x40, 0x20].flatMap((first, b) =>
    Array.from({ length: BUCKET_SIZE }, (_, i): NodeInfo => {
      const id = new Uint8Array(20).fill(i + 1);
      id[0] = first | (i + 1);
      return { id, address: { host: `10.3.${b}.${i + 1}`, port: 6881 } };
    })
  );
  let t = createTable(OWN, { family: 4, now: 0 });
  for (const n of real) [t] = stepTable(t, { type: "response", node: n }, 0);
  for (const n of forged) [t] = stepTable(t, { type: "query", node: n }, 0);
  assert(tableSize(t) > 16, `${tableSize(t)} nodes`);
  const seeds = lookupSeeds(t, target, 16).map((n) => n.address.host);
  assertEquals(seeds.length, 16);
  assertEquals(seeds.slice(0, 3).sort(), real.map((n) => n.address.host).sort(), "the nodes that answered go first");
});
