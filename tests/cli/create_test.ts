/**
 * `btfetch create` as a user runs it: the .torrent it writes (checked with `btfetch info --json` and against
 * python3-libtorrent), its flags, and its exit codes.
 * @module
 */
import { assertEquals } from "../_assert.ts";
import { type BtfetchResult, runBtfetch } from "../interop/_btfetch.ts";
import { haveLibtorrent, IN_CI, infoHashOf, MiB, payloadBytes, writeTree } from "../interop/_peers.ts";
import { brief, errorEvents, withTempDir } from "./_cli.ts";

function ok(r: BtfetchResult, what: string): void {
  if (r.code !== 0 || r.timedOut) throw new Error(`${what} failed\n${brief(r)}`);
}

async function infoJson(torrent: string): Promise<Record<string, unknown>> {
  const r = await runBtfetch(["info", torrent, "--json"], { timeoutMs: 30_000 });
  ok(r, "info --json");
  if (r.events.length !== 1) throw new Error(`info --json printed ${r.events.length} objects\n${brief(r)}`);
  return r.events[0];
}

Deno.test("btfetch create writes trackers by tier, web seeds, --private and --comment that info --json shows", async () => {
  await withTempDir("btfetch-cli-create-", async (dir) => {
    await writeTree(`${dir}/data`, [["x/one.bin", payloadBytes(1, 70_000)], ["two.bin", payloadBytes(2, 5)]]);
    const out = `${dir}/data.torrent`;
    const r = await runBtfetch([
      "create",
      `${dir}/data`,
      "-o",
      out,
      "-t",
      "http://a.example/announce,udp://b.example:6969/announce",
      "-t",
      "http://c.example/announce",
      "-w",
      "http://w.example/files/",
      "--web-seed",
      "http://w2.example/",
      "--private",
      "--comment",
      "a comment, with commas",
      "--piece-size",
      "32K",
      "--json",
    ], { timeoutMs: 30_000 });
    ok(r, "create");
    const created = r.events.find((e) => e.event === "created");
    if (!created) throw new Error(`no created event\n${brief(r)}`);
    const info = await infoJson(out);
    assertEquals(created.info_hash, info.info_hash);
    assertEquals(info.name, "data");
    assertEquals(info.size, 70_005);
    assertEquals(info.piece_length, 32768);
    assertEquals(info.pieces, 3);
    assertEquals(info.private, true);
    assertEquals(info.comment, "a comment, with commas");
    assertEquals(info.trackers, [
      ["http://a.example/announce", "udp://b.example:6969/announce"],
      ["http://c.example/announce"],
    ]);
    assertEquals(info.web_seeds, ["http://w.example/files/", "http://w2.example/"]);
    assertEquals(info.files, [
      { index: 1, path: "data/two.bin", length: 5 },
      { index: 2, path: "data/x/one.bin", length: 70_000 },
    ]);
  });
});

Deno.test("btfetch create without options: no trackers, not private, automatic piece size, reproducible bytes", async () => {
  await withTempDir("btfetch-cli-create-", async (dir) => {
    const path = `${dir}/plain.bin`;
    await Deno.writeFile(path, payloadBytes(3, 30 * MiB + 1));
    const a = await runBtfetch(["create", path, "-o", `${dir}/a.torrent`], { timeoutMs: 60_000 });
    ok(a, "create");
    const b = await runBtfetch(["create", path, "-o", `${dir}/b.torrent`, "--piece-size", "auto"], {
      timeoutMs: 60_000,
    });
    ok(b, "create --piece-size auto");
    assertEquals(await Deno.readFile(`${dir}/a.torrent`), await Deno.readFile(`${dir}/b.torrent`));
    const info = await infoJson(`${dir}/a.torrent`);
    assertEquals(info.piece_length, 32768); // the smallest power of two giving at most 1500 pieces
    assertEquals(info.private, false);
    assertEquals(info.trackers, []);
    assertEquals(info.web_seeds, []);
    assertEquals(info.comment, null);
  });
});

Deno.test({
  name: "btfetch create gives the info-hash python3-libtorrent reads from the same .torrent",
  ignore: !haveLibtorrent() && !IN_CI,
  async fn() {
    await withTempDir("btfetch-cli-create-", async (dir) => {
      await writeTree(`${dir}/tree`, [["a/b.bin", payloadBytes(4, 100_000)], ["c.bin", payloadBytes(5, 3)]]);
      const r = await runBtfetch(["create", `${dir}/tree`, "-o", `${dir}/t.torrent`, "--json"], {
        timeoutMs: 30_000,
      });
      ok(r, "create");
      const created = r.events.find((e) => e.event === "created");
      assertEquals(created?.info_hash, await infoHashOf(`${dir}/t.torrent`));
    });
  },
});

Deno.test("btfetch create exits 3 for a missing path or an empty folder, and writes nothing", async (t) => {
  await withTempDir("btfetch-cli-create-", async (dir) => {
    await Deno.mkdir(`${dir}/empty`);
    for (const [name, path] of [["missing path", `${dir}/nope`], ["empty folder", `${dir}/empty`]]) {
      await t.step(name, async () => {
        const out = `${dir}/${name.replace(" ", "-")}.torrent`;
        const r = await runBtfetch(["create", path, "-o", out, "--json"], { timeoutMs: 30_000 });
        if (r.code !== 3) throw new Error(`expected exit 3\n${brief(r)}`);
        assertEquals(errorEvents(r).map((e) => e.code), [3]);
        const exists = await Deno.stat(out).then(() => true, () => false);
        assertEquals(exists, false);
      });
    }
  });
});

Deno.test("btfetch create exits 2 without -o or with a piece size that is not a power of two", async () => {
  await withTempDir("btfetch-cli-create-", async (dir) => {
    await Deno.writeFile(`${dir}/f`, payloadBytes(6, 10));
    const noOut = await runBtfetch(["create", `${dir}/f`], { timeoutMs: 30_000 });
    assertEquals(noOut.code, 2, brief(noOut));
    const bad = await runBtfetch(["create", `${dir}/f`, "-o", `${dir}/t`, "--piece-size", "24K"], {
      timeoutMs: 30_000,
    });
    assertEquals(bad.code, 2, brief(bad));
  });
});
