import { assertEquals, assertThrows } from "../_assert.ts";
import { fuzzSeed, randomBytes, seeded } from "../_gen.ts";
import { readFrame, WireError, writeFrame } from "../../lib/wire/frame.ts";
import { MAX_MESSAGE_BYTES } from "../../lib/limits.ts";

function be32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

const cases = [
  {
    name: "keep-alive is an empty frame",
    bytes: [0, 0, 0, 0],
    want: { kind: "frame", payload: new Uint8Array(), next: 4 },
  },
  { name: "an empty buffer asks for the prefix", bytes: [], want: { kind: "need", bytes: 4 } },
  { name: "a short prefix asks for the rest", bytes: [0, 0], want: { kind: "need", bytes: 2 } },
  { name: "a partial body asks for the rest", bytes: [0, 0, 0, 5, 7], want: { kind: "need", bytes: 4 } },
  {
    name: "bytes after the frame are left for the next read",
    bytes: [0, 0, 0, 1, 2, 0, 0],
    want: { kind: "frame", payload: new Uint8Array([2]), next: 5 },
  },
  {
    name: "a length at the limit is accepted",
    bytes: be32(MAX_MESSAGE_BYTES),
    want: { kind: "need", bytes: MAX_MESSAGE_BYTES },
  },
] as const;

Deno.test("readFrame() splits a byte stream into frames", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => assertEquals(readFrame(new Uint8Array(c.bytes), 0), c.want));
  }
});

Deno.test("readFrame() reads the prefix as unsigned and rejects lengths over MAX_MESSAGE_BYTES at their offset", async (t) => {
  for (const len of [MAX_MESSAGE_BYTES + 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]) {
    await t.step(`length ${len}`, () => {
      const err = assertThrows(() => readFrame(new Uint8Array([9, ...be32(len)]), 1), WireError);
      assertEquals([err.code, err.offset], ["too-long", 1]);
      assertEquals(err instanceof SyntaxError, true);
    });
  }
});

Deno.test("readFrame() returns a view into the buffer, not a copy", () => {
  const buf = new Uint8Array([0, 0, 0, 2, 5, 6]);
  const r = readFrame(buf, 0);
  if (r.kind !== "frame") throw new Error("expected a frame");
  assertEquals(r.payload.buffer, buf.buffer);
  assertEquals(r.payload.byteOffset, 4);
});

Deno.test("readFrame() works on a subarray of a larger buffer", () => {
  const big = new Uint8Array([0xff, 0xff, 0, 0, 0, 1, 9, 0xff]);
  assertEquals(readFrame(big.subarray(2, 7), 0), { kind: "frame", payload: new Uint8Array([9]), next: 5 });
});

Deno.test("readFrame() walks a stream of back-to-back frames", () => {
  const rand = seeded(7);
  const payloads = Array.from({ length: 50 }, () => randomBytes(rand, rand.int(40)));
  const stream = new Uint8Array(payloads.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of payloads) {
    stream.set(writeFrame(p), at);
    at += 4 + p.length;
  }
  at = 0;
  for (const p of payloads) {
    const r = readFrame(stream, at);
    if (r.kind !== "frame") throw new Error(`expected a frame at ${at}`);
    assertEquals(r.payload, p);
    at = r.next;
  }
  assertEquals(readFrame(stream, at), { kind: "need", bytes: 4 });
});

Deno.test("readFrame() inverts writeFrame() on generated payloads", () => {
  const seed = fuzzSeed();
  const rand = seeded(seed);
  for (let i = 0; i < 2_000; i++) {
    const payload = randomBytes(rand, rand.int(300));
    assertEquals(
      readFrame(writeFrame(payload), 0),
      { kind: "frame", payload, next: payload.length + 4 },
      `seed ${seed} #${i}`,
    );
  }
});

Deno.test("writeFrame() refuses a payload over MAX_MESSAGE_BYTES", () => {
  assertThrows(() => writeFrame(new Uint8Array(MAX_MESSAGE_BYTES + 1)), RangeError);
  assertEquals(writeFrame(new Uint8Array(MAX_MESSAGE_BYTES)).length, MAX_MESSAGE_BYTES + 4);
});
