/**
 * Commands and flags a script-writer can guess: `info` prints the magnet, `verify` defaults to the current folder,
 * `seed` and `verify` take `-o` as `get` takes `-d`, every command reads a torrent from `-`, a mistyped command or
 * flag gets a suggestion, and errors are plain words without the runtime's own text.
 * @module
 */
import { magnetFromMetainfo, parseMagnet } from "../../lib/magnet.ts";
import { type BencodeInput, encodeBencode } from "../../lib/bencode.ts";
import { assert, assertEquals } from "../_assert.ts";
import { eventsOf, runBtfetch } from "../interop/_btfetch.ts";
import { freePort } from "../interop/_peers.ts";
import { brief, runWithStdin, torrentWithData, withTempDir } from "./_cli.ts";

const RUN = { timeoutMs: 60_000 };

Deno.test("info without --json prints the magnet link", async () => {
  await withTempDir("btfetch-cmd-info-", async (tmp) => {
    const tor = await torrentWithData(tmp);
    const r = await runBtfetch(["info", tor.path], RUN);
    assertEquals(r.code, 0, brief(r));
    assert(r.stdout.split("\n").includes(`magnet:     ${magnetFromMetainfo(tor.meta)}`), r.stdout);
  });
});

Deno.test("verify checks the current folder by default; seed and verify take -o like get takes -d", async (t) => {
  await withTempDir("btfetch-cmd-dir-", async (tmp) => {
    const tor = await torrentWithData(tmp);
    const rows: [string, string[], string | undefined][] = [
      ["verify, no folder (cwd)", ["verify", tor.path], tor.dataDir],
      ["verify -o", ["verify", tor.path, "-o", tor.dataDir], undefined],
      ["verify --out", ["verify", tor.path, "--out", tor.dataDir], undefined],
      ["seed -o", ["seed", tor.path, "-o", tor.dataDir, "--seed-time", "1s", "--no-dht", "--port", "0"], undefined],
      ["seed, no folder (cwd)", ["seed", tor.path, "--seed-time", "1s", "--no-dht", "--port", "0"], tor.dataDir],
    ];
    for (const [name, args, cwd] of rows) {
      await t.step(name, async () => {
        const r = await runBtfetch([...args, "--json"], { ...RUN, cwd });
        assertEquals(r.code, 0, brief(r));
      });
    }
  });
});

Deno.test("info, magnet, verify and seed read the torrent from - (standard input)", async (t) => {
  await withTempDir("btfetch-cmd-stdin-", async (tmp) => {
    const tor = await torrentWithData(tmp);
    await t.step("info -", async () => {
      const r = await runWithStdin(["info", "-", "--json"], tor.bytes, RUN);
      assertEquals(r.code, 0, brief(r));
      assertEquals(r.events[0].info_hash, tor.meta.infoHashHex);
    });
    await t.step("magnet -", async () => {
      const r = await runWithStdin(["magnet", "-"], tor.bytes, RUN);
      assertEquals([r.code, r.stdout], [0, magnetFromMetainfo(tor.meta) + "\n"], brief(r));
    });
    await t.step("verify - -d DIR", async () => {
      const r = await runWithStdin(["verify", "-", "-d", tor.dataDir, "--json"], tor.bytes, RUN);
      assertEquals(r.code, 0, brief(r));
      assertEquals(eventsOf(r, "verified").map((e) => e.ok), [true]);
    });
    await t.step("seed - -d DIR", async () => {
      const args = ["seed", "-", "-d", tor.dataDir, "--seed-time", "1s", "--no-dht", "--port", String(freePort())];
      const r = await runWithStdin([...args, "--json"], tor.bytes, RUN);
      assertEquals(r.code, 0, brief(r));
      assertEquals(eventsOf(r, "done").map((e) => e.complete), [true]);
    });
    await t.step("info - with a magnet on standard input: only get takes one (exit 3)", async () => {
      const r = await runWithStdin(["info", "-"], new TextEncoder().encode(magnetFromMetainfo(tor.meta)), RUN);
      assertEquals(r.code, 3, brief(r));
    });
    await t.step("info - with nothing on standard input (exit 3)", async () => {
      const r = await runWithStdin(["info", "-"], new Uint8Array(), RUN);
      assertEquals(r.code, 3, brief(r));
      assertEquals(r.stderr, "btfetch: Cannot read the torrent from standard input: it is empty\n");
    });
  });
});

/** The runtime's own phrasing, which no message may show. */
const RAW = /os error \d|\bE[A-Z]{3,}: |, (stat|open|mkdir|writefile) '|\(os error/;

Deno.test("errors are one line of plain words, naming what to do", async (t) => {
  await withTempDir("btfetch-cmd-errors-", async (tmp) => {
    const tor = await torrentWithData(tmp);
    await Deno.writeTextFile(`${tmp}/plain.txt`, "not a folder\n");
    const rows: { args: string[]; code: number; line: string | RegExp }[] = [
      { args: ["info", `${tmp}/x.torrent`], code: 3, line: `btfetch: Cannot read ${tmp}/x.torrent: no such file` },
      { args: ["info", tmp], code: 3, line: `btfetch: Cannot read ${tmp}: it is a folder` },
      { args: ["inf", tor.path], code: 2, line: 'btfetch: Unknown command "inf"; did you mean "info"?' },
      { args: [tor.path, "--ouput", "x"], code: 2, line: "btfetch: Unknown option '--ouput'; did you mean '--out'?" },
      {
        args: ["create", `${tmp}/nothing`, "-o", `${tmp}/n.torrent`],
        code: 3,
        line: /^btfetch: Cannot read .*nothing: /,
      },
      {
        args: [tor.path, "-o", `${tmp}/plain.txt/sub`, "--no-dht"],
        code: 5,
        line: /^btfetch: Cannot create .*plain\.txt\/sub: .*; choose another place$/,
      },
      {
        args: ["seed", tor.path, "-d", `${tmp}/empty`, "--no-dht", "--port", "0"],
        code: 6,
        line: /missing or damaged .*; fetch the rest with 'btfetch get', or point -d at the folder that holds <name>$/,
      },
    ];
    for (const row of rows) {
      await t.step(row.args.join(" ").replaceAll(tmp, ""), async () => {
        const r = await runBtfetch(row.args, RUN);
        assertEquals(r.code, row.code, brief(r));
        const lines = r.stderr.trimEnd().split("\n").filter((l) => l.startsWith("btfetch: "));
        assertEquals(lines.length, 1, brief(r));
        if (typeof row.line === "string") assertEquals(lines[0], row.line);
        else assert(row.line.test(lines[0]), `${row.line} should match ${lines[0]}`);
        assert(!RAW.test(r.stderr), `raw runtime text: ${r.stderr}`);
      });
    }
  });
});

Deno.test("magnet of a torrent with more trackers than a link holds: a link btfetch reads back, and a note", async () => {
  await withTempDir("btfetch-cmd-many-", async (tmp) => {
    const info = new Map<string, BencodeInput>([
      ["length", 5],
      ["name", "a"],
      ["piece length", 16384],
      ["pieces", new Uint8Array(20)],
    ]);
    const list = Array.from({ length: 600 }, (_, i) => [`udp://t${i}.example:1`]);
    await Deno.writeFile(
      `${tmp}/many.torrent`,
      encodeBencode(new Map<string, BencodeInput>([["announce-list", list], ["info", info]])),
    );
    const r = await runBtfetch(["magnet", `${tmp}/many.torrent`], RUN);
    assertEquals(r.code, 0, brief(r));
    assertEquals(parseMagnet(r.stdout.trim()).trackers.length, 500);
    assert(r.stderr.includes("Note: 100 trackers left out of the magnet link"), r.stderr);
  });
});
