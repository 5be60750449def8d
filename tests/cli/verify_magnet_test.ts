/**
 * `btfetch verify` (one line per file, exit 6 when data does not match) and `btfetch magnet`.
 * @module
 */
import { assertEquals } from "../_assert.ts";
import { runBtfetch } from "../interop/_btfetch.ts";
import { payloadBytes, writeTree } from "../interop/_peers.ts";
import { makeBtTorrent } from "../interop/_swarm.ts";
import { brief, withTempDir } from "./_cli.ts";

const FILES: Array<[string, number]> = [
  ["a.bin", 40_000],
  ["sub/b.bin", 16_384],
  ["sub/c.bin", 100_001],
  ["d.bin", 7],
];

/** Writes `dir/data/...` and `dir/t.torrent` (16 KiB pieces); returns the torrent's path. */
async function setup(dir: string): Promise<string> {
  await writeTree(`${dir}/data`, FILES.map(([p, n], i) => [p, payloadBytes(700 + i, n)]));
  const t = await makeBtTorrent(`${dir}/data`, `${dir}/t.torrent`, { pieceLength: 16384 });
  return t.path;
}

/** stdout lines of `verify`, as [status, path] pairs. */
function verdicts(stdout: string): Array<[string, string]> {
  return stdout.split("\n").filter((l) => l.trim() !== "").map((l) => {
    const m = /^(ok|BAD)\s+(\S+)/.exec(l);
    if (!m) throw new Error(`unexpected verify line ${JSON.stringify(l)}`);
    return [m[1], m[2]];
  });
}

const ALL_OK: Array<[string, string]> = [
  ["ok", "data/a.bin"],
  ["ok", "data/d.bin"],
  ["ok", "data/sub/b.bin"],
  ["ok", "data/sub/c.bin"],
];

Deno.test("btfetch verify exits 0 on good data with one ok line per file", async () => {
  await withTempDir("btfetch-cli-verify-", async (dir) => {
    const t = await setup(dir);
    const r = await runBtfetch(["verify", t, "--dir", dir], { timeoutMs: 30_000 });
    assertEquals(r.code, 0, brief(r));
    assertEquals(verdicts(r.stdout), ALL_OK);
  });
});

Deno.test("btfetch verify exits 6 after one byte is corrupted and names that file", async () => {
  await withTempDir("btfetch-cli-verify-", async (dir) => {
    const t = await setup(dir);
    const path = `${dir}/data/sub/c.bin`;
    const bytes = await Deno.readFile(path);
    bytes[50_000] ^= 0x01;
    await Deno.writeFile(path, bytes);
    const r = await runBtfetch(["verify", t, "--dir", dir], { timeoutMs: 30_000 });
    assertEquals(r.code, 6, brief(r));
    assertEquals(verdicts(r.stdout), ALL_OK.map(([s, p]) => [p === "data/sub/c.bin" ? "BAD" : s, p]));

    const j = await runBtfetch(["verify", t, "--dir", dir, "--json"], { timeoutMs: 30_000 });
    assertEquals(j.code, 6, brief(j));
    const bad = j.events.filter((e) => e.event === "file" && e.ok === false).map((e) => e.path);
    assertEquals(bad, ["data/sub/c.bin"]);
    const summary = j.events.find((e) => e.event === "verified");
    assertEquals([summary?.ok, summary?.bad_files], [false, 1]);
  });
});

Deno.test("btfetch verify exits 6 when a file is missing and names it", async () => {
  await withTempDir("btfetch-cli-verify-", async (dir) => {
    const t = await setup(dir);
    await Deno.remove(`${dir}/data/d.bin`);
    const r = await runBtfetch(["verify", t, "--dir", dir], { timeoutMs: 30_000 });
    assertEquals(r.code, 6, brief(r));
    // d.bin (bytes 40000..40006) lies in piece 2 (32768..49151) with the tail of a.bin and the head of sub/b.bin,
    // so those two cannot be verified either; sub/c.bin shares no piece with d.bin
    assertEquals(verdicts(r.stdout), [
      ["BAD", "data/a.bin"],
      ["BAD", "data/d.bin"],
      ["BAD", "data/sub/b.bin"],
      ["ok", "data/sub/c.bin"],
    ]);
  });
});

Deno.test("btfetch verify exits 6 when the whole data folder is missing", async () => {
  await withTempDir("btfetch-cli-verify-", async (dir) => {
    const t = await setup(dir);
    await Deno.mkdir(`${dir}/elsewhere`);
    const r = await runBtfetch(["verify", t, "--dir", `${dir}/elsewhere`], { timeoutMs: 30_000 });
    assertEquals(r.code, 6, brief(r));
    assertEquals(verdicts(r.stdout).map(([s]) => s), ["BAD", "BAD", "BAD", "BAD"]);
  });
});

Deno.test("btfetch magnet prints magnet:?xt=urn:btih:<hex>&dn=<name>&tr=<each tracker>", async () => {
  await withTempDir("btfetch-cli-magnet-", async (dir) => {
    await writeTree(`${dir}/m`, [["my file & more.bin", payloadBytes(9, 1000)]]);
    const t = await makeBtTorrent(`${dir}/m/my file & more.bin`, `${dir}/m.torrent`, {
      announce: [["http://a.example/announce?x=1&y=2", "udp://b.example:80"], ["http://c.example/announce"]],
    });
    const r = await runBtfetch(["magnet", t.path], { timeoutMs: 30_000 });
    assertEquals(r.code, 0, brief(r));
    const line = r.stdout.trim();
    assertEquals(
      line,
      `magnet:?xt=urn:btih:${t.infoHash}&dn=my%20file%20%26%20more.bin` +
        `&tr=${encodeURIComponent("http://a.example/announce?x=1&y=2")}` +
        `&tr=${encodeURIComponent("udp://b.example:80")}&tr=${encodeURIComponent("http://c.example/announce")}`,
    );
    assertEquals(/^[0-9a-f]{40}$/.test(t.infoHash), true);
    // the link parses back to the same info-hash, name and trackers
    const u = new URL(line);
    assertEquals(u.searchParams.get("xt"), `urn:btih:${t.infoHash}`);
    assertEquals(u.searchParams.get("dn"), "my file & more.bin");
    assertEquals(u.searchParams.getAll("tr"), [
      "http://a.example/announce?x=1&y=2",
      "udp://b.example:80",
      "http://c.example/announce",
    ]);

    const j = await runBtfetch(["magnet", t.path, "--json"], { timeoutMs: 30_000 });
    assertEquals(j.code, 0, brief(j));
    assertEquals(j.events.map((e) => [e.event, e.magnet]), [["magnet", line]]);
  });
});

Deno.test("btfetch magnet exits 3 for a file that is not a torrent", async () => {
  await withTempDir("btfetch-cli-magnet-", async (dir) => {
    await Deno.writeTextFile(`${dir}/junk.torrent`, "not bencode");
    const r = await runBtfetch(["magnet", `${dir}/junk.torrent`], { timeoutMs: 30_000 });
    assertEquals(r.code, 3, brief(r));
  });
});
