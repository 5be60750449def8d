/**
 * `--stdout` end to end: one file of a multi-file torrent streamed from a btfetch seed into a pipe, byte-exact and
 * nothing else on stdout; a reader that closes early (`| head -c 100`) ends btfetch quietly with exit 0.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { btfetchArgv, REPO_ROOT } from "./_btfetch.ts";
import { freePort, MiB, writeMultiFilePayload } from "./_peers.ts";
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
