import { assertEquals, assertThrows } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { WireError } from "../../lib/wire/frame.ts";
import {
  decodeHandshake,
  encodeHandshake,
  HANDSHAKE_BYTES,
  PROTOCOL_NAME,
  reservedBits,
  supportsDht,
  supportsExtended,
  supportsFast,
} from "../../lib/wire/handshake.ts";

const sample = {
  reserved: reservedBits({ fast: true, extended: true }),
  infoHash: new Uint8Array(20).map((_, i) => i + 1),
  peerId: new TextEncoder().encode("-BF0100-abcdefghijkl"),
};

Deno.test("encodeHandshake() lays out pstrlen, protocol, reserved, info-hash, peer id", () => {
  const b = encodeHandshake(sample);
  assertEquals(b.length, HANDSHAKE_BYTES);
  assertEquals(b[0], 19);
  assertEquals(new TextDecoder().decode(b.subarray(1, 20)), PROTOCOL_NAME);
  assertEquals(b.subarray(20, 28), sample.reserved);
  assertEquals(b.subarray(28, 48), sample.infoHash);
  assertEquals(b.subarray(48, 68), sample.peerId);
});

Deno.test("encodeHandshake() refuses fields of the wrong size", async (t) => {
  const rows = [
    { name: "reserved 7", h: { ...sample, reserved: new Uint8Array(7) } },
    { name: "info-hash 32", h: { ...sample, infoHash: new Uint8Array(32) } },
    { name: "peer id 19", h: { ...sample, peerId: new Uint8Array(19) } },
  ];
  for (const r of rows) await t.step(r.name, () => void assertThrows(() => encodeHandshake(r.h), RangeError));
});

Deno.test("decodeHandshake() inverts encodeHandshake() at any offset, leaving later bytes", () => {
  const b = new Uint8Array([1, 2, 3, ...encodeHandshake(sample), 0, 0, 0, 0]);
  assertEquals(decodeHandshake(b, 3), { kind: "handshake", handshake: sample, next: 71 });
});

Deno.test("decodeHandshake() returns copies, not views", () => {
  const b = encodeHandshake(sample);
  const r = decodeHandshake(b, 0);
  if (r.kind !== "handshake") throw new Error("expected a handshake");
  b.fill(0);
  assertEquals(r.handshake.peerId, sample.peerId);
});

Deno.test("decodeHandshake() fed one byte at a time asks for exactly the bytes missing", () => {
  const b = encodeHandshake(sample);
  for (let n = 0; n < HANDSHAKE_BYTES; n++) {
    assertEquals(
      decodeHandshake(b.subarray(0, n), 0),
      { kind: "need", bytes: HANDSHAKE_BYTES - n },
      `after ${n} bytes`,
    );
  }
  assertEquals(decodeHandshake(b, 0), { kind: "handshake", handshake: sample, next: HANDSHAKE_BYTES });
});

Deno.test("decodeHandshake() rejects garbage as soon as the bad byte arrives", async (t) => {
  const good = encodeHandshake(sample);
  const rows = [
    { name: "HTTP request", bytes: new TextEncoder().encode("GET /announce HTTP/1.1\r\n"), at: 0 },
    { name: "pstrlen 0", bytes: new Uint8Array([0]), at: 0 },
    { name: "pstrlen 20", bytes: new Uint8Array([20, ...good.subarray(1, 20)]), at: 0 },
    { name: "pstrlen 0xff alone", bytes: new Uint8Array([0xff]), at: 0 },
    { name: "lower-case b", bytes: new Uint8Array([19, 0x62]), at: 1 },
    { name: "last protocol byte wrong", bytes: new Uint8Array([...good.subarray(0, 19), 0x6d]), at: 19 },
    { name: "encrypted (MSE) stream", bytes: randomBytes(seeded(3), 96).map((x) => x | 0x80), at: 0 },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const err = assertThrows(() => decodeHandshake(new Uint8Array([7, 7, ...r.bytes]), 2), WireError);
      assertEquals([err.code, err.offset], ["bad-handshake", 2 + r.at]);
    });
  }
});

Deno.test("decodeHandshake() checks every protocol byte: a flip in any is refused there", () => {
  const good = encodeHandshake(sample);
  for (let i = 0; i < 20; i++) {
    for (const bit of [0x01, 0x20, 0x80]) {
      const b = good.slice(0, i + 1);
      b[i] ^= bit;
      const err = assertThrows(() => decodeHandshake(b, 0), WireError, `byte ${i} bit ${bit}`);
      assertEquals([err.code, err.offset], ["bad-handshake", i]);
    }
  }
});

Deno.test("decodeHandshake() takes any reserved, info-hash and peer-id bytes", () => {
  const rand = seeded(11);
  for (let i = 0; i < 200; i++) {
    const h = { reserved: randomBytes(rand, 8), infoHash: randomBytes(rand, 20), peerId: randomBytes(rand, 20) };
    assertEquals(decodeHandshake(encodeHandshake(h), 0), { kind: "handshake", handshake: h, next: 68 }, `#${i}`);
  }
});

Deno.test("reservedBits() sets the BEP 5, 6 and 10 bits and supportsX() reads them", async (t) => {
  const rows = [
    { opts: {}, bytes: [0, 0, 0, 0, 0, 0, 0, 0], fast: false, ext: false, dht: false },
    { opts: { fast: true }, bytes: [0, 0, 0, 0, 0, 0, 0, 0x04], fast: true, ext: false, dht: false },
    { opts: { extended: true }, bytes: [0, 0, 0, 0, 0, 0x10, 0, 0], fast: false, ext: true, dht: false },
    { opts: { dht: true }, bytes: [0, 0, 0, 0, 0, 0, 0, 0x01], fast: false, ext: false, dht: true },
    {
      opts: { fast: true, extended: true, dht: true },
      bytes: [0, 0, 0, 0, 0, 0x10, 0, 0x05],
      fast: true,
      ext: true,
      dht: true,
    },
    {
      opts: { fast: false, extended: false, dht: false },
      bytes: [0, 0, 0, 0, 0, 0, 0, 0],
      fast: false,
      ext: false,
      dht: false,
    },
  ];
  for (const r of rows) {
    await t.step(JSON.stringify(r.opts), () => {
      const b = reservedBits(r.opts);
      assertEquals(b, new Uint8Array(r.bytes));
      assertEquals([supportsFast(b), supportsExtended(b), supportsDht(b)], [r.fast, r.ext, r.dht]);
    });
  }
});

Deno.test("supportsX() ignore the other reserved bits", () => {
  const all = new Uint8Array(8).fill(0xff);
  assertEquals([supportsFast(all), supportsExtended(all), supportsDht(all)], [true, true, true]);
  const others = all.map((x, i) => i === 5 ? x & ~0x10 : i === 7 ? x & ~0x05 : x);
  assertEquals([supportsFast(others), supportsExtended(others), supportsDht(others)], [false, false, false]);
});
