/**
 * Mutation fuzz of the ut_pex codec (BEP 11): generated messages round-trip exactly; random bytes and damaged
 * payloads (truncated, bits flipped, string lengths inflated or shrunk, bytes spliced in) let only WireError out, and
 * whatever decodes re-encodes to bytes that decode to the same message. Seeded by FUZZ_SEED, sized by FUZZ_ITERATIONS.
 */
import { assertEquals } from "../_assert.ts";
import { fuzzIterations, fuzzSeed, type Rand, randomBytes, seeded } from "../_gen.ts";
import { decodePex, encodePex, type PexMessage } from "../../lib/wire/pex.ts";
import { WireError } from "../../lib/wire/frame.ts";
import { PEX_MAX_RECEIVED_ENTRIES } from "../../lib/limits.ts";
import { decodeCompactPeers, type PeerAddress } from "../../lib/address.ts";

const seed = fuzzSeed();

function hex(b: Uint8Array): string {
  return [...b.subarray(0, 64)].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Decodes, letting a WireError through as "refused" and turning anything else into a failure naming the seed. */
function decodeOnly(i: number, b: Uint8Array): PexMessage | undefined {
  try {
    return decodePex(b);
  } catch (e) {
    if (e instanceof WireError) return undefined;
    throw new Error(`decodePex: seed ${seed} #${i}: unexpected ${e} on ${b.length} bytes ${hex(b)}`, { cause: e });
  }
}

function genPeer(rand: Rand, family: 4 | 6): PeerAddress {
  const port = 1 + rand.int(0xffff);
  if (family === 4) return { host: [0, 0, 0, 0].map(() => rand.int(256)).join("."), port };
  // RFC 5952 text, as the decoder writes it, with runs of zero groups now and then
  const b = new Uint8Array(18);
  for (let k = 0; k < 16; k++) b[k] = rand() < 0.4 ? 0 : rand.int(256);
  b[16] = port >> 8;
  b[17] = port & 0xff;
  return decodeCompactPeers(b, 6)[0];
}

function genMessage(rand: Rand): PexMessage {
  const count = (): number => rand() < 0.01 ? PEX_MAX_RECEIVED_ENTRIES / 2 : rand.int(4);
  const peers = (family: 4 | 6): PeerAddress[] => Array.from({ length: count() }, () => genPeer(rand, family));
  const flags = (n: number): number[] => rand() < 0.5 ? [] : Array.from({ length: n }, () => rand.int(256));
  const added = peers(4);
  const added6 = peers(6);
  return {
    added,
    addedFlags: flags(added.length),
    added6,
    added6Flags: flags(added6.length),
    dropped: peers(4),
    dropped6: peers(6),
  };
}

/** Damages `b`: truncate, flip a bit, overwrite a byte, bump a string length digit, splice in random bytes. */
function mutate(rand: Rand, b: Uint8Array): Uint8Array {
  let out = b.slice();
  for (let r = 1 + rand.int(3); r > 0; r--) {
    switch (rand.int(5)) {
      case 0:
        out = out.slice(0, rand.int(out.length + 1));
        break;
      case 1:
        if (out.length > 0) out[rand.int(out.length)] ^= 1 << rand.int(8);
        break;
      case 2:
        if (out.length > 0) out[rand.int(out.length)] = rand.int(256);
        break;
      case 3: {
        // a digit of a string length: the lengths are what makes a compact list fit or not
        for (let tries = 0; tries < 16 && out.length > 0; tries++) {
          const k = rand.int(Math.min(out.length, 64)); // the keys and lengths sit near the start
          if (out[k] < 0x30 || out[k] > 0x39) continue;
          out[k] = 0x30 + rand.int(10);
          break;
        }
        break;
      }
      default: {
        const at = rand.int(out.length + 1);
        const extra = randomBytes(rand, 1 + rand.int(8));
        const grown = new Uint8Array(out.length + extra.length);
        grown.set(out.subarray(0, at));
        grown.set(extra, at);
        grown.set(out.subarray(at), at + extra.length);
        out = grown;
      }
    }
  }
  return out;
}

Deno.test("encodePex() and decodePex() round-trip generated messages exactly", () => {
  const rand = seeded(seed);
  const n = fuzzIterations(2_000);
  for (let i = 0; i < n; i++) {
    const m = genMessage(rand);
    const b = encodePex(m);
    assertEquals(decodePex(b), m, `seed ${seed} #${i}`);
    assertEquals(encodePex(decodePex(b)), b, `seed ${seed} #${i}`);
  }
});

Deno.test("decodePex() lets only WireError out, and what decodes survives a round trip", () => {
  const rand = seeded(seed ^ 0x9e11);
  const n = fuzzIterations(10_000);
  const seen = { decoded: 0, refused: 0 };
  for (let i = 0; i < n; i++) {
    const b = rand() < 0.1 ? randomBytes(rand, rand.int(64)) : mutate(rand, encodePex(genMessage(rand)));
    const m = decodeOnly(i, b);
    seen[m === undefined ? "refused" : "decoded"]++;
    if (m === undefined) continue;
    const again = encodePex(m);
    assertEquals(decodePex(again), m, `seed ${seed} #${i}: ${hex(b)}`);
  }
  if (n >= 1000) assertEquals(seen.decoded > 0 && seen.refused > 0, true, `seed ${seed}: ${JSON.stringify(seen)}`);
});
