import { createHash } from "node:crypto";
import { assertEquals } from "./_assert.ts";
import { toHex } from "../lib/bytes.ts";
import { sha1, SHA1_BYTES } from "../lib/sha1.ts";

const te = new TextEncoder();
const native = (d: Uint8Array): string => createHash("sha1").update(d).digest("hex");

/** Deterministic bytes (a xorshift stream), so a failure names a length that reproduces. */
function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

Deno.test("sha1() gives the FIPS 180-4 test vectors", () => {
  assertEquals(toHex(sha1(new Uint8Array(0))), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  assertEquals(toHex(sha1(te.encode("abc"))), "a9993e364706816aba3e25717850c26c9cd0d89d");
  assertEquals(
    toHex(sha1(te.encode("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
    "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
  );
  assertEquals(toHex(sha1(new Uint8Array(1_000_000).fill(0x61))), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
});

Deno.test("sha1() matches node:crypto at every length around the padding boundaries and beyond", () => {
  for (let n = 0; n <= 300; n++) {
    const d = bytes(n, n + 1);
    assertEquals(toHex(sha1(d)), native(d), `length ${n}`);
  }
  for (const n of [4095, 4096, 65_537, 1 << 20]) {
    const d = bytes(n, n);
    assertEquals(toHex(sha1(d)), native(d), `length ${n}`);
  }
});

Deno.test("sha1() hashes a view by its own bytes, not its buffer's, and returns 20 bytes", () => {
  const whole = bytes(1000);
  const view = whole.subarray(100, 777);
  assertEquals(toHex(sha1(view)), native(whole.slice(100, 777)));
  assertEquals(sha1(view).length, SHA1_BYTES);
});
