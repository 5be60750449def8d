/**
 * aria2c downloads from `btfetch seed`: torrents made by `btfetch create` (single-file, and multi-file with odd sizes
 * and an empty file), found through opentracker (HTTP: aria2c cannot use UDP trackers with its DHT off), and
 * trackerless, with btfetch dialling aria2c (`--peer`), since aria2c takes no peer address for a .torrent download.
 * @module
 */
import { assertSameTree } from "./_btfetch.ts";
import { startAria2Leecher } from "./_aria2_leecher.ts";
import {
  assertSeedOk,
  type BtfetchTorrent,
  createTrackedWithBtfetch,
  createWithBtfetch,
  startBtfetchSeeder,
  whileSeeding,
} from "./_btfetch_seeder.ts";
import { startOpentracker } from "./_opentracker.ts";
import {
  ignoreUnless,
  MiB,
  MULTI_FILES,
  type Payload,
  requirePrograms,
  writeMultiFilePayload,
  writeSingleFilePayload,
} from "./_peers.ts";

/**
 * Known btfetch bug, so these tests are ignored until it is fixed: aria2c 1.36 tells a peer about pieces it has
 * received with a mid-connection `bitfield` message (not `have`s). `lib/engine/session.ts` `onMessage`
 * (`case "bitfield"`) rejects that with a `WireError` ("bitfield after the first message"), so btfetch drops aria2c
 * after its first few pieces, every time it reconnects, and aria2c never completes. (Before `forPeer()`, the same error
 * ended the whole seed with exit 1.) With a later bitfield accepted as a replacement of the peer's set, these pass
 * (checked against a patched copy through `BTFETCH_BIN`). Set to false once fixed.
 */
const AWAITS_MIDSTREAM_BITFIELD_FIX = false;

/** aria2c exits by itself once complete (`--seed-time=0`); then the bytes and both sides' counts are checked. */
async function aria2FetchesFromBtfetch(
  payload: Payload,
  torrent: BtfetchTorrent,
  tmp: string,
  mode: { tracker: true } | { dial: true },
): Promise<void> {
  const out = `${tmp}/aria2-out`;
  await Deno.mkdir(out, { recursive: true });
  if ("tracker" in mode) {
    // btfetch announces first, so aria2c's first announce lists it.
    const seeder = await startBtfetchSeeder({ torrent: torrent.path, dir: payload.dir, waitTracker: true });
    let seeded;
    try {
      const leecher = await startAria2Leecher({ torrent: torrent.path, dir: out });
      try {
        await whileSeeding(seeder, () => leecher.proc.exited, 90_000, () => `aria2c to finish\n${leecher.proc.tail()}`);
        const st = await leecher.waitExit(1000);
        if (st.code !== 0) throw new Error(`aria2c exited ${st.code}\n${leecher.proc.tail()}`);
      } finally {
        await leecher.close();
      }
    } finally {
      seeded = await seeder.stop();
    }
    assertSeedOk(seeded, { size: payload.size, minUploaded: payload.size });
  } else {
    const leecher = await startAria2Leecher({ torrent: torrent.path, dir: out, excludeTrackers: true });
    try {
      const seeder = await startBtfetchSeeder({
        torrent: torrent.path,
        dir: payload.dir,
        peers: [`127.0.0.1:${leecher.port}`],
      });
      let seeded;
      try {
        await whileSeeding(seeder, () => leecher.proc.exited, 90_000, () => `aria2c to finish\n${leecher.proc.tail()}`);
        const st = await leecher.waitExit(1000);
        if (st.code !== 0) throw new Error(`aria2c exited ${st.code}\n${leecher.proc.tail()}`);
      } finally {
        seeded = await seeder.stop();
      }
      assertSeedOk(seeded, { size: payload.size, minUploaded: payload.size });
    } finally {
      await leecher.close();
    }
  }
  await assertSameTree(payload.path, `${out}/${payload.name}`);
}

Deno.test({
  name: "interop: aria2c fetches a single-file btfetch torrent from btfetch seed via opentracker",
  ignore: AWAITS_MIDSTREAM_BITFIELD_FIX || ignoreUnless("aria2c", "opentracker"),
  async fn() {
    requirePrograms("aria2c", "opentracker");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-seed-a2-single-" });
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "seed-a2.bin", 3 * MiB + 13, 71);
      const { torrent, tracker } = await createTrackedWithBtfetch({
        path: payload.path,
        out: `${tmp}/t.torrent`,
        pieceSize: "256K",
        startTracker: (h) => startOpentracker([h]),
        trackers: (t) => [t.httpUrl],
      });
      try {
        await aria2FetchesFromBtfetch(payload, torrent, tmp, { tracker: true });
      } finally {
        await tracker.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "interop: aria2c fetches a multi-file btfetch torrent (odd sizes, empty file) from btfetch seed via opentracker",
  ignore: AWAITS_MIDSTREAM_BITFIELD_FIX || ignoreUnless("aria2c", "opentracker"),
  async fn() {
    requirePrograms("aria2c", "opentracker");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-seed-a2-multi-" });
    try {
      const payload = await writeMultiFilePayload(`${tmp}/seed`, "seed-a2-multi", MULTI_FILES, 73);
      const { torrent, tracker } = await createTrackedWithBtfetch({
        path: payload.path,
        out: `${tmp}/t.torrent`,
        pieceSize: "32K",
        startTracker: (h) => startOpentracker([h]),
        trackers: (t) => [t.httpUrl],
      });
      try {
        await aria2FetchesFromBtfetch(payload, torrent, tmp, { tracker: true });
      } finally {
        await tracker.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: aria2c fetches a trackerless multi-file btfetch torrent when btfetch seed dials it (--peer)",
  ignore: AWAITS_MIDSTREAM_BITFIELD_FIX || ignoreUnless("aria2c"),
  async fn() {
    requirePrograms("aria2c");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-seed-a2-dial-" });
    try {
      const payload = await writeMultiFilePayload(`${tmp}/seed`, "seed-a2-dial", MULTI_FILES, 79);
      const torrent = await createWithBtfetch({ path: payload.path, out: `${tmp}/t.torrent` });
      await aria2FetchesFromBtfetch(payload, torrent, tmp, { dial: true });
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
