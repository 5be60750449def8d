/**
 * Torrents whose info-hash contains the byte 0x20 (a space): the HTTP announce must percent-escape it (`%20`, never
 * `+` or a raw space), or the tracker files the announce under another info-hash and btfetch finds no peers. One
 * torrent gets there by an extra info key, the other by its name; both are fetched from a libtorrent seeder through
 * opentracker's HTTP interface.
 * @module
 */
import { assertFetchOk, assertSameTree, fetchFlags, runBtfetch } from "./_btfetch.ts";
import { startOpentracker } from "./_opentracker.ts";
import {
  ignoreUnless,
  makeTorrentWithLibtorrent,
  MiB,
  MULTI_FILES,
  type Payload,
  requirePrograms,
  startLibtorrentSeeder,
  writeMultiFilePayload,
  writeSingleFilePayload,
} from "./_peers.ts";

const NEEDS = ["libtorrent", "opentracker"];

function hasSpaceByte(infoHashHex: string): boolean {
  return /^(?:[0-9a-f]{2})*?20/.test(infoHashHex);
}

Deno.test({
  name: "interop: fetch torrents whose info-hash contains 0x20 via the HTTP tracker",
  ignore: ignoreUnless(...NEEDS),
  async fn() {
    requirePrograms(...NEEDS);
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-ih20-" });
    try {
      const pieceLength = 32 * 1024;
      // 1: a multi-file torrent with an extra `x-btfetch-nonce` key in its info dictionary.
      const multi = await writeMultiFilePayload(`${tmp}/seed-a`, "space-nonce", MULTI_FILES, 81);
      const probeA = await makeTorrentWithLibtorrent({
        path: multi.path,
        out: `${tmp}/a.torrent`,
        pieceLength,
        infoHashByte: 0x20,
      });
      // 2: a single-file torrent whose name is varied; the data file is renamed to match.
      const single0 = await writeSingleFilePayload(`${tmp}/seed-b`, "space-name.bin", 2 * MiB + 333, 82);
      const probeB = await makeTorrentWithLibtorrent({
        path: single0.path,
        out: `${tmp}/b.torrent`,
        pieceLength,
        infoHashByte: 0x20,
        vary: "name",
        baseName: "space-name",
      });
      for (const p of [probeA, probeB]) {
        if (!hasSpaceByte(p.infoHash)) throw new Error(`info-hash ${p.infoHash} has no 0x20 byte`);
      }
      await Deno.rename(single0.path, `${single0.dir}/${probeB.name}`);
      const single: Payload = { ...single0, name: probeB.name, path: `${single0.dir}/${probeB.name}` };

      const tracker = await startOpentracker([probeA.infoHash, probeB.infoHash]);
      try {
        const cases: Array<[Payload, string]> = [[multi, "a"], [single, "b"]];
        for (const [payload, tag] of cases) {
          const t = await makeTorrentWithLibtorrent({
            path: payload.path,
            out: `${tmp}/${tag}.torrent`,
            pieceLength,
            trackers: [[tracker.httpUrl]],
            infoHashByte: 0x20,
            vary: tag === "a" ? "nonce" : "name",
            baseName: "space-name",
          });
          const want = tag === "a" ? probeA : probeB;
          if (t.infoHash !== want.infoHash || t.name !== want.name) {
            throw new Error(`torrent ${tag} changed when adding the tracker: ${t.infoHash} vs ${want.infoHash}`);
          }
          const seeder = await startLibtorrentSeeder({ torrent: t.path, dataDir: payload.dir, trackerOk: true });
          try {
            const out = `${tmp}/out-${tag}`;
            const r = await runBtfetch(
              ["get", t.path, "-o", out, ...fetchFlags()],
              { timeoutMs: 90_000 },
            );
            assertFetchOk(r, { size: payload.size, pieceLength });
            await assertSameTree(payload.path, `${out}/${payload.name}`);
          } finally {
            await seeder.close();
          }
        }
      } finally {
        await tracker.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
