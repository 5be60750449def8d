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
import { DHT_MAX_PEERS_PER_INFOHASH, DHT_MAX_PEERS_PER_REPLY, DHT_MAX_STORED_INFOHASHES } from "../../lib/limits.ts";

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
    storePeer(store, { infoHash, address: v4(1) }, 1000 + i);
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
