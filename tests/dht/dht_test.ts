/**
 * The DHT runtime on loopback: btfetch nodes bootstrap from one another, announce and find peers, save and reload
 * their state. Every node binds 127.0.0.1 only and names only loopback bootstrap nodes.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { Dht } from "../../lib/dht/dht.ts";
import { loadDhtState } from "../../lib/dht/state_file.ts";
import type { PeerAddress } from "../../lib/address.ts";

const LOOPBACK = { v4: "127.0.0.1", v6: null } as const;

async function node(bootstrap: string[], statePath: string | null = null): Promise<Dht> {
  return await Dht.open({ port: 0, bootstrap, statePath, bind: LOOPBACK });
}

Deno.test("Dht: a node announced through a loopback DHT of btfetch nodes is found by another", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-dht-" });
  const nodes: Dht[] = [];
  try {
    const first = await node([]);
    nodes.push(first);
    const boot = [`127.0.0.1:${first.port}`];
    for (let i = 0; i < 10; i++) nodes.push(await node(boot));
    await new Promise((r) => setTimeout(r, 500)); // bootstraps settle
    const infoHash = crypto.getRandomValues(new Uint8Array(20));
    const seeder = nodes[3];
    const announced = await seeder.findPeers(infoHash, { announcePort: 51413, onPeers: () => {} });
    assert(announced.answered > 0, `announce lookup got no answer: ${JSON.stringify(announced)}`);
    const leecher = await node(boot, `${dir}/state.json`);
    nodes.push(leecher);
    const found: PeerAddress[] = [];
    const started = performance.now();
    const r = await leecher.findPeers(infoHash, { onPeers: (p) => found.push(...p) });
    const ms = performance.now() - started;
    assert(found.some((p) => p.host === "127.0.0.1" && p.port === 51413), `not found: ${JSON.stringify(found)}`);
    assert(r.queries <= 40, `too many queries: ${r.queries}`);
    assert(ms < 3_000, `lookup took ${Math.round(ms)} ms`);
    await leecher.close();
    nodes.pop();
    const saved = loadDhtState(`${dir}/state.json`);
    assert(saved !== null && saved.nodes.length > 0, "no state saved");
    assertEquals(saved.id, leecher.id);
    // a restart reuses the id and starts warm: with no bootstrap at all it still finds the peer
    const again = await node([], `${dir}/state.json`);
    nodes.push(again);
    assertEquals(again.id, leecher.id);
    const found2: PeerAddress[] = [];
    await again.findPeers(infoHash, { onPeers: (p) => found2.push(...p) });
    assert(found2.some((p) => p.port === 51413), "a warm start found nothing");
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Dht: with the default binds (0.0.0.0 and ::) one port answers IPv4 and IPv6 nodes, and both are reached", async () => {
  // the wildcard node names no bootstrap router at all (an empty list): nothing leaves loopback
  const wild = await Dht.open({ port: 0, bootstrap: [], statePath: null });
  const peers: Dht[] = [];
  try {
    const v4 = await node([`127.0.0.1:${wild.port}`]);
    peers.push(v4);
    let v6: Dht | null = null;
    try {
      v6 = await Dht.open({
        port: 0,
        bootstrap: [`[::1]:${wild.port}`],
        statePath: null,
        bind: { v4: null, v6: "::1" },
      });
      peers.push(v6);
    } catch { /* no IPv6 loopback on this machine: the IPv4 half is still checked */ }
    await new Promise((r) => setTimeout(r, 300)); // their bootstraps ask the wildcard node
    assert(v4.stats().good >= 1, `the IPv4 node got no answer from the wildcard node: ${JSON.stringify(v4.stats())}`);
    if (v6) assert(v6.stats().good >= 1, `the IPv6 node got no answer: ${JSON.stringify(v6.stats())}`);
    // and the wildcard node reaches each of them in turn (its own lookups query the nodes that pinged it)
    const found = await wild.findPeers(crypto.getRandomValues(new Uint8Array(20)), { onPeers: () => {} });
    assert(found.answered >= (v6 ? 2 : 1), `the wildcard node's lookup: ${JSON.stringify(found)}`);
  } finally {
    await Promise.all([wild, ...peers].map((n) => n.close()));
  }
});

Deno.test("Dht: a node survives hostile datagrams and keeps answering", async () => {
  const a = await node([]);
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  try {
    const target = { hostname: "127.0.0.1", port: a.port, transport: "udp" as const };
    const junk = [
      new Uint8Array(0),
      new Uint8Array(3000).fill(0x64),
      new TextEncoder().encode("d1:t2:aa1:y1:q1:q4:pinge"), // no id: answered 203
      new TextEncoder().encode("d1:t2:aa1:y1:q1:q9:get_peers1:ad2:id20:abcdefghij0123456789ee"), // no info_hash
      new TextEncoder().encode("l".repeat(5000)),
      crypto.getRandomValues(new Uint8Array(1400)),
    ];
    for (let i = 0; i < 300; i++) await sock.send(junk[i % junk.length], target);
    const ping = new TextEncoder().encode("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:zz1:y1:qe");
    // after the junk (and the budget it used up refills), a well-formed query is answered
    await new Promise((r) => setTimeout(r, 2_500));
    await sock.send(ping, target);
    const buf = await Promise.race([
      sock.receive().then(([b]) => b),
      new Promise<null>((r) => setTimeout(() => r(null), 2_000)),
    ]);
    // drain until the ping's answer (203 errors for the malformed queries may come first)
    let got = buf;
    const text = () => got ? new TextDecoder("latin1").decode(got) : "";
    for (let i = 0; i < 400 && got && !text().includes("1:t2:zz"); i++) {
      got = await Promise.race([
        sock.receive().then(([b]) => b),
        new Promise<null>((r) => setTimeout(() => r(null), 2_000)),
      ]);
    }
    assert(got !== null && text().includes("1:t2:zz") && text().includes("1:y1:r"), "no answer to a ping after junk");
    // (the rate limit itself is proven on a virtual clock in node_test.ts: loopback UDP drops part of a burst)
  } finally {
    sock.close();
    await a.close();
  }
});
