import { assert, assertEquals } from "../_assert.ts";
import { makeTorrent } from "../_torrent.ts";
import { runSession } from "../../lib/engine/session.ts";
import { StorageError } from "../../lib/storage/disk.ts";
import { encodeHandshake, reservedBits } from "../../lib/wire/handshake.ts";
import { encodeMessage } from "../../lib/wire/messages.ts";

Deno.test("runSession() ends with a StorageError (exit 5), not a bug, when seeded data is lost from disk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-gone-" });
  const data = new Uint8Array(64 * 1024).map((_, i) => i % 251);
  const { meta } = makeTorrent({ name: "gone.bin", pieceLength: 16384, files: data });
  await Deno.writeFile(`${dir}/gone.bin`, data);
  let resolvePort!: (p: number) => void;
  const port = new Promise<number>((r) => (resolvePort = r));
  const deadline = new AbortController(); // a seeding session has no end of its own: never let the test hang
  const guard = setTimeout(() => deadline.abort(new Error("the session did not fail within 15 s")), 15_000);
  const run = runSession({
    meta,
    outDir: dir,
    port: 0,
    seed: {},
    signal: deadline.signal,
    onEvent: (e) => e.event === "listening" && resolvePort(e.port),
  });
  const outcome = run.then(() => null, (e) => e);
  const c = await Deno.connect({ hostname: "127.0.0.1", port: await port });
  try {
    // the data is lost (truncated: a deleted file would stay readable through the descriptor the store holds)
    await Deno.truncate(`${dir}/gone.bin`, 0);
    await c.write(encodeHandshake({ reserved: reservedBits({}), infoHash: meta.infoHash, peerId: new Uint8Array(20) }));
    await c.write(encodeMessage({ type: "interested" }));
    // wait for the unchoke, then ask for a block of a piece whose file is gone
    const buf = new Uint8Array(65536);
    let seen = new Uint8Array(0);
    const unchoke = [0, 0, 0, 1, 1];
    const hasUnchoke = () => seen.some((_, i) => unchoke.every((b, k) => seen[i + k] === b));
    const until = Date.now() + 5000;
    while (!hasUnchoke() && Date.now() < until) {
      const n = await c.read(buf);
      if (n === null) break;
      seen = new Uint8Array([...seen, ...buf.subarray(0, n)]);
    }
    assert(hasUnchoke(), "the seeder unchokes an interested peer");
    // the interested came in with the handshake: our handshake must still go out before any reply to it
    assertEquals([...seen.subarray(0, 20)], [19, ...new TextEncoder().encode("BitTorrent protocol")]);
    await c.write(encodeMessage({ type: "request", index: 1, begin: 0, length: 16384 }));
    const e = await outcome;
    assert(e instanceof StorageError, `expected a StorageError, got ${e}`);
    assertEquals((e as StorageError).code, "read");
  } finally {
    clearTimeout(guard);
    deadline.abort(new Error("test over"));
    await outcome;
    try {
      c.close();
    } catch { /* closed by the session */ }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runSession() seeding complete data opens nothing for writing: a file longer than the torrent keeps its tail", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-long-" });
  const data = new Uint8Array(64 * 1024).map((_, i) => i % 251);
  const { meta } = makeTorrent({ name: "long.bin", pieceLength: 16384, files: data });
  const tail = new Uint8Array(5000).fill(7);
  await Deno.writeFile(`${dir}/long.bin`, new Uint8Array([...data, ...tail]));
  const stop = new AbortController();
  try {
    const run = runSession({
      meta,
      outDir: dir,
      port: null,
      seed: {},
      requireComplete: true,
      signal: stop.signal,
      onEvent: (e) => e.event === "seeding" && stop.abort(new Error("seen")),
    });
    await run.then(() => {}, () => {});
    const after = await Deno.readFile(`${dir}/long.bin`);
    assertEquals(after.length, data.length + tail.length, "the file was cut to the torrent's length");
  } finally {
    stop.abort(new Error("test over"));
    await Deno.remove(dir, { recursive: true });
  }
});
