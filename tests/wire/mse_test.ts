import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { WireError } from "../../lib/wire/frame.ts";
import {
  CRYPTO_PLAINTEXT,
  CRYPTO_RC4,
  initiatorStep3,
  looksLikePlainHandshake,
  MSE_KEY_BYTES,
  MSE_MAX_PAD,
  mseCiphers,
  parseInitiatorStep3,
  publicKey,
  Rc4,
  receiverStep4,
  sharedSecret,
} from "../../lib/wire/mse.ts";

const enc = new TextEncoder();

Deno.test("Rc4 matches the classic test vectors", async (t) => {
  const rows: [string, string, number[]][] = [
    ["Key", "Plaintext", [0xbb, 0xf3, 0x16, 0xe8, 0xd9, 0x40, 0xaf, 0x0a, 0xd3]],
    ["Wiki", "pedia", [0x10, 0x21, 0xbf, 0x04, 0x20]],
    ["Secret", "Attack at dawn", [0x45, 0xa0, 0x1f, 0x64, 0x5f, 0xc3, 0x5b, 0x38, 0x35, 0x52, 0x54, 0x4b, 0x9b, 0xf5]],
  ];
  for (const [key, text, want] of rows) {
    await t.step(key, () => assertEquals(new Rc4(enc.encode(key), 0).apply(enc.encode(text)), new Uint8Array(want)));
  }
});

Deno.test("Rc4 is its own inverse across chunk boundaries, after the 1024-byte discard", () => {
  const rand = seeded(5);
  const key = randomBytes(rand, 20);
  const data = randomBytes(rand, 5000);
  const a = new Rc4(key);
  const sealed = new Uint8Array([...a.apply(data.subarray(0, 1234)), ...a.apply(data.subarray(1234))]);
  assertEquals(new Rc4(key).apply(sealed), data);
});

Deno.test("publicKey() and sharedSecret() agree on both sides, in 96 bytes", () => {
  const rand = seeded(9);
  for (let i = 0; i < 5; i++) {
    const xa = BigInt("0x" + Array.from(randomBytes(rand, 20), (b) => b.toString(16).padStart(2, "0")).join(""));
    const xb = BigInt("0x" + Array.from(randomBytes(rand, 20), (b) => b.toString(16).padStart(2, "0")).join(""));
    const ya = publicKey(xa);
    const yb = publicKey(xb);
    assertEquals([ya.length, yb.length], [MSE_KEY_BYTES, MSE_KEY_BYTES]);
    assertEquals(sharedSecret(yb, xa), sharedSecret(ya, xb));
  }
});

function session(seed: number) {
  const rand = seeded(seed);
  const big = () => BigInt("0x" + Array.from(randomBytes(rand, 20), (b) => b.toString(16).padStart(2, "0")).join(""));
  const xa = big();
  const xb = big();
  const s = sharedSecret(publicKey(xb), xa);
  const infoHash = randomBytes(rand, 20);
  const other = randomBytes(rand, 20);
  return { rand, s, infoHash, other, sB: sharedSecret(publicKey(xa), xb) };
}

Deno.test("parseInitiatorStep3() finds the sync after padding, names the torrent and decrypts the initial payload", () => {
  const { rand, s, sB, infoHash, other } = session(1);
  assertEquals(s, sB);
  const ia = enc.encode("\x13BitTorrent protocol and the rest of a handshake");
  const padA = randomBytes(rand, 77);
  const after = enc.encode("plaintext that follows");
  const wire = new Uint8Array([...padA, ...initiatorStep3(s, infoHash, CRYPTO_PLAINTEXT | CRYPTO_RC4, ia), ...after]);
  // every prefix short of the initial payload asks for more
  for (const cut of [0, 10, 77, 96, 117, 140, 150]) {
    assertEquals(parseInitiatorStep3(wire.subarray(0, cut), sB, [other, infoHash]).kind, "need", `cut ${cut}`);
  }
  const r = parseInitiatorStep3(wire, sB, [other, infoHash]);
  if (r.kind !== "done") throw new Error("not done");
  assertEquals(r.value.infoHash, infoHash);
  assertEquals(r.value.provide, CRYPTO_PLAINTEXT | CRYPTO_RC4);
  assertEquals(r.value.ia, ia);
  assertEquals(r.value.rest, after);
  // the receiver's answer decrypts, under the initiator's view of keyB, to VC, crypto_select and no padding
  const { b } = mseCiphers(s, infoHash);
  const answer = b.apply(receiverStep4(r.value.cipherB, CRYPTO_PLAINTEXT));
  assertEquals(answer, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, CRYPTO_PLAINTEXT, 0, 0]));
});

Deno.test("parseInitiatorStep3() refuses an unknown torrent, a bad constant and a missing sync", async (t) => {
  const { s, infoHash, other } = session(2);
  const good = initiatorStep3(s, infoHash, CRYPTO_PLAINTEXT, enc.encode("x"));
  await t.step("a torrent we do not have", () => {
    const e = assertThrows(() => parseInitiatorStep3(good, s, [other]), WireError);
    assertEquals(e.code, "bad-handshake");
  });
  await t.step("a wrong verification constant", () => {
    const bad = good.slice();
    bad[40] ^= 1; // first byte of the encrypted VC
    assertEquals(assertThrows(() => parseInitiatorStep3(bad, s, [infoHash]), WireError).code, "bad-handshake");
  });
  await t.step("no sync within the padding", () => {
    const junk = new Uint8Array(MSE_MAX_PAD + 40).fill(7);
    assertEquals(assertThrows(() => parseInitiatorStep3(junk, s, [infoHash]), WireError).code, "bad-handshake");
  });
});

Deno.test("parseInitiatorStep3() lets only WireError out on mutated input", () => {
  const { s, infoHash } = session(3);
  const good = initiatorStep3(s, infoHash, CRYPTO_PLAINTEXT, enc.encode("\x13BitTorrent protocol"));
  const rand = seeded(33);
  for (let i = 0; i < 2000; i++) {
    const m = good.slice(0, rand.int(good.length + 1));
    for (let k = 0; k < 3 && m.length > 0; k++) m[rand.int(m.length)] ^= 1 << rand.int(8);
    try {
      parseInitiatorStep3(m, s, [infoHash]);
    } catch (e) {
      assert(e instanceof WireError, `seed 33 #${i}: ${e}`);
    }
  }
});

Deno.test("looksLikePlainHandshake() tells the protocol name from a public key", () => {
  assert(looksLikePlainHandshake(enc.encode("\x13BitTorrent protocol")));
  assert(looksLikePlainHandshake(enc.encode("\x13BitTo")));
  assert(!looksLikePlainHandshake(publicKey(12345n)));
});
