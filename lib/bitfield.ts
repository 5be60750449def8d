/**
 * A fixed-size set of piece indexes, stored as BEP 3 lays out a `bitfield` message: the high bit of byte 0 is piece 0.
 * @module
 */

/** Why bytes could not become a bitfield. */
export type BitfieldErrorCode = "bad-length" | "spare-bits";

/** Bytes that are not a valid bitfield for the torrent's piece count. */
export class BitfieldError extends SyntaxError {
  override readonly name = "BitfieldError";
  /** Makes the error; `code` says what was wrong. */
  constructor(readonly code: BitfieldErrorCode, detail: string) {
    super(`Cannot read bitfield: ${detail}`);
  }
}

/**
 * A set of piece indexes in `[0, size)`; mutable, with a running count.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const b = new Bitfield(10);
 * b.set(0); b.set(9);
 * eq(b.count, 2);
 * eq(b.bytes[0], 0x80);
 * eq(b.bytes[1], 0x40);
 * ```
 */
export class Bitfield {
  /** The bits, BEP 3 order; spare bits of the last byte are always zero. */
  readonly bytes: Uint8Array;
  #count = 0;

  /** An empty set of `size` pieces. */
  constructor(readonly size: number) {
    this.bytes = new Uint8Array((size + 7) >>> 3);
  }

  /**
   * Reads a peer's or a file's bitfield, copying `bytes`.
   * @throws {BitfieldError} `bad-length` when the byte count is not ceil(size / 8), `spare-bits` when a bit past
   *   `size` is set.
   */
  static fromBytes(bytes: Uint8Array, size: number): Bitfield {
    const b = new Bitfield(size);
    if (bytes.length !== b.bytes.length) {
      throw new BitfieldError("bad-length", `${bytes.length} bytes for ${size} pieces, expected ${b.bytes.length}`);
    }
    const spare = b.bytes.length * 8 - size;
    if (spare > 0 && (bytes[bytes.length - 1] & ((1 << spare) - 1)) !== 0) {
      throw new BitfieldError("spare-bits", `a bit past piece ${size - 1} is set`);
    }
    b.bytes.set(bytes);
    let n = 0;
    for (const byte of b.bytes) n += POPCOUNT[byte];
    b.#count = n;
    return b;
  }

  /** A set holding every piece. */
  static full(size: number): Bitfield {
    const b = new Bitfield(size);
    for (let i = 0; i < size; i++) b.set(i);
    return b;
  }

  /** How many pieces are in the set. */
  get count(): number {
    return this.#count;
  }

  /** Whether every piece is in the set. */
  get complete(): boolean {
    return this.#count === this.size;
  }

  /** Whether piece `i` is in the set (false outside `[0, size)`). */
  has(i: number): boolean {
    if (i < 0 || i >= this.size) return false;
    return (this.bytes[i >>> 3] & (0x80 >>> (i & 7))) !== 0;
  }

  /** Adds piece `i`; returns whether it was new. Indexes outside `[0, size)` are ignored. */
  set(i: number): boolean {
    if (i < 0 || i >= this.size || this.has(i)) return false;
    this.bytes[i >>> 3] |= 0x80 >>> (i & 7);
    this.#count++;
    return true;
  }

  /** Removes piece `i`; returns whether it was there. */
  clear(i: number): boolean {
    if (!this.has(i)) return false;
    this.bytes[i >>> 3] &= ~(0x80 >>> (i & 7));
    this.#count--;
    return true;
  }

  /** A copy of this set. */
  clone(): Bitfield {
    return Bitfield.fromBytes(this.bytes, this.size);
  }

  /** The indexes in the set, ascending. */
  *indexes(): IterableIterator<number> {
    for (let i = 0; i < this.size; i++) if (this.has(i)) yield i;
  }
}

const POPCOUNT: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let i = 1; i < 256; i++) t[i] = (i & 1) + t[i >>> 1];
  return t;
})();
