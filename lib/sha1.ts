/**
 * SHA-1 (FIPS 180-4) in plain TypeScript, for the info-hash and the other small hashes of the main thread (a magnet's
 * fetched metadata, the allowed-fast set, MSE's keys, DHT tokens): parsing a torrent or starting a download then
 * needs no `node:crypto`, whose loading costs more than `btfetch info` does otherwise. Piece hashing, where speed
 * matters, stays on `node:crypto`, on the writer thread.
 * @module
 */

/** The length of a SHA-1 digest in bytes. */
export const SHA1_BYTES = 20;

/** The message schedule, reused by every call (the function never yields). */
const W = new Int32Array(80);

/**
 * The SHA-1 digest of `data`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { toHex } from "./bytes.ts";
 * eq(toHex(sha1(new TextEncoder().encode("abc"))), "a9993e364706816aba3e25717850c26c9cd0d89d");
 * ```
 */
export function sha1(data: Uint8Array): Uint8Array {
  const state = new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0]);
  const whole = data.length - (data.length % 64);
  for (let off = 0; off < whole; off += 64) block(state, data, off);
  // the tail, 0x80, zeros and the length in bits (big-endian 64-bit): one or two more blocks
  const tail = new Uint8Array(data.length % 64 < 56 ? 64 : 128);
  tail.set(data.subarray(whole));
  tail[data.length - whole] = 0x80;
  const bits = new DataView(tail.buffer);
  bits.setUint32(tail.length - 8, Math.floor(data.length / 0x20000000));
  bits.setUint32(tail.length - 4, (data.length * 8) >>> 0);
  for (let off = 0; off < tail.length; off += 64) block(state, tail, off);
  const out = new Uint8Array(SHA1_BYTES);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 5; i++) view.setInt32(i * 4, state[i]);
  return out;
}

/** Folds the 64-byte block of `m` at `off` into `state`. */
function block(state: Int32Array, m: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++, off += 4) W[i] = (m[off] << 24) | (m[off + 1] << 16) | (m[off + 2] << 8) | m[off + 3];
  for (let i = 16; i < 80; i++) {
    const x = W[i - 3] ^ W[i - 8] ^ W[i - 14] ^ W[i - 16];
    W[i] = (x << 1) | (x >>> 31);
  }
  let a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
  let i = 0;
  for (; i < 20; i++) {
    const t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + 0x5a827999 + e + W[i]) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  for (; i < 40; i++) {
    const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + 0x6ed9eba1 + e + W[i]) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  for (; i < 60; i++) {
    const t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + 0x8f1bbcdc + e + W[i]) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  for (; i < 80; i++) {
    const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + 0xca62c1d6 + e + W[i]) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
}
