/**
 * The BEP 6 allowed-fast set: the pieces a peer may download from us while choked, derived from its IPv4 address.
 * @module
 */
import { sha1 } from "../sha1.ts";

/**
 * The canonical BEP 6 allowed-fast set: mask the IPv4 address to its /24, append the info-hash, then SHA-1 the
 * chain repeatedly, taking each 32-bit big-endian word modulo `pieceCount` until `k` distinct indexes are found.
 * `k` is capped at `pieceCount`, so the loop always ends.
 * @param k How many pieces to allow (BEP 6 suggests 10).
 * @param infoHash The 20-byte info-hash.
 * @param ipv4 The peer's 4-byte IPv4 address, network order.
 * @param pieceCount The torrent's number of pieces.
 * @returns Up to `k` distinct piece indexes, in the order the algorithm finds them.
 * @throws {RangeError} When `infoHash` is not 20 bytes or `ipv4` not 4 bytes, or `k`/`pieceCount` are not
 *   non-negative integers.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const set = allowedFastSet(7, new Uint8Array(20).fill(0xaa), new Uint8Array([80, 4, 4, 200]), 1313);
 * eq(set, [1059, 431, 808, 1217, 287, 376, 1188]);
 * ```
 */
export function allowedFastSet(k: number, infoHash: Uint8Array, ipv4: Uint8Array, pieceCount: number): number[] {
  if (infoHash.length !== 20) {
    throw new RangeError(`Cannot derive allowed-fast set: info-hash is ${infoHash.length} bytes`);
  }
  if (ipv4.length !== 4) throw new RangeError(`Cannot derive allowed-fast set: IPv4 address is ${ipv4.length} bytes`);
  for (const [name, v] of [["k", k], ["piece count", pieceCount]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`Cannot derive allowed-fast set: ${name} ${v}`);
  }
  const want = Math.min(k, pieceCount);
  const out: number[] = [];
  const seen = new Set<number>();
  let x: Uint8Array = new Uint8Array(24);
  x.set(ipv4.subarray(0, 3), 0); // the last byte stays 0: the /24 mask
  x.set(infoHash, 4);
  while (out.length < want) {
    x = sha1(x);
    for (let i = 0; i < 5 && out.length < want; i++) {
      const j = i * 4;
      const y = ((x[j] << 24) | (x[j + 1] << 16) | (x[j + 2] << 8) | x[j + 3]) >>> 0;
      const index = y % pieceCount;
      if (!seen.has(index)) {
        seen.add(index);
        out.push(index);
      }
    }
  }
  return out;
}
