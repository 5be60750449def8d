import { assertEquals, assertThrows } from "../_assert.ts";
import { fuzzSeed, randomBytes, seeded } from "../_gen.ts";
import { allowedFastSet } from "../../lib/wire/fast.ts";

const infoHash = new Uint8Array(20).fill(0xaa);
const ip = new Uint8Array([80, 4, 4, 200]);
const seven = [1059, 431, 808, 1217, 287, 376, 1188];

Deno.test("allowedFastSet() matches the BEP 6 example vectors", async (t) => {
  await t.step("k = 7", () => assertEquals(allowedFastSet(7, infoHash, ip, 1313), seven));
  await t.step("k = 9", () => assertEquals(allowedFastSet(9, infoHash, ip, 1313), [...seven, 353, 508]));
});

Deno.test("allowedFastSet() masks the address to its /24", () => {
  for (const last of [0, 1, 200, 255]) {
    assertEquals(allowedFastSet(9, infoHash, new Uint8Array([80, 4, 4, last]), 1313), [...seven, 353, 508]);
  }
  assertEquals(allowedFastSet(7, infoHash, new Uint8Array([80, 4, 5, 200]), 1313).join() === seven.join(), false);
});

Deno.test("allowedFastSet() caps k at the piece count and handles tiny torrents", async (t) => {
  const rows = [
    { k: 10, pieces: 0, size: 0 },
    { k: 10, pieces: 1, size: 1 },
    { k: 10, pieces: 3, size: 3 },
    { k: 0, pieces: 100, size: 0 },
    { k: 10, pieces: 10, size: 10 },
  ];
  for (const r of rows) {
    await t.step(`k ${r.k}, ${r.pieces} pieces`, () => {
      const set = allowedFastSet(r.k, infoHash, ip, r.pieces);
      assertEquals(set.length, r.size);
      assertEquals(new Set(set).size, r.size);
    });
  }
});

Deno.test("allowedFastSet() gives distinct in-range indexes, and a prefix for smaller k", () => {
  const seed = fuzzSeed();
  const rand = seeded(seed);
  for (let i = 0; i < 100; i++) {
    const h = randomBytes(rand, 20);
    const addr = randomBytes(rand, 4);
    const pieces = 1 + rand.int(5000);
    const k = rand.int(20);
    const set = allowedFastSet(k, h, addr, pieces);
    assertEquals(set.length, Math.min(k, pieces), `seed ${seed} #${i}`);
    assertEquals(new Set(set).size, set.length, `seed ${seed} #${i}`);
    assertEquals(set.every((x) => x >= 0 && x < pieces), true, `seed ${seed} #${i}`);
    assertEquals(allowedFastSet(Math.floor(k / 2), h, addr, pieces), set.slice(0, Math.min(Math.floor(k / 2), pieces)));
  }
});

Deno.test("allowedFastSet() refuses malformed arguments with RangeError", async (t) => {
  const rows: [string, () => unknown][] = [
    ["short info-hash", () => allowedFastSet(7, new Uint8Array(19), ip, 10)],
    ["IPv6 address", () => allowedFastSet(7, infoHash, new Uint8Array(16), 10)],
    ["negative k", () => allowedFastSet(-1, infoHash, ip, 10)],
    ["fractional piece count", () => allowedFastSet(7, infoHash, ip, 1.5)],
  ];
  for (const [name, fn] of rows) await t.step(name, () => void assertThrows(fn, RangeError));
});
