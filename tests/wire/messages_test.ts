import { assertEquals, assertThrows } from "../_assert.ts";
import { fuzzSeed, type Rand, randomBytes, seeded } from "../_gen.ts";
import { WireError } from "../../lib/wire/frame.ts";
import {
  decodeMessage,
  encodeMessage,
  encodeMessageInto,
  type Message,
  messageFrameLength,
  PIECE_HEADER_BYTES,
  writePieceHeader,
} from "../../lib/wire/messages.ts";
import { MAX_BLOCK_BYTES, MAX_EXTENDED_MESSAGE_BYTES, MAX_MESSAGE_BYTES } from "../../lib/limits.ts";

function be32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** Every message kind with its body (the frame without the length prefix). */
const table: { m: Message; body: number[] }[] = [
  { m: { type: "keep-alive" }, body: [] },
  { m: { type: "choke" }, body: [0] },
  { m: { type: "unchoke" }, body: [1] },
  { m: { type: "interested" }, body: [2] },
  { m: { type: "not-interested" }, body: [3] },
  { m: { type: "have", index: 0x01020304 }, body: [4, 1, 2, 3, 4] },
  { m: { type: "bitfield", bits: new Uint8Array([0xff, 0x80]) }, body: [5, 0xff, 0x80] },
  {
    m: { type: "request", index: 1, begin: 0x4000, length: 0x4000 },
    body: [6, ...be32(1), ...be32(0x4000), ...be32(0x4000)],
  },
  {
    m: { type: "piece", index: 2, begin: 3, block: new Uint8Array([9, 8, 7]) },
    body: [7, ...be32(2), ...be32(3), 9, 8, 7],
  },
  { m: { type: "piece", index: 2, begin: 3, block: new Uint8Array() }, body: [7, ...be32(2), ...be32(3)] },
  { m: { type: "cancel", index: 5, begin: 6, length: 7 }, body: [8, ...be32(5), ...be32(6), ...be32(7)] },
  { m: { type: "port", port: 6881 }, body: [9, 0x1a, 0xe1] },
  { m: { type: "suggest", index: 42 }, body: [13, ...be32(42)] },
  { m: { type: "have-all" }, body: [14] },
  { m: { type: "have-none" }, body: [15] },
  { m: { type: "reject", index: 1, begin: 2, length: 3 }, body: [16, ...be32(1), ...be32(2), ...be32(3)] },
  { m: { type: "allowed-fast", index: 1312 }, body: [17, ...be32(1312)] },
  { m: { type: "extended", id: 0, payload: new Uint8Array([0x64, 0x65]) }, body: [20, 0, 0x64, 0x65] },
  { m: { type: "extended", id: 3, payload: new Uint8Array() }, body: [20, 3] },
  { m: { type: "unknown", id: 10, payload: new Uint8Array() }, body: [10] },
  { m: { type: "unknown", id: 21, payload: new Uint8Array([1, 2]) }, body: [21, 1, 2] },
  { m: { type: "unknown", id: 255, payload: new Uint8Array([0]) }, body: [255, 0] },
];

Deno.test("decodeMessage() and encodeMessage() agree on every message id", async (t) => {
  for (const { m, body } of table) {
    await t.step(`${m.type} ${JSON.stringify(body.slice(0, 2))}`, () => {
      assertEquals(decodeMessage(new Uint8Array(body)), m);
      const frame = new Uint8Array([...be32(body.length), ...body]);
      assertEquals(encodeMessage(m), frame);
      assertEquals(messageFrameLength(m), frame.length);
    });
  }
});

Deno.test("decodeMessage() reads 32-bit fields unsigned", async (t) => {
  const max = 0xffff_ffff;
  const rows: { body: number[]; m: Message }[] = [
    { body: [4, ...be32(max)], m: { type: "have", index: max } },
    {
      body: [6, ...be32(0x8000_0000), ...be32(max), ...be32(0x8000_0001)],
      m: { type: "request", index: 0x8000_0000, begin: max, length: 0x8000_0001 },
    },
    {
      body: [7, ...be32(max), ...be32(0x8000_0000)],
      m: { type: "piece", index: max, begin: 0x8000_0000, block: new Uint8Array() },
    },
    { body: [8, ...be32(max), ...be32(max), ...be32(max)], m: { type: "cancel", index: max, begin: max, length: max } },
    { body: [13, ...be32(0x8000_0000)], m: { type: "suggest", index: 0x8000_0000 } },
    {
      body: [16, ...be32(max), ...be32(max), ...be32(max)],
      m: { type: "reject", index: max, begin: max, length: max },
    },
    { body: [17, ...be32(max)], m: { type: "allowed-fast", index: max } },
    { body: [9, 0xff, 0xff], m: { type: "port", port: 65535 } },
  ];
  for (const r of rows) {
    await t.step(r.m.type, () => {
      assertEquals(decodeMessage(new Uint8Array(r.body)), r.m);
      assertEquals(encodeMessage(r.m).subarray(4), new Uint8Array(r.body));
    });
  }
});

/** For each id, body sizes that must be refused. */
const badSizes: { id: number; sizes: number[] }[] = [
  { id: 0, sizes: [2, 5] },
  { id: 1, sizes: [2] },
  { id: 2, sizes: [2] },
  { id: 3, sizes: [2, 13] },
  { id: 4, sizes: [1, 4, 6, 9] },
  { id: 5, sizes: [1] },
  { id: 6, sizes: [1, 12, 14, 17] },
  { id: 7, sizes: [1, 5, 8, 9 + MAX_BLOCK_BYTES + 1] },
  { id: 8, sizes: [1, 12, 14] },
  { id: 9, sizes: [1, 2, 4, 5] },
  { id: 13, sizes: [1, 4, 6] },
  { id: 14, sizes: [2, 5] },
  { id: 15, sizes: [2] },
  { id: 16, sizes: [1, 12, 14] },
  { id: 17, sizes: [1, 4, 6] },
  { id: 20, sizes: [1, 2 + MAX_EXTENDED_MESSAGE_BYTES + 1] },
];

Deno.test("decodeMessage() refuses every wrong size per id with bad-length at the given offset", async (t) => {
  for (const { id, sizes } of badSizes) {
    for (const size of sizes) {
      await t.step(`id ${id}, ${size} bytes`, () => {
        const body = new Uint8Array(size);
        body[0] = id;
        const err = assertThrows(() => decodeMessage(body, 1000), WireError);
        assertEquals([err.code, err.offset], ["bad-length", 1000]);
        assertEquals(err.message.includes(`id ${id}`), true, err.message);
      });
    }
  }
});

Deno.test("decodeMessage() accepts the largest piece and extended messages", () => {
  const piece = new Uint8Array(9 + MAX_BLOCK_BYTES);
  piece[0] = 7;
  const m = decodeMessage(piece);
  assertEquals(m.type === "piece" && m.block.length, MAX_BLOCK_BYTES);
  const ext = new Uint8Array(2 + MAX_EXTENDED_MESSAGE_BYTES);
  ext[0] = 20;
  const e = decodeMessage(ext);
  assertEquals(e.type === "extended" && e.payload.length, MAX_EXTENDED_MESSAGE_BYTES);
});

Deno.test("decodeMessage() refuses a body over MAX_MESSAGE_BYTES with too-long", () => {
  const body = new Uint8Array(MAX_MESSAGE_BYTES + 1);
  body[0] = 5;
  const err = assertThrows(() => decodeMessage(body, 4), WireError);
  assertEquals([err.code, err.offset], ["too-long", 4]);
});

Deno.test("decodeMessage() returns views, not copies, for bitfield, piece, extended and unknown", async (t) => {
  const frames: number[][] = [[5, 1, 2], [7, ...be32(0), ...be32(0), 1, 2], [20, 1, 1, 2], [99, 1, 2]];
  for (const f of frames) {
    await t.step(`id ${f[0]}`, () => {
      const buf = new Uint8Array([0xee, ...f, 0xee]);
      const body = buf.subarray(1, 1 + f.length);
      const m = decodeMessage(body);
      const bytes = m.type === "bitfield"
        ? m.bits
        : m.type === "piece"
        ? m.block
        : m.type === "extended" || m.type === "unknown"
        ? m.payload
        : undefined;
      if (bytes === undefined) throw new Error(`unexpected ${m.type}`);
      assertEquals(bytes.buffer, buf.buffer);
      assertEquals(bytes, new Uint8Array([1, 2]));
      assertEquals(bytes.byteOffset + bytes.length, buf.length - 1);
    });
  }
});

/** A random valid message. */
function genMessage(rand: Rand): Message {
  const u32 = (): number => rand() < 0.1 ? 0xffff_ffff - rand.int(3) : rand.int(0x1_0000_0000);
  const bytes = (max: number, min = 0): Uint8Array => randomBytes(rand, min + rand.int(max - min + 1));
  const unknownIds = [10, 11, 12, 18, 19, ...Array.from({ length: 235 }, (_, i) => 21 + i)];
  switch (rand.int(18)) {
    case 0:
      return { type: "keep-alive" };
    case 1:
      return { type: "choke" };
    case 2:
      return { type: "unchoke" };
    case 3:
      return { type: "interested" };
    case 4:
      return { type: "not-interested" };
    case 5:
      return { type: "have", index: u32() };
    case 6:
      return { type: "bitfield", bits: bytes(200, 1) };
    case 7:
      return { type: "request", index: u32(), begin: u32(), length: u32() };
    case 8:
      return { type: "piece", index: u32(), begin: u32(), block: bytes(rand() < 0.05 ? MAX_BLOCK_BYTES : 300) };
    case 9:
      return { type: "cancel", index: u32(), begin: u32(), length: u32() };
    case 10:
      return { type: "port", port: rand.int(0x10000) };
    case 11:
      return { type: "suggest", index: u32() };
    case 12:
      return { type: "have-all" };
    case 13:
      return { type: "have-none" };
    case 14:
      return { type: "reject", index: u32(), begin: u32(), length: u32() };
    case 15:
      return { type: "allowed-fast", index: u32() };
    case 16:
      return { type: "extended", id: rand.int(256), payload: bytes(100) };
    default:
      return { type: "unknown", id: unknownIds[rand.int(unknownIds.length)], payload: bytes(50) };
  }
}

Deno.test("decodeMessage() inverts encodeMessage() on generated messages", () => {
  const seed = fuzzSeed();
  const rand = seeded(seed);
  for (let i = 0; i < 3_000; i++) {
    const m = genMessage(rand);
    const frame = encodeMessage(m);
    assertEquals(frame.length, messageFrameLength(m), `seed ${seed} #${i}`);
    assertEquals(decodeMessage(frame.subarray(4)), m, `seed ${seed} #${i}`);
  }
});

Deno.test("encodeMessageInto() writes the same bytes as encodeMessage(), batched in one buffer", () => {
  const seed = fuzzSeed();
  const rand = seeded(seed);
  for (let round = 0; round < 100; round++) {
    const ms = Array.from({ length: 1 + rand.int(10) }, () => genMessage(rand));
    const pad = rand.int(5);
    const buf = new Uint8Array(pad + ms.reduce((n, m) => n + messageFrameLength(m), 0)).fill(0xcc);
    let at = pad;
    for (const m of ms) at += encodeMessageInto(m, buf, at);
    assertEquals(at, buf.length, `seed ${seed} round ${round}`);
    const want = new Uint8Array([...new Uint8Array(pad).fill(0xcc), ...ms.flatMap((m) => [...encodeMessage(m)])]);
    assertEquals(buf, want, `seed ${seed} round ${round}`);
  }
});

Deno.test("encodeMessageInto() refuses a frame that does not fit", async (t) => {
  const m: Message = { type: "have", index: 1 };
  for (const [size, offset] of [[8, 0], [9, 1], [9, -1], [20, 0.5]]) {
    await t.step(`${size} bytes at ${offset}`, () => {
      assertThrows(() => encodeMessageInto(m, new Uint8Array(size), offset), RangeError);
    });
  }
  assertEquals(encodeMessageInto(m, new Uint8Array(10), 1), 9);
});

Deno.test("encodeMessage() refuses out-of-range fields with RangeError", async (t) => {
  const rows: { name: string; m: Message }[] = [
    { name: "negative index", m: { type: "have", index: -1 } },
    { name: "index 2^32", m: { type: "suggest", index: 0x1_0000_0000 } },
    { name: "fractional begin", m: { type: "request", index: 0, begin: 1.5, length: 1 } },
    { name: "NaN length", m: { type: "cancel", index: 0, begin: 0, length: NaN } },
    { name: "reject length 2^32", m: { type: "reject", index: 0, begin: 0, length: 0x1_0000_0000 } },
    { name: "allowed-fast -1", m: { type: "allowed-fast", index: -1 } },
    { name: "port 65536", m: { type: "port", port: 65536 } },
    { name: "empty bitfield", m: { type: "bitfield", bits: new Uint8Array() } },
    { name: "block too big", m: { type: "piece", index: 0, begin: 0, block: new Uint8Array(MAX_BLOCK_BYTES + 1) } },
    { name: "piece index -1", m: { type: "piece", index: -1, begin: 0, block: new Uint8Array() } },
    { name: "extended id 256", m: { type: "extended", id: 256, payload: new Uint8Array() } },
    {
      name: "extended payload too big",
      m: { type: "extended", id: 1, payload: new Uint8Array(MAX_EXTENDED_MESSAGE_BYTES + 1) },
    },
    { name: "unknown with a known id", m: { type: "unknown", id: 4, payload: new Uint8Array(4) } },
    { name: "unknown id -1", m: { type: "unknown", id: -1, payload: new Uint8Array() } },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      assertThrows(() => encodeMessage(r.m), RangeError);
      assertThrows(() => messageFrameLength(r.m), RangeError);
    });
  }
});

Deno.test("writePieceHeader() writes the prefix of the piece frame encodeMessage() makes", () => {
  const rand = seeded(fuzzSeed());
  for (let i = 0; i < 200; i++) {
    const block = randomBytes(rand, rand.int(64));
    const index = rand.int(0x1_0000_0000);
    const begin = rand.int(0x1_0000_0000);
    const at = rand.int(4);
    const buf = new Uint8Array(at + PIECE_HEADER_BYTES + block.length);
    assertEquals(writePieceHeader(buf, at, index, begin, block.length), PIECE_HEADER_BYTES);
    buf.set(block, at + PIECE_HEADER_BYTES);
    assertEquals(buf.subarray(at), encodeMessage({ type: "piece", index, begin, block }));
  }
});

Deno.test("writePieceHeader() refuses bad fields and a buffer too small", async (t) => {
  const rows: [string, () => unknown][] = [
    ["12-byte buffer", () => writePieceHeader(new Uint8Array(12), 0, 0, 0, 0)],
    ["offset past room", () => writePieceHeader(new Uint8Array(13), 1, 0, 0, 0)],
    ["negative index", () => writePieceHeader(new Uint8Array(13), 0, -1, 0, 0)],
    ["begin 2^32", () => writePieceHeader(new Uint8Array(13), 0, 0, 0x1_0000_0000, 0)],
    ["block over the limit", () => writePieceHeader(new Uint8Array(13), 0, 0, 0, MAX_BLOCK_BYTES + 1)],
    ["negative block", () => writePieceHeader(new Uint8Array(13), 0, 0, 0, -1)],
  ];
  for (const [name, fn] of rows) await t.step(name, () => void assertThrows(fn, RangeError));
});
