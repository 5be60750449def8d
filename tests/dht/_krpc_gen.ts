/**
 * A seeded generator of valid KRPC messages, for the round-trip property and as fuzz seeds.
 * @module
 */
import { type Rand, randomBytes } from "../_gen.ts";
import type { KrpcMessage, KrpcWant } from "../../lib/dht/krpc.ts";
import type { NodeInfo } from "../../lib/dht/node_id.ts";
import { decodeCompactPeers, type PeerAddress } from "../../lib/address.ts";
import { latin1Key } from "../../lib/bencode.ts";
import {
  MAX_KRPC_NODES,
  MAX_KRPC_QUERY_NAME_BYTES,
  MAX_KRPC_TOKEN_BYTES,
  MAX_KRPC_TRANSACTION_ID_BYTES,
  MAX_KRPC_VERSION_BYTES,
  MAX_KRPC_WANT_ENTRIES,
} from "../../lib/limits.ts";

/** A random address of `family` with a port in 1–65535, its host in the text decodeKrpc() gives. */
export function genAddress(rand: Rand, family: 4 | 6): PeerAddress {
  const size = family === 4 ? 6 : 18;
  const bytes = randomBytes(rand, size);
  const port = rand() < 0.1 ? [1, 65535][rand.int(2)] : 1 + rand.int(65535);
  bytes[size - 2] = port >>> 8;
  bytes[size - 1] = port & 0xff;
  return decodeCompactPeers(bytes, family)[0]; // canonical host text
}

/** Up to MAX_KRPC_NODES random nodes of `family`. */
export function genNodes(rand: Rand, family: 4 | 6): NodeInfo[] {
  return Array.from({ length: rand.int(MAX_KRPC_NODES + 1) }, () => ({
    id: randomBytes(rand, 20),
    address: genAddress(rand, family),
  }));
}

/** A random valid message, within every limit, with each optional field present about half the time. */
export function genKrpc(rand: Rand): KrpcMessage {
  const maybe = <T>(make: () => T): T | undefined => rand() < 0.5 ? make() : undefined;
  const opt = <K extends string, T>(key: K, value: T | undefined): { [k in K]?: T } =>
    (value === undefined ? {} : { [key]: value }) as { [k in K]?: T };
  const t = randomBytes(rand, 1 + rand.int(MAX_KRPC_TRANSACTION_ID_BYTES));
  const v = opt("v", maybe(() => randomBytes(rand, rand.int(MAX_KRPC_VERSION_BYTES + 1))));
  const id20 = (): Uint8Array => randomBytes(rand, 20);
  const want = (): KrpcWant[] =>
    Array.from({ length: rand.int(MAX_KRPC_WANT_ENTRIES + 1) }, () => (rand() < 0.5 ? "n4" : "n6"));
  const ro = opt("ro", maybe(() => rand() < 0.5));
  switch (rand.int(7)) {
    case 0:
      return { y: "q", q: "ping", t, ...v, id: id20(), ...ro };
    case 1:
      return { y: "q", q: "find_node", t, ...v, id: id20(), ...ro, target: id20(), ...opt("want", maybe(want)) };
    case 2:
      return { y: "q", q: "get_peers", t, ...v, id: id20(), ...ro, infoHash: id20(), ...opt("want", maybe(want)) };
    case 3: {
      const impliedPort = maybe(() => rand() < 0.5);
      return {
        y: "q",
        q: "announce_peer",
        t,
        ...v,
        id: id20(),
        ...ro,
        infoHash: id20(),
        port: impliedPort ? rand.int(65536) : 1 + rand.int(65535),
        ...opt("impliedPort", impliedPort),
        token: randomBytes(rand, rand.int(MAX_KRPC_TOKEN_BYTES + 1)),
      };
    }
    case 4: {
      let method = latin1Key(randomBytes(rand, rand.int(MAX_KRPC_QUERY_NAME_BYTES + 1)));
      if (["ping", "find_node", "get_peers", "announce_peer"].includes(method)) method += "x";
      return { y: "q", q: "unknown", t, ...v, method };
    }
    case 5: {
      // values fill the room the nodes leave in a packet
      const nodes = opt("nodes", maybe(() => genNodes(rand, 4)));
      const nodes6 = opt("nodes6", maybe(() => genNodes(rand, 6)));
      const values = opt(
        "values",
        maybe(() => Array.from({ length: rand.int(40) }, () => genAddress(rand, rand() < 0.5 ? 4 : 6))),
      );
      return {
        y: "r",
        t,
        ...v,
        id: id20(),
        ...nodes,
        ...nodes6,
        ...values,
        ...opt("token", maybe(() => randomBytes(rand, rand.int(MAX_KRPC_TOKEN_BYTES + 1)))),
        ...opt("ip", maybe(() => genAddress(rand, rand() < 0.5 ? 4 : 6))),
      };
    }
    default: {
      const chars = "abc XYZ-é€😀\u0000";
      const message = Array.from({ length: rand.int(60) }, () => [...chars][rand.int([...chars].length)]).join("");
      const code = [201, 202, 203, 204, 0, -1, 2 ** 40][rand.int(7)];
      return { y: "e", t, ...v, code, message };
    }
  }
}
