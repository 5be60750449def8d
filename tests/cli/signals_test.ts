/**
 * SIGINT and SIGTERM end seeding as its normal end: `seed`, and `get --seed` once complete, exit 0 with one
 * "Stopped seeding after …" line and no error event; a fetch interrupted before it completed exits 130 with the
 * resume hint, and its error line comes alone (no `Done in …` summary before it).
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { eventsOf, spawnBtfetch } from "../interop/_btfetch.ts";
import { freePort } from "../interop/_peers.ts";
import { brief, exitWithin, torrentWithData, withTempDir } from "./_cli.ts";

const STOPPED = /^Stopped seeding after \d+:\d\d \(uploaded [\d.]+ [KMG]?i?B, ratio \d+\.\d\d\)$/;

Deno.test("seed and get --seed stopped by SIGINT or SIGTERM exit 0 with one Stopped seeding line", async (t) => {
  await withTempDir("btfetch-stop-seed-", async (tmp) => {
    const tor = await torrentWithData(tmp);
    const rows: { name: string; args: string[]; signal: Deno.Signal }[] = [
      { name: "seed, SIGINT", args: ["seed", tor.path, "-d", tor.dataDir], signal: "SIGINT" },
      { name: "seed, SIGTERM", args: ["seed", tor.path, "--dir", tor.dataDir], signal: "SIGTERM" },
      { name: "get --seed, complete, SIGTERM", args: [tor.path, "-o", tor.dataDir, "--seed"], signal: "SIGTERM" },
      {
        name: "get --seed-time 1h, SIGINT",
        args: [tor.path, "-o", tor.dataDir, "--seed-time", "1h"],
        signal: "SIGINT",
      },
    ];
    for (const row of rows) {
      await t.step(row.name, async () => {
        const h = spawnBtfetch([...row.args, "--json", "--no-dht", "--port", String(freePort())], {
          timeoutMs: 60_000,
        });
        try {
          await h.waitForEvent((e) => e.event === "seeding", 30_000);
        } finally {
          h.kill(row.signal);
        }
        const { result: r, killed } = await exitWithin(h, 15_000);
        assert(!killed, `no exit within 15 s of ${row.signal}: ${brief(r)}`);
        assertEquals(r.code, 0, brief(r));
        assertEquals(eventsOf(r, "error"), [], brief(r));
        assertEquals(eventsOf(r, "done").map((d) => d.complete), [true], brief(r));
        const lines = r.stderr.trimEnd().split("\n");
        assert(STOPPED.test(lines.at(-1) ?? ""), brief(r));
        assertEquals(lines.filter((l) => /^(Done in|btfetch:|Stopped)/.test(l)).length, 1, brief(r));
      });
    }
  });
});

Deno.test("a fetch interrupted before it completed exits 130, its error line alone after the progress", async (t) => {
  await withTempDir("btfetch-stop-fetch-", async (tmp) => {
    const tor = await torrentWithData(tmp);
    for (const args of [[], ["--seed"]]) {
      await t.step(args.join(" ") || "get", async () => {
        const h = spawnBtfetch(
          [tor.path, "-o", `${tmp}/out`, "--json", "--no-dht", "--port", String(freePort())].concat(
            ["--peer", `127.0.0.1:${freePort()}`, "--timeout", "60s", ...args],
          ),
          { timeoutMs: 60_000 },
        );
        try {
          await h.waitForEvent((e) => e.event === "progress", 30_000);
        } finally {
          h.kill("SIGINT");
        }
        const { result: r, killed } = await exitWithin(h, 15_000);
        assert(!killed, brief(r));
        assertEquals(r.code, 130, brief(r));
        assertEquals(eventsOf(r, "error").map((e) => e.code), [130], brief(r));
        const lines = r.stderr.trimEnd().split("\n");
        assertEquals(
          lines.at(-1),
          "btfetch: Interrupted by SIGINT: state saved, run the same command again to resume",
          brief(r),
        );
        assert(!lines.some((l) => l.startsWith("Done in") || l.startsWith("Stopped")), brief(r));
      });
    }
  });
});
