/**
 * The exit codes of DESIGN.md §1, end to end through `main.ts`: usage (2), bad input (3), network (4), disk (5),
 * interrupted (130, with a resume record), plus `--help`, `--version` and `info --json`.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { makeTorrent } from "../_torrent.ts";
import { type BtEvent, eventsOf, runBtfetch, spawnBtfetch } from "../interop/_btfetch.ts";
import {
  freePort,
  ignoreUnless,
  makeTorrentWithLibtorrent,
  MiB,
  payloadBytes,
  requirePrograms,
  startLibtorrentSeeder,
  writeSingleFilePayload,
} from "../interop/_peers.ts";
import { brief, exitWithin, namesIn, withTempDir } from "./_cli.ts";

const RUN = { timeoutMs: 60_000 };

function onlyError(events: BtEvent[], code: number): BtEvent {
  const errs = events.filter((e) => e.event === "error");
  assertEquals(errs.length, 1, `one error event: ${JSON.stringify(events.slice(-5))}`);
  assertEquals(errs[0].code, code);
  assert(typeof errs[0].message === "string" && errs[0].message !== "");
  return errs[0];
}

/** A small valid trackerless torrent written to `dir/t.torrent`. */
async function smallTorrent(dir: string, name = "small.bin"): Promise<ReturnType<typeof makeTorrent>> {
  const t = makeTorrent({ name, pieceLength: 16 * 1024, files: payloadBytes(5, 50_000) });
  await Deno.writeFile(`${dir}/t.torrent`, t.bytes);
  return t;
}

Deno.test("an unknown flag exits 2 with a one-line message on stderr and nothing on stdout", async (t) => {
  await t.step("without --json", async () => {
    const r = await runBtfetch(["get", "x.torrent", "--bogus"], RUN);
    assertEquals(r.code, 2, brief(r));
    assertEquals(r.stdout, "");
    const lines = r.stderr.trimEnd().split("\n");
    assertEquals(lines[0], "btfetch: Unknown option '--bogus'", brief(r));
    // the message is one line; a hint to --help may follow, no stack trace
    assert(lines.length <= 2, brief(r));
    if (lines.length === 2) assert(/--help/.test(lines[1]), brief(r));
    assert(!/\bat\s+\S+:\d+/.test(r.stderr), "no stack trace");
  });
  await t.step("with --json: an error event with code 2, and one line on stderr", async () => {
    const r = await runBtfetch(["x.torrent", "--json", "--bogus"], RUN);
    assertEquals(r.code, 2, brief(r));
    const e = onlyError(r.events, 2);
    assert(/--bogus/.test(e.message as string));
    assertEquals(r.stderr.trimEnd().split("\n").length, 1, brief(r));
  });
  await t.step("a multi-line parser message is cut to its first line", async () => {
    const r = await runBtfetch(["x.torrent", "--port", "-1"], RUN);
    assertEquals(r.code, 2, brief(r));
    const lines = r.stderr.trimEnd().split("\n");
    assert(lines[0].startsWith("btfetch: ") && /--port/.test(lines[0]), brief(r));
    assert(lines.length <= 2, brief(r));
  });
  await t.step("a flag the command does not take, a bad value, a missing argument", async () => {
    for (
      const args of [
        ["info", "x.torrent", "-o", "d"],
        ["x.torrent", "--timeout", "soon"],
        ["x.torrent", "--peer", "nowhere"],
        [],
        ["seed"], // the data folder defaults to the current one; the torrent does not
        ["verify", "x.torrent", "-o", "a", "-d", "b"],
      ]
    ) {
      const r = await runBtfetch(args, RUN);
      assertEquals(r.code, 2, `${JSON.stringify(args)}: ${brief(r)}`);
      assert(r.stderr.startsWith("btfetch: "), brief(r));
    }
  });
});

Deno.test("--select past the last file exits 2 and writes nothing", async () => {
  await withTempDir("btfetch-exit-select-", async (tmp) => {
    await smallTorrent(tmp);
    const r = await runBtfetch(
      ["get", `${tmp}/t.torrent`, "-o", `${tmp}/out`, "--json", "--select", "2", "--peer", "127.0.0.1:9"],
      RUN,
    );
    assertEquals(r.code, 2, brief(r));
    onlyError(r.events, 2);
    assertEquals(await namesIn(`${tmp}/out`), null);
  });
});

Deno.test("a magnet or bare info-hash with no tracker and no peer exits 4; a malformed one exits 3", async () => {
  for (const src of [`magnet:?xt=urn:btih:${"ab".repeat(20)}`, "ab".repeat(20)]) {
    const r = await runBtfetch([src, "--json", "-o", "/nonexistent-btfetch-out"], RUN);
    assertEquals(r.code, 4, brief(r));
    onlyError(r.events, 4);
  }
  for (const src of ["magnet:?xt=urn:btih:zz", "magnet:?dn=no-hash"]) {
    const r = await runBtfetch([src, "--json", "-o", "/nonexistent-btfetch-out"], RUN);
    assertEquals(r.code, 3, brief(r));
    onlyError(r.events, 3);
  }
  // info, verify and the like need the .torrent itself
  const r = await runBtfetch(["info", `magnet:?xt=urn:btih:${"ab".repeat(20)}`, "--json"], RUN);
  assertEquals(r.code, 3, brief(r));
});

Deno.test("--help exits 0 and documents every exit code; --version prints the version", async (t) => {
  await t.step("--help", async () => {
    for (const args of [["--help"], ["-h"], ["help"], ["info", "x", "--help"]]) {
      const r = await runBtfetch(args, RUN);
      assertEquals(r.code, 0, brief(r));
      assertEquals(r.stderr, "");
      assert(/Usage:/.test(r.stdout));
      assert(/Exit codes:/.test(r.stdout), "lists exit codes");
      for (const code of [0, 1, 2, 3, 4, 5, 6, 130]) {
        assert(new RegExp(`^\\s+${code}\\s+\\S`, "m").test(r.stdout), `--help documents exit code ${code}`);
      }
      for (const flag of ["--out", "--select", "--peer", "--timeout", "--stall-timeout", "--json", "--version"]) {
        assert(r.stdout.includes(flag), `--help mentions ${flag}`);
      }
    }
  });
  await t.step("--version", async () => {
    for (const args of [["--version"], ["-V"], ["version"]]) {
      const r = await runBtfetch(args, RUN);
      assertEquals(r.code, 0, brief(r));
      assert(/^btfetch \d+\.\d+\.\d+\n$/.test(r.stdout), JSON.stringify(r.stdout));
      assertEquals(r.stderr, "");
    }
  });
});

Deno.test("info --json prints the documented object on one line", async () => {
  await withTempDir("btfetch-exit-info-", async (tmp) => {
    const t = makeTorrent({
      name: "folder",
      pieceLength: 16 * 1024,
      files: [
        { path: ["a.txt"], data: payloadBytes(1, 10) },
        { path: ["sub", "b.bin"], data: payloadBytes(2, 40_000) },
      ],
      announceList: [["http://127.0.0.1:1/announce", "udp://127.0.0.1:2"], ["http://127.0.0.1:3/a"]],
      urlList: ["http://127.0.0.1:4/files/"],
      private: true,
    });
    await Deno.writeFile(`${tmp}/t.torrent`, t.bytes);
    const r = await runBtfetch(["info", `${tmp}/t.torrent`, "--json"], RUN);
    assertEquals(r.code, 0, brief(r));
    assertEquals(r.stderr, "");
    assertEquals(r.stdout.trimEnd().split("\n").length, 1, "one line");
    const o = JSON.parse(r.stdout);
    assertEquals(typeof o.magnet, "string");
    assert((o.magnet as string).startsWith(`magnet:?xt=urn:btih:${t.meta.infoHashHex}`), o.magnet);
    delete o.magnet;
    assertEquals(o.web_seed_urls, [{
      url: "http://127.0.0.1:4/files/",
      files: ["http://127.0.0.1:4/files/folder/a.txt", "http://127.0.0.1:4/files/folder/sub/b.bin"],
    }]);
    delete o.web_seed_urls;
    assertEquals(o, {
      name: "folder",
      info_hash: t.meta.infoHashHex,
      size: 40_010,
      piece_length: 16 * 1024,
      pieces: 3,
      private: true,
      trackers: [["http://127.0.0.1:1/announce", "udp://127.0.0.1:2"], ["http://127.0.0.1:3/a"]],
      web_seeds: ["http://127.0.0.1:4/files/"],
      comment: null,
      created_by: null,
      creation_date: null,
      files: [
        { index: 1, path: "folder/a.txt", length: 10 },
        { index: 2, path: "folder/sub/b.bin", length: 40_000 },
      ],
    });
  });
});

Deno.test("no peers at all with --stall-timeout 2s exits 4", async () => {
  await withTempDir("btfetch-exit-nopeers-", async (tmp) => {
    await smallTorrent(tmp);
    const t0 = Date.now();
    const r = await runBtfetch(
      ["get", `${tmp}/t.torrent`, "-o", `${tmp}/out`, "--json", "--no-dht", "--port", String(freePort())].concat(
        ["--stall-timeout", "2s", "--timeout", "40s"],
      ),
      RUN,
    );
    const took = Date.now() - t0;
    assertEquals(r.code, 4, brief(r));
    onlyError(r.events, 4);
    assert(took < 30_000, `gave up after ${took} ms, long after the 2 s stall timeout`);
    assertEquals(eventsOf(r, "metadata").length, 1);
  });
});

Deno.test("--timeout 2s with an unreachable --peer exits 4 after about 2 s", async () => {
  await withTempDir("btfetch-exit-timeout-", async (tmp) => {
    await smallTorrent(tmp);
    const dead = freePort(); // nothing listens there now
    const t0 = Date.now();
    const r = await runBtfetch(
      ["get", `${tmp}/t.torrent`, "-o", `${tmp}/out`, "--json", "--no-dht", "--port", String(freePort())].concat(
        ["--peer", `127.0.0.1:${dead}`, "--timeout", "2s", "--stall-timeout", "60s"],
      ),
      RUN,
    );
    const took = Date.now() - t0;
    assertEquals(r.code, 4, brief(r));
    onlyError(r.events, 4);
    assert(took >= 2_000 && took < 30_000, `gave up after ${took} ms`);
  });
});

Deno.test({
  name: "get with -o under or at a regular file exits 5 (before any network work), even with a seeder at hand",
  ignore: ignoreUnless("libtorrent"),
  async fn(t) {
    requirePrograms("libtorrent");
    await withTempDir("btfetch-exit-enotdir-", async (tmp) => {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "enotdir.bin", 512 * 1024, 7);
      const tor = await makeTorrentWithLibtorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLength: 32768 });
      const seeder = await startLibtorrentSeeder({ torrent: tor.path, dataDir: payload.dir });
      try {
        await Deno.writeTextFile(`${tmp}/plain.txt`, "not a folder\n");
        for (const out of [`${tmp}/plain.txt/sub`, `${tmp}/plain.txt`]) {
          await t.step(out.slice(tmp.length + 1), async () => {
            const r = await runBtfetch(
              ["get", tor.path, "-o", out, "--json", "--no-dht", "--port", String(freePort())].concat(
                ["--peer", `127.0.0.1:${seeder.port}`, "--timeout", "40s", "--stall-timeout", "30s"],
              ),
              RUN,
            );
            assertEquals(r.code, 5, brief(r));
            onlyError(r.events, 5);
            assertEquals(await Deno.readTextFile(`${tmp}/plain.txt`), "not a folder\n");
          });
        }
      } finally {
        await seeder.close();
      }
    });
  },
});

Deno.test({
  name: "SIGINT during a download exits 130 and leaves a resume record under <out>/.btfetch/",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    await withTempDir("btfetch-exit-sigint-", async (tmp) => {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "sigint.bin", 8 * MiB, 9);
      const tor = await makeTorrentWithLibtorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLength: 32768 });
      const seeder = await startLibtorrentSeeder({ torrent: tor.path, dataDir: payload.dir, uploadRate: MiB });
      try {
        const out = `${tmp}/out`;
        const h = spawnBtfetch(
          ["get", tor.path, "-o", out, "--json", "--no-dht", "--port", String(freePort())].concat(
            ["--peer", `127.0.0.1:${seeder.port}`, "--timeout", "60s", "--stall-timeout", "30s"],
          ),
          { timeoutMs: 90_000 },
        );
        let verifiedAtSignal = 0;
        try {
          const p = await h.waitForEvent((e) => e.event === "progress" && (e.verified as number) > 0, 40_000);
          verifiedAtSignal = p.verified as number;
        } finally {
          h.kill("SIGINT");
        }
        const { result: r, killed } = await exitWithin(h, 15_000);
        assert(!killed, `btfetch did not exit within 15 s of SIGINT: ${brief(r)}`);
        assertEquals(r.code, 130, brief(r));
        onlyError(r.events, 130);
        // `done` is emitted on every end (with the counters of the run); an interrupted one is not complete
        for (const d of eventsOf(r, "done")) assertEquals(d.complete, false, JSON.stringify(d));
        assertEquals(r.events.at(-1)?.event, "error", "the error event comes last");
        const rec = JSON.parse(await Deno.readTextFile(`${out}/.btfetch/${tor.infoHash}/resume.json`));
        assertEquals(rec.infoHash, tor.infoHash);
        assert(verifiedAtSignal < payload.size, "the signal came mid-way");
      } finally {
        await seeder.close();
      }
    });
  },
});

Deno.test({
  name: "the error event's t is ms since start like every other event's (it comes last, so it is the largest)",
  async fn() {
    await withTempDir("btfetch-exit-errt-", async (tmp) => {
      await smallTorrent(tmp);
      const r = await runBtfetch(
        ["get", `${tmp}/t.torrent`, "-o", `${tmp}/out`, "--json", "--no-dht", "--port", String(freePort())].concat(
          ["--peer", `127.0.0.1:${freePort()}`, "--timeout", "2s"],
        ),
        RUN,
      );
      assertEquals(r.code, 4, brief(r));
      const e = onlyError(r.events, 4);
      const before = Math.max(...r.events.filter((x) => x.event !== "error").map((x) => x.t as number));
      assert((e.t as number) >= before, `error.t ${e.t} < ${before}, the t of an earlier event`);
      assert((e.t as number) >= 2000, `error.t ${e.t}: the run lasted at least the 2 s timeout`);
    });
  },
});

Deno.test({
  name: "a disk error (exit 5) still ends with a done event, as every end does",
  async fn() {
    requirePrograms("libtorrent");
    await withTempDir("btfetch-exit-diskdone-", async (tmp) => {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "diskdone.bin", 512 * 1024, 8);
      const tor = await makeTorrentWithLibtorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLength: 32768 });
      const seeder = await startLibtorrentSeeder({ torrent: tor.path, dataDir: payload.dir });
      try {
        // a folder where the file goes: found in the session (an unwritable -o is refused before one starts)
        await Deno.mkdir(`${tmp}/out/diskdone.bin`, { recursive: true });
        const r = await runBtfetch(
          ["get", tor.path, "-o", `${tmp}/out`, "--json", "--no-dht", "--port", String(freePort())].concat(
            ["--peer", `127.0.0.1:${seeder.port}`, "--timeout", "40s"],
          ),
          RUN,
        );
        assertEquals(r.code, 5, brief(r));
        const done = eventsOf(r, "done");
        assertEquals(done.length, 1, `a done event: ${brief(r)}`);
        assertEquals(done[0].complete, false);
      } finally {
        await seeder.close();
      }
    });
  },
});
