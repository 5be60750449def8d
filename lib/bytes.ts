/**
 * Small byte helpers shared by the codecs and the runtime: hex both ways, equality, concatenation. Pure.
 * @module
 */

/**
 * Lowercase hex of `bytes`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(toHex(new Uint8Array([0, 0xab, 0x20])), "00ab20");
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/**
 * The bytes of an even-length hex string (the caller has checked it is hex).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(fromHex("00ab20"), new Uint8Array([0, 0xab, 0x20]));
 * ```
 */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Whether two byte arrays hold the same bytes.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
 * eq(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1])), false);
 * ```
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The parts one after another, in a new array.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * eq(concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]), new Uint8Array([1, 2, 3]));
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
