/**
 * A full disk: the output directory is a 1 MiB tmpfs mounted by the test (it runs as root on these machines), the
 * torrent is 4 MiB, and the seeder is python3-libtorrent.
 */
import { assert, assertEquals } from "../_assert.ts";
import { runBtfetch } from "./_btfetch.ts";
import {
  freePort,
  ignoreUnless,
  makeTorrentWithLibtorrent,
  requirePrograms,
  startLibtorrentSeeder,
  writeSingleFilePayload,
} from "./_peers.ts";

const isRoot = Deno.uid?.() === 0;

Deno.test({
  name: "get into a full disk exits 5 with one line naming the file, and keeps what was verified",
  ignore: !isRoot || ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-full-" });
    const mnt = `${tmp}/small`;
    await Deno.mkdir(mnt);
    const mount = await new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt] }).output();
    assert(mount.success, `mount failed: ${new TextDecoder().decode(mount.stderr)}`);
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "big.bin", 4 * 1024 * 1024, 5);
      const t = await makeTorrentWithLibtorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLength: 65536 });
      const seeder = await startLibtorrentSeeder({ torrent: t.path, dataDir: payload.dir });
      try {
        const r = await runBtfetch(
          ["get", t.path, "-o", mnt, "--json", "--port", String(freePort()), "--peer", `127.0.0.1:${seeder.port}`]
            .concat(["--timeout", "60s"]),
          { timeoutMs: 90_000 },
        );
        assertEquals(r.code, 5, r.stderr);
        const errors = r.events.filter((e) => e.event === "error");
        assertEquals(errors.length, 1);
        assertEquals(errors[0].code, 5);
        const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("btfetch:"));
        assertEquals(lines.length, 1, r.stderr);
        assert(/big\.bin/.test(lines[0]) && /space/i.test(lines[0]), lines[0]);
        // the run ends with a done event too, and what it counted as verified is at most what fits
        const done = r.events.filter((e) => e.event === "done");
        assertEquals(done.length, 1);
        assert(Number(done[0].verified) <= 1024 * 1024);
      } finally {
        await seeder.close();
      }
    } finally {
      await new Deno.Command("umount", { args: [mnt] }).output();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
