/**
 * Mutation fuzz of the peer wire codecs: random bytes and damaged valid frames go through readFrame, decodeMessage,
 * decodeHandshake and decodeExtHandshake. Only WireError may escape, and whatever decodes must re-encode to the same
 * bytes. Seeded by FUZZ_SEED, sized by FUZZ_ITERATIONS (the default runs in about 2 s).
 */
import { assertEquals } from "../_assert.ts";
import { fuzzIterations, fuzzSeed, type Rand, randomBytes, seeded } from "../_gen.ts";
import { readFrame, WireError } from "../../lib/wire/frame.ts";
import { decodeHandshake, encodeHandshake, HANDSHAKE_BYTES } from "../../lib/wire/handshake.ts";
import { decodeMessage, encodeMessage, type Message } from "../../lib/wire/messages.ts";
import { decodeExtHandshake, encodeExtHandshake } from "../../lib/wire/extension.ts";
import { MAX_BLOCK_BYTES } from "../../lib/limits.ts";

const seed = fuzzSeed();

function be32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** Runs `fn`, letting a WireError through as "refused" and turning anything else into a failure naming the seed. */
function only<T>(what: string, i: number, input: Uint8Array, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (e instanceof WireError) return undefined;
    const head = [...input.subarray(0, 48)].map((b) => b.toString(16).padStart(2, "0")).join("");
    throw new Error(`${what}: seed ${seed} #${i}: unexpected ${e} on ${input.length} bytes ${head}`, { cause: e });
  }
}

function genMessage(rand: Rand): Message {
  const u32 = (): number => rand() < 0.2 ? 0xffff_ffff - rand.int(3) : rand.int(0x1_0000_0000);
  const bytes = (max: number, min = 0): Uint8Array => randomBytes(rand, min + rand.int(max - min + 1));
  switch (rand.int(18)) {
    case 0:
      return { type: "keep-alive" };
    case 1:
      return { type: "choke" };
    case 2:
      return { type: "unchoke" };
    case 3:
      return { type: "interested" };
    case 4:
      return { type: "not-interested" };
    case 5:
      return { type: "have", index: u32() };
    case 6:
      return { type: "bitfield", bits: bytes(64, 1) };
    case 7:
      return { type: "request", index: u32(), begin: u32(), length: u32() };
    case 8:
      return { type: "piece", index: u32(), begin: u32(), block: bytes(rand() < 0.02 ? MAX_BLOCK_BYTES : 64) };
    case 9:
      return { type: "cancel", index: u32(), begin: u32(), length: u32() };
    case 10:
      return { type: "port", port: rand.int(0x10000) };
    case 11:
      return { type: "suggest", index: u32() };
    case 12:
      return { type: "have-all" };
    case 13:
      return { type: "have-none" };
    case 14:
      return { type: "reject", index: u32(), begin: u32(), length: u32() };
    case 15:
      return { type: "allowed-fast", index: u32() };
    case 16:
      return { type: "extended", id: rand.int(256), payload: bytes(64) };
    default:
      return { type: "unknown", id: [10, 11, 12, 18, 19, 21, 100, 255][rand.int(8)], payload: bytes(16) };
  }
}

/** Damages `b`: truncate, flip bits, overwrite a byte, inflate or shrink the length prefix, splice in random bytes. */
function mutate(rand: Rand, b: Uint8Array): Uint8Array {
  let out = b.slice();
  const rounds = 1 + rand.int(3);
  for (let r = 0; r < rounds; r++) {
    switch (rand.int(6)) {
      case 0:
        out = out.slice(0, rand.int(out.length + 1));
        break;
      case 1:
        if (out.length > 0) out[rand.int(out.length)] ^= 1 << rand.int(8);
        break;
      case 2:
        if (out.length > 0) out[rand.int(out.length)] = rand.int(256);
        break;
      case 3:
        if (out.length >= 4) {
          const len = new DataView(out.buffer, out.byteOffset).getUint32(0);
          const next =
            [len + 1 + rand.int(8), Math.max(0, len - 1 - rand.int(8)), rand.int(0x1_0000_0000)][rand.int(3)];
          out.set(be32(next >>> 0), 0);
        }
        break;
      case 4: {
        const at = rand.int(out.length + 1);
        out = new Uint8Array([...out.subarray(0, at), ...randomBytes(rand, 1 + rand.int(8)), ...out.subarray(at)]);
        break;
      }
      default:
        if (out.length > 4) out[4] = rand.int(256); // another message id
    }
  }
  return out;
}

const streamSeen = { decoded: 0, refused: 0 };

/** Reads every frame of `stream`, decoding each; a decoded message must re-encode to its frame's bytes. */
function checkStream(i: number, stream: Uint8Array): void {
  let at = 0;
  for (;;) {
    const r = only("readFrame", i, stream, () => readFrame(stream, at));
    if (r === undefined || r.kind === "need") return;
    const m = only("decodeMessage", i, r.payload, () => decodeMessage(r.payload, at + 4));
    streamSeen[m === undefined ? "refused" : "decoded"]++;
    if (m !== undefined) {
      assertEquals(encodeMessage(m), stream.subarray(at, r.next), `re-encode ${m.type}: seed ${seed} #${i}`);
    }
    at = r.next;
  }
}

Deno.test("readFrame() and decodeMessage() let only WireError out, and what decodes re-encodes exactly", () => {
  const rand = seeded(seed);
  const n = fuzzIterations(60_000);
  for (let i = 0; i < n; i++) {
    const kind = rand.int(3);
    if (kind === 0) {
      const b = randomBytes(rand, rand.int(64));
      if (b.length >= 4 && rand() < 0.7) b.set(be32(rand.int(b.length - 3)), 0); // a plausible prefix
      checkStream(i, b);
    } else {
      const frames = Array.from({ length: 1 + rand.int(3) }, () => encodeMessage(genMessage(rand)));
      const joined = new Uint8Array(frames.flatMap((f) => [...f]));
      checkStream(i, kind === 1 ? joined : mutate(rand, joined));
    }
  }
  if (n >= 1000) {
    assertEquals(streamSeen.decoded > 0 && streamSeen.refused > 0, true, `seed ${seed}: ${JSON.stringify(streamSeen)}`);
  }
});

Deno.test("decodeHandshake() lets only WireError out, and what decodes re-encodes exactly", () => {
  const rand = seeded(seed ^ 0x5eed);
  const n = fuzzIterations(50_000);
  const seen = { handshake: 0, need: 0, refused: 0 };
  for (let i = 0; i < n; i++) {
    const good = encodeHandshake({
      reserved: randomBytes(rand, 8),
      infoHash: randomBytes(rand, 20),
      peerId: randomBytes(rand, 20),
    });
    const b = rand() < 0.2 ? randomBytes(rand, rand.int(80)) : mutate(rand, good);
    const r = only("decodeHandshake", i, b, () => decodeHandshake(b, 0));
    seen[r?.kind ?? "refused"]++;
    if (r?.kind === "handshake") {
      assertEquals(encodeHandshake(r.handshake), b.subarray(0, HANDSHAKE_BYTES), `seed ${seed} #${i}`);
    } else if (r?.kind === "need") {
      assertEquals(r.bytes, HANDSHAKE_BYTES - b.length, `seed ${seed} #${i}`);
    }
  }
  if (n >= 1000) assertEquals(Object.values(seen).every((c) => c > 0), true, `seed ${seed}: ${JSON.stringify(seen)}`);
});

Deno.test("decodeExtHandshake() lets only WireError out, and what decodes survives a round trip", () => {
  const rand = seeded(seed ^ 0xe87);
  const n = fuzzIterations(15_000);
  let decoded = 0;
  const names = ["ut_metadata", "ut_pex", "lt_donthave", "upload_only", "ut_holepunch"];
  for (let i = 0; i < n; i++) {
    const m = new Map<string, number>();
    for (let k = rand.int(4); k > 0; k--) m.set(names[rand.int(names.length)], rand.int(256));
    const good = encodeExtHandshake({
      m,
      v: rand() < 0.5 ? "btfetch 0.1" : undefined,
      p: rand() < 0.5 ? 1 + rand.int(0xffff) : undefined,
      reqq: rand() < 0.5 ? 1 + rand.int(1000) : undefined,
      metadataSize: rand() < 0.5 ? 1 + rand.int(1 << 20) : undefined,
      yourip: rand() < 0.5 ? randomBytes(rand, rand() < 0.5 ? 4 : 16) : undefined,
    });
    const b = rand() < 0.1 ? randomBytes(rand, rand.int(40)) : mutate(rand, good);
    const h = only("decodeExtHandshake", i, b, () => decodeExtHandshake(b));
    if (h === undefined) continue;
    decoded++;
    assertEquals(decodeExtHandshake(encodeExtHandshake(h)), h, `seed ${seed} #${i}`);
  }
  if (n >= 1000) assertEquals(decoded > 0 && decoded < n, true, `seed ${seed}: ${decoded} of ${n} decoded`);
});
