/**
 * `parseCli()`, `parseSelect()`, `parseDuration()` and `parseSize()`: what every command takes, the defaults, the
 * units, and the `UsageError` for everything else.
 * @module
 */
import { type CliOptions, editDistance, FLAGS, parseCli, parseSelect, suggest } from "../../lib/cli/flags.ts";
import { parseDuration, parseSize } from "../../lib/cli/units.ts";
import { UsageError } from "../../lib/cli/usage_error.ts";
import { MAX_PEERS_PER_TORRENT } from "../../lib/limits.ts";
import { assertEquals, assertThrows } from "../_assert.ts";

/** A row: argv and the fields of the result it must have (others are not checked). */
type Row = [argv: string[], expect: Partial<Record<keyof CliOptions, unknown>>];

function pick(o: CliOptions, keys: readonly string[]): Record<string, unknown> {
  const rec = o as unknown as Record<string, unknown>;
  return Object.fromEntries(keys.map((k) => [k, rec[k]]));
}

async function checkRows(t: Deno.TestContext, rows: Row[]): Promise<void> {
  for (const [argv, expect] of rows) {
    await t.step(JSON.stringify(argv), () => {
      const o = parseCli(argv);
      assertEquals(pick(o, Object.keys(expect)), expect);
    });
  }
}

Deno.test("parseCli() gives get's defaults when only a source is named", () => {
  const o = parseCli(["a.torrent"]);
  assertEquals(o, {
    command: "get",
    source: "a.torrent",
    out: ".",
    select: undefined,
    peers: [],
    trackers: [],
    maxPeers: 50,
    port: undefined,
    timeoutMs: undefined,
    stallTimeoutMs: undefined,
    json: false,
    quiet: false,
    debug: false,
    check: false,
    sequential: false,
    seed: false,
    seedRatio: undefined,
    seedTimeMs: undefined,
    maxDownloadRate: undefined,
    maxUploadRate: undefined,
    output: undefined,
    saveTorrent: undefined,
    pieceSize: undefined,
    announceTiers: [],
    webSeeds: [],
    private: false,
    comment: undefined,
    size: undefined,
    leechers: undefined,
    dht: true,
    dhtBootstrap: [],
    dhtState: undefined,
    pex: true,
    metadataTimeoutMs: undefined,
    bind: undefined,
    stdout: false,
  });
});

Deno.test("parseCli() reads every flag of get", async (t) => {
  await checkRows(t, [
    [["get", "a.torrent"], { command: "get", source: "a.torrent" }],
    [["a.torrent", "-o", "dl"], { command: "get", out: "dl" }],
    [["a.torrent", "--out", "dl"], { out: "dl" }],
    [["a.torrent", "--no-dht"], { dht: false }],
    [["a.torrent", "--stdout", "--select", "2"], { stdout: true, select: [2] }],
    [["a.torrent", "--bind", "10.8.0.2"], { bind: "10.8.0.2" }],
    [["a.torrent", "--bind", "[fd00::2]"], { bind: "fd00::2" }],
    [["a.torrent", "--no-pex"], { pex: false }],
    [["a.torrent", "--dht-bootstrap", "127.0.0.1:6881", "--dht-bootstrap", "[::1]:7000"], {
      dhtBootstrap: ["127.0.0.1:6881", "[::1]:7000"],
    }],
    [["a.torrent", "--dht-state", "/tmp/d.json"], { dhtState: "/tmp/d.json" }],
    [["a.torrent", "--metadata-timeout", "2m"], { metadataTimeoutMs: 120_000 }],
    [["seed", "a.torrent", "--dir", "d", "--no-dht", "--no-pex"], { command: "seed", dht: false, pex: false }],
    [["a.torrent", "--out=dl"], { out: "dl" }],
    [["a.torrent", "--select", "3-5,1,4"], { select: [1, 3, 4, 5] }],
    [
      ["a.torrent", "--peer", "127.0.0.1:6881", "--peer", "[::1]:51413"],
      { peers: [{ host: "127.0.0.1", port: 6881 }, { host: "::1", port: 51413 }] },
    ],
    [
      ["a.torrent", "-t", "http://a/announce,udp://b:1", "--tracker", "https://c/x"],
      { trackers: ["http://a/announce", "udp://b:1", "https://c/x"], announceTiers: [] },
    ],
    [["a.torrent", "--max-peers", "7"], { maxPeers: 7 }],
    [["a.torrent", "--max-peers", String(MAX_PEERS_PER_TORRENT)], { maxPeers: MAX_PEERS_PER_TORRENT }],
    [["a.torrent", "-p", "0"], { port: 0 }],
    [["a.torrent", "--port", "65535"], { port: 65535 }],
    [["a.torrent", "--timeout", "30m"], { timeoutMs: 1_800_000 }],
    [["a.torrent", "--stall-timeout", "2s"], { stallTimeoutMs: 2_000 }],
    [["a.torrent", "--json", "--quiet", "--debug"], { json: true, quiet: true, debug: true }],
    [["a.torrent", "-q"], { quiet: true }],
    [["a.torrent", "--check", "--sequential"], { check: true, sequential: true }],
    [["a.torrent", "--seed"], { seed: true }],
    [["a.torrent", "--seed-ratio", "1.5"], { seedRatio: 1.5 }],
    [["a.torrent", "--seed-ratio", "2"], { seedRatio: 2 }],
    [["a.torrent", "--seed-time", "10m"], { seedTimeMs: 600_000 }],
    [["a.torrent", "--max-download-rate", "10M"], { maxDownloadRate: 10 * 1024 * 1024 }],
    [["a.torrent", "--max-upload-rate", "1M"], { maxUploadRate: 1024 * 1024 }],
    [["a.torrent", "--no-dht", "--no-pex"], { command: "get" }],
    [["a.torrent", "-w", "http://w/a", "--web-seed", "https://v/"], { webSeeds: ["http://w/a", "https://v/"] }],
    [["a.torrent", "-qo", "d"], { quiet: true, out: "d" }],
    [["--", "-odd-name.torrent"], { source: "-odd-name.torrent" }],
    [["magnet:?xt=urn:btih:" + "a".repeat(40)], { command: "get", source: "magnet:?xt=urn:btih:" + "a".repeat(40) }],
    // a word far from every command is a source
    [["ubuntu"], { command: "get", source: "ubuntu" }],
  ]);
});

Deno.test("parseCli() reads the other commands' flags", async (t) => {
  await checkRows(t, [
    [["info", "a.torrent"], { command: "info", source: "a.torrent", json: false }],
    [["info", "a.torrent", "--json"], { command: "info", json: true }],
    [["magnet", "a.torrent"], { command: "magnet", source: "a.torrent" }],
    [["verify", "a.torrent", "--dir", "d"], { command: "verify", out: "d" }],
    [["verify", "a.torrent", "-d", "d"], { command: "verify", out: "d" }],
    [["completion", "bash"], { command: "completion", source: "bash" }],
    [["completion", "fish", "--quiet"], { command: "completion", source: "fish" }],
    [
      [
        "seed",
        "a.torrent",
        "--dir",
        "d",
        "--peer",
        "127.0.0.1:1",
        "-t",
        "udp://x:1",
        "--max-peers",
        "3",
        "-p",
        "6881",
        "--seed-ratio",
        "0.5",
        "--seed-time",
        "1h",
        "--max-upload-rate",
        "500K",
        "--check",
      ],
      {
        command: "seed",
        out: "d",
        peers: [{ host: "127.0.0.1", port: 1 }],
        trackers: ["udp://x:1"],
        maxPeers: 3,
        port: 6881,
        seedRatio: 0.5,
        seedTimeMs: 3_600_000,
        maxUploadRate: 512_000,
        check: true,
      },
    ],
    [
      [
        "create",
        "data",
        "-o",
        "x.torrent",
        "-t",
        "http://a/,udp://b:1",
        "-t",
        "http://c/",
        "-w",
        "https://w/x",
        "--web-seed",
        "http://v/",
        "--piece-size",
        "256K",
        "--private",
        "--comment",
        "hi",
      ],
      {
        command: "create",
        source: "data",
        output: "x.torrent",
        trackers: [],
        announceTiers: [["http://a/", "udp://b:1"], ["http://c/"]],
        webSeeds: ["https://w/x", "http://v/"],
        pieceSize: 262_144,
        private: true,
        comment: "hi",
      },
    ],
    [["create", "data", "-o", "x.torrent", "--piece-size", "auto"], { pieceSize: undefined }],
    [["create", "data", "-o", "x.torrent", "--piece-size", "16K"], { pieceSize: 16_384 }],
    [["create", "data", "-o", "x.torrent", "--piece-size", "256M"], { pieceSize: 2 ** 28 }],
    [["create", "data", "-o", "x.torrent"], { output: "x.torrent", private: false, announceTiers: [] }],
    [["demo"], { command: "demo", source: undefined, size: undefined, leechers: undefined }],
    [["demo", "--size", "64M", "--leechers", "3", "-o", "keep"], { size: 64 * 1024 * 1024, leechers: 3, out: "keep" }],
    [["demo", "--leechers", "16"], { leechers: 16 }],
    [["--help"], { command: "help" }],
    [["-h"], { command: "help" }],
    [["help"], { command: "help" }],
    [["info", "a.torrent", "--help"], { command: "help" }],
    [["--version"], { command: "version" }],
    [["-V"], { command: "version" }],
    [["version"], { command: "version" }],
    [["a.torrent", "--version"], { command: "version" }],
    [["--help", "--json"], { command: "help", json: true }],
  ]);
});

Deno.test("parseCli() throws UsageError for bad command lines", async (t) => {
  const rows: string[][] = [
    // unknown flags
    ["a.torrent", "--bogus"],
    ["a.torrent", "-Z"],
    ["a.torrent", "--outdir", "x"],
    ["--help", "--bogus"],
    // a boolean flag given a value, a string flag given none
    ["a.torrent", "--json=false"],
    ["a.torrent", "-o"],
    ["a.torrent", "--peer"],
    // flags a command does not take
    ["info", "a.torrent", "-o", "x"],
    ["info", "a.torrent", "--peer", "127.0.0.1:1"],
    ["magnet", "a.torrent", "--select", "1"],
    ["verify", "a.torrent", "--dir", "d", "--peer", "127.0.0.1:1"],
    // DHT flags: only get and seed take them; a bootstrap node is HOST:PORT; --no-dht with DHT settings
    ["info", "a.torrent", "--no-dht"],
    ["a.torrent", "--dht-bootstrap", "router"],
    ["a.torrent", "--dht-bootstrap", "router:0"],
    ["a.torrent", "--dht-bootstrap", "::1:6881"],
    ["a.torrent", "--no-dht", "--dht-bootstrap", "127.0.0.1:6881"],
    ["a.torrent", "--no-dht", "--dht-state", "x.json"],
    ["a.torrent", "--metadata-timeout", "0s"],
    ["a.torrent", "--stdout", "--json"],
    ["a.torrent", "--bind", "vpn0"],
    ["a.torrent", "--bind", "300.1.1.1"],
    ["info", "a.torrent", "--stdout"],
    ["seed", "a.torrent", "--dir", "d", "--select", "1"],
    ["seed", "a.torrent", "--dir", "d", "-o", "x"],
    ["create", "data", "-o", "x.torrent", "--peer", "127.0.0.1:1"],
    ["create", "data", "-o", "x.torrent", "--select", "1"],
    ["demo", "--peer", "127.0.0.1:1"],
    ["a.torrent", "-o", "d", "-d", "e"],
    ["verify", "a.torrent", "--out", "d", "--dir", "d"],
    ["create", "data", "-o", "x.torrent", "-d", "d"],
    ["demo", "-d", "d"],
    ["a.torrent", "--piece-size", "256K"],
    ["a.torrent", "--private"],
    ["a.torrent", "--web-seed", "ftp://w/"],
    ["info", "a.torrent", "--web-seed", "http://w/"],
    ["a.torrent", "--comment", "c"],
    ["a.torrent", "--size", "1M"],
    ["a.torrent", "--leechers", "2"],
    // missing and extra arguments
    [],
    ["get"],
    ["info"],
    ["magnet"],
    ["verify"],
    ["create", "data"],
    ["completion"],
    ["completion", "tcsh"],
    ["completion", "bash", "zsh"],
    ["completion", "bash", "-o", "x"],
    ["create"],
    ["a.torrent", "b.torrent"],
    ["info", "a.torrent", "b.torrent"],
    ["demo", "extra"],
    // bad values
    ["a.torrent", "--port", "65536"],
    ["a.torrent", "--port", "-1"],
    ["a.torrent", "--port", "1e3"],
    ["a.torrent", "--port", "80a"],
    ["a.torrent", "--port", ""],
    ["a.torrent", "--max-peers", "0"],
    ["a.torrent", "--max-peers", String(MAX_PEERS_PER_TORRENT + 1)],
    ["a.torrent", "--max-peers", "1.5"],
    ["a.torrent", "--timeout", "soon"],
    ["a.torrent", "--timeout", ""],
    ["a.torrent", "--timeout", "5mm"],
    ["a.torrent", "--timeout", "-5s"],
    ["a.torrent", "--timeout", "1w"],
    ["a.torrent", "--stall-timeout", "1h-1m"],
    ["a.torrent", "--seed-time", "x"],
    ["a.torrent", "--seed-ratio", "1e3"],
    ["a.torrent", "--seed-ratio", ".5"],
    ["a.torrent", "--seed-ratio", "-1"],
    ["a.torrent", "--seed-ratio", "many"],
    ["a.torrent", "--max-download-rate", "fast"],
    ["a.torrent", "--max-download-rate", "-1"],
    ["a.torrent", "--max-upload-rate", "1e3"],
    ["a.torrent", "--max-upload-rate", "99999999999T"],
    ["a.torrent", "--peer", "127.0.0.1"],
    ["a.torrent", "--peer", "127.0.0.1:0"],
    ["a.torrent", "--peer", "127.0.0.1:65536"],
    ["a.torrent", "--peer", ":6881"],
    ["a.torrent", "--peer", "::1:6881"],
    ["a.torrent", "--peer", "bad host:1"],
    ["a.torrent", "--tracker", "ftp://x/"],
    ["a.torrent", "--tracker", "tracker.example:80"],
    ["a.torrent", "--tracker", "http://a/,"],
    ["a.torrent", "--tracker", "http://a b/"],
    ["a.torrent", "--select", "0"],
    ["a.torrent", "--select", "3-1"],
    ["a.torrent", "--select", "1,,2"],
    ["a.torrent", "--select", ""],
    ["a.torrent", "--select", "x"],
    ["a.torrent", "--select", "1-"],
    ["a.torrent", "--select", "-2"],
    ["a.torrent", "--select", "1-1000002"],
    ["create", "d", "-o", "x.torrent", "--piece-size", "15K"],
    ["create", "d", "-o", "x.torrent", "--piece-size", "8K"],
    ["create", "d", "-o", "x.torrent", "--piece-size", "48K"],
    ["create", "d", "-o", "x.torrent", "--piece-size", "512M"],
    ["create", "d", "-o", "x.torrent", "--piece-size", "big"],
    ["create", "d", "-o", "x.torrent", "-w", "ftp://w/"],
    ["create", "d", "-o", "x.torrent", "-t", "gopher://t/"],
    ["demo", "--leechers", "0"],
    ["demo", "--leechers", "17"],
    ["demo", "--size", "lots"],
  ];
  for (const argv of rows) {
    await t.step(JSON.stringify(argv), () => {
      const e = assertThrows(() => parseCli(argv), UsageError);
      assertEquals(e.name, "UsageError");
      assertEquals(e.message.length > 0, true);
    });
  }
});

Deno.test("parseCli() names the offending flag or value in its message", async (t) => {
  const rows: [string[], RegExp][] = [
    [["a.torrent", "--bogus"], /--bogus/],
    [["info", "a.torrent", "-o", "x"], /info does not take --out/],
    [["seed", "a.torrent", "--dir", "d", "--select", "1"], /seed does not take --select/],
    [["a.torrent", "--port", "65536"], /--port.*65536/],
    [["a.torrent", "--timeout", "soon"], /--timeout.*soon/],
    [["a.torrent", "--peer", "127.0.0.1"], /--peer.*127\.0\.0\.1/],
    [["a.torrent", "--select", "0"], /--select/],
    [["seed", "a.torrent", "-o", "d", "--dir", "e"], /-o\/--out and -d\/--dir/],
    [["completion", "tcsh"], /tcsh.*bash, zsh or fish/],
    [["create", "data"], /-o/],
    [[], /torrent/i],
  ];
  for (const [argv, re] of rows) {
    await t.step(JSON.stringify(argv), () => {
      const e = assertThrows(() => parseCli(argv), UsageError);
      assertEquals(re.test(e.message), true, `${re} should match ${JSON.stringify(e.message)}`);
    });
  }
});

Deno.test("parseCli() takes the data folder of get, seed and verify as -o/--out or -d/--dir, default .", async (t) => {
  const rows: [string[], string][] = [];
  for (const cmd of ["get", "seed", "verify"]) {
    rows.push([[cmd, "a.torrent"], "."]);
    for (const flag of ["-o", "--out", "-d", "--dir"]) rows.push([[cmd, "a.torrent", flag, "dl"], "dl"]);
    rows.push([[cmd, "a.torrent", "--dir=dl"], "dl"]);
  }
  rows.push([["a.torrent", "-d", "dl"], "dl"]);
  for (const [argv, out] of rows) {
    await t.step(JSON.stringify(argv), () => assertEquals(parseCli(argv).out, out));
  }
});

Deno.test("parseCli() takes - (standard input) as the torrent of get, info, seed, verify and magnet", async (t) => {
  for (const cmd of ["get", "info", "seed", "verify", "magnet"]) {
    await t.step(
      cmd,
      () => assertEquals(pick(parseCli([cmd, "-"]), ["command", "source"]), { command: cmd, source: "-" }),
    );
  }
  assertEquals(pick(parseCli(["-", "-o", "dl"]), ["command", "source", "out"]), {
    command: "get",
    source: "-",
    out: "dl",
  });
});

Deno.test("parseCli() reports a mistyped command, naming the nearest one, instead of blaming the next word", async (t) => {
  const none = { exists: () => false };
  const rows: [string[], string][] = [
    [["inf", "x.torrent"], 'Unknown command "inf"; did you mean "info"?'],
    [["sed", "x.torrent", "-d", "dl"], 'Unknown command "sed"; did you mean "seed"?'],
    [["verfy", "x.torrent"], 'Unknown command "verfy"; did you mean "verify"?'],
    [["magent", "x.torrent"], 'Unknown command "magent"; did you mean "magnet"?'],
    [["dmeo"], 'Unknown command "dmeo"; did you mean "demo"?'],
    [["seeds"], 'Unknown command "seeds"; did you mean "seed"?'],
    [["completon", "bash"], 'Unknown command "completon"; did you mean "completion"?'],
  ];
  for (const [argv, message] of rows) {
    await t.step(JSON.stringify(argv), () => {
      const e = assertThrows(() => parseCli(argv, none), UsageError);
      assertEquals(e.message, message);
    });
  }
});

Deno.test("parseCli() reads a first word as the torrent when it is a path, URL, magnet, hash or an existing file", async (t) => {
  const rows: [string[], boolean][] = [
    [["info.torrent"], false], // has a dot
    [["./inf"], false],
    [["dl/seed"], false],
    [["http://h/inf"], false],
    [["magnet:?xt=urn:btih:" + "a".repeat(40)], false],
    [["a".repeat(40)], false],
    [["inf"], true], // an existing file called "inf" is fetched
    [["seeds"], true],
    [["xyzzy"], false], // near no command
  ];
  for (const [argv, exists] of rows) {
    await t.step(`${JSON.stringify(argv)}${exists ? " (exists)" : ""}`, () => {
      const o = parseCli(argv, { exists: () => exists });
      assertEquals(pick(o, ["command", "source"]), { command: "get", source: argv[0] });
    });
  }
});

Deno.test("parseCli() suggests the nearest flag (at most 2 edits away) for an unknown one", async (t) => {
  const rows: [string[], string][] = [
    [["a.torrent", "--ouput", "x"], "Unknown option '--ouput'; did you mean '--out'?"],
    [["a.torrent", "--seletc", "1"], "Unknown option '--seletc'; did you mean '--select'?"],
    [["a.torrent", "--sed"], "Unknown option '--sed'; did you mean '--seed'?"],
    [["a.torrent", "--no-dth"], "Unknown option '--no-dth'; did you mean '--no-dht'?"],
    [["a.torrent", "--jsno"], "Unknown option '--jsno'; did you mean '--json'?"],
    [["a.torrent", "--bogus"], "Unknown option '--bogus'"],
    [["a.torrent", "-Z"], "Unknown option '-Z'"],
  ];
  for (const [argv, message] of rows) {
    await t.step(
      JSON.stringify(argv),
      () => assertEquals(assertThrows(() => parseCli(argv), UsageError).message, message),
    );
  }
});

Deno.test("editDistance() and suggest() measure edits and pick the nearest name within 2", async (t) => {
  const rows: [string, string, number][] = [
    ["", "", 0],
    ["out", "out", 0],
    ["ouput", "out", 2],
    ["inf", "info", 1],
    ["kitten", "sitting", 3],
    ["", "abc", 3],
  ];
  for (const [a, b, d] of rows) {
    await t.step(`${a} ${b}`, () => {
      assertEquals(editDistance(a, b), d);
      assertEquals(editDistance(b, a), d);
    });
  }
  assertEquals(suggest("ouput", Object.keys(FLAGS)), "out");
  assertEquals(suggest("xx", ["get"]), undefined, "as many edits as letters is no suggestion");
  assertEquals(suggest("SEED", ["seed"]), "seed");
});

Deno.test("parseSelect() reads indexes and ranges into sorted distinct numbers", async (t) => {
  const rows: [string, number[]][] = [
    ["1", [1]],
    ["3-5,1,4", [1, 3, 4, 5]],
    ["2,2,2", [2]],
    [" 2 - 4 ", [2, 3, 4]],
    ["5-5", [5]],
    ["10,9-10,1", [1, 9, 10]],
    ["1-1000001", Array.from({ length: 1_000_001 }, (_, i) => i + 1)],
  ];
  for (const [text, want] of rows) {
    await t.step(text.length > 20 ? text.slice(0, 20) : text, () => assertEquals(parseSelect(text), want));
  }
  for (const bad of ["", "0", "0-3", "3-1", "a", "1;2", "1-2-3", "1.5", "+1", "1,", ",1", "1-1000002"]) {
    await t.step(`refuses ${JSON.stringify(bad)}`, () => {
      assertThrows(() => parseSelect(bad), UsageError);
    });
  }
});

Deno.test("parseDuration() reads units, bare seconds and compound durations", async (t) => {
  const rows: [string, number][] = [
    ["45", 45_000],
    ["90s", 90_000],
    ["1.5s", 1_500],
    ["250ms", 250],
    ["10m", 600_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["1h30m", 5_400_000],
    ["1m30s", 90_000],
    ["2M", 120_000],
    [" 5s ", 5_000],
    ["0", 0],
  ];
  for (const [text, ms] of rows) await t.step(JSON.stringify(text), () => assertEquals(parseDuration(text, "--t"), ms));
  for (const bad of ["", "s", "5x", "1w", "-1s", "5mm", "1h-1m", "1e3", "Infinity", "1 h", "1..5s", ".5s"]) {
    await t.step(`refuses ${JSON.stringify(bad)}`, () => {
      const e = assertThrows(() => parseDuration(bad, "--timeout"), UsageError);
      assertEquals(e.message.startsWith("--timeout:"), true, e.message);
    });
  }
});

Deno.test("parseSize() reads K, M, G, T (powers of 1024) with optional B or iB", async (t) => {
  const rows: [string, number][] = [
    ["0", 0],
    ["12", 12],
    ["12b", 12],
    ["1K", 1024],
    ["1k", 1024],
    ["1KB", 1024],
    ["1KiB", 1024],
    ["1kib", 1024],
    ["256K", 262_144],
    ["1.5M", 1_572_864],
    ["1 M", 1_048_576],
    ["2G", 2 * 1024 ** 3],
    ["1T", 1024 ** 4],
  ];
  for (const [text, n] of rows) await t.step(JSON.stringify(text), () => assertEquals(parseSize(text, "--s"), n));
  for (const bad of ["", "K", "-1", "1e3", "Infinity", "1P", "1.M", "ten", "1KK", "99999999999T"]) {
    await t.step(`refuses ${JSON.stringify(bad)}`, () => {
      const e = assertThrows(() => parseSize(bad, "--max-upload-rate"), UsageError);
      assertEquals(e.message.startsWith("--max-upload-rate:"), true, e.message);
    });
  }
});
