/**
 * btfetch fetches from a python3-libtorrent seeder found through opentracker (HTTP announce), single- and multi-file.
 * @module
 */
import { assertFetchOk, assertSameTree, fetchFlags, runBtfetch } from "./_btfetch.ts";
import { startOpentracker } from "./_opentracker.ts";
import {
  ignoreUnless,
  makeTrackedTorrent,
  MiB,
  MULTI_FILES,
  type Payload,
  requirePrograms,
  startLibtorrentSeeder,
  writeMultiFilePayload,
  writeSingleFilePayload,
} from "./_peers.ts";

const NEEDS = ["libtorrent", "opentracker"];

async function fetchFromLibtorrent(payload: Payload, tmp: string, pieceLength: number): Promise<void> {
  const { torrent, tracker } = await makeTrackedTorrent({
    payload,
    out: `${tmp}/t.torrent`,
    pieceLength,
    startTracker: (h) => startOpentracker([h]),
    trackers: (t) => [[t.httpUrl]],
  });
  try {
    const seeder = await startLibtorrentSeeder({ torrent: torrent.path, dataDir: payload.dir, trackerOk: true });
    try {
      const out = `${tmp}/out`;
      const r = await runBtfetch(["get", torrent.path, "-o", out, ...fetchFlags()], {
        timeoutMs: 90_000,
      });
      assertFetchOk(r, { size: payload.size, pieceLength });
      await assertSameTree(payload.path, `${out}/${payload.name}`);
    } finally {
      await seeder.close();
    }
  } finally {
    await tracker.close();
  }
}

Deno.test({
  name: "interop: fetch a single-file torrent (short last piece) from a libtorrent seeder via opentracker",
  ignore: ignoreUnless(...NEEDS),
  async fn() {
    requirePrograms(...NEEDS);
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-lt-single-" });
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "single.bin", 3 * MiB + 12345, 11);
      await fetchFromLibtorrent(payload, tmp, 32 * 1024);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: fetch a multi-file torrent (odd sizes, empty file, shared pieces) from a libtorrent seeder",
  ignore: ignoreUnless(...NEEDS),
  async fn() {
    requirePrograms(...NEEDS);
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-lt-multi-" });
    try {
      const payload = await writeMultiFilePayload(`${tmp}/seed`, "multi", MULTI_FILES, 21);
      await fetchFromLibtorrent(payload, tmp, 16 * 1024);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
