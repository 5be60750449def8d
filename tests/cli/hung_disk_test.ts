/**
 * A disk that stops answering (`fdatasync` never returns: a dead network mount, a failing drive) does not hold a fetch
 * hostage: SIGINT ends it within the shutdown bound (30 s), with exit 130, a `no-resume-record` warning and an exit line
 * that says no resume record was saved. The next run checks the data on disk and keeps every piece written before.
 * Linux only; the hang comes from an `LD_PRELOAD` shim built with the system's C compiler (`cc`).
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { eventsOf, spawnBtfetch } from "../interop/_btfetch.ts";
import { freePort, haveProgram } from "../interop/_peers.ts";
import { brief, exitWithin, startSeed, torrentWithData, withTempDir } from "./_cli.ts";
import { equalBytes } from "../../lib/bytes.ts";

/** `fdatasync` and `fsync` of a file under `$HANG_DIR` wait while the file `$HANG_FLAG` exists. */
const SHIM = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int hangs(int fd) {
  const char *dir = getenv("HANG_DIR"), *flag = getenv("HANG_FLAG");
  char link[64], path[4096];
  if (!dir || !flag) return 0;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 0) return 0;
  path[n] = 0;
  return strncmp(path, dir, strlen(dir)) == 0 && access(flag, F_OK) == 0;
}
static void wait_while(int fd) { while (hangs(fd)) usleep(100000); }
int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = dlsym(RTLD_NEXT, "fdatasync");
  wait_while(fd);
  return real(fd);
}
int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = dlsym(RTLD_NEXT, "fsync");
  wait_while(fd);
  return real(fd);
}
`;

const canShim = Deno.build.os === "linux" && haveProgram("cc");

Deno.test({
  name: "a disk whose flush hangs: SIGINT exits 130 within the bound, says no record was saved, and loses no data",
  ignore: !canShim,
  async fn() {
    await withTempDir("btfetch-hung-disk-", async (tmp) => {
      await Deno.writeTextFile(`${tmp}/shim.c`, SHIM);
      const cc = await new Deno.Command("cc", {
        args: ["-shared", "-fPIC", "-o", `${tmp}/shim.so`, `${tmp}/shim.c`, "-ldl"],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert(cc.success, new TextDecoder().decode(cc.stderr));
      const tor = await torrentWithData(tmp, { size: 4 << 20, pieceLength: 64 * 1024 });
      const seed = await startSeed(tor.path, tor.dataDir);
      const out = `${tmp}/out`;
      const flag = `${tmp}/hang`;
      await Deno.writeTextFile(flag, "");
      const peerArgs = ["--peer", `127.0.0.1:${seed.port}`, "--json", "--no-dht"];
      try {
        const h = spawnBtfetch(
          [tor.path, "-o", out, ...peerArgs, "--port", String(freePort()), "--max-download-rate", "256K"],
          { timeoutMs: 120_000, env: { LD_PRELOAD: `${tmp}/shim.so`, HANG_DIR: out, HANG_FLAG: flag } },
        );
        try {
          await h.waitForEvent((e) => e.event === "progress" && (e.verified as number) > 0, 30_000);
        } finally {
          h.kill("SIGINT");
        }
        const t0 = performance.now();
        const { result: r, killed } = await exitWithin(h, 60_000);
        const took = performance.now() - t0;
        assert(!killed, `still running 60 s after SIGINT: ${brief(r)}`);
        assert(took > 25_000 && took < 45_000, `exited ${Math.round(took)} ms after SIGINT: ${brief(r)}`);
        assertEquals(r.code, 130, brief(r));
        assertEquals(eventsOf(r, "warning").map((w) => w.code), ["no-resume-record"], brief(r));
        assertEquals(
          r.stderr.trimEnd().split("\n").at(-1),
          "btfetch: Interrupted by SIGINT: the disk did not finish writing, so no resume record was saved; run the " +
            "same command again to resume (it checks the data on disk first)",
          brief(r),
        );

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
