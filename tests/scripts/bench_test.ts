/**
 * scripts/bench.ts: the pure parts of the benchmark (options and per-scenario defaults, the web seed payload's files,
 * btfetch's and libtorrent's DHT figures, medians with runs that did not complete, ratios, the nginx config, the
 * table). The scenarios themselves run only on demand (`deno task bench`).
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import {
  boundMs,
  btfetchDhtFigures,
  DEFAULT_SIZES,
  formatTable,
  libtorrentDhtFigures,
  median,
  medianFigures,
  nginxConfig,
  parseBenchArgs,
  parseEvents,
  ratiosOf,
  type Sample,
  type ScenarioResult,
  seedRow,
  sizeFor,
  summarise,
  webseedFiles,
} from "../../scripts/bench.ts";

const MiB = 1 << 20;

Deno.test("parseBenchArgs() leaves size, timeout and workdir to each scenario unless given", async (t) => {
  const cases = [
    { args: ["--scenario", "dht"], size: 64 * MiB, bound: 60_000, workdir: undefined },
    { args: ["--scenario", "webseed"], size: 512 * MiB, bound: 600_000, workdir: undefined },
    { args: ["--scenario", "fetch"], size: 1 << 30, bound: 600_000, workdir: undefined },
    {
      args: ["--scenario", "dht", "--size", "16M", "--timeout", "30"],
      size: 16 * MiB,
      bound: 30_000,
      workdir: undefined,
    },
    { args: ["--scenario", "webseed", "--workdir", "/var/tmp"], size: 512 * MiB, bound: 600_000, workdir: "/var/tmp" },
  ];
  for (const c of cases) {
    await t.step(c.args.join(" "), () => {
      const o = parseBenchArgs(c.args);
      const s = o.scenarios[0];
      assertEquals([sizeFor(o, s), boundMs(o, s), o.workdir], [c.size, c.bound, c.workdir]);
    });
  }
});

Deno.test("parseBenchArgs() knows dht and webseed, and all runs every scenario that has a default size", () => {
  assertEquals(parseBenchArgs(["--scenario", "dht,webseed"]).scenarios, ["dht", "webseed"]);
  assertEquals(parseBenchArgs(["--scenario", "all"]).scenarios, Object.keys(DEFAULT_SIZES));
});

Deno.test("parseBenchArgs() takes the seed scenario's downloaders: both by default, or one", () => {
  assertEquals(parseBenchArgs(["--scenario", "seed"]).downloaders, ["aria2c", "libtorrent"]);
  assertEquals(parseBenchArgs(["--downloader", "libtorrent"]).downloaders, ["libtorrent"]);
  assertEquals(parseBenchArgs(["--downloader", "aria2c,aria2c"]).downloaders, ["aria2c"]);
});

Deno.test("ratiosOf() on seed rows names both rows, one ratio per downloader", () => {
  const row = (client: string, wallS: number) => summarise(client, "", [{ wallS, cpuS: wallS, rssMiB: 10 }], MiB);
  const rows = ["aria2c", "libtorrent"].flatMap((
    d,
  ) => [row(seedRow("btfetch", d), 2), row(seedRow("libtorrent", d), 4)]);
  const ratios = ["aria2c", "libtorrent"].flatMap((d) =>
    ratiosOf(rows, seedRow("btfetch", d), [seedRow("libtorrent", d)]) ?? []
  );
  assertEquals(ratios.map((r) => [r.me, r.vs, r.wall]), [
    ["btfetch seed -> aria2c", "libtorrent seed -> aria2c", 0.5],
    ["btfetch seed -> libtorrent", "libtorrent seed -> libtorrent", 0.5],
  ]);
  const table = formatTable({ scenario: "seed", title: "seed", size: MiB, clients: rows, ratios, notes: [] });
  assert(table.includes("btfetch seed -> libtorrent / libtorrent seed -> libtorrent: wall x0.50"), table);
});

Deno.test("parseBenchArgs() refuses a bad scenario or timeout", async (t) => {
  for (const args of [["--scenario", "dhtx"], ["--timeout", "0"], ["--timeout", "soon"], ["--downloader", "curl"]]) {
    await t.step(args.join(" "), () => {
      let threw = false;
      try {
        parseBenchArgs(args);
      } catch {
        threw = true;
      }
      assert(threw, `${args.join(" ")} was accepted`);
    });
  }
});

Deno.test("webseedFiles() splits the total into a handful of odd-sized files that sum to it", async (t) => {
  for (const total of [16 * MiB, 512 * MiB, 64 * MiB + 3]) {
    await t.step(`${total} bytes`, () => {
      const files = webseedFiles(total);
      assertEquals(files.reduce((n, [, b]) => n + b, 0), total);
      assert(files.length >= 4 && files.length <= 6, `${files.length} files`);
      for (const [path, bytes] of files.slice(0, -1)) assert(bytes % 2 === 1, `${path} has an even size ${bytes}`);
      assertEquals(new Set(files.map(([p]) => p)).size, files.length);
    });
  }
});

Deno.test("btfetchDhtFigures() reads the lookup, metadata, first DHT peer and completion from btfetch's events", () => {
  const stdout = [
    `{"event":"metadata","name":"p.bin","t":90}`,
    `{"event":"listening","port":45111,"t":129}`,
    `{"event":"peer","action":"connected","address":"127.0.0.1:1","source":"manual","t":200}`,
    `{"event":"peer","action":"connected","address":"127.0.0.1:2","source":"dht","t":244}`,
    `{"event":"dht","nodes":12,"good":12,"peers":1,"queries":10,"answered":8,"announced":true,"t":247}`,
    `{"event":"dht","nodes":12,"good":12,"peers":1,"queries":4,"answered":4,"announced":true,"t":900}`,
    `not json`,
    `{"event":"complete","verified":16777216,"elapsed_ms":415,"t":419}`,
  ].join("\n");
  assertEquals(btfetchDhtFigures(parseEvents(stdout)), {
    metadata: 90,
    lookup: 247,
    queries: 10,
    answered: 8,
    "dht-peer": 244,
    complete: 419,
  });
  assertEquals(btfetchDhtFigures(parseEvents(`{"event":"listening","t":3}\n{"event":"dht"}`)), {});
});

Deno.test("libtorrentDhtFigures() reads the helper's AT lines, the first of each", () => {
  const stdout = "AT dht-up 99\nAT dht-peers 110\nAT dht-peers 500\nAT metadata 110\nAT complete 174\nDONE\n";
  assertEquals(libtorrentDhtFigures(stdout), { "dht-up": 99, "dht-peers": 110, metadata: 110, complete: 174 });
});

Deno.test("medianFigures() takes each figure's median over the runs that have it", () => {
  const runs: Array<Record<string, number>> = [{ lookup: 100, queries: 9 }, { lookup: 300, queries: 11 }, {
    queries: 10,
  }];
  assertEquals(medianFigures(runs, ["lookup", "queries", "complete"]), "lookup 200 ms, queries 10");
});

Deno.test("summarise() counts runs that did not complete and keeps them in the median at their stopped time", () => {
  const s = (wallS: number, incomplete = false): Sample => ({ wallS, cpuS: 1, rssMiB: 50, incomplete });
  const row = summarise("libtorrent", "cmd", [s(0.7), s(60.1, true), s(1.2), s(60.0, true), s(0.9)], 64 * MiB);
  assertEquals([row.median.wallS, row.incomplete], [1.2, 2]);
  assertEquals(median([]), NaN);
});

Deno.test("ratiosOf() gives btfetch's ratio to each reference, the fastest reference first", () => {
  const row = (client: string, wallS: number) => summarise(client, "", [{ wallS, cpuS: wallS, rssMiB: 10 }], MiB);
  const rows = [row("btfetch", 2), row("libtorrent", 1), row("aria2c", 4)];
  assertEquals(ratiosOf(rows, "btfetch", ["libtorrent", "aria2c"])?.map((r) => [r.vs, r.wall]), [
    ["libtorrent", 2],
    ["aria2c", 0.5],
  ]);
  assertEquals(ratiosOf(rows, "btfetch", ["mktorrent"]), undefined);
});

Deno.test("formatTable() shows how many runs completed within the bound and marks the others", () => {
  const r: ScenarioResult = {
    scenario: "dht",
    title: "dht",
    size: 64 * MiB,
    boundS: 60,
    clients: [summarise("libtorrent", "cmd", [{ wallS: 0.7, cpuS: 1, rssMiB: 50 }, {
      wallS: 60.02,
      cpuS: 1,
      rssMiB: 50,
      incomplete: true,
    }], 64 * MiB)],
    notes: [],
  };
  const table = formatTable(r);
  assert(/done in 60 s/.test(table), table);
  assert(/\b1\/2\b/.test(table) && /0\.70 >60\.02/.test(table), table);
});

Deno.test("nginxConfig() serves the root on loopback with sendfile, temp paths under the prefix", () => {
  const conf = nginxConfig({ prefix: "/w/nginx", root: "/w/webseed", port: 8080, asRoot: false });
  for (const want of ["listen 127.0.0.1:8080;", "root /w/webseed;", "sendfile on;", "pid /w/nginx/nginx.pid;"]) {
    assert(conf.includes(want), `no "${want}" in\n${conf}`);
  }
  assert(!conf.includes("user "), conf);
  assertEquals(conf.match(/_temp_path \/w\/nginx\//g)?.length, 5);
  assert(nginxConfig({ prefix: "/p", root: "/r", port: 1, asRoot: true }).startsWith("user root;"));
});

Deno.test("parseBenchArgs() measures a bundle of btfetch unless --from-source asks for deno run main.ts", () => {
  assertEquals(parseBenchArgs([]).fromSource, false);
  assertEquals(parseBenchArgs(["--from-source"]).fromSource, true);
});
