/**
 * The output folder end to end: an output that can never be written exits 5 at once, before any network work (also
 * for a magnet, before its metadata is fetched), and `verify` and `seed` of complete data work on a read-only mount.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { makeTorrent } from "../_torrent.ts";
import { runBtfetch } from "../interop/_btfetch.ts";
import { freePort, payloadBytes } from "../interop/_peers.ts";
import { canMount, withReadOnlyView } from "../storage/_mount.ts";
import { brief, namesIn, withTempDir } from "./_cli.ts";

const RUN = { timeoutMs: 60_000 };

/** A small trackerless torrent at `dir/t.torrent`, and its payload written at `dir/data/small.bin`. */
async function smallTorrent(dir: string): Promise<ReturnType<typeof makeTorrent>> {
  const t = makeTorrent({ name: "small.bin", pieceLength: 16 * 1024, files: payloadBytes(6, 50_000) });
  await Deno.writeFile(`${dir}/t.torrent`, t.bytes);
  await Deno.mkdir(`${dir}/data`);
  await Deno.writeFile(`${dir}/data/small.bin`, t.payload);
  return t;
}

/** Runs `get` of `source` into `out` with nothing to fetch from; returns the result and how long it took. */
async function getInto(source: string, out: string) {
  const t0 = Date.now();
  const r = await runBtfetch(
    ["get", source, "-o", out, "--json", "--no-dht", "--port", String(freePort())].concat(
      ["--peer", `127.0.0.1:${freePort()}`, "--stall-timeout", "30s", "--timeout", "40s"],
    ),
    RUN,
  );
  return { r, took: Date.now() - t0 };
}

Deno.test("get with an output that can never be written exits 5 at once with one line, torrent or magnet", async (t) => {
  await withTempDir("btfetch-outcheck-", async (tmp) => {
    const tor = await smallTorrent(tmp);
    await Deno.writeTextFile(`${tmp}/plain.txt`, "not a folder\n");
    const outs = [
      { name: "under a regular file", out: () => Promise.resolve(`${tmp}/plain.txt/sub`) },
      { name: "a regular file", out: () => Promise.resolve(`${tmp}/plain.txt`) },
      { name: "under /proc", out: () => Promise.resolve("/proc/btfetch-test-out") },
    ];
    const sources = [
      { name: "torrent", source: `${tmp}/t.torrent` },
      { name: "magnet", source: tor.meta.infoHashHex },
    ];
    const check = async (out: string) => {
      for (const s of sources) {
        await t.step(`${s.name}: ${out.replace(tmp, "")}`, async () => {
          const { r, took } = await getInto(s.source, out);
          assertEquals(r.code, 5, brief(r));
          assert(took < 15_000, `exited after ${took} ms: the check came after network work`);
          assertEquals(r.events.map((e) => [e.event, e.code]), [["error", 5]], brief(r));
          const lines = r.stderr.trim().split("\n");
          assertEquals(lines.length, 1, r.stderr);
          assert(lines[0].startsWith("btfetch: ") && lines[0].includes(out), lines[0]);
        });
      }
    };
    for (const o of outs) await check(await o.out());
    assertEquals(await Deno.readTextFile(`${tmp}/plain.txt`), "not a folder\n");
    if (canMount) {
      await Deno.mkdir(`${tmp}/empty`);
      await withReadOnlyView(`${tmp}/empty`, async (ro) => {
        await check(ro);
        await check(`${ro}/sub`);
      });
    }
  });
});

Deno.test("get into a missing folder with nothing to fetch leaves no folder behind from the check", async () => {
  await withTempDir("btfetch-outcheck-clean-", async (tmp) => {
    await smallTorrent(tmp);
    const r = await runBtfetch(
      ["get", `${tmp}/t.torrent`, "-o", `${tmp}/new/out`, "--json", "--no-dht", "--port", String(freePort())].concat(
        ["--select", "9"],
      ),
      RUN,
    );
    assertEquals(r.code, 2, brief(r));
    assertEquals(await namesIn(tmp), ["data", "t.torrent"]);
  });
});

Deno.test({
  name: "verify of complete data on a read-only mount exits 0",
  ignore: !canMount,
  async fn() {
    await withTempDir("btfetch-ro-verify-", async (tmp) => {
      await smallTorrent(tmp);
      await withReadOnlyView(`${tmp}/data`, async (ro) => {
        const r = await runBtfetch(["verify", `${tmp}/t.torrent`, "--dir", ro, "--json"], RUN);
        assertEquals(r.code, 0, brief(r));
        assertEquals(r.events.filter((e) => e.event === "verified").map((e) => e.ok), [true]);
      });
    });
  },
});

Deno.test({
  name: "seed of complete data on a read-only mount runs, saves nothing, and exits 0",
  ignore: !canMount,
  async fn() {
    await withTempDir("btfetch-ro-seed-", async (tmp) => {
      await smallTorrent(tmp);
      await withReadOnlyView(`${tmp}/data`, async (ro) => {
        const r = await runBtfetch(
          ["seed", `${tmp}/t.torrent`, "--dir", ro, "--json", "--no-dht", "--port", String(freePort())].concat(
            ["--seed-time", "1s"],
          ),
          RUN,
        );
        assertEquals(r.code, 0, brief(r));
        assertEquals(r.events.filter((e) => e.event === "done").map((e) => e.complete), [true]);
        assertEquals(await namesIn(`${tmp}/data`), ["small.bin"], "nothing written");
      });
    });
  },
});
