/**
 * Mutation fuzz of the KRPC codec: damaged valid packets, random bencode dictionaries made of KRPC keys, and random
 * bytes go through decodeKrpc. Only DhtError may escape; whatever decodes stays within the limits, re-encodes
 * without error, and decodes again to the same message. Seeded by FUZZ_SEED, sized by FUZZ_ITERATIONS (the default
 * runs in about a second).
 */
import { assert, assertEquals } from "../_assert.ts";
import { fuzzIterations, fuzzSeed, type Rand, randomBytes, seeded } from "../_gen.ts";
import { genKrpc } from "../dht/_krpc_gen.ts";
import { decodeKrpc, DhtError, encodeKrpc, type KrpcMessage } from "../../lib/dht/krpc.ts";
import { type BencodeInput, encodeBencode, keyBytes } from "../../lib/bencode.ts";
import {
  MAX_KRPC_ERROR_MESSAGE_BYTES,
  MAX_KRPC_NODES,
  MAX_KRPC_TOKEN_BYTES,
  MAX_KRPC_TRANSACTION_ID_BYTES,
  MAX_KRPC_VALUES,
  MAX_KRPC_VERSION_BYTES,
  MAX_KRPC_WANT_ENTRIES,
} from "../../lib/limits.ts";

const seed = fuzzSeed();
const FIXTURES = new URL("../fixtures/krpc/", import.meta.url);

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Valid packets to damage: BEP 5's examples, packets captured from libtorrent, generated messages of every kind. */
function seedPackets(rand: Rand): Uint8Array[] {
  const out: Uint8Array[] = [
    "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
    "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
    "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
    "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:" +
    "aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
    "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
  ].map(keyBytes);
  // and what libtorrent sends (tests/fixtures/krpc)
  for (const f of Deno.readDirSync(FIXTURES)) {
    if (f.name.endsWith(".bin")) out.push(Deno.readFileSync(new URL(f.name, FIXTURES)));
  }
  while (out.length < 100) {
    try {
      out.push(encodeKrpc(genKrpc(rand)));
    } catch {
      // too big for one packet: skip
    }
  }
  return out;
}

/** One to four random mutations: truncate, flip bits, overwrite, insert, inflate or nudge a number, duplicate. */
function mutate(r: Rand, src: Uint8Array, other: Uint8Array): Uint8Array {
  let b = src.slice();
  const rounds = 1 + r.int(4);
  for (let k = 0; k < rounds; k++) {
    const at = r.int(b.length + 1);
    switch (r.int(8)) {
      case 0:
        b = b.slice(0, at);
        break;
      case 1:
        if (b.length) b[r.int(b.length)] ^= 1 << r.int(8);
        break;
      case 2:
        if (b.length) b[r.int(b.length)] = r.int(256);
        break;
      case 3:
        b = new Uint8Array([...b.subarray(0, at), ...randomBytes(r, 1 + r.int(8)), ...b.subarray(at)]);
        break;
      case 4: {
        // make a length or integer huge: find a digit and insert more digits before it
        const i = b.findIndex((x, j) => j >= at && x >= 0x30 && x <= 0x39);
        if (i >= 0) {
          b = new Uint8Array([...b.subarray(0, i), ...keyBytes(["9", "99999999", "1"][r.int(3)]), ...b.subarray(i)]);
        }
        break;
      }
      case 5: {
        // nudge a digit by one: a length off by one, a port at 0 or 65536, an id of 19 or 21 bytes
        const i = b.findIndex((x, j) => j >= at && x >= 0x30 && x <= 0x39);
        if (i >= 0) b[i] = Math.min(0x39, Math.max(0x30, b[i] + (r() < 0.5 ? -1 : 1)));
        break;
      }
      case 6: {
        const end = Math.min(b.length, at + r.int(32));
        b = new Uint8Array([...b.subarray(0, end), ...b.subarray(at, end), ...b.subarray(end)]);
        break;
      }
      case 7: {
        // splice in a slice of another packet
        const from = r.int(other.length + 1);
        const piece = other.subarray(from, from + r.int(40));
        b = new Uint8Array([...b.subarray(0, at), ...piece, ...b.subarray(at + r.int(40))]);
        break;
      }
    }
  }
  return b;
}

const KEYS = [
  "t",
  "y",
  "q",
  "a",
  "r",
  "e",
  "v",
  "ip",
  "ro",
  "id",
  "target",
  "info_hash",
  "port",
  "implied_port",
  "token",
  "want",
  "nodes",
  "nodes6",
  "values",
];
const STRINGS = ["q", "r", "e", "ping", "find_node", "get_peers", "announce_peer", "n4", "n6", "get"];

/** A random bencode value of KRPC-ish parts: known keys, known names, strings of the sizes that matter. */
function randomValue(r: Rand, depth: number): BencodeInput {
  const kind = r.int(depth > 3 ? 3 : 5);
  switch (kind) {
    case 0:
      return [0n, 1n, -1n, 65535n, 65536n, 201n, 2n ** 64n][r.int(7)];
    case 1:
      return keyBytes(STRINGS[r.int(STRINGS.length)]);
    case 2: {
      const sizes = [0, 1, 2, 6, 18, 19, 20, 21, 26, 38, 52, 76, 17, 65];
      return randomBytes(r, sizes[r.int(sizes.length)]);
    }
    case 3:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    default: {
      const d = new Map<string, BencodeInput>();
      for (let i = r.int(6); i > 0; i--) d.set(KEYS[r.int(KEYS.length)], randomValue(r, depth + 1));
      return d;
    }
  }
}

function pick<T>(r: Rand, xs: readonly T[]): T {
  return xs[r.int(xs.length)];
}

/** Compact entries (`size` bytes each) whose ports are often at the edges: 1, 65535, and now and then 0. */
function compact(r: Rand, size: number, count: number, clean = false): Uint8Array {
  const out = randomBytes(r, size * count);
  for (let i = 0; i < count; i++) {
    const port = !clean && r() < 0.03 ? 0 : pick(r, [1, 65535, 6881, 1 + r.int(65535)]);
    out[i * size + size - 2] = port >>> 8;
    out[i * size + size - 1] = port & 0xff;
  }
  // now and then a length that is off by a few bytes
  return !clean && r() < 0.1 ? out.subarray(0, Math.max(0, out.length - 1 - r.int(3))) : out;
}

/** A value for `key`: usually of the right type and size, sometimes at or past a limit, sometimes of another type. */
function fieldValue(r: Rand, key: string): BencodeInput {
  if (r() < 0.1) return randomValue(r, 3);
  switch (key) {
    case "t":
      return randomBytes(r, pick(r, [1, 2, 4, 16, 17, 0]));
    case "v":
      return randomBytes(r, pick(r, [4, 0, 16, 17]));
    case "id":
    case "target":
    case "info_hash":
      return randomBytes(r, r() < 0.8 ? 20 : pick(r, [0, 19, 21]));
    case "port":
      return pick(r, [0n, 1n, 6881n, 65535n, 65536n, -1n]);
    case "implied_port":
    case "ro":
      return pick(r, [0n, 1n, 2n, -1n]);
    case "token":
      return randomBytes(r, pick(r, [0, 4, 20, 64, 65]));
    case "want":
      return Array.from(
        { length: pick(r, [0, 1, 2, 8, 9, 12]) },
        () => r() < 0.95 ? pick(r, ["n4", "n6"]) : pick<BencodeInput>(r, ["n5", 4n]),
      );
    case "nodes":
      return compact(r, 26, pick(r, [0, 1, 8, 16, 17]));
    case "nodes6":
      return compact(r, 38, pick(r, [0, 1, 8, 16, 17]));
    case "values": {
      // long lists are mostly clean, so that their count is what gets tested
      const n = pick(r, [0, 1, 3, 50, 200, 201]);
      const clean = r() < 0.7;
      return Array.from({ length: n }, () => {
        if (clean || r() < 0.95) return compact(r, n > 50 ? 6 : pick(r, [6, 18]), 1, clean);
        return pick<BencodeInput>(r, [randomBytes(r, 12), 7n]);
      });
    }
    case "ip":
      return compact(r, pick(r, [6, 18, 5]), 1);
    case "e":
      return pick<BencodeInput>(r, [
        [pick(r, [201n, 202n, 203n, 204n, 2n ** 60n]), randomBytes(r, pick(r, [0, 10, 512, 513]))],
        [201n],
        [],
        ["201", "x"],
        randomBytes(r, 10),
      ]);
    default:
      return randomValue(r, 3);
  }
}

/** The keys of `a` each query needs, and those it may have. */
const ARGS: Record<string, { need: string[]; may: string[] }> = {
  ping: { need: ["id"], may: [] },
  find_node: { need: ["id", "target"], may: ["want"] },
  get_peers: { need: ["id", "info_hash"], may: ["want"] },
  announce_peer: { need: ["id", "info_hash", "port", "token"], may: ["implied_port"] },
};

/** A dictionary with the shape of one KRPC message, its fields drawn by fieldValue and now and then one dropped. */
function dictOf(r: Rand, need: string[], may: string[]): Map<string, BencodeInput> {
  const d = new Map<string, BencodeInput>();
  for (const k of need) if (r() < 0.97) d.set(k, fieldValue(r, k));
  for (const k of may) if (r() < 0.5) d.set(k, fieldValue(r, k));
  if (r() < 0.1) d.set(pick(r, KEYS), randomValue(r, 3)); // an extra key, or a known key of any type
  return d;
}

/** A KRPC-shaped packet: the fuzz reaches every argument's checks, not just the first ones. */
function randomPacket(r: Rand): Uint8Array {
  const y = r() < 0.95 ? pick(r, ["q", "r", "e"]) : "x";
  const top = dictOf(r, ["t", "y"], ["v"]);
  top.set("y", y);
  if (y === "q") {
    const name = r() < 0.9 ? pick(r, Object.keys(ARGS)) : "sample_infohashes";
    top.set("q", name);
    const args = ARGS[name] ?? { need: ["id"], may: ["target"] };
    if (r() < 0.98) top.set("a", dictOf(r, args.need, args.may));
    if (r() < 0.3) top.set("ro", fieldValue(r, "ro"));
  } else if (y === "r") {
    if (r() < 0.98) top.set("r", dictOf(r, ["id"], ["nodes", "nodes6", "values", "token"]));
    if (r() < 0.3) top.set("ip", fieldValue(r, "ip"));
  } else if (y === "e") {
    top.set("e", fieldValue(r, "e"));
  }
  return encodeBencode(top);
}

/** Checks what a decoded message promises: limits held, and encode then decode gives it back. */
function checkDecoded(m: KrpcMessage, i: number): void {
  const where = `seed ${seed} #${i}`;
  assert(m.t.length >= 1 && m.t.length <= MAX_KRPC_TRANSACTION_ID_BYTES, where);
  assert((m.v?.length ?? 0) <= MAX_KRPC_VERSION_BYTES, where);
  if (m.y === "r") {
    assert((m.nodes?.length ?? 0) <= MAX_KRPC_NODES && (m.nodes6?.length ?? 0) <= MAX_KRPC_NODES, where);
    assert((m.values?.length ?? 0) <= MAX_KRPC_VALUES && (m.token?.length ?? 0) <= MAX_KRPC_TOKEN_BYTES, where);
    for (const n of [...(m.nodes ?? []), ...(m.nodes6 ?? [])]) {
      assert(n.id.length === 20 && n.address.port >= 1 && n.address.port <= 65535, where);
    }
  } else if (m.y === "q" && m.q !== "unknown") {
    assert(m.id.length === 20, where);
    if (m.q === "find_node") assert(m.target.length === 20 && (m.want?.length ?? 0) <= MAX_KRPC_WANT_ENTRIES, where);
    if (m.q === "get_peers") assert(m.infoHash.length === 20 && (m.want?.length ?? 0) <= MAX_KRPC_WANT_ENTRIES, where);
    if (m.q === "announce_peer") assert(m.infoHash.length === 20, where);
    if (m.q === "announce_peer") {
      assert(m.port >= (m.impliedPort ? 0 : 1) && m.port <= 65535 && m.token.length <= MAX_KRPC_TOKEN_BYTES, where);
    }
  } else if (m.y === "e") {
    assert(new TextEncoder().encode(m.message).length <= MAX_KRPC_ERROR_MESSAGE_BYTES, where);
  }
  const again = encodeKrpc(m);
  assertEquals(decodeKrpc(again), m, where);
  assertEquals(encodeKrpc(decodeKrpc(again)), again, where);
}

/** Decodes `input`: a DhtError is a refusal; anything else thrown, or a broken promise, fails naming the seed. */
function run(what: string, i: number, input: Uint8Array): "ok" | "refused" {
  try {
    checkDecoded(decodeKrpc(input), i);
    return "ok";
  } catch (e) {
    if (e instanceof DhtError && (e.transactionId?.length ?? 0) <= MAX_KRPC_TRANSACTION_ID_BYTES) return "refused";
    throw new Error(`${what}: seed ${seed} #${i}: ${e} on ${input.length} bytes ${hex(input)}`, { cause: e });
  }
}

Deno.test("decodeKrpc() lets only DhtError out of mutated packets, and what it accepts re-encodes", () => {
  const r = seeded(seed);
  const seeds = seedPackets(r);
  let ok = 0;
  const n = fuzzIterations(6000);
  for (let i = 0; i < n; i++) {
    const input = mutate(r, seeds[r.int(seeds.length)], seeds[r.int(seeds.length)]);
    if (run("mutated", i, input) === "ok") ok++;
  }
  // a fuzz that never gets past the first checks proves little: some mutants must still decode
  if (n >= 1000) assert(ok > n / 20 && ok < n - n / 20, `seed ${seed}: ${ok} of ${n} mutants decoded`);
});

Deno.test("decodeKrpc() lets only DhtError out of random KRPC-shaped dictionaries", () => {
  const r = seeded(seed + 1);
  let ok = 0;
  const n = fuzzIterations(6000);
  for (let i = 0; i < n; i++) if (run("shaped", i, randomPacket(r)) === "ok") ok++;
  if (n >= 1000) assert(ok > n / 20 && ok < n - n / 20, `seed ${seed + 1}: ${ok} of ${n} shaped packets decoded`);
});

Deno.test("decodeKrpc() lets only DhtError out of random bytes", () => {
  const r = seeded(seed + 2);
  for (let i = 0; i < fuzzIterations(3000); i++) run("random", i, randomBytes(r, r.int(80)));
});
