/**
 * btfetch fetches from an aria2c seeder found through opentracker (HTTP announce: aria2c cannot use UDP trackers with
 * its DHT off), single-file (torrent made by mktorrent) and multi-file (made by libtorrent).
 * @module
 */
import { assertFetchOk, assertSameTree, fetchFlags, runBtfetch } from "./_btfetch.ts";
import { startOpentracker } from "./_opentracker.ts";
import {
  ignoreUnless,
  makeTorrentWithMktorrent,
  makeTrackedTorrent,
  MiB,
  MULTI_FILES,
  type Payload,
  requirePrograms,
  startAria2Seeder,
  writeMultiFilePayload,
  writeSingleFilePayload,
} from "./_peers.ts";

async function fetchFromAria2(payload: Payload, torrentPath: string, tmp: string, pieceLength: number): Promise<void> {
  const seeder = await startAria2Seeder({ torrent: torrentPath, dataDir: payload.dir });
  try {
    const out = `${tmp}/out`;
    const r = await runBtfetch(["get", torrentPath, "-o", out, ...fetchFlags()], {
      timeoutMs: 90_000,
    });
    assertFetchOk(r, { size: payload.size, pieceLength });
    await assertSameTree(payload.path, `${out}/${payload.name}`);
    const st = await seeder.status();
    if (!st || Number(st.uploadLength) === 0) throw new Error(`aria2c reports no upload: ${JSON.stringify(st)}`);
  } finally {
    await seeder.close();
  }
}

Deno.test({
  name: "interop: fetch a single-file mktorrent torrent (256 KiB pieces) from an aria2c seeder via opentracker",
  ignore: ignoreUnless("aria2c", "opentracker", "mktorrent", "libtorrent"),
  async fn() {
    requirePrograms("aria2c", "opentracker", "mktorrent", "libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-a2-single-" });
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "single-a2.bin", 2 * MiB + 1, 31);
      const pre = await makeTorrentWithMktorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLengthLog2: 18 });
      const tracker = await startOpentracker([pre.infoHash]);
      try {
        const t = await makeTorrentWithMktorrent({
          path: payload.path,
          out: `${tmp}/t.torrent`,
          pieceLengthLog2: 18,
          announce: [tracker.httpUrl],
        });
        await fetchFromAria2(payload, t.path, tmp, 256 * 1024);
      } finally {
        await tracker.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: fetch a multi-file torrent (odd sizes, empty file, shared pieces) from an aria2c seeder",
  ignore: ignoreUnless("aria2c", "opentracker", "libtorrent"),
  async fn() {
    requirePrograms("aria2c", "opentracker", "libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-a2-multi-" });
    try {
      const payload = await writeMultiFilePayload(`${tmp}/seed`, "multi-a2", MULTI_FILES, 41);
      const { torrent, tracker } = await makeTrackedTorrent({
        payload,
        out: `${tmp}/t.torrent`,
        pieceLength: 32 * 1024,
        startTracker: (h) => startOpentracker([h]),
        trackers: (t) => [[t.httpUrl]],
      });
      try {
        await fetchFromAria2(payload, torrent.path, tmp, 32 * 1024);
      } finally {
        await tracker.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
