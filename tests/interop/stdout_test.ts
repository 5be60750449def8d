/**
 * `--stdout` end to end: one file of a multi-file torrent streamed from a btfetch seed into a pipe, byte-exact and
 * nothing else on stdout; a reader that closes early (`| head -c 100`) ends btfetch quietly with exit 0.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { btfetchArgv, REPO_ROOT } from "./_btfetch.ts";
import { createHash } from "node:crypto";
import {
  freePort,
  ignoreUnless,
  MiB,
  startLibtorrentSeeder,
  writeMultiFilePayload,
  writeSingleFilePayload,
} from "./_peers.ts";
import { killAll, makeBtTorrent, startBtSeed } from "./_swarm.ts";

Deno.test("interop: get --select N --stdout streams that file, byte-exact, and ends quietly when the reader goes", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "btfetch-stdout-" });
  const files: Array<[string, number]> = [["a.bin", 300_001], ["b/big.bin", 6 * MiB + 12_345], ["c.txt", 77]];
  const p = await writeMultiFilePayload(`${tmp}/seed`, "st", files, 41);
  const tor = await makeBtTorrent(p.path, `${tmp}/st.torrent`, { pieceLength: 64 * 1024 });
  const seed = await startBtSeed(tor.path, p.dir);
  const want = await Deno.readFile(`${p.path}/b/big.bin`);
  const run = (out: string) => {
    const [cmd, args] = btfetchArgv([
      "get",
      tor.path,
      "-o",
      out,
      "--select",
      "2",
      "--stdout",
      "--quiet",
      "--peer",
      `127.0.0.1:${seed.port}`,
      "--port",
      String(freePort()),
      "--timeout",
      "60s",
    ]);
    return new Deno.Command(cmd, { args, cwd: REPO_ROOT, stdout: "piped", stderr: "piped", stdin: "null" }).spawn();
  };
  try {
    await t.step("the whole file, and nothing else, on stdout", async () => {
      const child = run(`${tmp}/out1`);
      const out = await child.output();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      assertEquals(out.stdout.length, want.length);
      assert(out.stdout.every((b, i) => b === want[i]), "the streamed bytes differ from the file");
    });
    await t.step("a reader that reads 100 bytes and closes: exit 0, no error line", async () => {
      const child = run(`${tmp}/out2`);
      const reader = child.stdout.getReader();
      let got = 0;
      while (got < 100) {
        const r = await reader.read();
        if (r.done) break;
        got += r.value.length;
      }
      await reader.cancel();
      const status = await child.status;
      const err = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
      assertEquals(status.code, 0, err);
      assert(!/error|Uncaught/i.test(err), err);
    });
  } finally {
    await killAll([seed.handle]);
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name:
    "interop: --stdout from a libtorrent seeder: first bytes long before the end; a slow reader keeps memory bounded",
  ignore: ignoreUnless("libtorrent"),
  async fn(t) {
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-stdout-lt-" });
    const p = await writeSingleFilePayload(`${tmp}/seed`, "big.bin", 128 * MiB + 999, 43);
    const tor = await makeBtTorrent(p.path, `${tmp}/big.torrent`, { pieceLength: 256 * 1024 });
    // the seeder is capped, so the download takes a few seconds and "first byte long before the end" means something
    const seeder = await startLibtorrentSeeder({ torrent: tor.path, dataDir: p.dir, uploadRate: 32 * MiB });
    const want = await Deno.readFile(p.path);
    const spawn = (out: string) => {
      const [cmd, args] = btfetchArgv([
        "get",
        tor.path,
        "-o",
        out,
        "--stdout",
        "--quiet",
        "--peer",
        `127.0.0.1:${seeder.port}`,
        "--port",
        String(freePort()),
        "--timeout",
        "90s",
      ]);
      return new Deno.Command(cmd, { args, cwd: REPO_ROOT, stdout: "piped", stderr: "piped", stdin: "null" }).spawn();
    };
    try {
      await t.step("a hashing reader: every byte, the first ones early", async () => {
        const started = performance.now();
        const child = spawn(`${tmp}/o1`);
        const hash = createHash("sha1");
        let firstAt = -1;
        let got = 0;
        for await (const chunk of child.stdout) {
          if (firstAt < 0) firstAt = performance.now() - started;
          hash.update(chunk);
          got += chunk.length;
        }
        const total = performance.now() - started;
        const status = await child.status;
        const err = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
        assertEquals(status.code, 0, err);
        assertEquals(got, want.length);
        assertEquals(hash.digest("hex"), createHash("sha1").update(want).digest("hex"));
        console.log(`    first byte after ${Math.round(firstAt)} ms, all ${got} bytes after ${Math.round(total)} ms`);
        assert(firstAt < total / 2, `the first byte came at ${Math.round(firstAt)} of ${Math.round(total)} ms`);
      });
      await t.step(
        "a reader slowed to 8 MiB/s: btfetch's memory stays bounded while the swarm runs ahead",
        async () => {
          const child = spawn(`${tmp}/o2`);
          let most = 0;
          const sample = setInterval(() => {
            try {
              const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${child.pid}/status`));
              if (m) most = Math.max(most, Number(m[1]) * 1024);
            } catch { /* gone */ }
          }, 100);
          let got = 0;
          try {
            for await (const chunk of child.stdout) {
              got += chunk.length;
              await new Promise((r) => setTimeout(r, (chunk.length / (8 * MiB)) * 1000)); // 8 MiB/s
            }
          } finally {
            clearInterval(sample);
          }
          const status = await child.status;
          await new Response(child.stderr).arrayBuffer();
          assertEquals([status.code, got], [0, want.length]);
          console.log(`    peak RSS ${Math.round(most / MiB)} MiB for a ${Math.round(want.length / MiB)} MiB file`);
          assert(most < 400 * MiB, `peak RSS ${Math.round(most / MiB)} MiB`);
        },
      );
    } finally {
      await seeder.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
