/**
 * Magnet links and bare info-hashes: the metadata comes from peers (BEP 9), from python3-libtorrent and from btfetch
 * itself, found through `x.pe`, `--peer` or a tracker named in the magnet.
 */
import { assert, assertEquals } from "../_assert.ts";
import { assertFetchOk, assertSameTree, type BtfetchResult, fetchFlags, runBtfetch } from "./_btfetch.ts";
import { startBtfetchSeeder } from "./_btfetch_seeder.ts";
import { startOpentracker } from "./_opentracker.ts";
import {
  ignoreUnless,
  makeTorrentWithLibtorrent,
  makeTorrentWithMktorrent,
  makeTrackedTorrent,
  MULTI_FILES,
  requirePrograms,
  startAria2Seeder,
  startLibtorrentSeeder,
  writeMultiFilePayload,
  writeSingleFilePayload,
} from "./_peers.ts";
import { parseMetainfo } from "../../lib/metainfo.ts";

Deno.test({
  name: "interop: get a magnet (x.pe) and a bare info-hash (--peer) from a libtorrent seeder; --save-torrent",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-magnet-" });
    try {
      const payload = await writeMultiFilePayload(`${tmp}/seed`, "mag", MULTI_FILES, 61);
      const t = await makeTorrentWithLibtorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLength: 32768 });
      const seeder = await startLibtorrentSeeder({ torrent: t.path, dataDir: payload.dir });
      try {
        const magnet = `magnet:?xt=urn:btih:${t.infoHash}&dn=mag&x.pe=127.0.0.1:${seeder.port}`;
        const r = await runBtfetch(
          ["get", magnet, "-o", `${tmp}/a`, "--save-torrent", `${tmp}/saved.torrent`, ...fetchFlags()],
          { timeoutMs: 90_000 },
        );
        assertFetchOk(r, { size: payload.size, pieceLength: 32768 });
        await assertSameTree(payload.path, `${tmp}/a/${payload.name}`);
        const saved = parseMetainfo(await Deno.readFile(`${tmp}/saved.torrent`));
        assertEquals(saved.infoHashHex, t.infoHash);
        const bare = await runBtfetch(
          ["get", t.infoHash.toUpperCase(), "-o", `${tmp}/b`, "--peer", `127.0.0.1:${seeder.port}`, ...fetchFlags()],
          { timeoutMs: 90_000 },
        );
        assertFetchOk(bare, { size: payload.size, pieceLength: 32768 });
        await assertSameTree(payload.path, `${tmp}/b/${payload.name}`);
      } finally {
        await seeder.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: get a magnet whose only source is its tracker (opentracker), from a libtorrent seeder",
  ignore: ignoreUnless("libtorrent", "opentracker"),
  async fn() {
    requirePrograms("libtorrent", "opentracker");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-magnet-tr-" });
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "tr.bin", 3 * 1024 * 1024 + 11, 62);
      const { torrent, tracker } = await makeTrackedTorrent({
        payload,
        out: `${tmp}/t.torrent`,
        pieceLength: 65536,
        startTracker: (h) => startOpentracker([h]),
        trackers: (tr) => [[tr.httpUrl]],
      });
      try {
        const seeder = await startLibtorrentSeeder({ torrent: torrent.path, dataDir: payload.dir, trackerOk: true });
        try {
          const magnet = `magnet:?xt=urn:btih:${torrent.infoHash}&tr=${encodeURIComponent(tracker.httpUrl)}`;
          const r = await runBtfetch(["get", magnet, "-o", `${tmp}/out`, ...fetchFlags()], { timeoutMs: 90_000 });
          assertFetchOk(r, { size: payload.size, pieceLength: 65536 });
          await assertSameTree(payload.path, `${tmp}/out/${payload.name}`);
        } finally {
          await seeder.close();
        }
      } finally {
        await tracker.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("swarm: btfetch serves metadata, so a second btfetch gets a bare info-hash from a btfetch seed", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "btfetch-magnet-bt-" });
  try {
    await Deno.mkdir(`${tmp}/seed/data`, { recursive: true });
    await Deno.writeFile(`${tmp}/seed/data/one.bin`, new Uint8Array(200_000).map((_, i) => i * 13));
    await Deno.writeFile(`${tmp}/seed/data/two.bin`, new Uint8Array(70_001).map((_, i) => i * 7));
    const made = await runBtfetch(["create", `${tmp}/seed/data`, "-o", `${tmp}/t.torrent`, "--json"], {
      timeoutMs: 30_000,
    });
    assertEquals(made.code, 0, made.stderr);
    const meta = parseMetainfo(await Deno.readFile(`${tmp}/t.torrent`));
    const seeder = await startBtfetchSeeder({ torrent: `${tmp}/t.torrent`, dir: `${tmp}/seed` });
    try {
      const r = await runBtfetch(
        ["get", meta.infoHashHex, "-o", `${tmp}/out`, "--peer", `127.0.0.1:${seeder.port}`, ...fetchFlags()],
        { timeoutMs: 60_000 },
      );
      assertEquals(r.code, 0, r.stderr);
      await assertSameTree(`${tmp}/seed/data`, `${tmp}/out/data`);
      assert(r.events.some((e) => e.event === "metadata" && e.info_hash === meta.infoHashHex));
    } finally {
      await seeder.stop();
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/**
 * A TCP forwarder on 127.0.0.1 that lets one connection through to `target` and closes every later one at once: a
 * peer that accepts one connection and refuses a second so soon (as a full or reconnect-limiting peer does).
 */
function oneConnectionProxy(target: number): { port: number; accepted: () => number; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted = 0;
  const open: Deno.Conn[] = [];
  const pipes: Promise<unknown>[] = [];
  const loop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      if (++accepted > 1) {
        conn.close();
        continue;
      }
      const up = await Deno.connect({ hostname: "127.0.0.1", port: target });
      open.push(conn, up);
      pipes.push(conn.readable.pipeTo(up.writable).catch(() => {}), up.readable.pipeTo(conn.writable).catch(() => {}));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    accepted: () => accepted,
    close: async () => {
      listener.close();
      await loop;
      for (const c of open) {
        try {
          c.close();
        } catch { /* closed by the pipe */ }
      }
      await Promise.all(pipes);
    },
  };
}

/**
 * `get` of the magnet `xt=infoHash&x.pe=` a {@linkcode oneConnectionProxy} to the seeder at `seederPort` (64 KiB
 * pieces): the only way to the seeder is one connection, so a download that dialled again after the metadata would
 * stall. Checks the result, the bytes, and that one connection was all it took; returns the run and the proxy's port.
 */
async function getOverOneConnection(
  tmp: string,
  payload: { path: string; name: string; size: number },
  infoHash: string,
  seederPort: number,
): Promise<{ r: BtfetchResult; port: number }> {
  const proxy = oneConnectionProxy(seederPort);
  try {
    const magnet = `magnet:?xt=urn:btih:${infoHash}&x.pe=127.0.0.1:${proxy.port}`;
    const r = await runBtfetch(["get", magnet, "-o", `${tmp}/out`, ...fetchFlags()], { timeoutMs: 90_000 });
    assertFetchOk(r, { size: payload.size, pieceLength: 65536 });
    await assertSameTree(payload.path, `${tmp}/out/${payload.name}`);
    assertEquals(proxy.accepted(), 1, "one connection for the metadata and the download");
    return { r, port: proxy.port };
  } finally {
    await proxy.close();
  }
}

Deno.test({
  name: "interop: the libtorrent peer that sent a magnet's metadata serves the download on the same connection",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-magnet-one-" });
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "one.bin", 2 * 1024 * 1024 + 5, 63);
      const t = await makeTorrentWithLibtorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLength: 65536 });
      const seeder = await startLibtorrentSeeder({ torrent: t.path, dataDir: payload.dir });
      try {
        const { r, port } = await getOverOneConnection(tmp, payload, t.infoHash, seeder.port);
        const connected = r.events.filter((e) => e.event === "peer" && e.action === "connected");
        assertEquals(connected.map((e) => [e.address, e.source]), [[`127.0.0.1:${port}`, "manual"]]);
      } finally {
        await seeder.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: get a magnet (x.pe) from an aria2c seeder, the metadata and the data on one connection",
  ignore: ignoreUnless("aria2c", "mktorrent"),
  async fn() {
    requirePrograms("aria2c", "mktorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-magnet-a2-" });
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "a2.bin", 3 * 1024 * 1024 + 17, 64);
      const t = await makeTorrentWithMktorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLengthLog2: 16 });
      const seeder = await startAria2Seeder({ torrent: t.path, dataDir: payload.dir });
      try {
        await getOverOneConnection(tmp, payload, t.infoHash, seeder.port);
      } finally {
        await seeder.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
