/**
 * `btfetch get` end to end against a `btfetch seed` on loopback: the end of a run is one line (the summary on success,
 * the error alone on failure), a completed download leaves no `DIR/.btfetch/`, `--save-torrent` makes its folder,
 * and the torrent (or a magnet) can come from standard input.
 * @module
 */
import { parseMetainfo } from "../../lib/metainfo.ts";
import { magnetFromMetainfo } from "../../lib/magnet.ts";
import { assert, assertEquals } from "../_assert.ts";
import { eventsOf, runBtfetch } from "../interop/_btfetch.ts";
import { freePort } from "../interop/_peers.ts";
import { brief, namesIn, runWithStdin, type SeedChild, startSeed, torrentWithData, withTempDir } from "./_cli.ts";

const RUN = { timeoutMs: 90_000 };

/** get's flags for a fetch from `seeder` only. */
function from(seeder: SeedChild): string[] {
  return ["--no-dht", "--port", String(freePort()), "--peer", `127.0.0.1:${seeder.port}`, "--timeout", "60s"];
}

async function withSeeder(
  fn: (tmp: string, tor: Awaited<ReturnType<typeof torrentWithData>>, s: SeedChild) => Promise<void>,
) {
  await withTempDir("btfetch-get-", async (tmp) => {
    const tor = await torrentWithData(tmp, { size: 400_000, seed: 11 });
    const seeder = await startSeed(tor.path, tor.dataDir);
    try {
      await fn(tmp, tor, seeder);
    } finally {
      await seeder.stop();
    }
  });
}

Deno.test("a completed get removes DIR/.btfetch, names where the files are, and ends with one Done line", async () => {
  await withSeeder(async (tmp, tor, seeder) => {
    const out = `${tmp}/out`;
    const r = await runBtfetch(["get", tor.path, "-o", out, ...from(seeder)], RUN);
    assertEquals(r.code, 0, brief(r));
    assertEquals(await namesIn(out), ["payload.bin"], "no .btfetch left after a completed download");
    assertEquals(await Deno.readFile(`${out}/payload.bin`), tor.payload);
    const lines = r.stderr.trimEnd().split("\n");
    assert(lines.includes(`${out}/payload.bin: complete, 391 KiB verified`), brief(r));
    assert(/^Done in [\d.]+ s: downloaded 391 KiB \(.*\/s\) from 1 peer, /.test(lines.at(-1) ?? ""), brief(r));
    assertEquals(lines.filter((l) => l.startsWith("Done in")).length, 1, brief(r));
    assert(!/checking/.test(r.stderr), `a fresh download has nothing to check: ${brief(r)}`);
  });
});

Deno.test("get with -d DIR and with seeding keeps the resume record while it may seed again", async () => {
  await withSeeder(async (tmp, tor, seeder) => {
    const r = await runBtfetch([tor.path, "-d", `${tmp}/out`, "--seed-time", "1s", ...from(seeder)], RUN);
    assertEquals(r.code, 0, brief(r));
    assertEquals(await namesIn(`${tmp}/out`), [".btfetch", "payload.bin"]);
  });
});

Deno.test("a failed get prints its error line alone: no Done summary before it", async () => {
  await withTempDir("btfetch-get-fail-", async (tmp) => {
    const tor = await torrentWithData(tmp);
    const r = await runBtfetch(
      [tor.path, "-o", `${tmp}/out`, "--no-dht", "--port", String(freePort())].concat(
        ["--peer", `127.0.0.1:${freePort()}`, "--timeout", "2s"],
      ),
      RUN,
    );
    assertEquals(r.code, 4, brief(r));
    const lines = r.stderr.trimEnd().split("\n");
    assert(lines.at(-1)?.startsWith("btfetch: Timed out after 2 s"), brief(r));
    assert(!lines.some((l) => l.startsWith("Done")), brief(r));
  });
});

Deno.test("--save-torrent makes its folder (the README's magnet example into a folder that does not exist)", async () => {
  await withSeeder(async (tmp, tor, seeder) => {
    const r = await runBtfetch(
      [tor.meta.infoHashHex, "-o", `${tmp}/dl`, "--save-torrent", `${tmp}/dl/torrents/x.torrent`, ...from(seeder)],
      RUN,
    );
    assertEquals(r.code, 0, brief(r));
    const saved = parseMetainfo(await Deno.readFile(`${tmp}/dl/torrents/x.torrent`));
    assertEquals(saved.infoHashHex, tor.meta.infoHashHex);
    assertEquals(await Deno.readFile(`${tmp}/dl/payload.bin`), tor.payload);
  });
});

Deno.test("get - reads a .torrent, a magnet or an info-hash from standard input", async (t) => {
  await withSeeder(async (tmp, tor, seeder) => {
    const inputs: [string, Uint8Array][] = [
      ["a .torrent", tor.bytes],
      ["a magnet", new TextEncoder().encode(magnetFromMetainfo(tor.meta) + "\n")],
      ["an info-hash", new TextEncoder().encode(tor.meta.infoHashHex)],
    ];
    for (const [i, [name, input]] of inputs.entries()) {
      await t.step(name, async () => {
        const out = `${tmp}/stdin-${i}`;
        const r = await runWithStdin(["get", "-", "-o", out, "--json", ...from(seeder)], input, RUN);
        assertEquals(r.code, 0, brief(r));
        assertEquals(await Deno.readFile(`${out}/payload.bin`), tor.payload);
        assertEquals(eventsOf(r, "done").map((d) => d.complete), [true]);
      });
    }
  });
});
