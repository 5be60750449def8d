/**
 * The piece-buffer pool: piece-sized ArrayBuffers, handed (transferred, not copied) to the writer thread to hash and
 * write and handed back with the outcome, so a download stops allocating once it has as many buffers as pieces in
 * flight. Plain ArrayBuffers, not SharedArrayBuffers: V8 copies into a shared buffer a byte at a time when the source is
 * not word-aligned (a block inside a peer's read buffer rarely is), seven times slower than into a plain one.
 * @module
 */

/** A pool of piece buffers of one size. */
export class BufferPool {
  readonly #spare: Uint8Array[] = [];

  /** A pool of `pieceLength`-byte buffers that keeps at most `maxSpare` for reuse. */
  constructor(readonly pieceLength: number, public maxSpare: number) {}

  /** Buffers kept for reuse. */
  get spare(): number {
    return this.#spare.length;
  }

  /**
   * A buffer of `length` bytes (at most the piece length), reused when one is spare.
   * @example
   * ```ts
   * import { strictEqual as eq } from "node:assert/strict";
   * const pool = new BufferPool(32768, 4);
   * const a = pool.take(100);
   * eq(a.length, 100);
   * pool.give(a);
   * eq(pool.take(32768).buffer, a.buffer);
   * ```
   */
  take(length: number): Uint8Array {
    const buf = this.#spare.pop() ?? new Uint8Array(this.pieceLength);
    return buf.subarray(0, length);
  }

  /**
   * Returns a buffer for reuse (a view of a piece buffer, any length); buffers of other sizes, shared ones and detached
   * ones (handed to another thread) are let go.
   */
  give(buf: Uint8Array): void {
    if (!(buf.buffer instanceof ArrayBuffer) || buf.buffer.byteLength !== this.pieceLength) return;
    if (this.#spare.length < this.maxSpare) this.#spare.push(new Uint8Array(buf.buffer));
  }
}
