import { assert, assertEquals } from "../_assert.ts";
import { BufferPool } from "../../lib/engine/buffer_pool.ts";

const PIECE = 32 * 1024;

/** A piece-sized buffer transferred away, as one handed to the writer thread is. */
function detached(): Uint8Array {
  const buf = new Uint8Array(PIECE);
  (buf.buffer as ArrayBuffer).transfer();
  return buf;
}

Deno.test("BufferPool.take() returns a view of a fresh piece-sized ArrayBuffer (not shared: it is transferred)", async (t) => {
  const rows = [
    { name: "a whole piece", length: PIECE },
    { name: "a short last piece", length: 100 },
    { name: "an empty view", length: 0 },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const pool = new BufferPool(PIECE, 4);
      const buf = pool.take(r.length);
      assertEquals(buf.length, r.length);
      assertEquals(buf.byteOffset, 0);
      assert(buf.buffer instanceof ArrayBuffer);
      assertEquals(buf.buffer.byteLength, PIECE);
      assertEquals(pool.spare, 0);
    });
  }
});

Deno.test("BufferPool.give() keeps piece buffers for reuse and take() hands them out again", async (t) => {
  await t.step("a given buffer comes back, as a view of the requested length", () => {
    const pool = new BufferPool(PIECE, 4);
    const a = pool.take(100);
    pool.give(a);
    assertEquals(pool.spare, 1);
    const b = pool.take(PIECE - 1);
    assertEquals(b.buffer, a.buffer);
    assertEquals([b.byteOffset, b.length], [0, PIECE - 1]);
    assertEquals(pool.spare, 0);
    // the next take allocates anew
    assert(pool.take(PIECE).buffer !== a.buffer);
  });
  await t.step("a sub-view of a piece buffer returns the whole buffer", () => {
    const pool = new BufferPool(PIECE, 4);
    const a = pool.take(PIECE);
    pool.give(a.subarray(10, 20));
    const b = pool.take(PIECE);
    assertEquals([b.buffer, b.byteOffset, b.length], [a.buffer, 0, PIECE]);
  });
  await t.step("spare buffers are reused last in, first out, with no allocation while they last", () => {
    const pool = new BufferPool(PIECE, 4);
    const bufs = [pool.take(PIECE), pool.take(PIECE), pool.take(PIECE)];
    for (const b of bufs) pool.give(b);
    assertEquals(pool.spare, 3);
    const again = [pool.take(1), pool.take(1), pool.take(1)].map((b) => b.buffer);
    assertEquals(again, bufs.map((b) => b.buffer).reverse());
  });
});

Deno.test("BufferPool.give() keeps at most maxSpare buffers", async (t) => {
  const rows = [
    { name: "under the bound", maxSpare: 4, given: 3, spare: 3 },
    { name: "at the bound", maxSpare: 4, given: 4, spare: 4 },
    { name: "past the bound, the extra ones are let go", maxSpare: 2, given: 5, spare: 2 },
    { name: "a pool that keeps nothing", maxSpare: 0, given: 3, spare: 0 },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const pool = new BufferPool(PIECE, r.maxSpare);
      const bufs = Array.from({ length: r.given }, () => pool.take(PIECE));
      for (const b of bufs) pool.give(b);
      assertEquals(pool.spare, r.spare);
    });
  }
  await t.step("maxSpare may be changed later and bounds later gives", () => {
    const pool = new BufferPool(PIECE, 1);
    const [a, b] = [pool.take(PIECE), pool.take(PIECE)];
    pool.give(a);
    pool.give(b);
    assertEquals(pool.spare, 1);
    pool.maxSpare = 2;
    pool.give(b);
    assertEquals(pool.spare, 2);
  });
});

Deno.test("BufferPool.give() ignores buffers that are not its piece buffers", async (t) => {
  const rows = [
    { name: "a SharedArrayBuffer of the piece size", buf: new Uint8Array(new SharedArrayBuffer(PIECE)) },
    { name: "an ArrayBuffer of another size", buf: new Uint8Array(PIECE * 2) },
    { name: "a short ArrayBuffer", buf: new Uint8Array(100) },
    { name: "a detached piece buffer (handed to another thread)", buf: detached() },
    { name: "a view of a pool buffer of another piece size", buf: new BufferPool(PIECE / 2, 4).take(10) },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const pool = new BufferPool(PIECE, 4);
      pool.give(r.buf);
      assertEquals(pool.spare, 0);
      const fresh = pool.take(PIECE);
      assert(fresh.buffer !== r.buf.buffer);
      assertEquals(fresh.buffer.byteLength, PIECE);
    });
  }
});
