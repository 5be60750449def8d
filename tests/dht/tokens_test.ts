import { createHash } from "node:crypto";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import {
  checkToken,
  createReceivedTokens,
  createTokenSecrets,
  issueToken,
  RECEIVED_TOKEN_TTL_MS,
  rememberToken,
  rotateSecret,
  rotationDue,
  TOKEN_BYTES,
  TOKEN_ROTATE_MS,
  tokenFor,
} from "../../lib/dht/tokens.ts";
import { DHT_MAX_RECEIVED_TOKENS, MAX_KRPC_TOKEN_BYTES } from "../../lib/limits.ts";

const S1 = new Uint8Array(16).fill(0x11);
const S2 = new Uint8Array(16).fill(0x22);
const S3 = new Uint8Array(16).fill(0x33);

Deno.test("issueToken() is the first bytes of SHA-1(secret || compact IP)", async (t) => {
  const rows: [string, string, number[]][] = [
    ["IPv4", "10.1.2.3", [10, 1, 2, 3]],
    ["IPv4-mapped IPv6 is the IPv4 host", "::ffff:10.1.2.3", [10, 1, 2, 3]],
    ["IPv6", "2001:db8::1", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
  ];
  const s = createTokenSecrets(S1, 0);
  for (const [name, ip, compact] of rows) {
    await t.step(name, () => {
      const want = createHash("sha1").update(S1).update(new Uint8Array(compact)).digest().subarray(0, TOKEN_BYTES);
      assertEquals(issueToken(s, ip), new Uint8Array(want));
    });
  }
});

Deno.test("checkToken() accepts the current and the previous secret's tokens, for the same IP only", async (t) => {
  const s0 = createTokenSecrets(S1, 0);
  const old = issueToken(s0, "10.0.0.1");
  const s1 = rotateSecret(s0, S2, TOKEN_ROTATE_MS);
  const cur = issueToken(s1, "10.0.0.1");
  const s2 = rotateSecret(s1, S3, 2 * TOKEN_ROTATE_MS);
  const rows: [string, boolean][] = [
    ["current secret", checkToken(s1, "10.0.0.1", cur, TOKEN_ROTATE_MS + 1)],
    ["previous secret", checkToken(s1, "10.0.0.1", old, TOKEN_ROTATE_MS + 1)],
  ];
  for (const [name, got] of rows) await t.step(`${name}: accepted`, () => assertEquals(got, true));
  const refused: [string, boolean][] = [
    ["another IP", checkToken(s1, "10.0.0.2", cur, TOKEN_ROTATE_MS + 1)],
    ["two rotations ago", checkToken(s2, "10.0.0.1", old, 2 * TOKEN_ROTATE_MS)],
    ["a truncated token", checkToken(s1, "10.0.0.1", cur.subarray(0, 4), TOKEN_ROTATE_MS + 1)],
    ["a longer token", checkToken(s1, "10.0.0.1", new Uint8Array([...cur, 0]), TOKEN_ROTATE_MS + 1)],
    ["one flipped bit", checkToken(s1, "10.0.0.1", cur.map((b, i) => i === 3 ? b ^ 1 : b), TOKEN_ROTATE_MS + 1)],
    ["previous secret a period after the rotation", checkToken(s1, "10.0.0.1", old, 2 * TOKEN_ROTATE_MS)],
    ["current secret never rotated for two periods", checkToken(s1, "10.0.0.1", cur, 3 * TOKEN_ROTATE_MS)],
  ];
  for (const [name, got] of refused) await t.step(`${name}: refused`, () => assertEquals(got, false));
});

Deno.test("rotationDue() after TOKEN_ROTATE_MS; secrets shorter than 8 bytes are refused", () => {
  const s = createTokenSecrets(S1, 1000);
  assertEquals([rotationDue(s, 1000 + TOKEN_ROTATE_MS - 1), rotationDue(s, 1000 + TOKEN_ROTATE_MS)], [false, true]);
  assertEquals(rotationDue(rotateSecret(s, S2, 1000 + TOKEN_ROTATE_MS), 1000 + TOKEN_ROTATE_MS), false);
  assertThrows(() => createTokenSecrets(new Uint8Array(7), 0), RangeError);
  assertThrows(() => rotateSecret(s, new Uint8Array(0), 0), RangeError);
});

Deno.test("issueToken() gives distinct tokens to distinct IPs and secrets", () => {
  const rand = seeded(4);
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const s = createTokenSecrets(randomBytes(rand, 16), 0);
    const ip = `10.${rand.int(256)}.${rand.int(256)}.${rand.int(256)}`;
    const token = issueToken(s, ip);
    seen.add(Array.from(token).join());
    assert(checkToken(s, ip, token, 0), `seed 4 #${i}`);
  }
  assertEquals(seen.size, 500);
});

Deno.test("rememberToken() and tokenFor() keep tokens per node and info-hash, fresh and bounded", () => {
  const store = createReceivedTokens();
  const a = { address: { host: "10.0.0.1", port: 6881 }, infoHash: new Uint8Array(20).fill(1) };
  const b = { ...a, infoHash: new Uint8Array(20).fill(2) };
  const c = { ...a, address: { host: "10.0.0.1", port: 6882 } };
  assertEquals(rememberToken(store, { ...a, token: new Uint8Array([1]) }, 0), true);
  assertEquals(rememberToken(store, { ...b, token: new Uint8Array([2]) }, 0), true);
  assertEquals(tokenFor(store, a, 10), new Uint8Array([1]));
  assertEquals(tokenFor(store, b, 10), new Uint8Array([2]));
  assertEquals(tokenFor(store, c, 10), null); // another port is another node
  // too long or empty: not kept, and the previous token stays
  assertEquals(rememberToken(store, { ...a, token: new Uint8Array(MAX_KRPC_TOKEN_BYTES + 1) }, 20), false);
  assertEquals(rememberToken(store, { ...a, token: new Uint8Array(0) }, 20), false);
  assertEquals(tokenFor(store, a, 20), new Uint8Array([1]));
  // a newer token replaces the older and lives on
  rememberToken(store, { ...a, token: new Uint8Array([3]) }, 100);
  assertEquals(tokenFor(store, b, RECEIVED_TOKEN_TTL_MS), null);
  assertEquals(tokenFor(store, a, RECEIVED_TOKEN_TTL_MS), new Uint8Array([3]));
  assertEquals(tokenFor(store, a, RECEIVED_TOKEN_TTL_MS + 100), null);
  assertEquals(store.entries.size, 0);
  // bounded: the oldest go first
  for (let i = 0; i < DHT_MAX_RECEIVED_TOKENS + 10; i++) {
    rememberToken(store, {
      address: { host: "10.0.0.9", port: 1 + i },
      infoHash: a.infoHash,
      token: new Uint8Array([i & 255]),
    }, 1000 + i);
  }
  assertEquals(store.entries.size, DHT_MAX_RECEIVED_TOKENS);
  assertEquals(tokenFor(store, { address: { host: "10.0.0.9", port: 1 }, infoHash: a.infoHash }, 5000), null);
  assertEquals(
    tokenFor(store, { address: { host: "10.0.0.9", port: 11 }, infoHash: a.infoHash }, 5000),
    new Uint8Array([10]),
  );
});
