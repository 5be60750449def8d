import { assert, assertEquals } from "../_assert.ts";
import { seeded } from "../_gen.ts";
import { formatAddress, type PeerAddress } from "../../lib/address.ts";
import {
  createPeerStore,
  expirePeers,
  getPeers,
  PEER_TTL_MS,
  peerStoreSize,
  storePeer,
} from "../../lib/dht/peer_store.ts";
import {
  DHT_MAX_PEERS_PER_INFOHASH,
  DHT_MAX_PEERS_PER_REPLY,
  DHT_MAX_PORTS_PER_IP,
  DHT_MAX_STORED_INFOHASHES,
  DHT_MAX_STORED_PER_IP,
} from "../../lib/limits.ts";

const H1 = new Uint8Array(20).fill(1);
const H2 = new Uint8Array(20).fill(2);
const v4 = (i: number): PeerAddress => ({ host: `10.0.${i >> 8}.${i & 255}`, port: 6881 });
const first = () => 0;

function hosts(peers: readonly PeerAddress[]): string[] {
  return peers.map(formatAddress).sort();
}

Deno.test("storePeer() refuses what cannot be a peer", async (t) => {
  const rows: [string, Uint8Array, PeerAddress][] = [
    ["19-byte info-hash", new Uint8Array(19), v4(1)],
    ["port 0", H1, { host: "10.0.0.1", port: 0 }],
    ["port 65536", H1, { host: "10.0.0.1", port: 65536 }],
    ["host name", H1, { host: "example.org", port: 1 }],
  ];
  for (const [name, infoHash, address] of rows) {
    await t.step(name, () => {
      const store = createPeerStore();
      assertEquals(storePeer(store, { infoHash, address }, 0), false);
      assertEquals(peerStoreSize(store), { infoHashes: 0, peers: 0 });
    });
  }
});

Deno.test("getPeers() answers per info-hash and per address family", () => {
  const store = createPeerStore();
  const six = { host: "2001:db8::7", port: 51413 };
  const mapped = { host: "::ffff:10.9.9.9", port: 1 };
  for (const address of [v4(1), v4(2), six, mapped]) storePeer(store, { infoHash: H1, address }, 0);
  storePeer(store, { infoHash: H2, address: v4(3) }, 0);
  assertEquals(hosts(getPeers(store, H1, { now: 1, family: 4, random: first })), hosts([v4(1), v4(2), mapped]));
  assertEquals(getPeers(store, H1, { now: 1, family: 6, random: first }), [six]);
  assertEquals(getPeers(store, H2, { now: 1, family: 4, random: first }), [v4(3)]);
  assertEquals(getPeers(store, new Uint8Array(20), { now: 1, family: 4, random: first }), []);
});

Deno.test("storePeer() refreshes a peer that announces again, and entries expire after PEER_TTL_MS", () => {
  const store = createPeerStore();
  storePeer(store, { infoHash: H1, address: v4(1) }, 0);
  storePeer(store, { infoHash: H1, address: v4(2) }, 1000);
  storePeer(store, { infoHash: H1, address: v4(1) }, 2000); // refreshed
  assertEquals(peerStoreSize(store).peers, 2);
  assertEquals(hosts(getPeers(store, H1, { now: PEER_TTL_MS + 1000, family: 4, random: first })), hosts([v4(1)]));
  assertEquals(getPeers(store, H1, { now: PEER_TTL_MS + 2000, family: 4, random: first }), []);
  assertEquals(peerStoreSize(store), { infoHashes: 0, peers: 0 });
});

Deno.test("storePeer() keeps at most N peers per info-hash and M info-hashes, evicting the oldest", () => {
  const store = createPeerStore();
  for (let i = 0; i < DHT_MAX_PEERS_PER_INFOHASH + 5; i++) storePeer(store, { infoHash: H1, address: v4(i) }, i);
  assertEquals(peerStoreSize(store).peers, DHT_MAX_PEERS_PER_INFOHASH);
  const held = [...(store.hashes.values().next().value?.values() ?? [])].map((p) => p.address);
  assertEquals(held[0], v4(5)); // 0-4 went first
  for (let i = 0; i < DHT_MAX_STORED_INFOHASHES + 1; i++) {
    const infoHash = new Uint8Array(20);
    new DataView(infoHash.buffer).setUint32(0, i + 1000);
    storePeer(store, { infoHash, address: v4(2000 + i) }, 1000 + i);
  }
  assertEquals(peerStoreSize(store).infoHashes, DHT_MAX_STORED_INFOHASHES);
  // H1 was announced to longest ago: gone
  assertEquals(getPeers(store, H1, { now: 5000, family: 4, random: first }), []);
  // an announce to an info-hash keeps it: the next eviction takes the oldest other one
  const second = new Uint8Array(20);
  new DataView(second.buffer).setUint32(0, 1001);
  storePeer(store, { infoHash: second, address: v4(2) }, 9000);
  storePeer(store, { infoHash: H2, address: v4(2) }, 9001);
  assertEquals(getPeers(store, second, { now: 9002, family: 4, random: first }).length, 2);
  const third = new Uint8Array(20);
  new DataView(third.buffer).setUint32(0, 1002);
  assertEquals(getPeers(store, third, { now: 9002, family: 4, random: first }), []);
});

Deno.test("getPeers() samples at most DHT_MAX_PEERS_PER_REPLY distinct peers, uniformly", () => {
  const store = createPeerStore();
  for (let i = 0; i < DHT_MAX_PEERS_PER_INFOHASH; i++) storePeer(store, { infoHash: H1, address: v4(i) }, 0);
  const rand = seeded(8);
  const counts = new Map<string, number>();
  const rounds = 400;
  for (let r = 0; r < rounds; r++) {
    const got = getPeers(store, H1, { now: 1, family: 4, random: rand, max: 1000 });
    assertEquals(got.length, DHT_MAX_PEERS_PER_REPLY);
    assertEquals(new Set(got.map(formatAddress)).size, got.length);
    for (const p of got) counts.set(formatAddress(p), (counts.get(formatAddress(p)) ?? 0) + 1);
  }
  // each peer is in about half of the samples
  for (let i = 0; i < DHT_MAX_PEERS_PER_INFOHASH; i++) {
    const n = counts.get(formatAddress(v4(i))) ?? 0;
    assert(n > rounds * 0.35 && n < rounds * 0.65, `seed 8: peer ${i} in ${n} of ${rounds} samples`);
  }
  assertEquals(getPeers(store, H1, { now: 1, family: 4, random: rand, max: 3 }).length, 3);
  // a random source returning 1 - epsilon stays in range
  assertEquals(getPeers(store, H1, { now: 1, family: 4, random: () => 0.9999999999, max: 5 }).length, 5);
});

Deno.test("expirePeers() drops every expired entry and empty info-hash", () => {
  const store = createPeerStore();
  storePeer(store, { infoHash: H1, address: v4(1) }, 0);
  storePeer(store, { infoHash: H1, address: v4(2) }, 10);
  storePeer(store, { infoHash: H2, address: v4(3) }, 5);
  assertEquals(expirePeers(store, PEER_TTL_MS + 5), 2);
  assertEquals(peerStoreSize(store), { infoHashes: 1, peers: 1 });
  assertEquals(expirePeers(store, PEER_TTL_MS + 10), 1);
  assertEquals(peerStoreSize(store), { infoHashes: 0, peers: 0 });
});

Deno.test("storePeer(): one host announcing port after port keeps its newest few and pushes nobody out", () => {
  const store = createPeerStore();
  for (let i = 0; i < 50; i++) storePeer(store, { infoHash: H1, address: v4(i) }, i);
  const flooder = "192.0.2.66";
  for (let port = 1; port <= 1000; port++) {
    storePeer(store, { infoHash: H1, address: { host: flooder, port } }, 100 + port);
  }
  const held = getPeers(store, H1, { now: 2000, family: 4, random: first, max: 1000 });
  assertEquals(held.length, DHT_MAX_PEERS_PER_REPLY); // a reply's worth: look at the store itself
  const all = [...(store.hashes.get("01".repeat(20))?.values() ?? [])].map((p) => p.address);
  assertEquals(all.length, 50 + DHT_MAX_PORTS_PER_IP);
  for (let i = 0; i < 50; i++) assert(all.some((a) => a.host === v4(i).host), `peer ${i} was pushed out`);
  const ports = all.filter((a) => a.host === flooder).map((a) => a.port).sort((a, b) => a - b);
  assertEquals(ports, Array.from({ length: DHT_MAX_PORTS_PER_IP }, (_, i) => 1001 - DHT_MAX_PORTS_PER_IP + i));
  assertEquals(store.perHost.get(flooder), DHT_MAX_PORTS_PER_IP);
  // a known port announcing again is a refresh, not a new port
  storePeer(store, { infoHash: H1, address: { host: flooder, port: 1000 } }, 5000);
  assertEquals(store.perHost.get(flooder), DHT_MAX_PORTS_PER_IP);
});

Deno.test("storePeer(): one host over many info-hashes stops at DHT_MAX_STORED_PER_IP, until its entries expire", () => {
  const store = createPeerStore();
  for (let i = 0; i < 100; i++) {
    const infoHash = new Uint8Array(20).fill(0xaa);
    new DataView(infoHash.buffer).setUint32(0, i);
    storePeer(store, { infoHash, address: v4(i) }, 0);
  }
  const flooder = { host: "2001:db8::66", port: 6881 };
  let stored = 0;
  for (let i = 0; i < 2 * DHT_MAX_STORED_INFOHASHES; i++) {
    const infoHash = new Uint8Array(20);
    new DataView(infoHash.buffer).setUint32(0, i);
    if (storePeer(store, { infoHash, address: flooder }, 10 + i)) stored++;
  }
  assertEquals(stored, DHT_MAX_STORED_PER_IP);
  assertEquals(peerStoreSize(store), { infoHashes: 100 + DHT_MAX_STORED_PER_IP, peers: 100 + DHT_MAX_STORED_PER_IP });
  // a stored one refreshes at the cap
  const firstOfFlooder = new Uint8Array(20);
  assertEquals(storePeer(store, { infoHash: firstOfFlooder, address: flooder }, PEER_TTL_MS), true);
  // once the others expire, the host may announce again
  expirePeers(store, PEER_TTL_MS + 10 + 2 * DHT_MAX_STORED_INFOHASHES);
  assertEquals(store.perHost.get(flooder.host), 1);
  const fresh = new Uint8Array(20).fill(0xbb);
  assertEquals(storePeer(store, { infoHash: fresh, address: flooder }, PEER_TTL_MS + 1), true);
  assertEquals(store.perHost.get(flooder.host), 2);
});

Deno.test("PeerStore.perHost matches the entries through every kind of removal (seeded, small limits)", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const rand = seeded(seed);
    const store = createPeerStore({ maxPeersPerHash: 6, maxHashes: 5, maxPortsPerHost: 2, maxPerHost: 4 });
    let now = 0;
    for (let step = 0; step < 3000; step++) {
      now += Math.floor(rand() * PEER_TTL_MS / 200);
      const infoHash = new Uint8Array(20).fill(Math.floor(rand() * 8));
      const r = rand();
      if (r < 0.8) {
        const address = { host: `10.0.0.${Math.floor(rand() * 6)}`, port: 1 + Math.floor(rand() * 4) };
        storePeer(store, { infoHash, address }, now);
      } else if (r < 0.95) {
        getPeers(store, infoHash, { now, family: 4, random: rand });
      } else {
        expirePeers(store, now);
      }
      const counted = new Map<string, number>();
      for (const peers of store.hashes.values()) {
        const ports = new Map<string, number>();
        for (const p of peers.values()) {
          counted.set(p.address.host, (counted.get(p.address.host) ?? 0) + 1);
          ports.set(p.address.host, (ports.get(p.address.host) ?? 0) + 1);
        }
        for (const [h, n] of ports) assert(n <= 2, `seed ${seed} step ${step}: ${n} ports of ${h} in one swarm`);
        assert(peers.size <= 6, `seed ${seed} step ${step}: ${peers.size} peers in one swarm`);
      }
      assertEquals(store.perHost, counted, `seed ${seed} step ${step}`);
      for (const n of counted.values()) assert(n <= 4, `seed ${seed} step ${step}: a host has ${n} entries`);
      assert(store.hashes.size <= 5, `seed ${seed} step ${step}: ${store.hashes.size} info-hashes`);
    }
  }
});
