/**
 * btfetch with nothing but btfetch: a `seed` process serving a `get`, a leecher that keeps seeding (`--seed`) serving
 * a second leecher after the original seeder is gone, and a tracker swarm (opentracker) of one upload-capped seeder
 * and four leechers that must trade among themselves.
 * @module
 */
import { assertFetchOk, assertSameTree, type BtfetchHandle, describeRun } from "./_btfetch.ts";
import { opentrackerTest, startOpentracker } from "./_opentracker.ts";
import { MiB, MULTI_FILES, writeMultiFilePayload, writeSingleFilePayload } from "./_peers.ts";
import { bytesFromSeeder, doneOf, killAll, makeBtTorrent, startBtGet, startBtSeed, stopWithin } from "./_swarm.ts";

/** Exit code of seeding stopped by SIGINT/SIGTERM: seeding's normal end, success (130 is a fetch cut short). */
const EXIT_SEEDING_STOPPED = 0;

Deno.test("swarm: btfetch get fetches a multi-file torrent from a btfetch seed named with --peer", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "btfetch-swarm-pair-" });
  const children: BtfetchHandle[] = [];
  try {
    const payload = await writeMultiFilePayload(`${tmp}/seed`, "pair", MULTI_FILES, 301);
    const t = await makeBtTorrent(payload.path, `${tmp}/pair.torrent`, { pieceLength: 16 * 1024 });
    const seeder = await startBtSeed(t.path, payload.dir);
    children.push(seeder.handle);
    const leecher = startBtGet(t.path, `${tmp}/out`, ["--peer", `127.0.0.1:${seeder.port}`]);
    children.push(leecher.handle);
    const r = await leecher.handle.wait();
    assertFetchOk(r, { size: payload.size, pieceLength: t.pieceLength });
    await assertSameTree(payload.path, `${tmp}/out/${payload.name}`);

    const s = await stopWithin(seeder.handle);
    if (s.killed || s.result.code !== EXIT_SEEDING_STOPPED) {
      throw new Error(`seed should exit ${EXIT_SEEDING_STOPPED} on SIGTERM\n${describeRun(s.result)}`);
    }
    const sd = doneOf(s.result);
    if (sd.uploaded < payload.size) throw new Error(`seeder uploaded ${sd.uploaded} < ${payload.size}`);
  } finally {
    await killAll(children);
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("swarm: a get --seed leecher serves a second leecher after the original seeder stops", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "btfetch-swarm-relay-" });
  const children: BtfetchHandle[] = [];
  try {
    const payload = await writeSingleFilePayload(`${tmp}/seed`, "relay.bin", 3 * MiB + 12345, 302);
    const t = await makeBtTorrent(payload.path, `${tmp}/relay.torrent`, { pieceLength: 32 * 1024 });
    const s = await startBtSeed(t.path, payload.dir);
    children.push(s.handle);
    const a = startBtGet(t.path, `${tmp}/a`, ["--peer", `127.0.0.1:${s.port}`, "--seed"]);
    children.push(a.handle);
    await a.handle.waitForEvent((e) => e.event === "complete", 90_000);
    await assertSameTree(payload.path, `${tmp}/a/${payload.name}`);

    const sStop = await stopWithin(s.handle);
    if (sStop.killed || sStop.result.code !== EXIT_SEEDING_STOPPED) {
      throw new Error(`seed should exit ${EXIT_SEEDING_STOPPED} on SIGTERM\n${describeRun(sStop.result)}`);
    }

    // B knows only A
    const b = startBtGet(t.path, `${tmp}/b`, ["--peer", `127.0.0.1:${a.port}`]);
    children.push(b.handle);
    const rb = await b.handle.wait();
    assertFetchOk(rb, { size: payload.size, pieceLength: t.pieceLength });
    await assertSameTree(payload.path, `${tmp}/b/${payload.name}`);
    const bd = doneOf(rb);
    const fromA = bd.peers.filter((p) => p.address === `127.0.0.1:${a.port}`).reduce((n, p) => n + p.downloaded, 0);
    if (fromA < payload.size) throw new Error(`B got ${fromA} bytes from A, expected the whole ${payload.size}`);

    const aStop = await stopWithin(a.handle);
    if (aStop.killed || aStop.result.code !== EXIT_SEEDING_STOPPED) {
      throw new Error(`get --seed should exit ${EXIT_SEEDING_STOPPED} on SIGTERM\n${describeRun(aStop.result)}`);
    }
    const ad = doneOf(aStop.result);
    if (ad.complete !== true) throw new Error(`A's done says complete=${ad.complete}`);
    if (ad.uploaded < payload.size) throw new Error(`A uploaded ${ad.uploaded} < ${payload.size}`);
  } finally {
    await killAll(children);
    await Deno.remove(tmp, { recursive: true });
  }
});

opentrackerTest(
  "swarm: four leechers and an upload-capped seeder on opentracker trade pieces among themselves",
  async () => {
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-swarm-tracker-" });
    const children: BtfetchHandle[] = [];
    let tracker: Awaited<ReturnType<typeof startOpentracker>> | undefined;
    try {
      const size = 16 * MiB;
      const pieceLength = 64 * 1024;
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "swarm.bin", size, 303);
      const pre = await makeBtTorrent(payload.path, `${tmp}/swarm.torrent`, { pieceLength });
      tracker = await startOpentracker([pre.infoHash]);
      const t = await makeBtTorrent(payload.path, `${tmp}/swarm.torrent`, {
        pieceLength,
        announce: [[tracker.httpUrl]],
      });
      if (t.infoHash !== pre.infoHash) throw new Error("info-hash changed when the tracker was added");

      const seeder = await startBtSeed(t.path, payload.dir, ["--max-upload-rate", String(size / 4)]);
      children.push(seeder.handle);
      const leechers = [1, 2, 3, 4].map((i) => startBtGet(t.path, `${tmp}/l${i}`, ["--seed"]));
      children.push(...leechers.map((l) => l.handle));
      await Promise.all(leechers.map((l) => l.handle.waitForEvent((e) => e.event === "complete", 120_000)));

      const stops = await Promise.all(leechers.map((l) => stopWithin(l.handle)));
      const sStop = await stopWithin(seeder.handle);
      for (const st of [...stops, sStop]) {
        if (st.killed || st.result.code !== EXIT_SEEDING_STOPPED) {
          throw new Error(
            `a seeding process should exit ${EXIT_SEEDING_STOPPED} on SIGTERM\n${describeRun(st.result)}`,
          );
        }
      }
      for (let i = 0; i < leechers.length; i++) {
        await assertSameTree(payload.path, `${tmp}/l${i + 1}/${payload.name}`);
      }

      const sd = doneOf(sStop.result);
      const seederSide = { port: seeder.port, peers: sd.peers };
      let leechersDownloaded = 0;
      const report: string[] = [];
      for (let i = 0; i < leechers.length; i++) {
        const d = doneOf(stops[i].result);
        leechersDownloaded += d.downloaded;
        const fromSeeder = bytesFromSeeder({ port: leechers[i].port, peers: d.peers }, seederSide);
        const fromOthers = d.downloaded - fromSeeder;
        report.push(`l${i + 1}: downloaded ${d.downloaded}, from seeder ${fromSeeder}, uploaded ${d.uploaded}`);
        if (d.complete !== true) throw new Error(`l${i + 1} done.complete is ${d.complete}`);
        if (d.uploaded <= 0) throw new Error(`l${i + 1} uploaded nothing\n${report.join("\n")}`);
        if (fromOthers < 0.1 * d.downloaded) {
          throw new Error(`l${i + 1} got under 10% from other leechers\n${report.join("\n")}`);
        }
      }
      if (leechersDownloaded - sd.uploaded <= 0) {
        throw new Error(`leechers downloaded ${leechersDownloaded}, the seeder uploaded ${sd.uploaded}`);
      }
      if (sd.uploaded < size) throw new Error(`the seeder uploaded ${sd.uploaded}, less than one copy`);
    } finally {
      await killAll(children);
      await tracker?.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
);
