/**
 * btfetch run as an ordinary user (`nobody`, through `setpriv`; the suite itself runs as root, which no permission bit
 * stops): an output folder it may not write is exit 5 at once, before any network work, with a line that says so; a
 * file of the torrent's that it may not write is exit 5 too; and a write-only drop folder (it may add files but not
 * list them, mode 0733) takes a whole download. Linux only, as root, with `setpriv` (util-linux).
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { freePort, haveProgram } from "../interop/_peers.ts";
import { startSeed, torrentWithData, withTempDir } from "./_cli.ts";
import { equalBytes } from "../../lib/bytes.ts";

const REPO = new URL("../..", import.meta.url).pathname;
const NOBODY = 65534;

const canDrop = Deno.build.os === "linux" && Deno.uid() === 0 && haveProgram("setpriv");

/** Runs btfetch as `nobody` from a copy of the sources `nobody` can read, with its own Deno cache. */
async function asNobody(src: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command("setpriv", {
    args: [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      "env",
      `HOME=${src}`,
      `DENO_DIR=${src}/deno-dir`,
      "NO_COLOR=1",
      Deno.execPath(),
      "run",
      "-A",
      "--no-config",
      "--unstable-net",
      `${src}/main.ts`,
      ...args,
      "--no-dht",
    ],
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000), // a stalled run is killed, not waited on for ever
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test({
  name: "as an ordinary user: an unwritable output is exit 5 at once; a write-only drop folder takes a download",
  ignore: !canDrop,
  async fn(t) {
    await withTempDir("btfetch-nobody-", async (tmp) => {
      await Deno.chmod(tmp, 0o755);
      const src = `${tmp}/src`;
      const cp = await new Deno.Command("cp", {
        args: ["-r", `${REPO}/lib`, `${REPO}/main.ts`, `${REPO}/deno.json`, tmp],
      })
        .output();
      assert(cp.success, "cannot copy the sources");
      await Deno.mkdir(src);
      for (const name of ["lib", "main.ts"]) await Deno.rename(`${tmp}/${name}`, `${src}/${name}`);
      await Deno.remove(`${tmp}/deno.json`);
      await Deno.mkdir(`${src}/deno-dir`);
      await Deno.chown(`${src}/deno-dir`, NOBODY, NOBODY);
      assert((await new Deno.Command("chmod", { args: ["-R", "a+rX", src] }).output()).success, "chmod failed");
      const tor = await torrentWithData(tmp, { size: 600_000 });
      await Deno.chmod(tor.path, 0o644);
      const seed = await startSeed(tor.path, tor.dataDir);
      const peer = ["--peer", `127.0.0.1:${seed.port}`];
      try {
        await t.step("an output folder it may not write: exit 5 before any network work", async () => {
          const locked = `${tmp}/locked`;
          await Deno.mkdir(locked, { mode: 0o755 }); // root's
          const t0 = performance.now();
          const r = await asNobody(src, [
            "get",
            tor.path,
            "-o",
            `${locked}/out`,
            ...peer,
            "--port",
            String(freePort()),
          ]);
          assertEquals(r.code, 5, r.stderr);
          const last = r.stderr.trimEnd().split("\n").at(-1) ?? "";
          assert(last.startsWith(`btfetch: Cannot access ${locked}/out: permission denied`), last);
          assert(last.includes("permission denied; check its permissions or choose another place"), last);
          assert(performance.now() - t0 < 30_000, "not at once");
        });
        await t.step("a file in the way that it may not write (root's): exit 5, naming the file", async () => {
          const out = `${tmp}/shared`;
          await Deno.mkdir(out, { mode: 0o777 });
          await Deno.chmod(out, 0o777);
          await Deno.mkdir(`${out}/.btfetch`, { mode: 0o755 }); // root's: the record cannot be kept there
          await Deno.writeFile(`${out}/${tor.meta.name}`, new Uint8Array(0), { mode: 0o644 }); // root's, read-only
          const r = await asNobody(src, ["get", tor.path, "-o", out, ...peer, "--port", String(freePort())]);
          assertEquals(r.code, 5, r.stderr);
          const last = r.stderr.trimEnd().split("\n").at(-1) ?? "";
          assert(last.includes(`${out}/${tor.meta.name}`) && last.includes("permission denied"), last);
        });
        await t.step("a write-only drop folder (0733): the download completes", async () => {
          const drop = `${tmp}/drop`;
          await Deno.mkdir(drop);
          await Deno.chmod(drop, 0o733);
          const r = await asNobody(src, ["get", tor.path, "-o", drop, ...peer, "--port", String(freePort())]);
          assertEquals(r.code, 0, r.stderr);
          assert(equalBytes(await Deno.readFile(`${drop}/${tor.meta.name}`), tor.payload), "the file differs");
        });
      } finally {
        await seed.stop();
      }
    });
  },
});
