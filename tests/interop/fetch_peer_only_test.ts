/**
 * btfetch fetches a torrent that names no tracker, from a seeder given only with `--peer 127.0.0.1:PORT`
 * (python3-libtorrent, then aria2c).
 * @module
 */
import { assertFetchOk, assertSameTree, fetchFlags, runBtfetch } from "./_btfetch.ts";
import {
  ignoreUnless,
  makeTorrentWithLibtorrent,
  MiB,
  MULTI_FILES,
  requirePrograms,
  startAria2Seeder,
  startLibtorrentSeeder,
  writeMultiFilePayload,
  writeSingleFilePayload,
} from "./_peers.ts";

Deno.test({
  name: "interop: fetch a trackerless torrent from a libtorrent seeder named with --peer",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-peer-lt-" });
    try {
      const pieceLength = 16 * 1024;
      const payload = await writeMultiFilePayload(`${tmp}/seed`, "peer-only", MULTI_FILES, 61);
      const t = await makeTorrentWithLibtorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLength });
      const seeder = await startLibtorrentSeeder({ torrent: t.path, dataDir: payload.dir });
      try {
        const out = `${tmp}/out`;
        const r = await runBtfetch(["get", t.path, "-o", out, "--peer", `127.0.0.1:${seeder.port}`, ...fetchFlags()], {
          timeoutMs: 90_000,
        });
        assertFetchOk(r, { size: payload.size, pieceLength });
        await assertSameTree(payload.path, `${out}/${payload.name}`);
      } finally {
        await seeder.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: fetch a trackerless torrent from an aria2c seeder named with --peer",
  ignore: ignoreUnless("aria2c", "libtorrent"),
  async fn() {
    requirePrograms("aria2c", "libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-peer-a2-" });
    try {
      const pieceLength = 256 * 1024;
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "peer-only-a2.bin", 3 * MiB - 1, 71);
      const t = await makeTorrentWithLibtorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLength });
      const seeder = await startAria2Seeder({ torrent: t.path, dataDir: payload.dir });
      try {
        const out = `${tmp}/out`;
        const r = await runBtfetch(["get", t.path, "-o", out, "--peer", `127.0.0.1:${seeder.port}`, ...fetchFlags()], {
          timeoutMs: 90_000,
        });
        assertFetchOk(r, { size: payload.size, pieceLength });
        await assertSameTree(payload.path, `${out}/${payload.name}`);
      } finally {
        await seeder.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
