/**
 * What a signal leaves behind, and that the exit line says it truly:
 * - a disk that stops answering (`fdatasync` never returns: a dead network mount, a failing drive) does not hold a
 *   fetch hostage: SIGINT ends it within the shutdown bound (30 s), exit 130, with a `no-resume-record` warning and a
 *   line saying no record was saved; the next run checks the data on disk and keeps every piece written before;
 * - a record that cannot be written (a symlinked `.btfetch`) gets the same line;
 * - a signal during the check of data already on disk is seen at once (not when the check ends), and the line says
 *   the check was not finished; `verify` stopped so promises nothing to resume.
 * Linux only; the hang and the slow reads come from the `LD_PRELOAD` shim of `_shim.ts`.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { type BtEvent, type BtfetchHandle, eventsOf, spawnBtfetch } from "../interop/_btfetch.ts";
import { freePort } from "../interop/_peers.ts";
import { buildShim, canShim } from "./_shim.ts";
import { brief, exitWithin, startSeed, torrentWithData, withTempDir } from "./_cli.ts";
import { equalBytes } from "../../lib/bytes.ts";

/** Sends SIGINT once an event matches; a run that never gets there is killed and reaped, and the test fails. */
async function interruptOnce(h: BtfetchHandle, when: (e: BtEvent) => boolean): Promise<void> {
  try {
    await h.waitForEvent(when, 30_000);
  } catch (e) {
    h.kill("SIGKILL");
    await h.wait();
    throw e;
  }
  h.kill("SIGINT");
}

/** A piece is verified. */
const verified = (e: BtEvent) => e.event === "progress" && (e.verified as number) > 0;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

const NO_RECORD_LINE = "btfetch: Interrupted by SIGINT: no resume record was saved (see the warning above); run the " +
  "same command again to resume (it checks the data on disk first)";

Deno.test({
  name: "a disk whose flush hangs: SIGINT exits 130 within the bound, says no record was saved, and loses no data",
  ignore: !canShim,
  async fn() {
    await withTempDir("btfetch-hung-disk-", async (tmp) => {
      const shim = await buildShim(tmp);
      const tor = await torrentWithData(tmp, { size: 4 << 20, pieceLength: 64 * 1024 });
      const seed = await startSeed(tor.path, tor.dataDir);
      const out = `${tmp}/out`;
      const flag = `${tmp}/hang`;
      await Deno.writeTextFile(flag, "");
      const peerArgs = ["--peer", `127.0.0.1:${seed.port}`, "--json", "--no-dht"];
      try {
        const h = spawnBtfetch(
          [tor.path, "-o", out, ...peerArgs, "--port", String(freePort()), "--max-download-rate", "256K"],
          { timeoutMs: 120_000, env: { LD_PRELOAD: shim, SHIM_DIR: out, SHIM_HANG_SYNC: flag } },
        );
        await interruptOnce(h, verified);
        const t0 = performance.now();
        const { result: r, killed } = await exitWithin(h, 60_000);
        const took = performance.now() - t0;
        assert(!killed, `still running 60 s after SIGINT: ${brief(r)}`);
        assert(took > 25_000 && took < 45_000, `exited ${Math.round(took)} ms after SIGINT: ${brief(r)}`);
        assertEquals(r.code, 130, brief(r));
        assert(eventsOf(r, "warning").some((w) => w.code === "no-resume-record"), brief(r));
        assertEquals(r.stderr.trimEnd().split("\n").at(-1), NO_RECORD_LINE, brief(r));

        await Deno.remove(flag); // the disk answers again
        const again = spawnBtfetch([tor.path, "-o", out, ...peerArgs, "--port", String(freePort())], {
          timeoutMs: 60_000,
        });
        const { result: r2 } = await exitWithin(again, 60_000);
        assertEquals(r2.code, 0, brief(r2));
        const [resume] = eventsOf(r2, "resume");
        assertEquals(resume?.source, "hash", brief(r2));
        assert((resume?.verified as number) > 0, `the data written before SIGINT was lost: ${brief(r2)}`);
        assert(equalBytes(await Deno.readFile(`${out}/${tor.meta.name}`), tor.payload), "the file differs");
      } finally {
        await seed.stop();
      }
    });
  },
});

Deno.test("a resume record that cannot be written (.btfetch is a symlink): SIGINT's exit line says no record was saved", async () => {
  await withTempDir("btfetch-no-record-", async (tmp) => {
    const tor = await torrentWithData(tmp, { size: 4 << 20, pieceLength: 64 * 1024 });
    const seed = await startSeed(tor.path, tor.dataDir);
    const out = `${tmp}/out`;
    await Deno.mkdir(out);
    await Deno.mkdir(`${tmp}/elsewhere`);
    await Deno.symlink(`${tmp}/elsewhere`, `${out}/.btfetch`); // never written through
    try {
      const h = spawnBtfetch(
        [tor.path, "-o", out, "--peer", `127.0.0.1:${seed.port}`, "--json", "--no-dht", "--port", String(freePort())]
          .concat(["--max-download-rate", "256K"]),
        { timeoutMs: 60_000 },
      );
      await interruptOnce(h, verified);
      const { result: r, killed } = await exitWithin(h, 30_000);
      assert(!killed, brief(r));
      assertEquals(r.code, 130, brief(r));
      assert(eventsOf(r, "warning").some((w) => w.code === "no-resume-record"), brief(r));
      assertEquals(r.stderr.trimEnd().split("\n").at(-1), NO_RECORD_LINE, brief(r));
      assertEquals([...Deno.readDirSync(`${tmp}/elsewhere`)], [], "written through the link");
    } finally {
      await seed.stop();
    }
  });
});

Deno.test({
  name: "a signal while the data on disk is checked: exit 130, and the line says the check was not finished",
  ignore: !canShim,
  async fn() {
    await withTempDir("btfetch-check-interrupted-", async (tmp) => {
      const shim = await buildShim(tmp);
      const tor = await torrentWithData(tmp, { size: 48 << 20, pieceLength: 256 * 1024 });
      // the data is all there already: the run checks it (slowly: every read of it takes 1 s more)
      const h = spawnBtfetch(
        [tor.path, "-o", tor.dataDir, "--json", "--no-dht", "--port", String(freePort())],
        { timeoutMs: 60_000, env: { LD_PRELOAD: shim, SHIM_DIR: tor.dataDir, SHIM_SLOW_READ_US: "1000000" } },
      );
      await interruptOnce(h, (e) => e.event === "checking");
      const { result: r, killed } = await exitWithin(h, 30_000);
      assert(!killed, brief(r));
      assertEquals(r.code, 130, brief(r));
      assertEquals(eventsOf(r, "resume"), [], brief(r));
      assertEquals(
        r.stderr.trimEnd().split("\n").at(-1),
        "btfetch: Interrupted by SIGINT: the data on disk was not fully checked, so nothing was saved; run the same " +
          "command again to check it and resume",
        brief(r),
      );
    });
  },
});

Deno.test({
  name: "a signal stops verify during its check: exit 130, and the line promises nothing to resume",
  ignore: !canShim,
  async fn() {
    await withTempDir("btfetch-verify-interrupted-", async (tmp) => {
      const shim = await buildShim(tmp);
      const tor = await torrentWithData(tmp, { size: 48 << 20, pieceLength: 256 * 1024 });
      const mark = `${tmp}/reading`;
      const h = spawnBtfetch(["verify", tor.path, "-d", tor.dataDir], {
        timeoutMs: 60_000,
        env: { LD_PRELOAD: shim, SHIM_DIR: tor.dataDir, SHIM_SLOW_READ_US: "1000000", SHIM_READ_MARK: mark }, // ~6 s
      });
      // once the check reads (6 reads of 1 s each), bounded: 300 × 100 ms
      for (let i = 0; i < 300 && !(await exists(mark)); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      h.kill("SIGINT");
      const { result: r, killed } = await exitWithin(h, 30_000);
      assert(!killed, brief(r));
      assertEquals(r.code, 130, brief(r));
      assertEquals(
        r.stderr.trimEnd().split("\n").at(-1),
        "btfetch: Interrupted by SIGINT: the check was not finished",
        brief(r),
      );
    });
  },
});
