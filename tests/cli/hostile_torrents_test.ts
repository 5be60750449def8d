/**
 * `btfetch get` and `btfetch info` refuse hostile torrents with exit code 3 and an `error` event, before writing
 * anything: unsafe paths, geometry that does not add up, non-canonical or broken bencode, and the like.
 * @module
 */
import { encodeBencode } from "../../lib/bencode.ts";
import { BENCODE_MAX_DEPTH } from "../../lib/limits.ts";
import { assert, assertEquals } from "../_assert.ts";
import { sha1 } from "../_torrent.ts";
import { type BtfetchResult, runBtfetch } from "../interop/_btfetch.ts";
import { freePort } from "../interop/_peers.ts";
import { B, brief, cat, errorEvents, mapLimit, namesIn, withTempDir } from "./_cli.ts";

const PIECE = 16 * 1024;
const DATA = new Uint8Array(40_000).map((_, i) => (i * 7 + 3) & 0xff);
const HASHES = cat([
  sha1(DATA.subarray(0, PIECE)),
  sha1(DATA.subarray(PIECE, 2 * PIECE)),
  sha1(DATA.subarray(2 * PIECE)),
]);

type Entries = [string, Uint8Array][];

/** Info entries for a single-file torrent of DATA (sorted), with `over` replacing or adding keys. */
function single(over: Record<string, Uint8Array | null> = {}): Entries {
  const base: Record<string, Uint8Array | null> = {
    length: B.int(DATA.length),
    name: B.str("data.bin"),
    "piece length": B.int(PIECE),
    pieces: B.str(HASHES),
    ...over,
  };
  return sortedEntries(base);
}

/** A file entry of a multi-file torrent. */
function fileEntry(path: string[], length: number): Uint8Array {
  return B.dict([["length", B.int(length)], ["path", B.list(path.map((p) => B.str(p)))]]);
}

/** Info entries for a multi-file torrent of DATA: `a.bin` (1000 bytes) and `paths[1]`… with the rest. */
function multi(files: Uint8Array[] | null, over: Record<string, Uint8Array | null> = {}): Entries {
  const base: Record<string, Uint8Array | null> = {
    files: files === null ? null : B.list(files),
    name: B.str("folder"),
    "piece length": B.int(PIECE),
    pieces: B.str(HASHES),
    ...over,
  };
  return sortedEntries(base);
}

function sortedEntries(rec: Record<string, Uint8Array | null>): Entries {
  const keys = Object.keys(rec).filter((k) => rec[k] !== null).sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
  return keys.map((k) => [k, rec[k] as Uint8Array]);
}

function torrent(info: Entries | Uint8Array): Uint8Array {
  return B.dict([
    ["announce", B.str("http://127.0.0.1:9/announce")],
    ["info", info instanceof Uint8Array ? info : B.dict(info)],
  ]);
}

function twoFiles(a: string[], b: string[]): Uint8Array[] {
  return [fileEntry(a, 1000), fileEntry(b, DATA.length - 1000)];
}

const deepList = (n: number) => cat([new Uint8Array(n).fill(0x6c), new Uint8Array(n).fill(0x65)]);

const VALID = torrent(single());

/** Hostile torrents, each refused as bad input (exit 3). */
const HOSTILE: [string, Uint8Array][] = [
  // unsafe paths
  ["path traversal: '..' component in files[].path", torrent(multi(twoFiles(["a.bin"], ["..", "evil.bin"])))],
  ["path traversal: '..' deep in files[].path", torrent(multi(twoFiles(["a.bin"], ["x", "..", "..", "evil.bin"])))],
  ["path traversal: name is '..'", torrent(single({ name: B.str("..") }))],
  ["path traversal: '../evil' as one component", torrent(multi(twoFiles(["a.bin"], ["../evil.bin"])))],
  ["path traversal: name.utf-8 is '..' (it wins over name)", torrent(single({ "name.utf-8": B.str("..") }))],
  [
    "path traversal: path.utf-8 has '..'",
    torrent(multi([
      B.dict([["length", B.int(1000)], ["path", B.list([B.str("a.bin")])]]),
      B.dict([
        ["length", B.int(DATA.length - 1000)],
        ["path", B.list([B.str("b.bin")])],
        ["path.utf-8", B.list([B.str(".."), B.str("evil.bin")])],
      ]),
    ])),
  ],
  ["backslash traversal: '..\\..\\evil'", torrent(multi(twoFiles(["a.bin"], ["..\\..\\evil.bin"])))],
  ["absolute path: name '/tmp/evil'", torrent(single({ name: B.str("/tmp/btfetch-evil") }))],
  ["absolute path: files[].path ['/etc', 'passwd']", torrent(multi(twoFiles(["a.bin"], ["/etc", "passwd"])))],
  ["absolute path: name '/'", torrent(single({ name: B.str("/") }))],
  ["drive letter: name 'C:'", torrent(single({ name: B.str("C:") }))],
  ["drive letter: name 'C:evil.bin'", torrent(single({ name: B.str("C:evil.bin") }))],
  ["drive letter: path 'C:\\Windows'", torrent(multi(twoFiles(["a.bin"], ["C:\\Windows", "evil.bin"])))],
  ["drive letter: path component 'C:'", torrent(multi(twoFiles(["a.bin"], ["C:", "evil.bin"])))],
  ["NUL in name", torrent(single({ name: B.str("data\0.bin") }))],
  ["NUL in files[].path", torrent(multi(twoFiles(["a.bin"], ["b\0.bin"])))],
  ["control character in name", torrent(single({ name: B.str("data\n.bin") }))],
  ["empty name", torrent(single({ name: B.str("") }))],
  ["name '.'", torrent(single({ name: B.str(".") }))],
  ["empty path component", torrent(multi(twoFiles(["a.bin"], ["sub", "", "b.bin"])))],
  ["empty path list", torrent(multi(twoFiles(["a.bin"], [])))],
  ["over-long path component (300 bytes)", torrent(single({ name: B.str("x".repeat(300)) }))],
  ["two files with one path", torrent(multi(twoFiles(["same.bin"], ["same.bin"])))],
  ["a file's path is another file's folder", torrent(multi(twoFiles(["a"], ["a", "b.bin"])))],
  // geometry
  ["length needs more pieces than given", torrent(single({ length: B.int(DATA.length + PIECE) }))],
  ["length needs fewer pieces than given", torrent(single({ length: B.int(PIECE) }))],
  [
    "files add up to more than the pieces cover",
    torrent(multi(
      twoFiles(["a.bin"], ["b.bin"]).concat(
        [fileEntry(["c.bin"], 3 * PIECE)],
      ),
    )),
  ],
  [
    "pieces is 41 bytes (not a multiple of 20)",
    torrent(single({ pieces: B.str(cat([HASHES.subarray(0, 40), Uint8Array.of(1)])) })),
  ],
  ["pieces is empty", torrent(single({ pieces: B.str(new Uint8Array(0)) }))],
  ["pieces is an integer", torrent(single({ pieces: B.int(60) }))],
  ["negative length", torrent(single({ length: B.int(-1) }))],
  ["length 2^63", torrent(single({ length: B.int(2n ** 63n) }))],
  ["piece length 0", torrent(single({ "piece length": B.int(0) }))],
  ["piece length negative", torrent(single({ "piece length": B.int(-PIECE) }))],
  ["negative file length", torrent(multi([fileEntry(["a.bin"], -5), fileEntry(["b.bin"], DATA.length + 5)]))],
  ["both length and files", torrent(single({ files: B.list(twoFiles(["a.bin"], ["b.bin"])) }))],
  ["neither length nor files", torrent(single({ length: null }))],
  ["empty file list", torrent(multi([]))],
  ["missing name", torrent(single({ name: null }))],
  ["missing pieces", torrent(single({ pieces: null }))],
  ["missing piece length", torrent(single({ "piece length": null }))],
  [
    "files entry with __proto__ instead of length",
    torrent(multi([
      B.dict([["__proto__", B.dict([["length", B.int(1000)]])], ["path", B.list([B.str("a.bin")])]]),
      fileEntry(["b.bin"], DATA.length - 1000),
    ])),
  ],
  ["__proto__ instead of info", B.dict([["__proto__", B.dict(single())], ["announce", B.str("http://x/")]])],
  ["info is a list", torrent(B.list([B.str("name")]))],
  ["no info at all", B.dict([["announce", B.str("http://127.0.0.1:9/announce")]])],
  // bencode
  ["non-canonical: unsorted keys in info", torrent(B.dict([...single()].reverse()))],
  ["non-canonical: duplicate key in info", torrent(B.dict([...single(), ["pieces", B.str(HASHES)]]))],
  [
    "non-canonical: integer with a leading zero in info",
    torrent(single({ length: new TextEncoder().encode(`i0${DATA.length}e`) })),
  ],
  ["duplicate info key in the outer dictionary", B.dict([["info", B.dict(single())], ["info", B.dict(single())]])],
  ["truncated bencode (half)", VALID.subarray(0, Math.floor(VALID.length / 2))],
  ["truncated bencode (last byte missing)", VALID.subarray(0, VALID.length - 1)],
  ["trailing bytes after the torrent", cat([VALID, new TextEncoder().encode("junk")])],
  [
    `deep nesting inside info (${BENCODE_MAX_DEPTH + 10} lists)`,
    torrent(single({ x: deepList(BENCODE_MAX_DEPTH + 10) })),
  ],
  [`deep nesting: the whole file (${BENCODE_MAX_DEPTH * 100} lists)`, deepList(BENCODE_MAX_DEPTH * 100)],
  ["string length past the end", new TextEncoder().encode("d4:infod4:name999999999:xee")],
  ["not bencode at all", new TextEncoder().encode("<html>not a torrent</html>\n")],
  ["empty file", new Uint8Array(0)],
  ["a list, not a dictionary", encodeBencode(["info"])],
];

/** The flags of a fetch that must never get as far as the network. */
function getArgs(file: string, out: string): string[] {
  return [
    "get",
    file,
    "-o",
    out,
    "--json",
    "--peer",
    "127.0.0.1:9",
    "--no-dht",
    "--port",
    String(freePort()),
    "--timeout",
    "15s",
  ];
}

/** Asserts a run ended with exit 3, one `error` event with code 3, and a one-line message on stderr. */
function assertBadInput(r: BtfetchResult, json: boolean): void {
  assertEquals(r.code, 3, brief(r));
  if (json) {
    const errs = errorEvents(r);
    assertEquals(errs.length, 1, brief(r));
    assertEquals(errs[0].code, 3, brief(r));
    assert(typeof errs[0].message === "string" && errs[0].message.length > 0, brief(r));
    assert(typeof errs[0].t === "number", brief(r));
  }
  assert(!/Internal error/.test(r.stderr), brief(r));
  const lines = r.stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, `one line on stderr: ${brief(r)}`);
  assert(lines[0].startsWith("btfetch: "), brief(r));
}

Deno.test("the valid baseline torrent is accepted by info (so the rows below fail for their own reason)", async () => {
  await withTempDir("btfetch-hostile-ok-", async (tmp) => {
    await Deno.writeFile(`${tmp}/ok.torrent`, VALID);
    const r = await runBtfetch(["info", `${tmp}/ok.torrent`, "--json"], { timeoutMs: 30_000 });
    assertEquals(r.code, 0, brief(r));
    assertEquals(r.events[0].name, "data.bin");
    assertEquals(r.events[0].size, DATA.length);
    // the multi-file baseline too
    await Deno.writeFile(`${tmp}/multi.torrent`, torrent(multi(twoFiles(["a.bin"], ["sub", "b.bin"]))));
    const m = await runBtfetch(["info", `${tmp}/multi.torrent`, "--json"], { timeoutMs: 30_000 });
    assertEquals(m.code, 0, brief(m));
    assertEquals((m.events[0].files as unknown[]).length, 2);
  });
});

Deno.test("get and info refuse hostile torrents with exit 3, an error event, and nothing written", async (t) => {
  await withTempDir("btfetch-hostile-", async (tmp) => {
    const jobs = HOSTILE.map(([name, bytes], i) => ({
      name,
      bytes,
      file: `${tmp}/t${i}.torrent`,
      out: `${tmp}/out${i}`,
    }));
    for (const j of jobs) {
      await Deno.writeFile(j.file, j.bytes);
      await Deno.mkdir(j.out);
    }
    const runs = await mapLimit(jobs, 8, async (j) => ({
      get: await runBtfetch(getArgs(j.file, j.out), { timeoutMs: 60_000 }),
      info: await runBtfetch(["info", j.file], { timeoutMs: 60_000 }),
      infoJson: await runBtfetch(["info", j.file, "--json"], { timeoutMs: 60_000 }),
    }));
    for (let i = 0; i < jobs.length; i++) {
      await t.step(jobs[i].name, async () => {
        const { get, info, infoJson } = runs[i];
        assertBadInput(get, true);
        assertEquals(get.events.filter((e) => e.event !== "error"), [], "no session events for a refused torrent");
        assertEquals(await namesIn(jobs[i].out), [], "the output folder stays empty");
        assertBadInput(info, false);
        assertEquals(info.stdout, "", "info prints nothing on stdout");
        assertBadInput(infoJson, true);
        assertEquals(infoJson.events.length, 1, "info --json prints only the error");
      });
    }
    // nothing was written beside the torrents and output folders either (no absolute or escaping paths)
    const expected = jobs.flatMap((j) => [j.file, j.out].map((p) => p.slice(tmp.length + 1))).sort();
    assertEquals(await namesIn(tmp), expected);
    assertEquals(await namesIn("/tmp/btfetch-evil"), null);
  });
});

Deno.test("get and info exit 3 for a missing torrent file and for a folder given as the torrent", async (t) => {
  await withTempDir("btfetch-hostile-src-", async (tmp) => {
    await Deno.mkdir(`${tmp}/dir.torrent`);
    await Deno.mkdir(`${tmp}/out`);
    const rows: [string, string][] = [
      ["missing file", `${tmp}/missing.torrent`],
      ["a folder", `${tmp}/dir.torrent`],
    ];
    for (const [name, file] of rows) {
      await t.step(name, async () => {
        const get = await runBtfetch(getArgs(file, `${tmp}/out`), { timeoutMs: 60_000 });
        assertBadInput(get, true);
        assertEquals(await namesIn(`${tmp}/out`), []);
        assertBadInput(await runBtfetch(["info", file], { timeoutMs: 60_000 }), false);
        assertBadInput(await runBtfetch(["info", file, "--json"], { timeoutMs: 60_000 }), true);
      });
    }
  });
});

Deno.test("get does not create a missing output folder for a hostile torrent", async () => {
  await withTempDir("btfetch-hostile-nodir-", async (tmp) => {
    await Deno.writeFile(`${tmp}/t.torrent`, torrent(multi(twoFiles(["a.bin"], ["..", "evil.bin"]))));
    const r = await runBtfetch(getArgs(`${tmp}/t.torrent`, `${tmp}/out`), { timeoutMs: 60_000 });
    assertBadInput(r, true);
    assertEquals(await namesIn(`${tmp}/out`), null);
    assertEquals(await namesIn(tmp), ["t.torrent"]);
  });
});

Deno.test("info reads a torrent with an extra __proto__ key in info as an ordinary unknown key", async () => {
  await withTempDir("btfetch-hostile-proto-", async (tmp) => {
    const bytes = torrent(single({ ["__proto__"]: B.dict([["name", B.str("polluted")]]) }));
    await Deno.writeFile(`${tmp}/t.torrent`, bytes);
    const r = await runBtfetch(["info", `${tmp}/t.torrent`, "--json"], { timeoutMs: 30_000 });
    assertEquals(r.code, 0, brief(r));
    assertEquals(r.events[0].name, "data.bin");
    assertEquals(r.events[0].size, DATA.length);
  });
});
