import { createHash } from "node:crypto";
import { assertEquals, assertRejects } from "./_assert.ts";
import { randomBytes, seeded } from "./_gen.ts";
import { hashSources, HashThreads } from "../lib/hash_claim.ts";

Deno.test("hashSources() gives the digest of every piece across files and chunks, whatever the thread count", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-claim-" });
  try {
    const rand = seeded(21);
    const sizes = [0, 1, 16383, 50_000, 7, 120_001, 16384];
    const files = sizes.map((n, i) => ({ path: `${dir}/f${i}`, data: randomBytes(rand, n) }));
    for (const f of files) await Deno.writeFile(f.path, f.data);
    const all = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const f of files) {
      all.set(f.data, at);
      at += f.data.length;
    }
    const pieceLength = 16384;
    const want = new Uint8Array(Math.ceil(all.length / pieceLength) * 20);
    for (let p = 0; p * pieceLength < all.length; p++) {
      const piece = all.subarray(p * pieceLength, Math.min(all.length, (p + 1) * pieceLength));
      want.set(createHash("sha1").update(piece).digest(), p * 20);
    }
    const sources = files.map((f) => ({ path: f.path, length: f.data.length }));
    const runs = [
      [pieceLength, 0, pieceLength],
      [pieceLength, 1, 4096],
      [3 * pieceLength, 2, 5000], // reads that end inside pieces and files
      [8 * pieceLength, 3, 3 * pieceLength + 7],
      [2 * pieceLength, 1, 7],
    ];
    for (const [chunk, threads, read] of runs) {
      assertEquals(
        await hashSources(sources, pieceLength, chunk, threads, read),
        want,
        `chunk ${chunk}, ${threads} threads, reads of ${read}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hashSources() rejects when a file cannot be read", async () => {
  await assertRejects(() => hashSources([{ path: "/nonexistent/btfetch", length: 10 }], 16384, 16384, 1), Error);
});

Deno.test("hashSources() hashes on threads started ahead, leaves them to the caller, and refuses a second job on them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-claim-" });
  try {
    const data = randomBytes(seeded(22), 300_001);
    await Deno.writeFile(`${dir}/f`, data);
    const pieceLength = 32768;
    const want = new Uint8Array(Math.ceil(data.length / pieceLength) * 20);
    for (let p = 0; p * pieceLength < data.length; p++) {
      const piece = data.subarray(p * pieceLength, Math.min(data.length, (p + 1) * pieceLength));
      want.set(createHash("sha1").update(piece).digest(), p * 20);
    }
    const sources = [{ path: `${dir}/f`, length: data.length }];
    using threads = HashThreads.start(2);
    assertEquals(threads.size, 2);
    assertEquals(await hashSources(sources, pieceLength, pieceLength, threads, 10_000), want);
    assertEquals(threads.size, 2, "the caller's threads are not closed");
    await assertRejects(() => hashSources(sources, pieceLength, pieceLength, threads), Error, "already ran a job");
    threads.close();
    assertEquals(threads.size, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
