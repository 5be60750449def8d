/**
 * DHT node ids (BEP 5): 160-bit identifiers compared by XOR distance, and the node contact a routing table keeps.
 * Pure.
 * @module
 */
import type { PeerAddress } from "../address.ts";

/** Bytes in a node id (and an info-hash). */
export const ID_BYTES = 20;

/** A DHT node: its id and where it answers. */
export interface NodeInfo {
  readonly id: Uint8Array;
  readonly address: PeerAddress;
}

/**
 * The XOR distance of two ids, as 20 bytes.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const a = new Uint8Array(20);
 * const b = new Uint8Array(20).fill(0xff);
 * eq(xorDistance(a, b), new Uint8Array(20).fill(0xff));
 * ```
 */
export function xorDistance(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(ID_BYTES);
  for (let i = 0; i < ID_BYTES; i++) out[i] = a[i] ^ b[i];
  return out;
}

/**
 * Which of `a` and `b` is closer to `target`: negative when `a` is, positive when `b` is, 0 when equal.
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * const t = new Uint8Array(20);
 * const near = new Uint8Array(20); near[19] = 1;
 * const far = new Uint8Array(20); far[0] = 1;
 * ok(compareDistance(t, near, far) < 0);
 * ```
 */
export function compareDistance(target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const da = a[i] ^ target[i];
    const db = b[i] ^ target[i];
    if (da !== db) return da - db;
  }
  return 0;
}

/**
 * The number of leading bits `a` and `b` share (0–160); 160 when equal. The routing table's bucket index.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const a = new Uint8Array(20);
 * const b = new Uint8Array(20); b[1] = 0x40;
 * eq(commonPrefixBits(a, b), 9);
 * ```
 */
export function commonPrefixBits(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const x = a[i] ^ b[i];
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return ID_BYTES * 8;
}

/** Whether two ids are equal. */
export function sameId(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A random id that shares exactly `prefixBits` leading bits with `base` (the next bit differs), from `random`
 * (values in [0, 1)): the target of a bucket refresh. `prefixBits` 160 returns a copy of `base`.
 */
export function randomIdInBucket(base: Uint8Array, prefixBits: number, random: () => number): Uint8Array {
  const out = new Uint8Array(ID_BYTES);
  for (let i = 0; i < ID_BYTES; i++) out[i] = Math.floor(random() * 256);
  if (prefixBits >= ID_BYTES * 8) return base.slice();
  for (let bit = 0; bit <= prefixBits; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    const want = bit < prefixBits ? base[byte] & mask : (base[byte] & mask) ^ mask;
    out[byte] = (out[byte] & ~mask) | want;
  }
  return out;
}

/** `n` bytes from `random` (values in [0, 1)): node ids, token secrets. */
export function randomBytes(random: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}
