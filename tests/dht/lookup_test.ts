import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { formatAddress, type PeerAddress } from "../../lib/address.ts";
import { compareDistance, type NodeInfo } from "../../lib/dht/node_id.ts";
import {
  createLookup,
  LONG_TIMEOUT_MS,
  type Lookup,
  type LookupAction,
  lookupDeadline,
  type LookupEvent,
  lookupResult,
  SHORT_TIMEOUT_MS,
  stepLookup,
} from "../../lib/dht/lookup.ts";
import { DHT_LOOKUP_MAX_NODES, DHT_LOOKUP_MAX_QUERIES, MAX_KRPC_TOKEN_BYTES } from "../../lib/limits.ts";
import { buildNetwork, type Mix, runLookup, simToken, storePeers, trueClosest } from "./_network.ts";

const TARGET = new Uint8Array(20);

/** A node at distance `d` from TARGET (its last two bytes), at 10.0.x.y:port. */
function at(d: number, port = 6881): NodeInfo {
  const id = new Uint8Array(20);
  id[18] = d >> 8;
  id[19] = d & 255;
  return { id, address: { host: `10.0.${d >> 8}.${d & 255}`, port } };
}

function queried(actions: readonly LookupAction[]): number[] {
  return actions.flatMap((a) => a.type === "query" ? [(a.node.id[18] << 8) | a.node.id[19]] : []);
}

function response(from: NodeInfo, nodes: NodeInfo[] = [], extra: Partial<LookupEvent> = {}): LookupEvent {
  return { type: "response", from, nodes, ...extra } as LookupEvent;
}

function step(l: Lookup, ev: LookupEvent, now: number): [Lookup, LookupAction[]] {
  return stepLookup(l, ev, now);
}

Deno.test("createLookup() asks the alpha closest seeds first, never ourselves, once per address", () => {
  const seeds = [at(9), at(3), at(5), at(1), at(7), at(3), { ...at(2), address: at(5).address }];
  const [l, actions] = createLookup(TARGET, seeds, { kind: "find_node", now: 0, ownId: at(1).id });
  assertEquals(queried(actions), [3, 5, 7]);
  assertEquals(l.nodes.length, 4); // 1 is our own id; the second 3 and "2 at 5's address" are duplicates
  assertEquals(lookupDeadline(l), SHORT_TIMEOUT_MS);
});

Deno.test("createLookup() with no usable seed is done at once; a bad target is a RangeError", () => {
  const [l, actions] = createLookup(TARGET, [{ id: new Uint8Array(3), address: at(1).address }, at(2, 0)], {
    kind: "get_peers",
    now: 0,
  });
  assertEquals(actions, [{ type: "done", result: { closest: [], peers: [], queries: 0, answered: 0, failed: 0 } }]);
  assertEquals([l.done, lookupDeadline(l)], [true, null]);
  assertThrows(() => createLookup(new Uint8Array(19), [], { kind: "find_node", now: 0 }), RangeError);
});

Deno.test("stepLookup() ignores answers from nodes not asked, or given up on", async (t) => {
  const [l0] = createLookup(TARGET, [at(1), at(2), at(3), at(4)], { kind: "find_node", now: 0 });
  const rows: [string, LookupEvent][] = [
    ["never asked", response(at(4), [at(0)])],
    ["unknown address", response(at(77), [at(0)])],
    ["id of the wrong size", response({ id: new Uint8Array(8), address: at(1).address }, [at(0)])],
    ["failure of a node never asked", { type: "failure", from: at(4) }],
  ];
  for (const [name, ev] of rows) {
    await t.step(name, () => {
      const [l, actions] = step(l0, ev, 5);
      assertEquals(actions, []);
      assert(l === l0);
    });
  }
  await t.step("late answer after the long time-out", () => {
    let [l] = step(l0, { type: "timer" }, LONG_TIMEOUT_MS);
    assertEquals(l.nodes.filter((n) => n.state === "failed").length, 3);
    const before = l;
    let actions;
    [l, actions] = step(l, response(at(1), [at(0)]), LONG_TIMEOUT_MS + 1);
    assertEquals(actions, []);
    assert(l === before);
  });
});

Deno.test("stepLookup() keeps alpha queries in flight and stops once the k closest answered", () => {
  let [l, actions] = createLookup(TARGET, [at(40), at(50), at(60), at(70)], { kind: "find_node", now: 0, k: 3 });
  assertEquals(queried(actions), [40, 50, 60]);
  // 40 names closer nodes: they go out as 40's slot frees
  [l, actions] = step(l, response(at(40), [at(10), at(20), at(30)]), 10);
  assertEquals(queried(actions), [10]);
  [l, actions] = step(l, response(at(10), []), 20);
  assertEquals(queried(actions), [20]);
  [l, actions] = step(l, { type: "failure", from: at(20) }, 30);
  assertEquals(queried(actions), [30]);
  // 10, 40 answered; 30 in flight; 50 and 60 in flight: not done until 30 answers
  [l, actions] = step(l, response(at(30), []), 40);
  assertEquals(actions.map((a) => a.type), ["done"]);
  const done = actions[0];
  assert(done.type === "done");
  assertEquals(done.result.closest.map((r) => r.node), [at(10), at(30), at(40)]);
  assertEquals([done.result.queries, done.result.answered, done.result.failed], [6, 3, 1]);
  // 50 and 60 were never needed: later events change nothing
  assertEquals(step(l, response(at(50), []), 50)[1], []);
  assertEquals(lookupDeadline(l), null);
});

Deno.test("stepLookup() opens a slot for a slow query and still takes its answer until the long time-out", () => {
  let [l, actions] = createLookup(TARGET, [at(1), at(2), at(3), at(4), at(5)], { kind: "find_node", now: 0, k: 2 });
  assertEquals(queried(actions), [1, 2, 3]);
  assertEquals(lookupDeadline(l), SHORT_TIMEOUT_MS);
  [l, actions] = step(l, { type: "timer" }, SHORT_TIMEOUT_MS - 1);
  assertEquals(actions, []);
  [l, actions] = step(l, response(at(3), []), 500);
  assertEquals(queried(actions), [4]);
  // 1 and 2 pass the short time-out: 5 goes out (4 is in flight, 3 answered)
  [l, actions] = step(l, { type: "timer" }, SHORT_TIMEOUT_MS);
  assertEquals(queried(actions), [5]);
  assertEquals(l.nodes.filter((n) => n.state === "slow").length, 2);
  assertEquals(lookupDeadline(l), 500 + SHORT_TIMEOUT_MS); // 4's short time-out comes before 1's long one
  // the slow 1 answers late: taken
  [l, actions] = step(l, response(at(1), []), 5_000);
  assertEquals(actions, []); // 2 is closer than the second answer and still in flight
  [l, actions] = step(l, { type: "timer" }, LONG_TIMEOUT_MS);
  assertEquals(actions.map((a) => a.type), ["done"]);
  assertEquals(lookupResult(l).closest.map((r) => r.node), [at(1), at(3)]);
  assertEquals(lookupResult(l).failed, 1); // 2; 4 and 5, sent later, are only slow
});

Deno.test("stepLookup() accepts an answer under another id than the one it was given, in that id's place", () => {
  // a bootstrap router: its id is unknown, so it is given the target's, and asked first
  const router = { id: TARGET, address: { host: "192.0.2.1", port: 6881 } };
  let [l, actions] = createLookup(TARGET, [router], { kind: "find_node", now: 0, k: 2 });
  assertEquals(actions, [{ type: "query", node: router }]);
  const real = { id: new Uint8Array(20).fill(0xee), address: router.address };
  [l, actions] = step(l, response(real, [at(7), at(8)]), 10);
  assertEquals(queried(actions), [7, 8]);
  assertEquals(l.nodes.map((n) => n.key), ["10.0.0.7:6881", "10.0.0.8:6881", "192.0.2.1:6881"]);
  [l] = step(l, response(at(7)), 20);
  [l, actions] = step(l, response(at(8)), 30);
  assertEquals(actions.at(-1)?.type, "done");
  assertEquals(lookupResult(l).closest.map((r) => r.node), [at(7), at(8)]);
});

Deno.test("stepLookup() collects get_peers values and the tokens of the closest, bounded", () => {
  const peer = (i: number): PeerAddress => ({ host: `192.168.0.${i}`, port: 6881 });
  let [l, actions] = createLookup(TARGET, [at(1), at(2)], { kind: "get_peers", now: 0, maxPeers: 3 });
  [l, actions] = step(
    l,
    response(at(1), [], { values: [peer(1), peer(2), peer(1)], token: new Uint8Array([1, 2]) }),
    5,
  );
  assertEquals(actions, [{ type: "peers", peers: [peer(1), peer(2)] }]);
  const long = new Uint8Array(MAX_KRPC_TOKEN_BYTES + 1);
  [l, actions] = step(
    l,
    response(at(2), [], { values: [peer(2), { host: "x", port: 0 }, peer(3), peer(4)], token: long }),
    6,
  );
  assertEquals(actions[0], { type: "peers", peers: [peer(3)] });
  assertEquals(actions.at(-1)?.type, "done");
  const r = lookupResult(l);
  assertEquals(r.peers, [peer(1), peer(2), peer(3)]);
  assertEquals(r.closest.map((c) => c.token), [new Uint8Array([1, 2]), null]);
  // find_node ignores values and tokens
  let [f] = createLookup(TARGET, [at(1)], { kind: "find_node", now: 0 });
  [f, actions] = step(f, response(at(1), [], { values: [peer(1)], token: new Uint8Array([1]) }), 5);
  assertEquals(actions.map((a) => a.type), ["done"]);
  assertEquals(lookupResult(f).closest, [{ node: at(1), token: null }]);
});

Deno.test("stepLookup() keeps at most maxNodes unasked nodes, the closest, and sends at most maxQueries", () => {
  const rand = seeded(3);
  let hosts = 0; // every node on a host of its own (one entry per IP)
  const many = (n: number) =>
    Array.from({ length: n }, () => {
      const h = ++hosts;
      return { id: randomBytes(rand, 20), address: { host: `10.9.${h >> 8}.${h & 255}`, port: 6881 } };
    });
  let [l, actions] = createLookup(TARGET, [at(1)], { kind: "find_node", now: 0, maxQueries: 10 });
  const flood = many(1000);
  [l, actions] = step(l, response(at(1), flood), 1);
  assertEquals(l.nodes.filter((n) => n.state === "new").length, DHT_LOOKUP_MAX_NODES - 3);
  const kept = l.nodes.map((n) => n.key);
  // the farthest kept is nearer than every node dropped
  const dropped = flood.filter((n) => !kept.includes(formatAddress(n.address)));
  assertEquals(dropped.length, 1000 - DHT_LOOKUP_MAX_NODES);
  const farthest = l.nodes[l.nodes.length - 1].node.id;
  assert(dropped.every((n) => compareDistance(TARGET, farthest, n.id) < 0));
  let sent = queried(actions).length + 1;
  let now = 1;
  while (!l.done) {
    const asked = l.nodes.filter((n) => n.state === "waiting").map((n) => n.node);
    for (const n of asked) {
      [l, actions] = step(l, response(n, many(50)), ++now);
      sent += actions.filter((a) => a.type === "query").length;
    }
    assert(now < 1000, "lookup never finished");
  }
  assertEquals(sent, 10);
  assertEquals(lookupResult(l).queries, 10);
  assert(l.nodes.filter((n) => n.state === "new").length <= DHT_LOOKUP_MAX_NODES);
});

Deno.test("stepLookup() counts one answer per host: one host on many ports costs at most the queries in flight", () => {
  // 100 ports of one host, every id nearer the target than any other node
  const flood = Array.from({ length: 100 }, (_, i) => {
    const id = new Uint8Array(20);
    id[19] = 101 + i; // distances 101-200 from the target: nearer than every other node named
    return { id, address: { host: "10.66.0.1", port: 1000 + i } };
  });
  let [l, actions] = createLookup(TARGET, [at(500), at(600)], { kind: "find_node", now: 0 });
  [l, actions] = step(l, response(at(500), [...flood, at(300), at(400)]), 1);
  const hostQueries = () => l.nodes.filter((n) => n.node.address.host === "10.66.0.1" && n.state !== "new").length;
  assertEquals(l.nodes.filter((n) => n.node.address.host === "10.66.0.1").length, 100, "not answered yet: all kept");
  const asked = actions.flatMap((a) => a.type === "query" ? [a.node] : []);
  assertEquals(asked.length, 2, "one answer freed one slot, and the new nearest are the host's");
  // one of its ports answers: its others not asked yet are dropped, and no new one is taken
  [l, actions] = step(l, response(asked[0], [...flood.slice(50), at(250)]), 2);
  assertEquals(l.nodes.filter((n) => n.node.address.host === "10.66.0.1").length, hostQueries());
  assert(hostQueries() <= 3, `${hostQueries()} queries went to the host`);
  // another of its ports answering counts as failed
  [l] = step(l, response(asked[1], [at(100)]), 3);
  assertEquals(l.nodes.find((n) => n.key === formatAddress(asked[1].address))?.state, "failed");
  assertEquals(l.nodes.some((n) => n.key === formatAddress(at(100).address)), false, "what it named is not taken");
  assert(l.nodes.some((n) => n.key === formatAddress(at(250).address)), "what the first answer named is");
});

Deno.test("stepLookup(): a host answering under our own id gets nothing taken and cannot drain the lookup", () => {
  // it names 8 more of its own ports with every answer; under another id it would count once, under ours it was never
  // "answered", so the one-answer-per-host rule never applied to it (92 of 100 queries went to it)
  const own = new Uint8Array(20).fill(0xee);
  const liar = "203.0.113.9";
  let port = 2;
  const nodeAt = (p: number, d: number) => ({ ...at(d), address: { host: liar, port: p } });
  let [l, actions] = createLookup(TARGET, [nodeAt(1, 900), at(500), at(600)], {
    kind: "find_node",
    now: 0,
    ownId: own,
  });
  let toLiar = 0;
  for (let now = 1; now < 500 && !l.done; now++) {
    const q = actions.find((a) => a.type === "query");
    if (q === undefined || q.type !== "query") break;
    actions = actions.filter((a) => a !== q);
    let more: LookupAction[];
    if (q.node.address.host === liar) {
      toLiar++;
      const named = Array.from({ length: 8 }, () => nodeAt(port++, 10 + port));
      [l, more] = step(l, response({ id: own, address: q.node.address }, named), now);
    } else {
      [l, more] = step(l, { type: "failure", from: q.node }, now);
    }
    actions.push(...more);
  }
  assertEquals(toLiar, 1, "only the seed at the liar's host was asked");
  assertEquals(l.nodes.find((n) => n.node.address.host === liar)?.state, "failed");
  assert(l.done);
});

Deno.test("stepLookup(): a liar naming a real node's host at a dead port does not keep that node out", () => {
  const real = at(3); // 10.0.0.3:6881, nearest the target
  const decoy = { id: at(1).id, address: { host: real.address.host, port: 9 } }; // nearer still, never answers
  let [l] = createLookup(TARGET, [at(700), at(800)], { kind: "get_peers", now: 0 });
  [l] = step(l, response(at(700), [decoy]), 1);
  [l] = step(l, response(at(800), [real]), 2);
  let now = 2;
  for (let i = 0; i < 10 && !l.done; i++) {
    now += SHORT_TIMEOUT_MS;
    [l] = step(l, { type: "timer" }, now);
    const real1 = l.nodes.find((n) => n.key === formatAddress(real.address));
    if (real1?.state === "waiting" || real1?.state === "slow") [l] = step(l, response(real), now);
    if (l.nodes.some((n) => n.key === formatAddress(decoy.address) && n.state === "slow")) {
      [l] = step(l, { type: "failure", from: decoy }, now);
    }
  }
  assertEquals(l.nodes.find((n) => n.key === formatAddress(real.address))?.state, "answered");
  assertEquals(lookupResult(l).closest[0]?.node.address, real.address);
});

Deno.test("stepLookup() skips unreachable addresses, and loopback ones unless named from loopback", () => {
  const rand = seeded(5);
  const named = (host: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({ id: randomBytes(rand, 20), address: { host, port: 1000 + i } }));
  const [l0] = createLookup(TARGET, [at(1), { ...at(2), address: { host: "127.0.0.1", port: 7000 } }], {
    kind: "find_node",
    now: 0,
  });
  const [l1] = step(l0, response(at(1), [...named("127.0.0.1", 3), ...named("::1", 2), ...named("0.0.0.0", 2)]), 1);
  assertEquals(l1.nodes.map((n) => n.node.address.host).filter((h) => h !== "10.0.0.1"), ["127.0.0.1"], "the seed");
  const fromLoopback = { ...at(2), address: { host: "127.0.0.1", port: 7000 } };
  const [l2] = step(l1, response(fromLoopback, named("127.0.0.1", 3)), 2);
  assertEquals(l2.nodes.filter((n) => n.node.address.host === "127.0.0.1").length, 4, "this host's own: all kept");
});

Deno.test("stepLookup() takes from each node only the peers it may tell of, as PEX does", () => {
  const pub = { ...at(1), address: { host: "203.0.113.5", port: 6881 } };
  const [l0] = createLookup(TARGET, [pub, at(2)], { kind: "get_peers", now: 0 });
  const named = [
    { host: "127.0.0.1", port: 22 },
    { host: "192.168.1.1", port: 80 },
    { host: "10.0.0.5", port: 8080 },
    { host: "0.0.0.0", port: 1 },
    { host: "198.51.100.7", port: 6881 },
  ];
  const [l1, a1] = step(l0, response(pub, [], { values: named }), 1);
  assertEquals(a1.filter((a) => a.type === "peers"), [{
    type: "peers",
    peers: [{ host: "198.51.100.7", port: 6881 }],
  }]);
  // a node on a private network may name others there
  const [, a2] = step(l1, response(at(2), [], { values: named }), 2);
  assertEquals(a2.filter((a) => a.type === "peers"), [{
    type: "peers",
    peers: [{ host: "192.168.1.1", port: 80 }, { host: "10.0.0.5", port: 8080 }],
  }]);
});

const sims: { name: string; mix: Mix; maxQueries: number; maxRounds: number; maxElapsed: number }[] = [
  // latencies are 10-150 ms: a few round trips
  { name: "all honest", mix: {}, maxQueries: 20, maxRounds: 4, maxElapsed: 800 },
  // dead nodes near the top hold the end until their long time-out; late ones are waited for
  { name: "10% silent, 10% late", mix: { silent: 0.1, late: 0.1 }, maxQueries: 25, maxRounds: 4, maxElapsed: 15_000 },
  {
    name: "10% silent, 10% late, 5% liars naming fake nodes next to the target",
    mix: { silent: 0.1, late: 0.1, liar: 0.05 },
    maxQueries: 50,
    maxRounds: 5,
    maxElapsed: 22_000,
  },
  { name: "30% liars", mix: { liar: 0.3 }, maxQueries: DHT_LOOKUP_MAX_QUERIES, maxRounds: 6, maxElapsed: 40_000 },
];

Deno.test("lookups on a simulated DHT of 300 nodes converge on the true K closest with bounded queries", async (t) => {
  for (const [i, s] of sims.entries()) {
    await t.step(s.name, () => {
      const seed = 100 + i;
      const rand = seeded(seed);
      const net = buildNetwork(rand, 300, s.mix);
      const figures = { queries: 0, rounds: 0, elapsed: 0 };
      for (let r = 0; r < 12; r++) {
        const target = randomBytes(rand, 20);
        const run = runLookup(net, target, "find_node");
        const where = `seed ${seed}, lookup ${r}`;
        assertEquals(run.result.closest.map((c) => c.node), trueClosest(net, target), where);
        assert([...run.perAddress.values()].every((n) => n === 1), `${where}: an address asked twice`);
        assert(run.maxInFlight <= 3, `${where}: ${run.maxInFlight} in flight`);
        figures.queries = Math.max(figures.queries, run.result.queries);
        figures.rounds = Math.max(figures.rounds, run.rounds);
        figures.elapsed = Math.max(figures.elapsed, run.elapsed);
      }
      assert(figures.queries <= s.maxQueries, `seed ${seed}: ${JSON.stringify(figures)}`);
      assert(figures.rounds <= s.maxRounds, `seed ${seed}: ${JSON.stringify(figures)}`);
      assert(figures.elapsed <= s.maxElapsed, `seed ${seed}: ${JSON.stringify(figures)}`);
    });
  }
});

Deno.test("lookups from one bootstrap node of unknown id, or from far seeds, still converge", () => {
  const rand = seeded(7);
  const net = buildNetwork(rand, 300, { silent: 0.1 });
  const router = net.nodes.find((n) => n.behaviour === "honest");
  assert(router !== undefined);
  for (let r = 0; r < 8; r++) {
    const target = randomBytes(rand, 20);
    const fromRouter = runLookup(net, target, "find_node", { seeds: [{ id: target, address: router.info.address }] });
    assertEquals(fromRouter.result.closest.map((c) => c.node), trueClosest(net, target), `lookup ${r} from the router`);
    const far = net.nodes.filter((n) => n.behaviour !== "silent").slice(0, 8).map((n) => n.info);
    const fromFar = runLookup(net, target, "find_node", { seeds: far });
    assertEquals(fromFar.result.closest.map((c) => c.node), trueClosest(net, target), `lookup ${r} from far seeds`);
    assert(fromRouter.result.queries <= 30 && fromFar.result.queries <= 30, `lookup ${r}: too many queries`);
  }
});

Deno.test("get_peers on a simulated DHT finds the peers stored at the nodes closest to the info-hash", () => {
  const rand = seeded(11);
  const net = buildNetwork(rand, 300, { silent: 0.1, late: 0.1, liar: 0.05 });
  for (let r = 0; r < 6; r++) {
    const infoHash = randomBytes(rand, 20);
    const holders = trueClosest(net, infoHash);
    const peers = holders.map((_, i) => ({ host: `192.168.${r}.${i + 1}`, port: 6881 }));
    holders.forEach((h, i) => {
      const node = net.byKey.get(formatAddress(h.address));
      assert(node !== undefined);
      storePeers(node, infoHash, [peers[i]]);
    });
    const run = runLookup(net, infoHash, "get_peers");
    const byHost = (a: PeerAddress, b: PeerAddress) => a.host.localeCompare(b.host);
    assertEquals(run.result.peers.slice().sort(byHost), peers.slice().sort(byHost), `lookup ${r}`);
    assertEquals(run.reported, run.result.peers, `lookup ${r}: every peer reported once, as found`);
    // the K closest responders, each with its own token, for announce_peer
    assertEquals(run.result.closest.map((c) => c.node), holders, `lookup ${r}`);
    assertEquals(run.result.closest.map((c) => c.token), holders.map(simToken), `lookup ${r}`);
  }
});
