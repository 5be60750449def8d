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
import { concatBytes, equalBytes } from "../../lib/bytes.ts";

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

/** Reads `stream` (stderr) as text lines into `lines` until it ends; `until(re, ms)` waits for a line matching `re`. */
function watchLines(stream: ReadableStream<Uint8Array>) {
  const lines: string[] = [];
  const done = (async () => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop() ?? "";
      lines.push(...parts);
    }
    if (rest) lines.push(rest);
  })();
  const until = async (re: RegExp, ms: number) => {
    const by = Date.now() + ms;
    while (!lines.some((l) => re.test(l))) {
      if (Date.now() > by) throw new Error(`no line matching ${re} within ${ms} ms:\n${lines.join("\n")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { lines, done, until };
}

/** The child's exit status, or null when it is still running after `ms`. */
async function statusWithin(child: Deno.ChildProcess, ms: number): Promise<Deno.CommandStatus | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((r) => timer = setTimeout(() => r(null), ms));
  try {
    return await Promise.race([child.status, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("interop: --stdout ends right: signals after the download, a failed write, --seed, no state left", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "btfetch-stdout-end-" });
  const p = await writeSingleFilePayload(`${tmp}/seed`, "s.bin", 4 * MiB + 7, 44);
  const tor = await makeBtTorrent(p.path, `${tmp}/s.torrent`, { pieceLength: 64 * 1024 });
  const seed = await startBtSeed(tor.path, p.dir);
  const want = await Deno.readFile(p.path);
  const argv = (out: string, extra: string[] = []) =>
    btfetchArgv([
      "get",
      tor.path,
      "-o",
      out,
      "--stdout",
      "--peer",
      `127.0.0.1:${seed.port}`,
      "--port",
      String(freePort()),
      "--timeout",
      "60s",
      ...extra,
    ]);
  const spawn = (out: string, extra: string[] = []) => {
    const [cmd, args] = argv(out, extra);
    return new Deno.Command(cmd, { args, cwd: REPO_ROOT, stdout: "piped", stderr: "piped", stdin: "null" }).spawn();
  };
  const kill = (c: Deno.ChildProcess) => {
    try {
      c.kill("SIGKILL");
    } catch { /* gone */ }
  };
  try {
    /** A SIGTERM once the download completed, while nobody reads stdout (the stream waits on a full pipe): 130. */
    const termAfterComplete = async (out: string, extra: string[] = []) => {
      const child = spawn(out, extra);
      const err = watchLines(child.stderr);
      try {
        await err.until(/complete, .* verified/, 30_000);
        child.kill("SIGTERM");
        const st = await statusWithin(child, 10_000);
        assert(st !== null, `still running 10 s after SIGTERM:\n${err.lines.join("\n")}`);
        assertEquals(st.code, 130, err.lines.join("\n"));
      } finally {
        kill(child);
        await child.stdout.cancel();
        await err.done;
      }
    };

    await t.step("a SIGTERM while the reader lags behind a finished download: exit 130 at once", async () => {
      await termAfterComplete(`${tmp}/o1`);
    });

    await t.step("a write that fails (stdout is /dev/full): exit 5 and one error line", async () => {
      const [cmd, args] = argv(`${tmp}/o2`);
      const out = await new Deno.Command("sh", {
        args: ["-c", 'exec "$@" > /dev/full', "sh", cmd, ...args],
        cwd: REPO_ROOT,
        stdout: "null",
        stderr: "piped",
        stdin: "null",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 5, err);
      assert(/standard output/.test(err), err);
      assert(!/Uncaught|Internal error/.test(err), err);
    });

    await t.step("--seed: the whole file, then seeding goes on; a signal then stops seeding, exit 0", async () => {
      const child = spawn(`${tmp}/o3`, ["--seed"]);
      const err = watchLines(child.stderr);
      try {
        // Deno cannot close file descriptor 1 (Deno.stdout.close() leaves it open): the end of stdout comes at exit
        const reader = child.stdout.getReader();
        const parts: Uint8Array[] = [];
        let n = 0;
        while (n < want.length) {
          const r = await reader.read();
          if (r.done) break;
          parts.push(r.value);
          n += r.value.length;
        }
        const got = concatBytes(parts);
        assertEquals(got.length, want.length);
        assert(equalBytes(got, want), "the streamed bytes differ from the file");
        assertEquals(await statusWithin(child, 300), null, "btfetch exited instead of seeding on");
        child.kill("SIGINT");
        const st = await statusWithin(child, 10_000);
        assert(st !== null, "still running 10 s after SIGINT");
        assertEquals(st.code, 0, err.lines.join("\n"));
        assert((await reader.read()).done, "more bytes than the file");
      } finally {
        kill(child);
        await err.done;
      }
    });

    await t.step("--seed and a signal before the reader has the whole file: exit 130", async () => {
      await termAfterComplete(`${tmp}/o4`, ["--seed"]);
    });

    await t.step("a reader that goes after the download completed: exit 0, the state folder removed", async () => {
      const out = `${tmp}/o5`;
      // first a partial run, stopped by a signal, so a resume record is there
      const first = spawn(out, ["--max-download-rate", "1M"]);
      const ferr = watchLines(first.stderr);
      await new Promise((r) => setTimeout(r, 1500));
      first.kill("SIGINT");
      assertEquals((await first.status).code, 130, ferr.lines.join("\n"));
      await first.stdout.cancel();
      await ferr.done;
      const state = `${out}/.btfetch`;
      assert(await Deno.stat(state).then(() => true, () => false), "the partial run left no state");
      const child = spawn(out);
      const err = watchLines(child.stderr);
      try {
        const reader = child.stdout.getReader();
        const r = await reader.read(); // a first chunk, then the reader waits for the download to finish
        assert(!r.done);
        await err.until(/complete, .* verified/, 30_000);
        await reader.cancel();
        const st = await statusWithin(child, 10_000);
        assert(st !== null, "still running 10 s after the reader went");
        assertEquals(st.code, 0, err.lines.join("\n"));
        assert(!await Deno.stat(state).then(() => true, () => false), "the state folder is still there");
        assert(err.lines.some((l) => /^Done in/.test(l)), err.lines.join("\n"));
      } finally {
        kill(child);
        await err.done;
      }
    });
  } finally {
    await killAll([seed.handle]);
    await Deno.remove(tmp, { recursive: true });
  }
});
