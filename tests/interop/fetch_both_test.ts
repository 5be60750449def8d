/**
 * btfetch fetches one torrent from a python3-libtorrent seeder and an aria2c seeder at once, both found through
 * opentracker. Each seeder is rate-limited so neither can serve the whole payload before the other is reached; both
 * must have sent data (by their own counters) and btfetch must report at least two `peer` events.
 * @module
 */
import { assertFetchOk, assertSameTree, describeRun, eventsOf, fetchFlags, runBtfetch } from "./_btfetch.ts";
import { startOpentracker } from "./_opentracker.ts";
import {
  copyTree,
  ignoreUnless,
  libtorrentStats,
  makeTrackedTorrent,
  MiB,
  MULTI_FILES,
  requirePrograms,
  sleep,
  startAria2Seeder,
  startLibtorrentSeeder,
  writeMultiFilePayload,
} from "./_peers.ts";

const NEEDS = ["libtorrent", "aria2c", "opentracker"];

Deno.test({
  name: "interop: fetch from a libtorrent seeder and an aria2c seeder at once via opentracker",
  ignore: ignoreUnless(...NEEDS),
  async fn() {
    requirePrograms(...NEEDS);
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-both-" });
    try {
      const pieceLength = 32 * 1024;
      // 8.1 MiB: the endgame may fetch twice what a 1 MiB/s holder queued past its commit window (260-390 KiB in 12 runs,
      // 480 and 512 KiB in two more), which passed the 10% bound of a 4.1 MiB payload in 3 runs of 29
      const payload = await writeMultiFilePayload(`${tmp}/lt`, "both", [...MULTI_FILES, ["more.bin", 5 * MiB]], 51);
      await Deno.mkdir(`${tmp}/a2`);
      await copyTree(payload.path, `${tmp}/a2/${payload.name}`);
      const { torrent, tracker } = await makeTrackedTorrent({
        payload,
        out: `${tmp}/t.torrent`,
        pieceLength,
        startTracker: (h) => startOpentracker([h]),
        trackers: (t) => [[t.httpUrl]],
      });
      try {
        // ~8.1 MiB at 1 MiB/s each: about 4 s with both, 8 s with one.
        const rate = MiB;
        const lt = await startLibtorrentSeeder({
          torrent: torrent.path,
          dataDir: payload.dir,
          trackerOk: true,
          uploadRate: rate,
        });
        try {
          const a2 = await startAria2Seeder({ torrent: torrent.path, dataDir: `${tmp}/a2`, uploadRate: rate });
          try {
            const out = `${tmp}/out`;
            const r = await runBtfetch(
              ["get", torrent.path, "-o", out, ...fetchFlags()],
              { timeoutMs: 90_000 },
            );
            assertFetchOk(r, { size: payload.size, pieceLength });
            await assertSameTree(payload.path, `${out}/${payload.name}`);
            await sleep(600); // let libtorrent print its last counters
            const ltUp = libtorrentStats(lt)[0];
            const a2Up = Number((await a2.status())?.uploadLength ?? 0);
            const where = `libtorrent sent ${ltUp}, aria2c sent ${a2Up}\n${describeRun(r)}`;
            // A seeder may also connect to btfetch (it learns btfetch's port from the tracker), so its peer event may
            // name an ephemeral port rather than its listening one: count peer events, and trust the seeders' own
            // upload counters for who sent data.
            if (eventsOf(r, "peer").length < 2) throw new Error(`fewer than two peer events\n${where}`);
            if (ltUp === 0) throw new Error(`the libtorrent seeder sent nothing: ${where}`);
            if (a2Up === 0) throw new Error(`the aria2c seeder sent nothing: ${where}`);
          } finally {
            await a2.close();
          }
        } finally {
          await lt.close();
        }
      } finally {
        await tracker.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
