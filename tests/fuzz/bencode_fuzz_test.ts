/**
 * Mutation fuzz of the bencode decoder: damaged canonical encodings (truncated, bit-flipped, lengths inflated, bytes
 * inserted, deleted or duplicated) go through decodeBencode, strict and lenient. Only BencodeError may escape; what
 * decodes strictly must re-encode to the same bytes, and spans must lie inside the input. Seeded by FUZZ_SEED, sized
 * by FUZZ_ITERATIONS (each test runs that many inputs; the defaults take about a second each).
 */
import { assert, assertEquals } from "../_assert.ts";
import { fuzzIterations, fuzzSeed, type Rand, randomBytes, seeded } from "../_gen.ts";
import { BencodeError, type BencodeValue, decodeBencode, encodeBencode, latin1Key } from "../../lib/bencode.ts";

const seed = fuzzSeed();

function gen(r: Rand, depth: number): BencodeValue {
  switch (r.int(depth > 0 ? 4 : 2)) {
    case 0:
      return r.int(3) === 0
        ? BigInt(r.int(2 ** 31)) ** BigInt(1 + r.int(3)) * (r.int(2) ? 1n : -1n)
        : BigInt(r.int(100));
    case 1:
      return randomBytes(r, r.int(6) === 0 ? r.int(200) : r.int(10));
    case 2:
      return Array.from({ length: r.int(5) }, () => gen(r, depth - 1));
    default: {
      const m = new Map<string, BencodeValue>();
      for (let n = r.int(5); n > 0; n--) m.set(latin1Key(randomBytes(r, r.int(5))), gen(r, depth - 1));
      return m;
    }
  }
}

/** One to four random mutations. */
function mutate(r: Rand, src: Uint8Array): Uint8Array {
  let b = src.slice();
  for (let rounds = 1 + r.int(4); rounds > 0; rounds--) {
    const at = r.int(b.length + 1);
    if (r.int(64) === 0) { // now and then, nest deeper than any limit: a run of `l` or `d`, maybe closed
      const depth = [70, 1001, 5000][r.int(3)];
      const open = new Uint8Array(depth).fill(r.int(2) ? 0x6c : 0x64);
      const close = new Uint8Array(r.int(2) ? depth : 0).fill(0x65);
      b = new Uint8Array([...b.subarray(0, at), ...open, ...close, ...b.subarray(at)]);
      continue;
    }
    switch (r.int(7)) {
      case 0: // truncate
        b = b.slice(0, at);
        break;
      case 1: // flip a bit
        if (b.length) b[r.int(b.length)] ^= 1 << r.int(8);
        break;
      case 2: { // insert random or structural bytes
        const ins = r.int(2)
          ? randomBytes(r, 1 + r.int(4))
          : new TextEncoder().encode(["e", "l", "d", "i", "0", ":", "-"][r.int(7)]);
        b = new Uint8Array([...b.subarray(0, at), ...ins, ...b.subarray(at)]);
        break;
      }
      case 3: // delete
        b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + 1 + r.int(3))]);
        break;
      case 4: { // inflate a digit run (string length or integer)
        const text = latin1Key(b);
        const runs = [...text.matchAll(/\d+/g)];
        if (runs.length === 0) break;
        const m = runs[r.int(runs.length)];
        const bigger = String([Number(m[0]) + 1, Number(m[0]) * 10, 2 ** 31, 2 ** 53, 1e20][r.int(5)]);
        const next = text.slice(0, m.index) + bigger + text.slice((m.index ?? 0) + m[0].length);
        b = Uint8Array.from(next, (c) => c.charCodeAt(0)); // binary string back to bytes
        break;
      }
      case 5: { // duplicate a slice
        const end = at + r.int(16);
        b = new Uint8Array([...b.subarray(0, end), ...b.subarray(at, end), ...b.subarray(end)]);
        break;
      }
      default: // overwrite a byte
        if (b.length) b[r.int(b.length)] = r.int(256);
    }
  }
  return b;
}

function hexHead(b: Uint8Array): string {
  return [...b.subarray(0, 64)].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Walks a decoded value checking every recorded span lies within the input. */
function checkSpans(r: ReturnType<typeof decodeBencode>, v: BencodeValue, n: number, where: string): void {
  if (typeof v === "bigint" || v instanceof Uint8Array) return;
  const s = r.spanOf(v);
  assert(s !== undefined && 0 <= s.start && s.start < s.end && s.end <= n, `${where}: span ${JSON.stringify(s)}`);
  if (Array.isArray(v)) {
    for (const x of v) checkSpans(r, x, n, where);
    return;
  }
  for (const [k, x] of v) {
    const vs = r.valueSpan(v, k);
    assert(vs !== undefined && s.start < vs.start && vs.end < s.end, `${where}: value span of ${JSON.stringify(k)}`);
    checkSpans(r, x, n, where);
  }
}

Deno.test("decodeBencode() lets only BencodeError out of mutated input, and strict success is canonical", () => {
  const r = seeded(seed);
  const corpus = Array.from({ length: 64 }, () => encodeBencode(gen(r, 4)));
  corpus.push(
    new TextEncoder().encode("d4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"),
  );
  const iterations = fuzzIterations(10_000);
  let decoded = 0;
  for (let i = 0; i < iterations; i++) {
    const input = mutate(r, corpus[r.int(corpus.length)]);
    const where = `seed ${seed} #${i} (${input.length} bytes ${hexHead(input)})`;
    for (
      const options of [{}, { allowUnsorted: true }, { allowTrailing: true, allowUnsorted: true, maxDepth: Infinity }]
    ) {
      let res: ReturnType<typeof decodeBencode>;
      try {
        res = decodeBencode(input, options);
      } catch (e) {
        if (e instanceof BencodeError) {
          assert(e.offset >= 0 && e.offset <= input.length, `${where}: offset ${e.offset} out of range`);
          continue;
        }
        throw new Error(`${where}: unexpected ${e}`, { cause: e });
      }
      checkSpans(res, res.value, input.length, where);
      if (Object.keys(options).length === 0) {
        decoded++;
        assertEquals(encodeBencode(res.value), input, `${where}: strict decode must be canonical`);
      }
    }
  }
  if (iterations >= 1000) {
    assert(decoded > 0, `seed ${seed}: no mutant decoded; the fuzz is not reaching valid paths`);
  }
});

Deno.test("decodeBencode() lets only BencodeError out of random bytes", () => {
  const r = seeded(seed + 1);
  const iterations = fuzzIterations(50_000);
  for (let i = 0; i < iterations; i++) {
    const alphabet = "ilde0123456789:-x";
    const input = r.int(2)
      ? randomBytes(r, r.int(40))
      : Uint8Array.from({ length: r.int(40) }, () => alphabet.charCodeAt(r.int(alphabet.length)));
    try {
      const res = decodeBencode(input);
      assertEquals(encodeBencode(res.value), input, `seed ${seed + 1} #${i}`);
    } catch (e) {
      if (!(e instanceof BencodeError)) throw new Error(`seed ${seed + 1} #${i} ${hexHead(input)}: ${e}`, { cause: e });
    }
  }
});
