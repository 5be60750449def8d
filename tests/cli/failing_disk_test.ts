/**
 * A disk that starts failing writes in the middle of a download (EIO from a dying drive, EROFS from ext4's
 * `errors=remount-ro`, ENOSPC), after a few pieces were stored, ends the fetch with exit 5 and one line that names the
 * file, the OS's reason in plain words and what to do, and loses nothing verified: once the disk is sound again the same command resumes, keeps every piece stored
 * before the failure and completes. Linux only; the failures come from the `LD_PRELOAD` shim of `_shim.ts`.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { eventsOf, spawnBtfetch } from "../interop/_btfetch.ts";
import { freePort } from "../interop/_peers.ts";
import { buildShim, canShim } from "./_shim.ts";
import { brief, exitWithin, startSeed, torrentWithData, withTempDir } from "./_cli.ts";
import { equalBytes } from "../../lib/bytes.ts";

const CASES = [
  { errno: 5, name: "EIO", words: "an input/output error (a failing disk?); check the disk" },
  { errno: 30, name: "EROFS", words: "the file system is read-only; make it writable" },
  { errno: 28, name: "ENOSPC", words: "the disk is full; free some space" },
];

/** Writes of pieces that succeed before the disk fails: a few pieces are stored and verified first. */
const GOOD_WRITES = 4;

Deno.test({
  name: "writes that start failing mid-download: exit 5, one line with the file and the reason, nothing verified lost",
  ignore: !canShim,
  async fn(t) {
    await withTempDir("btfetch-failing-disk-", async (tmp) => {
      const shim = await buildShim(tmp);
      const tor = await torrentWithData(tmp, { size: 4 << 20, pieceLength: 64 * 1024 });
      const seed = await startSeed(tor.path, tor.dataDir);
      try {
        for (const c of CASES) {
          await t.step(c.name, async () => {
            const out = `${tmp}/out-${c.name}`;
            const args = [tor.path, "-o", out, "--peer", `127.0.0.1:${seed.port}`, "--json", "--no-dht"];
            const h = spawnBtfetch([...args, "--port", String(freePort())], {
              timeoutMs: 60_000,
              env: {
                LD_PRELOAD: shim,
                SHIM_DIR: out,
                SHIM_FAIL_AFTER: String(GOOD_WRITES),
                SHIM_ERRNO: String(c.errno),
              },
            });
            const { result: r, killed } = await exitWithin(h, 45_000);
            assert(!killed, `still running 45 s after the start: ${brief(r)}`);
            assertEquals(r.code, 5, brief(r));
            const [error] = eventsOf(r, "error");
            assertEquals(error?.code, 5, brief(r));
            const last = r.stderr.trimEnd().split("\n").at(-1) ?? "";
            assert(last.startsWith("btfetch: "), brief(r));
            assert(last.includes(`${out}/${tor.meta.name}`), `the line does not name the file: ${last}`);
            assert(last.includes(c.words), `the line does not say "${c.words}": ${last}`);

            // sound again (no shim): the same command resumes
            const again = spawnBtfetch([...args, "--port", String(freePort())], { timeoutMs: 60_000 });
            const { result: r2 } = await exitWithin(again, 60_000);
            assertEquals(r2.code, 0, brief(r2));
            const [resume] = eventsOf(r2, "resume");
            assert(
              (resume?.verified as number) >= GOOD_WRITES * 64 * 1024,
              `the pieces stored before the failure were lost: ${brief(r2)}`,
            );
            assert(equalBytes(await Deno.readFile(`${out}/${tor.meta.name}`), tor.payload), "the file differs");
          });
        }
      } finally {
        await seed.stop();
      }
    });
  },
});
