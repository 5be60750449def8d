/**
 * transmission-daemon (driven by transmission-remote) downloads from `btfetch seed`. Transmission ignores loopback
 * peers it hears of from trackers and only trades with a peer that connects to it, so btfetch dials it: with
 * `--peer 127.0.0.1:<peer-port>`, or by finding it in opentracker's answer. Transmission starts requesting about 10 s
 * after the connection, so each case takes 15-20 s.
 * @module
 */
import { assertSameTree, listTree } from "./_btfetch.ts";
import {
  assertSeedOk,
  type BtfetchSeeder,
  createTrackedWithBtfetch,
  createWithBtfetch,
  startBtfetchSeeder,
} from "./_btfetch_seeder.ts";
import { startOpentracker } from "./_opentracker.ts";
import {
  ignoreUnless,
  makeTorrentWithMktorrent,
  MiB,
  MULTI_FILES,
  type Payload,
  requirePrograms,
  sleep,
  waitFor,
  writeMultiFilePayload,
  writeSingleFilePayload,
} from "./_peers.ts";
import { startTransmission, type Transmission } from "./_transmission.ts";

const PROGRAMS = ["transmission-daemon", "transmission-remote"];

/**
 * Asserts the bytes match, retrying for a few seconds while Transmission finishes writing its cache. Transmission 3.00
 * does not create zero-length files, so the payload's empty files (by name) are left out of the comparison.
 */
async function assertSameTreeSoon(payload: Payload, actual: string): Promise<void> {
  const empty = new Set<string>();
  if ((await Deno.stat(payload.path)).isDirectory) {
    for (const rel of await listTree(payload.path)) {
      if ((await Deno.stat(`${payload.path}/${rel}`)).size === 0) empty.add(rel.slice(rel.lastIndexOf("/") + 1));
    }
  }
  const skip = (n: string) => empty.has(n) || n.startsWith(".btfetch");
  const deadline = Date.now() + 10_000;
  while (true) {
    try {
      await assertSameTree(payload.path, actual, skip);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    await sleep(500);
  }
}

/**
 * Starts Transmission with `torrentPath` added, then `seed(tr)` starts btfetch; waits for Transmission to reach 100%,
 * stops the torrent (flushing it) and btfetch, and compares the bytes.
 */
async function transmissionFetchesFromBtfetch(
  payload: Payload,
  torrentPath: string,
  tmp: string,
  seed: (tr: Transmission, id: number) => Promise<BtfetchSeeder>,
): Promise<void> {
  const out = `${tmp}/tr-out`;
  await Deno.mkdir(out, { recursive: true });
  const tr = await startTransmission({ downloadDir: out });
  try {
    const id = await tr.add(torrentPath);
    const seeder = await seed(tr, id);
    let seeded;
    try {
      await tr.waitComplete(id, 90_000, () => seeder.assertAlive());
      await tr.stop(id);
    } finally {
      seeded = await seeder.stop();
    }
    assertSeedOk(seeded, { size: payload.size, minUploaded: payload.size });
    await assertSameTreeSoon(payload, `${out}/${payload.name}`);
  } finally {
    await tr.close();
  }
}

/** btfetch dials Transmission's peer port directly. */
function dialing(payload: Payload, torrentPath: string) {
  return (tr: Transmission) =>
    startBtfetchSeeder({ torrent: torrentPath, dir: payload.dir, peers: [`127.0.0.1:${tr.peerPort}`] });
}

Deno.test({
  name: "interop: Transmission fetches a single-file btfetch torrent from btfetch seed --peer",
  ignore: ignoreUnless(...PROGRAMS),
  async fn() {
    requirePrograms(...PROGRAMS);
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-seed-tr-single-" });
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "seed-tr.bin", 3 * MiB + 11, 91);
      const torrent = await createWithBtfetch({ path: payload.path, out: `${tmp}/t.torrent`, pieceSize: "256K" });
      await transmissionFetchesFromBtfetch(payload, torrent.path, tmp, dialing(payload, torrent.path));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: Transmission fetches a multi-file btfetch torrent (odd sizes, empty file) from btfetch seed --peer",
  ignore: ignoreUnless(...PROGRAMS),
  async fn() {
    requirePrograms(...PROGRAMS);
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-seed-tr-multi-" });
    try {
      const payload = await writeMultiFilePayload(`${tmp}/seed`, "seed-tr-multi", MULTI_FILES, 93);
      const torrent = await createWithBtfetch({ path: payload.path, out: `${tmp}/t.torrent`, pieceSize: "32K" });
      await transmissionFetchesFromBtfetch(payload, torrent.path, tmp, dialing(payload, torrent.path));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: Transmission fetches a multi-file mktorrent torrent (128 KiB pieces) from btfetch seed --peer",
  ignore: ignoreUnless(...PROGRAMS, "mktorrent", "libtorrent"),
  async fn() {
    requirePrograms(...PROGRAMS, "mktorrent", "libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-seed-tr-mk-" });
    try {
      const payload = await writeMultiFilePayload(`${tmp}/seed`, "seed-tr-mk", MULTI_FILES, 95);
      const t = await makeTorrentWithMktorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLengthLog2: 17 });
      await transmissionFetchesFromBtfetch(payload, t.path, tmp, dialing(payload, t.path));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: btfetch seed finds Transmission through opentracker and connects out to it",
  ignore: ignoreUnless(...PROGRAMS, "opentracker"),
  async fn() {
    requirePrograms(...PROGRAMS, "opentracker");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-seed-tr-tracker-" });
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "seed-tr-tracked.bin", 2 * MiB + 5, 97);
      const { torrent, tracker } = await createTrackedWithBtfetch({
        path: payload.path,
        out: `${tmp}/t.torrent`,
        pieceSize: "64K",
        startTracker: (h) => startOpentracker([h]),
        trackers: (t) => [t.httpUrl],
      });
      try {
        await transmissionFetchesFromBtfetch(payload, torrent.path, tmp, async (tr, id) => {
          // Transmission must be on the tracker's list before btfetch's first announce.
          await waitFor(
            async () => /Got a list of \d+ peers/.test(await tr.remote("-t", String(id), "-it")),
            20_000,
            "Transmission's first announce",
            250,
          );
          return await startBtfetchSeeder({ torrent: torrent.path, dir: payload.dir, waitTracker: true });
        });
      } finally {
        await tracker.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
