/**
 * `deno task bench`: btfetch side by side with reference clients on loopback, on a generated payload.
 *
 * ```
 * deno run -A scripts/bench.ts [--scenario fetch|seed|create|dht|webseed|all] [--size 1G] [--rounds 3]
 *                              [--piece-size 1M] [--seeders 1] [--clients btfetch,libtorrent,aria2c]
 *                              [--downloader aria2c|libtorrent|both] [--workdir DIR] [--timeout SECONDS] [--json]
 *                              [--keep] [--from-source]
 * ```
 *
 * Scenarios (each a function in {@link SCENARIOS}; add one there):
 * - `fetch`: ONE python3-libtorrent seeder (`--seeders 1`, the default); downloaders take turns, round after round,
 *   each into a fresh empty folder: btfetch (`dist/btfetch-<host target>` if built, else a bundle of this
 *   checkout made for the run, the binary's stand-in, or `deno run -A main.ts` with `--from-source`; `BTFETCH_BIN`
 *   overrides), python3-libtorrent (`scripts/_bench_lt.py --mode leech`, which exits the moment it has
 *   every piece) and aria2c (`--seed-time=0`, DHT/LPD/PEX off, `--file-allocation=none`). btfetch and libtorrent
 *   connect to the seeder; aria2c has no "connect to this peer" option, so the seeder connects to it once it listens.
 *   With `--seeders N` (issue 11's table: `--seeders 4 --piece-size 256K`), N seeders, python3-libtorrent and aria2c
 *   in turn, libtorrent first (4: two of each), all started side by side and checked and seeding before the first
 *   round: libtorrent as above, aria2c checking and seeding a hard link of the payload in a folder of its own
 *   (`--check-integrity=true --seed-ratio=0.0`, no upload limit). btfetch gets every seeder with a `--peer`, libtorrent
 *   with a `--connect`; aria2c gets a copy of the torrent (same info-hash) announcing to a loopback HTTP tracker this
 *   script serves, which answers with every seeder. After each run the seeders' upload counts (the helper's `STATS`
 *   command, aria2c's RPC) say which share of the bytes each one sent; the notes list them.
 * - `seed`: a seeder that takes turns, `btfetch seed` (`--no-dht`) vs a python3-libtorrent seeder (`_bench_lt.py --mode
 *   seed`: `high_performance_seed()`), each started afresh for every download, serves one downloader at a time. The
 *   downloaders (`--downloader aria2c|libtorrent|both`, default both; issue 11: "seeding 1 GiB to a libtorrent and to
 *   an aria2c downloader"): aria2c (as in `fetch`; it finds the seeder through a tiny loopback HTTP tracker this script
 *   serves, on a copy of the torrent with the same info-hash) and python3-libtorrent (`_bench_lt.py --mode leech
 *   --connect 127.0.0.1:<seeder port>`, libtorrent's `high_performance_seed()` preset as a downloader too, exits the
 *   moment it has every piece).
 *   Each round, each downloader in turn (rotated by round) fetches once from each seeder (their order alternating by
 *   round), each time into a fresh empty folder. Rows are "<seeder> seed -> <downloader>"; the ratios compare the two
 *   seeders per downloader. Wall is the downloader's; CPU and RSS the seeder's.
 * - `create`: `btfetch create` vs `mktorrent` (both 4 threads? each at its defaults) on the same payload.
 * - `dht`: magnet (`xt=` alone) to complete through the DHT alone. For every run a fresh loopback DHT of
 *   {@link DHT_NODES} python3-libtorrent sessions (`scripts/_lt_bench_dht.py --mode swarm`: DHT only, 127.0.0.1, told of
 *   each other, no public bootstrap), one of them seeding with libtorrent's `high_performance_seed()` preset and
 *   announced before the run starts; btfetch (`get MAGNET --dht-bootstrap 127.0.0.1:N --dht-state <fresh file>`) and a
 *   fresh python3-libtorrent downloader (`_lt_bench_dht.py --mode leech`, given the magnet and the same one node)
 *   alternate. A run that does not complete within the bound (`--timeout`, 60 s here) is counted at the bound in the
 *   median and reported. Each client runs once before the rounds, uncounted (a warm-up). btfetch's own clock (its JSON
 *   events) gives the lookup's figures.
 * - `webseed`: a multi-file torrent (a handful of files, odd sizes) whose `url-list` is ONE nginx on 127.0.0.1
 *   (`/usr/sbin/nginx`, Debian's nginx-light, run in the foreground with a config of its own: `sendfile on`, keep-alive,
 *   no access log), no peer at all: btfetch, python3-libtorrent (`_bench_lt.py --mode leech` with no peer:
 *   `high_performance_seed()`) and aria2c (the torrent alone) take turns, the order rotated each round.
 *
 * Measurement: wall time is the downloader's (or creator's) process lifetime, timed here. CPU seconds (user + sys)
 * and peak RSS come from GNU time (`/usr/bin/time -f "%e %U %S %M"`, `apt-get install time`) wrapped around the
 * process; without it, from polling `/proc/<pid>/stat` and `VmHWM` in `/proc/<pid>/status` every 50 ms (the last
 * sample before exit). In `seed`, the seeder's CPU is the `/proc/<pid>/stat` difference over the download and its
 * RSS its `VmHWM` (which includes checking the data before seeding). Every download is checked: size and SHA-1 of
 * each file. The payloads, torrents and downloads live in a temp folder under `--workdir` (default: /dev/shm when it
 * is a tmpfs with room for them, else /tmp), removed at the end unless `--keep`. On tmpfs each download is deleted
 * once checked; on a disk, when the scenario ends (see {@link leftovers}).
 * @module
 */
import { parseArgs } from "node:util";
import { createHash, randomFillSync } from "node:crypto";
import { bundleArgs, V8_FLAGS } from "./build.ts";
import { parseMetainfo } from "../lib/metainfo.ts";
import {
  aria2LoopbackArgs,
  freePort,
  haveLibtorrent,
  haveProgram,
  LineProcess,
  makeTorrentWithLibtorrent,
  startAria2Seeder,
  SYSTEM_PYTHON,
} from "../tests/interop/_peers.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const LT_HELPER = `${ROOT}/scripts/_bench_lt.py`;
const LT_DHT_HELPER = `${ROOT}/scripts/_lt_bench_dht.py`;
const GNU_TIME = "/usr/bin/time";
const NGINX = "/usr/sbin/nginx";
const MiB = 1 << 20;
const CLK_TCK = 100;

/** Sessions in the `dht` scenario's loopback DHT: a dozen, one of them the seeder. */
export const DHT_NODES = 12;

// ---------------------------------------------------------------------------------------------------------------
// Options

/** Parsed command-line options. */
export interface BenchOptions {
  scenarios: string[];
  /** Payload bytes; undefined: each scenario's own default ({@link DEFAULT_SIZES}). */
  size?: number;
  rounds: number;
  pieceSize: number;
  /** Seeders in the `fetch` scenario: python3-libtorrent and aria2c in turn, libtorrent first ({@link seederKinds}). */
  seeders: number;
  clients: string[];
  /** Downloaders of the `seed` scenario ({@link SEED_DOWNLOADERS}). */
  downloaders: string[];
  /** Where the temp folder goes; undefined: /dev/shm when it is a tmpfs with room, else /tmp. */
  workdir?: string;
  /** Bound on one client's run; undefined: each scenario's own ({@link DEFAULT_TIMEOUTS_S}). */
  timeoutMs?: number;
  json: boolean;
  keep: boolean;
  /** Run btfetch as `deno run main.ts` instead of a bundle made for the run. */
  fromSource: boolean;
}

/** Parses "256M", "1G", "1GiB", "512K", "1048576" into bytes. */
export function parseSize(s: string): number {
  const m = s.trim().match(/^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i);
  if (!m) throw new Error(`"${s}" is not a size (e.g. 256M, 1G)`);
  const mult = { "": 1, K: 1 << 10, M: 1 << 20, G: 1 << 30, T: 2 ** 40 }[m[2].toUpperCase() as "" | "K"]!;
  return Math.round(Number(m[1]) * mult);
}

/** The most seeders `--seeders` takes. */
export const MAX_SEEDERS = 16;

const ALL_SCENARIOS = ["fetch", "seed", "create", "dht", "webseed"];
const FETCH_CLIENTS = ["btfetch", "libtorrent", "aria2c"];
/** The downloaders the `seed` scenario can fetch with (`--downloader`, a comma list or `both`). */
export const SEED_DOWNLOADERS = ["aria2c", "libtorrent"];

/** Each scenario's payload size when `--size` is not given: the sizes its issue measures. */
export const DEFAULT_SIZES: Readonly<Record<string, number>> = {
  fetch: 1 << 30,
  seed: 1 << 30,
  create: 1 << 30,
  dht: 64 * MiB,
  webseed: 512 * MiB,
};

/** Each scenario's bound on one run (seconds) when `--timeout` is not given. In `dht` a run past it is "not done". */
export const DEFAULT_TIMEOUTS_S: Readonly<Record<string, number>> = {
  fetch: 600,
  seed: 600,
  create: 600,
  dht: 60,
  webseed: 600,
};

/** The payload size scenario `s` uses. */
export function sizeFor(o: BenchOptions, s: string): number {
  return o.size ?? DEFAULT_SIZES[s];
}

/** The bound on one run of scenario `s`, in ms. */
export function boundMs(o: BenchOptions, s: string): number {
  return o.timeoutMs ?? DEFAULT_TIMEOUTS_S[s] * 1000;
}

const USAGE = `Usage: deno run -A scripts/bench.ts [--scenario fetch|seed|create|dht|webseed|all] [--size 1G]
       [--rounds 3] [--piece-size 1M] [--seeders 1] [--clients btfetch,libtorrent,aria2c]
       [--downloader aria2c|libtorrent|both] [--workdir DIR] [--timeout SECONDS] [--json] [--keep] [--from-source]
btfetch runs as BTFETCH_BIN, else dist/btfetch-<host target> when built, else a bundle of this checkout made for the
run (as deno task bundle; the compiled binary's stand-in), or deno run main.ts with --from-source.
Defaults per scenario: --size fetch/seed/create 1G, dht 64M, webseed 512M; --timeout 600, dht 60 (a dht run past
it counts as not done); --workdir /dev/shm when it is a tmpfs with room, else /tmp. --seeders N (fetch only):
python3-libtorrent and aria2c seeders in turn, libtorrent first (4: two of each). --downloader (seed only, default
both): who downloads from each seeder (btfetch seed, libtorrent seed; --clients picks which of them run).`;

/** Parses argv. */
export function parseBenchArgs(args: string[]): BenchOptions {
  const { values: v } = parseArgs({
    args,
    options: {
      scenario: { type: "string", default: "fetch" },
      size: { type: "string" },
      rounds: { type: "string", default: "3" },
      "piece-size": { type: "string", default: "1M" },
      seeders: { type: "string", default: "1" },
      clients: { type: "string", default: FETCH_CLIENTS.join(",") },
      downloader: { type: "string", default: "both" },
      workdir: { type: "string" },
      timeout: { type: "string" },
      json: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      "from-source": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (v.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const scenarios = v.scenario === "all" ? ALL_SCENARIOS : v.scenario.split(",");
  for (const s of scenarios) if (!ALL_SCENARIOS.includes(s)) throw new Error(`unknown scenario "${s}"`);
  const clients = v.clients.split(",");
  for (const c of clients) if (!FETCH_CLIENTS.includes(c)) throw new Error(`unknown client "${c}"`);
  const downloaders = v.downloader === "both" ? SEED_DOWNLOADERS : [...new Set(v.downloader.split(","))];
  for (const d of downloaders) {
    if (!SEED_DOWNLOADERS.includes(d)) throw new Error(`--downloader: "${d}" is not aria2c, libtorrent or both`);
  }
  const rounds = Number(v.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: "${v.rounds}" is not a positive integer`);
  const pieceSize = parseSize(v["piece-size"]);
  if (pieceSize < 16384 || (pieceSize & (pieceSize - 1)) !== 0) {
    throw new Error("--piece-size must be a power of two of at least 16K");
  }
  const seeders = Number(v.seeders);
  if (!Number.isInteger(seeders) || seeders < 1 || seeders > MAX_SEEDERS) {
    throw new Error(`--seeders: "${v.seeders}" is not an integer from 1 to ${MAX_SEEDERS}`);
  }
  const timeoutS = v.timeout === undefined ? undefined : Number(v.timeout);
  if (timeoutS !== undefined && !(timeoutS > 0)) throw new Error(`--timeout: "${v.timeout}" is not a positive number`);
  return {
    scenarios,
    size: v.size === undefined ? undefined : parseSize(v.size),
    rounds,
    pieceSize,
    seeders,
    clients,
    downloaders,
    workdir: v.workdir,
    timeoutMs: timeoutS === undefined ? undefined : timeoutS * 1000,
    json: v.json,
    keep: v.keep,
    fromSource: v["from-source"],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Measuring a process

/** One measured run. */
export interface Sample {
  wallS: number;
  cpuS: number;
  rssMiB: number;
  /** The run did not complete within the scenario's bound (`dht` counts these instead of failing). */
  incomplete?: boolean;
}

/** A process run to completion under measurement. */
interface Measured extends Sample {
  code: number;
  /** Killed at `killAfterMs`. */
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** Reads utime+stime (seconds) of a live process from /proc, or undefined if it is gone. */
function procCpu(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15 of the whole line
  } catch {
    return undefined;
  }
}

/** Peak RSS (VmHWM) of a live process in MiB, or undefined if it is gone. */
function procPeakRss(pid: number): number | undefined {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmHWM:\s+(\d+) kB/m);
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

const haveGnuTime = () => haveProgram(GNU_TIME);

/** The live descendants of `pid`, deepest first (from the parent pids in /proc/<pid>/stat). */
function descendants(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      kids.set(ppid, [...kids.get(ppid) ?? [], Number(e.name)]);
    } catch {
      // gone meanwhile
    }
  }
  const walk = (p: number): number[] => (kids.get(p) ?? []).flatMap((k) => [...walk(k), k]);
  return walk(pid);
}

/**
 * SIGKILLs what `child` runs: its descendants when it has some (GNU time's child, so that time still reports the
 * killed process's CPU and RSS), else `child` itself.
 */
function killMeasured(child: Deno.ChildProcess): void {
  const ds = descendants(child.pid);
  for (const pid of ds.length > 0 ? ds : [child.pid]) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** How CPU and RSS are measured, for the report. */
export function measurementMethod(): string {
  return haveGnuTime()
    ? `GNU time (${GNU_TIME} -f "%e %U %S %M")`
    : "polling /proc/<pid>/stat and VmHWM every 50 ms (no /usr/bin/time; apt-get install time)";
}

/**
 * Runs `cmd args` to completion, measuring it. `onSpawn` gets the child (e.g. to feed it); `killAfterMs` bounds it.
 * With GNU time the measured process is time's child; wall time is measured here either way.
 */
async function measure(
  cmd: string,
  args: string[],
  opts: {
    cwd?: string;
    killAfterMs: number;
    onStart?: () => void | Promise<void>;
    /** Kills the process early when this settles (e.g. the peer it needs died). */
    abortOn?: Promise<unknown>;
  },
): Promise<Measured> {
  const useTime = haveGnuTime();
  const tfile = useTime ? await Deno.makeTempFile({ prefix: "btfetch-bench-time-" }) : "";
  const argv = useTime ? ["-f", "%e %U %S %M", "-o", tfile, "--", cmd, ...args] : args;
  const t0 = performance.now();
  const child = new Deno.Command(useTime ? GNU_TIME : cmd, {
    args: argv,
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killMeasured(child);
  }, opts.killAfterMs);
  let finished = false;
  opts.abortOn?.finally(() => {
    if (!finished) killMeasured(child);
  });
  let cpu = 0, rss = 0;
  let polling = !useTime;
  const poller = (async () => {
    while (polling) {
      const c = procCpu(child.pid), r = procPeakRss(child.pid);
      if (c !== undefined) cpu = c;
      if (r !== undefined) rss = r;
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  try {
    await opts.onStart?.();
  } catch (e) {
    killMeasured(child);
    await child.output();
    clearTimeout(timer);
    polling = false;
    await poller;
    throw e;
  }
  const out = await child.output();
  finished = true;
  const wallS = (performance.now() - t0) / 1000;
  clearTimeout(timer);
  polling = false;
  await poller;
  const dec = new TextDecoder();
  let code = out.code;
  if (useTime) {
    const lines = (await Deno.readTextFile(tfile)).trim().split("\n");
    await Deno.remove(tfile);
    const f = lines[lines.length - 1].trim().split(/\s+/).map(Number);
    if (f.length === 4 && f.every(Number.isFinite)) {
      cpu = f[1] + f[2];
      rss = f[3] / 1024;
    }
    if (lines.some((l) => l.startsWith("Command terminated by signal"))) code = code || 128;
  }
  const [stdout, stderr] = [dec.decode(out.stdout), dec.decode(out.stderr)];
  return { code, timedOut, stdout, stderr, wallS, cpuS: cpu, rssMiB: rss };
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** The bundle {@linkcode bundleBtfetch} made for this run, once made. */
let bundled: { cmd: string; pre: string[]; what: string } | null = null;

/**
 * The btfetch command line: `BTFETCH_BIN`, else the compiled binary for this host if built, else the bundle made for
 * this run ({@linkcode bundleBtfetch}), else `deno run` of the sources.
 */
export function btfetchArgv(): { cmd: string; pre: string[]; what: string } {
  const env = Deno.env.get("BTFETCH_BIN");
  if (env) return { cmd: env, pre: [], what: `BTFETCH_BIN=${env}` };
  const bin = compiledBinary();
  if (bin) return { cmd: bin, pre: [], what: bin };
  if (bundled) return bundled;
  return {
    cmd: Deno.execPath(),
    pre: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/main.ts`],
    what: "deno run -A main.ts",
  };
}

/** `dist/btfetch-<host target>` when `deno task build` made it, else null. */
function compiledBinary(): string | null {
  const arch = Deno.build.arch;
  const target = Deno.build.os === "linux"
    ? `${arch}-unknown-linux-gnu`
    : Deno.build.os === "darwin"
    ? `${arch}-apple-darwin`
    : `${arch}-pc-windows-msvc`;
  const bin = `${ROOT}/dist/btfetch-${target}${Deno.build.os === "windows" ? ".exe" : ""}`;
  try {
    if (Deno.statSync(bin).isFile) return bin;
  } catch {
    // not built
  }
  return null;
}

/**
 * What users run is the compiled binary, which carries the program as one transpiled graph; where it cannot be built
 * (no runtime base to download), the closest stand-in is the same graph as a bundle (`deno task bundle`), run with no
 * config. `deno run main.ts` pays per-module cache checks of ~100 TypeScript files at every start (40–100 ms of a
 * magnet run) that neither the binary nor the bundle pays. Bundles the sources into `work` and uses that for every
 * btfetch run, unless `BTFETCH_BIN` or a compiled binary is there, or `--from-source`; a failed bundle falls back to
 * `deno run` with a line saying so.
 */
async function bundleBtfetch(work: string, log: (s: string) => void): Promise<void> {
  if (Deno.env.get("BTFETCH_BIN") || compiledBinary()) return;
  const out = `${work}/btfetch-bundle`;
  const r = await new Deno.Command(Deno.execPath(), { args: bundleArgs(out), stdout: "null", stderr: "piped" })
    .output();
  if (!r.success) {
    log(`bench: deno bundle failed, measuring deno run -A main.ts: ${tail(new TextDecoder().decode(r.stderr), 1)}`);
    return;
  }
  bundled = {
    cmd: Deno.execPath(),
    // the V8 flags the executable is built with: the bundle stands in for it
    pre: [
      "run",
      "-A",
      "--unstable-net",
      "--no-config",
      "--cached-only",
      `--v8-flags=${V8_FLAGS.join(",")}`,
      `${out}/main.js`,
    ],
    what: `deno run -A --unstable-net --no-config --v8-flags=${
      V8_FLAGS.join(",")
    } main.js (this checkout bundled as deno task bundle does)`,
  };
  // starts first, so the runs that count find the modules and their code cache as a binary's later starts would: one
  // that loads the entry, and a `get` (of a file that is no torrent, which it refuses) that loads the download's code
  await new Deno.Command(bundled.cmd, { args: [...bundled.pre, "--version"], stdout: "null", stderr: "null" }).output();
  const junk = `${work}/not-a-torrent.torrent`;
  await Deno.writeTextFile(junk, "x");
  const warm = [...bundled.pre, "get", junk, "-o", `${work}/not-a-download`, "--no-dht", "--quiet"];
  await new Deno.Command(bundled.cmd, { args: warm, stdout: "null", stderr: "null" }).output();
  await Deno.remove(junk);
}

async function sha1OfFile(path: string): Promise<string> {
  const h = createHash("sha1");
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(4 * MiB);
  while (true) {
    const n = await f.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}

/** One file of a payload: its path under the payload's `dir` (the torrent's name first), size and SHA-1. */
interface PayloadFile {
  rel: string;
  size: number;
  sha1: string;
}

/** The generated payload and its reference torrent. */
interface Payload {
  /** The folder that holds `name` (a data folder for seeders, a web seed's document root). */
  dir: string;
  /** The torrent's name: the file of a single-file payload, the top folder of a multi-file one. */
  name: string;
  /** `dir/name`. */
  path: string;
  files: PayloadFile[];
  size: number;
  torrent: string;
  infoHash: string;
}

/** What to generate: files (paths under the torrent's name; one file named `name` alone for a single-file torrent). */
interface PayloadSpec {
  name: string;
  /** [path under `name`, bytes]; `[["", n]]` for a single-file payload. */
  files: Array<[string, number]>;
  pieceSize: number;
  urlList?: string[];
}

/**
 * Writes random bytes for each file of `spec` under `work/key` (computing their SHA-1 on the way) and a v1 torrent
 * made by libtorrent (`work/key.torrent`).
 */
async function makePayload(work: string, key: string, spec: PayloadSpec): Promise<Payload> {
  const dir = `${work}/${key}`;
  const buf = new Uint8Array(16 * MiB);
  const files: PayloadFile[] = [];
  for (const [sub, size] of spec.files) {
    const rel = sub === "" ? spec.name : `${spec.name}/${sub}`;
    const path = `${dir}/${rel}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    const h = createHash("sha1");
    using f = await Deno.open(path, { write: true, create: true, truncate: true });
    for (let left = size; left > 0;) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      const chunk = buf.subarray(0, n);
      h.update(chunk);
      for (let o = 0; o < n;) o += await f.write(chunk.subarray(o));
      left -= n;
    }
    files.push({ rel, size, sha1: h.digest("hex") });
  }
  const torrent = `${work}/${key}.torrent`;
  const path = `${dir}/${spec.name}`;
  const t = await makeTorrentWithLibtorrent({ path, out: torrent, pieceLength: spec.pieceSize, urlList: spec.urlList });
  const size = files.reduce((n, f) => n + f.size, 0);
  return { dir, name: spec.name, path, files, size, torrent, infoHash: t.infoHash };
}

/** Throws unless every file of the payload is under `root` with its size and SHA-1. */
async function verifyDownload(p: Payload, root: string, who: string): Promise<void> {
  for (const f of p.files) {
    const path = `${root}/${f.rel}`;
    let size = -1;
    try {
      size = (await Deno.stat(path)).size;
    } catch {
      throw new Error(`${who}: ${path} is missing`);
    }
    if (size !== f.size) throw new Error(`${who}: ${path} has ${size} bytes, expected ${f.size}`);
    const got = await sha1OfFile(path);
    if (got !== f.sha1) throw new Error(`${who}: ${path} has SHA-1 ${got}, expected ${f.sha1}`);
  }
}

/**
 * The files of the `webseed` scenario's multi-file payload of `total` bytes: a small text file, three large parts in
 * a subfolder and a tail, all odd sizes (so files start and end inside pieces), summing to `total`.
 */
export function webseedFiles(total: number): Array<[string, number]> {
  const shares: Array<[string, number]> = [
    ["README.txt", 0.0001],
    ["data/part-1.bin", 0.31],
    ["data/part-2.bin", 0.27],
    ["data/part-3.bin", 0.22],
  ];
  const files: Array<[string, number]> = shares.map(([p, share]) => [p, Math.floor(total * share) | 1]);
  const rest = total - files.reduce((n, [, b]) => n + b, 0);
  if (rest < 1) throw new Error(`a web seed payload of ${total} bytes is too small to split`);
  return [...files, ["extra/tail.bin", rest]];
}

/** Is `dir` on a tmpfs, and how many bytes are free there (`stat -f`)? Undefined when it cannot be told. */
async function fsInfo(dir: string): Promise<{ tmpfs: boolean; free: number } | undefined> {
  try {
    const r = await new Deno.Command("stat", { args: ["-f", "-c", "%T %a %S", dir], stdout: "piped", stderr: "null" })
      .output();
    const [type, blocks, blockSize] = new TextDecoder().decode(r.stdout).trim().split(" ");
    if (!r.success) return undefined;
    return { tmpfs: type === "tmpfs", free: Number(blocks) * Number(blockSize) };
  } catch {
    return undefined;
  }
}

/**
 * Downloads checked and done with: deleted at once on tmpfs; on a disk, kept until the scenario ends, since deleting
 * a GiB on a filesystem mounted with `discard` stalls the next round's writes for seconds, at random, whichever client
 * runs next.
 */
function leftovers(tmpfs: boolean): { add(dir: string): Promise<void>; clear(): Promise<void> } {
  const dirs: string[] = [];
  const remove = (d: string) => Deno.remove(d, { recursive: true }).catch(() => {});
  return {
    add: async (dir) => {
      if (tmpfs) await remove(dir);
      else dirs.push(dir);
    },
    clear: async () => {
      for (const d of dirs.splice(0)) await remove(d);
    },
  };
}

async function sync(): Promise<void> {
  await new Deno.Command("sync", { stdout: "null", stderr: "null" }).output();
}

/** Waits until something listens on 127.0.0.1:`port` (read from /proc/net/tcp, without connecting). */
async function waitListening(port: number, timeoutMs: number): Promise<void> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")} `;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const tcp = await Deno.readTextFile("/proc/net/tcp");
    if (tcp.split("\n").some((l) => l.includes(hex) && / 0A /.test(l) && l.indexOf(hex) < 20)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

/** The median of `xs` (the mean of the middle two for an even count); NaN for none. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function tail(s: string, n = 15): string {
  return s.trim().split("\n").slice(-n).join("\n");
}

/** aria2c options shared by every aria2c downloader here. */
function aria2Args(dir: string, port: number, timeoutS: number): string[] {
  return [
    ...aria2LoopbackArgs(dir, port),
    "--seed-time=0",
    "--file-allocation=none",
    "--check-integrity=false",
    "--bt-save-metadata=false",
    "--allow-overwrite=true",
    "--auto-file-renaming=false",
    `--bt-stop-timeout=${Math.ceil(timeoutS)}`,
    `--stop-with-process=${Deno.pid}`,
    "--summary-interval=0",
    "--show-console-readout=false",
    "--console-log-level=warn",
    "--no-conf=true",
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Scenarios

/** What a scenario measured for one client. */
export interface ClientResult {
  client: string;
  /** How it was run. */
  command: string;
  samples: Sample[];
  /** Medians over every run (one that did not complete counts at the time it was stopped). */
  median: Sample & { mibps: number };
  /** Runs that did not complete within the bound. */
  incomplete: number;
}

/** btfetch's medians over a reference client's: wall, CPU and peak RSS. */
export interface Ratio {
  /** btfetch's row ("btfetch", or in `seed` e.g. "btfetch seed -> aria2c"). */
  me: string;
  /** The reference's row. */
  vs: string;
  wall: number;
  cpu: number;
  rss: number;
}

/** What a scenario produced: rows, ratios, or why it was skipped. */
export interface ScenarioResult {
  scenario: string;
  title: string;
  /** Payload bytes. */
  size: number;
  /** Set when the scenario could not run (a command is unavailable). */
  skipped?: string;
  clients: ClientResult[];
  /** btfetch / each reference, the fastest reference (by median wall) first. */
  ratios?: Ratio[];
  /** Set when runs past this many seconds count as not done instead of failing the scenario (`dht`). */
  boundS?: number;
  notes: string[];
}

/** Shared state: options, the work folder, the payloads. */
interface Ctx {
  o: BenchOptions;
  work: string;
  /** The work folder is on tmpfs (downloads are deleted as soon as they are checked). */
  tmpfs: boolean;
  /** The single-file payload of `size` bytes and its torrent (made once, shared by the scenarios of that size). */
  single(size: number): Promise<Payload>;
  log: (s: string) => void;
}

/** A scenario: runs its rounds and returns its rows. Add new ones here. */
type Scenario = (ctx: Ctx) => Promise<ScenarioResult>;

/** One client's row: the medians of its samples. */
export function summarise(client: string, command: string, samples: Sample[], bytes: number): ClientResult {
  const wall = median(samples.map((s) => s.wallS));
  return {
    client,
    command,
    samples,
    median: {
      wallS: wall,
      cpuS: median(samples.map((s) => s.cpuS)),
      rssMiB: median(samples.map((s) => s.rssMiB)),
      mibps: bytes / MiB / wall,
    },
    incomplete: samples.filter((s) => s.incomplete).length,
  };
}

/** btfetch's (row `me`) ratios against each client of `vs` that has a row, the fastest (by median wall) first. */
export function ratiosOf(rows: ClientResult[], me: string, vs: string[]): Ratio[] | undefined {
  const a = rows.find((r) => r.client === me);
  const refs = rows.filter((r) => vs.includes(r.client)).sort((x, y) => x.median.wallS - y.median.wallS);
  if (!a || refs.length === 0) return undefined;
  return refs.map((b) => ({
    me,
    vs: b.client,
    wall: a.median.wallS / b.median.wallS,
    cpu: a.median.cpuS / b.median.cpuS,
    rss: a.median.rssMiB / b.median.rssMiB,
  }));
}

/** A long-running python3-libtorrent seeder of `payload` (helper seed mode). */
async function startLtSeeder(
  payload: Payload,
  torrent = payload.torrent,
): Promise<{ proc: LineProcess; port: number }> {
  const proc = new LineProcess("libtorrent-seeder", SYSTEM_PYTHON, [
    "-u",
    LT_HELPER,
    "--mode",
    "seed",
    "--torrent",
    torrent,
    "--dir",
    payload.dir,
  ]);
  try {
    const m = await proc.waitForLine(/^READY (\d+)$/, 300_000);
    return { proc, port: Number(m[1]) };
  } catch (e) {
    await proc.close();
    throw e;
  }
}

/** The clients of `wanted` that are installed; the others are named in `notes`. */
function installed(wanted: string[], notes: string[]): string[] {
  return wanted.filter((c) => {
    const missing = c === "libtorrent" ? !haveLibtorrent() : c === "aria2c" ? !haveProgram("aria2c") : false;
    if (missing) notes.push(`${c}: not installed, left out`);
    return !missing;
  });
}

/** The seeders of the `fetch` scenario for `--seeders n`: python3-libtorrent and aria2c in turn, libtorrent first. */
export function seederKinds(n: number): Array<"libtorrent" | "aria2c"> {
  return Array.from({ length: n }, (_, i) => i % 2 ? "aria2c" : "libtorrent");
}

/** A seeder of the `fetch` scenario, its data checked, seeding. */
interface FetchSeeder {
  /** Its client and its rank among the seeders of that client: "libtorrent 1", "aria2c 2". */
  name: string;
  port: number;
  proc: LineProcess;
  /** The payload bytes it has uploaded so far (libtorrent updates its count once a second). */
  uploaded(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Starts the `fetch` scenario's seeders of `payload` ({@link seederKinds}) side by side; resolves once every one has
 * checked its data and seeds. A libtorrent seeder is `_bench_lt.py --mode seed` (libtorrent's `high_performance_seed()`
 * preset) on the payload's folder; an aria2c seeder ({@link startAria2Seeder}: `--check-integrity`, only verified data
 * seeded, no upload limit, no stop) seeds a hard link of the payload in a folder of its own, since aria2c may write a
 * control file beside the data.
 */
async function startFetchSeeders(work: string, payload: Payload, n: number): Promise<FetchSeeder[]> {
  const kinds = seederKinds(n);
  const started = await Promise.allSettled(kinds.map(async (kind, i): Promise<FetchSeeder> => {
    const name = `${kind} ${kinds.slice(0, i + 1).filter((k) => k === kind).length}`;
    if (kind === "libtorrent") {
      const { proc, port } = await startLtSeeder(payload);
      let asked = 0;
      return {
        name,
        port,
        proc,
        uploaded: async () => {
          const tag = ++asked;
          await proc.tell(`STATS ${tag}`);
          return Number((await proc.waitForLine(new RegExp(`^STATS ${tag} (\\d+)$`), 10_000))[1]);
        },
        close: async () => void await proc.close(),
      };
    }
    const dir = `${work}/fetch-seed-${i + 1}`;
    await Deno.mkdir(dir, { recursive: true });
    try {
      await Deno.link(payload.path, `${dir}/${payload.name}`);
    } catch {
      await Deno.copyFile(payload.path, `${dir}/${payload.name}`); // another filesystem
    }
    const removeDir = () => Deno.remove(dir, { recursive: true }).catch(() => {});
    try {
      const s = await startAria2Seeder({
        torrent: payload.torrent,
        dataDir: dir,
        timeoutMs: 300_000,
        extraArgs: ["--stop=0"], // the last --stop wins: seed until closed, not 600 s
      });
      return {
        name,
        port: s.port,
        proc: s.proc,
        uploaded: async () => Number((await s.status())?.uploadLength ?? NaN),
        close: async () => {
          await s.close();
          await removeDir();
        },
      };
    } catch (e) {
      await removeDir();
      throw e;
    }
  }));
  const seeders = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    for (const s of seeders) await s.close();
    throw failed.reason;
  }
  return seeders;
}

/**
 * The payload bytes each seeder sent during a run, from counts taken before it (`before`) and after: polled until
 * together they count at least `size` more, for up to 3 s (libtorrent's count lags up to a second).
 */
async function uploadedSince(seeders: FetchSeeder[], before: number[], size: number): Promise<number[]> {
  const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const deadline = Date.now() + 3000;
  while (true) {
    const now = await Promise.all(seeders.map((s) => s.uploaded()));
    if (total(now) - total(before) >= size || Date.now() > deadline) return now.map((n, i) => n - before[i]);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** "libtorrent 1 31%, aria2c 1 19%, ...": each seeder's share of the bytes sent. */
function fmtShares(seeders: FetchSeeder[], sent: number[]): string {
  const all = sent.reduce((a, b) => a + b, 0);
  return seeders.map((s, i) => `${s.name} ${all > 0 ? Math.round((sent[i] / all) * 100) : 0}%`).join(", ");
}

const fetchScenario: Scenario = async (ctx) => {
  const { o } = ctx;
  const payload = await ctx.single(sizeFor(o, "fetch"));
  const timeoutMs = boundMs(o, "fetch");
  const n = o.seeders;
  const kinds = seederKinds(n);
  const count = (k: string) => kinds.filter((x) => x === k).length;
  const result: ScenarioResult = {
    scenario: "fetch",
    title: n === 1
      ? `fetch ${fmtSize(payload.size)} (piece ${fmtSize(o.pieceSize)}) from one python3-libtorrent seeder, ` +
        `${o.rounds} round(s)`
      : `fetch ${fmtSize(payload.size)} (piece ${fmtSize(o.pieceSize)}) from ${n} seeders (` +
        `${count("libtorrent")} python3-libtorrent, ${count("aria2c")} aria2c), ${o.rounds} round(s)`,
    size: payload.size,
    clients: [],
    notes: [],
  };
  if (n > 1 && !haveProgram("aria2c")) {
    return { ...result, skipped: "aria2c is not installed (for the aria2c seeders)" };
  }
  const clients = installed(o.clients, result.notes);
  const bt = btfetchArgv();
  const each = (flag: string) => n === 1 ? `${flag} 127.0.0.1:S` : `${flag} 127.0.0.1:S1 ... ${flag} 127.0.0.1:S${n}`;
  const commands: Record<string, string> = {
    btfetch: `${bt.what} get T -o D ${each("--peer")} --json --quiet --no-dht`,
    libtorrent: `python3 scripts/_bench_lt.py --mode leech ${
      each("--connect")
    } (high_performance_seed(); exits when complete)`,
    aria2c: n === 1
      ? "aria2c --seed-time=0 --file-allocation=none, DHT/LPD/PEX off (the seeder connects to it)"
      : `aria2c --seed-time=0 --file-allocation=none, DHT/LPD/PEX off, T with a loopback tracker added (same ` +
        `info-hash) whose every answer lists the ${n} seeders`,
  };
  const samples: Record<string, Sample[]> = Object.fromEntries(clients.map((c) => [c, []]));
  /** Per client, per run: the bytes each seeder sent (with more than one seeder). */
  const sent: Record<string, number[][]> = Object.fromEntries(clients.map((c) => [c, []]));
  const done = leftovers(ctx.tmpfs);
  if (n > 1) ctx.log(`fetch: starting ${n} seeders (${kinds.join(", ")}), each checking its data ...`);
  const seeders = await startFetchSeeders(ctx.work, payload, n);
  const peers = seeders.map((s) => `127.0.0.1:${s.port}`);
  const tracker = n > 1 && clients.includes("aria2c") ? tinyTracker(() => seeders.map((s) => s.port)) : undefined;
  try {
    const tracked = tracker
      ? await trackedTorrent(payload, o.pieceSize, tracker.url, `${ctx.work}/fetch-tracked.torrent`)
      : undefined;
    for (let r = 0; r < o.rounds; r++) {
      const order = clients.map((_, i) => clients[(i + r) % clients.length]);
      for (const c of order) {
        const dir = `${ctx.work}/dl-${c}-${r}`;
        await Deno.mkdir(dir);
        const before = n > 1 ? await Promise.all(seeders.map((s) => s.uploaded())) : [];
        let m: Measured;
        if (c === "btfetch") {
          const args = [...bt.pre, "get", payload.torrent, "-o", dir, ...peers.flatMap((p) => ["--peer", p])];
          args.push("--json", "--quiet", "--no-dht", "--port", String(freePort()));
          m = await measure(bt.cmd, args, { killAfterMs: timeoutMs });
        } else if (c === "libtorrent") {
          const args = ["-u", LT_HELPER, "--mode", "leech", "--torrent", payload.torrent, "--dir", dir];
          args.push(...peers.flatMap((p) => ["--connect", p]), "--max-seconds", String(timeoutMs / 1000));
          m = await measure(SYSTEM_PYTHON, args, { killAfterMs: timeoutMs });
          if (m.code === 0 && !/^DONE$/m.test(m.stdout)) m.code = 1;
        } else if (tracked) {
          m = await measure("aria2c", [...aria2Args(dir, freePort(), timeoutMs / 1000), tracked], {
            killAfterMs: timeoutMs,
          });
        } else {
          const port = freePort();
          m = await measure("aria2c", [...aria2Args(dir, port, timeoutMs / 1000), payload.torrent], {
            killAfterMs: timeoutMs,
            onStart: async () => {
              await waitListening(port, 30_000);
              await seeders[0].proc.tell(`CONNECT 127.0.0.1:${port}`);
            },
          });
        }
        const dead = seeders.find((s) => s.proc.exited);
        if (dead) throw new Error(`the ${dead.name} seeder exited during the ${c} run\n${dead.proc.tail(6)}`);
        if (m.code !== 0) {
          const who = c === "libtorrent" ? "libtorrent leecher" : c;
          throw new Error(`${who} exited ${m.code}\n${tail(m.stdout)}\n${tail(m.stderr)}`);
        }
        await verifyDownload(payload, dir, c);
        samples[c].push(m);
        let served = "";
        if (n > 1) {
          sent[c].push(await uploadedSince(seeders, before, payload.size));
          served = ` (served: ${fmtShares(seeders, sent[c][sent[c].length - 1])})`;
        }
        ctx.log(`fetch round ${r + 1}/${o.rounds} ${c}: ${fmtSample(m)}${served}`);
        await done.add(dir);
        await sync();
      }
    }
  } finally {
    await tracker?.close();
    for (const s of seeders) await s.close();
    await done.clear();
  }
  result.clients = clients.map((c) => summarise(c, commands[c], samples[c], payload.size));
  result.ratios = ratiosOf(result.clients, "btfetch", ["libtorrent"]);
  if (n > 1) {
    const names = (k: string) => seeders.filter((s) => s.name.startsWith(k)).map((s) => s.name).join(", ");
    result.notes.push(
      `seeders, all checked and seeding before the first round, on 127.0.0.1: ${names("libtorrent")}: python3 ` +
        `scripts/_bench_lt.py --mode seed (libtorrent's high_performance_seed() preset); ${names("aria2c")}: aria2c ` +
        `--check-integrity=true --bt-hash-check-seed=true --seed-ratio=0.0 --bt-max-peers=0, DHT/LPD/PEX off, each ` +
        `on a hard link of the payload in a folder of its own`,
      ...clients.map((c) =>
        `${c}'s bytes by seeder (share of what the seeders sent, per run): ` +
        sent[c].map((xs) => fmtShares(seeders, xs)).join(" | ")
      ),
    );
    if (tracker) {
      result.notes.push(
        "aria2c has no option to connect to a peer, so it learns every seeder from its first announce to the " +
          "loopback tracker (btfetch and libtorrent are given them on the command line); it connects to them on its next " +
          "1 s tick after that answer, and announces stopped before it exits, both within its wall",
      );
    }
  }
  return result;
};

/** Serves a loopback HTTP tracker whose every answer lists 127.0.0.1 with each port of `ports()`. */
function tinyTracker(ports: () => number[]): { url: string; close(): Promise<void> } {
  const enc = new TextEncoder();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    const ps = ports();
    const head = enc.encode(`d8:intervali1800e12:min intervali60e5:peers${ps.length * 6}:`);
    const body = new Uint8Array(head.length + ps.length * 6 + 1);
    body.set(head);
    ps.forEach((p, i) => body.set([127, 0, 0, 1, p >> 8, p & 0xff], head.length + i * 6));
    body[body.length - 1] = 0x65; // "e"
    return new Response(body, { headers: { "content-type": "text/plain" } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/announce`, close: () => server.shutdown() };
}

/** A `seed` row: "btfetch seed -> aria2c". */
export function seedRow(seeder: string, downloader: string): string {
  return `${seeder} seed -> ${downloader}`;
}

const seedScenario: Scenario = async (ctx) => {
  const { o } = ctx;
  const payload = await ctx.single(sizeFor(o, "seed"));
  const timeoutMs = boundMs(o, "seed");
  const result: ScenarioResult = {
    scenario: "seed",
    title: "",
    size: payload.size,
    clients: [],
    notes: [],
  };
  const downloaders = o.downloaders.filter((d) => {
    const missing = d === "aria2c" && !haveProgram("aria2c");
    if (missing) result.notes.push("aria2c: not installed, left out as a downloader");
    return !missing;
  });
  result.title = `seed ${fmtSize(payload.size)} (piece ${fmtSize(o.pieceSize)}) to ` +
    `${downloaders.length ? downloaders.join(" and ") : o.downloaders.join(" and ")}, one download per seeder and ` +
    `downloader a round, ${o.rounds} round(s); wall = the downloader's run, CPU/RSS = the seeder's`;
  if (!haveLibtorrent()) return { ...result, skipped: "python3-libtorrent is not installed" };
  if (downloaders.length === 0) return { ...result, skipped: "aria2c is not installed" };
  const bt = btfetchArgv();
  if (!o.clients.includes("btfetch")) {
    result.notes.push("btfetch left out (--clients)");
  } else {
    // Is `btfetch seed` there? A usage check that does no work: a missing --dir is a usage error either way, but an
    // unavailable command says so.
    const probe = await new Deno.Command(bt.cmd, {
      args: [...bt.pre, "seed", payload.torrent, "--dir", `${ctx.work}/nonexistent`, "--no-dht", "--timeout", "1s"],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (/not available|unknown command/i.test(new TextDecoder().decode(probe.stderr))) {
      return { ...result, skipped: "`btfetch seed` is not available in this build" };
    }
  }
  let seederPort = 0;
  const tracker = downloaders.includes("aria2c") ? tinyTracker(() => [seederPort]) : undefined;
  const tracked = `${ctx.work}/tracked.torrent`;
  const done = leftovers(ctx.tmpfs);
  try {
    if (tracker) {
      await trackedTorrent(payload, o.pieceSize, tracker.url, tracked);
      result.notes.push(
        "aria2c finds the seeder through a loopback HTTP tracker (adds aria2c's ~1 s tick to its wall); " +
          "libtorrent is given it with --connect",
      );
    }
    const clients = ["btfetch", "libtorrent"].filter((c) => o.clients.includes(c));
    const samples: Record<string, Sample[]> = {};
    for (const d of downloaders) for (const c of clients) samples[seedRow(c, d)] = [];
    for (let r = 0; r < o.rounds; r++) {
      const dOrder = downloaders.map((_, i) => downloaders[(i + r) % downloaders.length]);
      for (const d of dOrder) {
        const order = r % 2 ? [...clients].reverse() : clients;
        for (const c of order) {
          let proc: LineProcess;
          if (c === "btfetch") {
            seederPort = freePort();
            proc = new LineProcess("btfetch-seed", bt.cmd, [
              ...bt.pre,
              "seed",
              payload.torrent,
              "--dir",
              payload.dir,
              "--port",
              String(seederPort),
              "--json",
              "--quiet",
              "--no-dht",
            ]);
            try {
              await proc.waitForLine(/"event":"seeding"/, 300_000);
            } catch (e) {
              await proc.close();
              throw e;
            }
          } else {
            const s = await startLtSeeder(payload);
            proc = s.proc;
            seederPort = s.port;
          }
          const row = seedRow(c, d);
          const dir = `${ctx.work}/dl-seed-${c}-${d}-${r}`;
          await Deno.mkdir(dir);
          try {
            const pid = proc.child.pid;
            const cpu0 = procCpu(pid) ?? 0;
            let m: Measured;
            if (d === "aria2c") {
              m = await measure("aria2c", [...aria2Args(dir, freePort(), timeoutMs / 1000), tracked], {
                killAfterMs: timeoutMs,
                abortOn: proc.child.status,
              });
            } else {
              const args = ["-u", LT_HELPER, "--mode", "leech", "--torrent", payload.torrent, "--dir", dir];
              args.push("--connect", `127.0.0.1:${seederPort}`, "--max-seconds", String(timeoutMs / 1000));
              m = await measure(SYSTEM_PYTHON, args, { killAfterMs: timeoutMs, abortOn: proc.child.status });
              if (m.code === 0 && !/^DONE$/m.test(m.stdout)) m.code = 1;
            }
            const cpu1 = procCpu(pid), rss = procPeakRss(pid);
            if (proc.exited) throw new Error(`the ${c} seeder exited during the download (${row})\n${proc.tail(6)}`);
            if (m.code !== 0) {
              const who = d === "libtorrent" ? "the libtorrent downloader" : d;
              throw new Error(`${who} exited ${m.code} (${row})\n${tail(m.stdout)}\n${tail(m.stderr)}\n${proc.tail()}`);
            }
            if (cpu1 === undefined || rss === undefined) throw new Error(`${c} seeder died (${row})\n${proc.tail()}`);
            await verifyDownload(payload, dir, `${d} from ${c}`);
            const s: Sample = { wallS: m.wallS, cpuS: cpu1 - cpu0, rssMiB: rss };
            samples[row].push(s);
            ctx.log(`seed round ${r + 1}/${o.rounds} ${row}: ${fmtSample(s)} (${d}: ${fmtSample(m)})`);
          } finally {
            await proc.close();
            await done.add(dir);
            await Deno.remove(`${payload.dir}/.btfetch`, { recursive: true }).catch(() => {});
            await sync();
          }
        }
      }
    }
    const commands: Record<string, string> = {
      btfetch: `${bt.what} seed T --dir D --port P --json --quiet --no-dht`,
      libtorrent: "python3 scripts/_bench_lt.py --mode seed (high_performance_seed())",
    };
    const fetchers: Record<string, string> = {
      aria2c: "aria2c --seed-time=0 --file-allocation=none, DHT/LPD/PEX off, T with the loopback tracker",
      libtorrent: "python3 scripts/_bench_lt.py --mode leech --connect 127.0.0.1:P (high_performance_seed())",
    };
    result.clients = downloaders.flatMap((d) =>
      clients.map((c) =>
        summarise(seedRow(c, d), `${commands[c]}; downloader: ${fetchers[d]}`, samples[seedRow(c, d)], payload.size)
      )
    );
    const ratios = downloaders.flatMap((d) =>
      ratiosOf(result.clients, seedRow("btfetch", d), [seedRow("libtorrent", d)]) ?? []
    );
    result.ratios = ratios.length ? ratios : undefined;
  } finally {
    await tracker?.close();
    await done.clear();
  }
  return result;
};

const createScenario: Scenario = async (ctx) => {
  const { o } = ctx;
  const payload = await ctx.single(sizeFor(o, "create"));
  const timeoutMs = boundMs(o, "create");
  const result: ScenarioResult = {
    scenario: "create",
    title: `create a torrent for ${fmtSize(payload.size)} (piece ${fmtSize(o.pieceSize)}), ${o.rounds} round(s)`,
    size: payload.size,
    clients: [],
    notes: [],
  };
  if (!haveProgram("mktorrent")) return { ...result, skipped: "mktorrent is not installed" };
  const bt = btfetchArgv();
  const announce = "http://127.0.0.1:1/announce";
  const log2 = Math.log2(o.pieceSize);
  const run = async (c: string, out: string): Promise<Measured> => {
    const [cmd, args] = c === "btfetch"
      ? [bt.cmd, [...bt.pre, "create", payload.path, "-o", out, "--piece-size", `${o.pieceSize / 1024}K`]]
      : ["mktorrent", ["-l", String(log2), "-a", announce, "-o", out, payload.path]];
    if (c === "btfetch") args.push("-t", announce);
    return await measure(cmd, args, { killAfterMs: timeoutMs });
  };
  const probe = await run("btfetch", `${ctx.work}/probe.torrent`);
  if (probe.code !== 0) {
    const why = tail(probe.stderr, 2).replace(/\n/g, " ");
    return { ...result, skipped: `\`btfetch create\` is unavailable or failed (exit ${probe.code}: ${why})` };
  }
  const samples: Record<string, Sample[]> = { btfetch: [], mktorrent: [] };
  for (let r = 0; r < o.rounds; r++) {
    for (const c of r % 2 ? ["mktorrent", "btfetch"] : ["btfetch", "mktorrent"]) {
      const out = `${ctx.work}/create-${c}-${r}.torrent`;
      const m = await run(c, out);
      if (m.code !== 0) throw new Error(`${c} exited ${m.code}\n${tail(m.stderr)}`);
      const meta = parseMetainfo(await Deno.readFile(out));
      if (meta.infoHashHex !== payload.infoHash) {
        result.notes.push(`${c}: info-hash ${meta.infoHashHex} differs from libtorrent's ${payload.infoHash}`);
      }
      samples[c].push(m);
      ctx.log(`create round ${r + 1}/${o.rounds} ${c}: ${fmtSample(m)}`);
      await Deno.remove(out);
    }
  }
  result.clients = [
    summarise(
      "btfetch",
      `${bt.what} create P -o T --piece-size ${fmtSize(o.pieceSize)}`,
      samples.btfetch,
      payload.size,
    ),
    summarise("mktorrent", `mktorrent -l ${log2} (threads: CPU count)`, samples.mktorrent, payload.size),
  ];
  result.ratios = ratiosOf(result.clients, "btfetch", ["mktorrent"]);
  return result;
};

/**
 * What starting costs, for reading small runs: wall is process start to exit, so it includes btfetch's start-up
 * (`btfetch --version`, median of 3) and python3 importing libtorrent.
 */
async function startupNote(bt: { cmd: string; pre: string[] }): Promise<string> {
  const runs = async (cmd: string, args: string[]) => {
    const walls: number[] = [];
    for (let i = 0; i < 3; i++) walls.push((await measure(cmd, args, { killAfterMs: 60_000 })).wallS);
    return median(walls).toFixed(2);
  };
  return `start-up alone, within every wall above: btfetch --version ${await runs(bt.cmd, [...bt.pre, "--version"])} ` +
    `s, python3 -c "import libtorrent" ${await runs(SYSTEM_PYTHON, ["-c", "import libtorrent"])} s`;
}

/** A loopback DHT of libtorrent sessions (`_lt_bench_dht.py --mode swarm`), one of them seeding. */
interface DhtSwarm {
  proc: LineProcess;
  /** The plain nodes' ports (UDP for the DHT). */
  nodes: number[];
  /** The seeder's port (TCP and DHT). */
  seeder: number;
}

/** Starts {@link DHT_NODES} libtorrent DHT sessions, the last seeding `payload`; resolves once its announce is stored. */
async function startDhtSwarm(payload: Payload): Promise<DhtSwarm> {
  const proc = new LineProcess("libtorrent-dht", SYSTEM_PYTHON, [
    "-u",
    LT_DHT_HELPER,
    "--mode",
    "swarm",
    "--nodes",
    String(DHT_NODES - 1),
    "--seed",
    payload.torrent,
    "--seed-dir",
    payload.dir,
  ]);
  try {
    const m = await proc.waitForLine(/^(READY|ERROR)\b ?(.*)$/, 120_000);
    if (m[1] === "ERROR") throw new Error(`the loopback DHT did not come up: ${m[2]}\n${proc.tail()}`);
  } catch (e) {
    await proc.close();
    throw e;
  }
  const ports = (role: string) =>
    proc.lines.flatMap((l) => {
      const m = l.match(new RegExp(`^${role} (\\d+)$`));
      return m ? [Number(m[1])] : [];
    });
  return { proc, nodes: ports("NODE"), seeder: ports("SEEDER")[0] };
}

/** The JSON events a `btfetch --json` run printed (lines that are not JSON objects are skipped). */
export function parseEvents(stdout: string): Array<Record<string, unknown>> {
  return stdout.split("\n").flatMap((l) => {
    if (!l.startsWith("{")) return [];
    try {
      const ev = JSON.parse(l);
      return typeof ev === "object" && ev !== null && !Array.isArray(ev) ? [ev] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Figures of one magnet-to-complete run on btfetch's own clock (`t` of its events, ms since it started): the
 * metadata (a peer found through the DHT and the info dictionary fetched from it), the first DHT lookup's end with its
 * query count, the first connection to a peer the DHT gave, and completion. A figure is absent when no event says.
 */
export function btfetchDhtFigures(events: Array<Record<string, unknown>>): Record<string, number> {
  const first = (pred: (e: Record<string, unknown>) => boolean) =>
    events.find((e) => pred(e) && typeof e.t === "number");
  const out: Record<string, number> = {};
  const put = (k: string, v: unknown) => {
    if (typeof v === "number") out[k] = v;
  };
  put("metadata", first((e) => e.event === "metadata")?.t);
  const lookup = first((e) => e.event === "dht");
  put("lookup", lookup?.t);
  put("queries", lookup?.queries);
  put("answered", lookup?.answered);
  put("dht-peer", first((e) => e.event === "peer" && e.action === "connected" && e.source === "dht")?.t);
  put("complete", first((e) => e.event === "complete")?.t);
  return out;
}

/** The `AT <what> <ms>` lines of `_lt_bench_dht.py --mode leech`: libtorrent's milestones, ms since it started. */
export function libtorrentDhtFigures(stdout: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of stdout.matchAll(/^AT (\S+) (\d+)$/gm)) out[m[1]] ??= Number(m[2]);
  return out;
}

/** "metadata 90 ms, lookup 247 ms, ..." : the median of each figure over the runs that have it, in `keys` order. */
export function medianFigures(runs: Array<Record<string, number>>, keys: string[]): string {
  return keys.flatMap((k) => {
    const xs = runs.flatMap((r) => (k in r ? [r[k]] : []));
    return xs.length === 0 ? [] : [`${k} ${Math.round(median(xs))}${/queries|answered/.test(k) ? "" : " ms"}`];
  }).join(", ");
}

const dhtScenario: Scenario = async (ctx) => {
  const { o } = ctx;
  const bound = boundMs(o, "dht");
  const payload = await ctx.single(sizeFor(o, "dht"));
  const magnet = `magnet:?xt=urn:btih:${payload.infoHash}`;
  const result: ScenarioResult = {
    scenario: "dht",
    title: `magnet -> complete through the DHT alone, ${fmtSize(payload.size)} (piece ${fmtSize(o.pieceSize)}), ` +
      `a loopback DHT of ${DHT_NODES} python3-libtorrent nodes (one seeding), ${o.rounds} round(s), ` +
      `bound ${bound / 1000} s`,
    size: payload.size,
    boundS: bound / 1000,
    clients: [],
    notes: [],
  };
  const clients = installed(o.clients.filter((c) => c !== "aria2c"), result.notes);
  const bt = btfetchArgv();
  const commands: Record<string, string> = {
    btfetch: `${bt.what} get MAGNET -o D --dht-bootstrap 127.0.0.1:N --dht-state <new file> --port P --json --quiet`,
    libtorrent: "python3 scripts/_lt_bench_dht.py --mode leech --magnet MAGNET --bootstrap 127.0.0.1:N " +
      "(a fresh session with high_performance_seed(); add_dht_node(N), force_dht_announce() once its DHT has a node " +
      "and every 1 s until a peer)",
  };
  const samples: Record<string, Sample[]> = Object.fromEntries(clients.map((c) => [c, []]));
  const figures: Record<string, Array<Record<string, number>>> = Object.fromEntries(clients.map((c) => [c, []]));
  const done = leftovers(ctx.tmpfs);
  try {
    // round -1 warms up each client once, uncounted (its files and the OS's caches, as a later start finds them)
    for (let r = -1; r < o.rounds; r++) {
      for (const c of r % 2 === 1 ? [...clients].reverse() : clients) {
        // a fresh DHT for every run: no client finds the previous one's dead node or stale announce
        const swarm = await startDhtSwarm(payload);
        const tag = r < 0 ? "warm" : String(r);
        const dir = `${ctx.work}/dl-dht-${c}-${tag}`;
        await Deno.mkdir(dir);
        const boot = `127.0.0.1:${swarm.nodes[0]}`;
        let m: Measured;
        let ok: boolean;
        try {
          if (c === "btfetch") {
            const args = [...bt.pre, "get", magnet, "-o", dir, "--dht-bootstrap", boot];
            args.push("--dht-state", `${ctx.work}/dht-state-${tag}.json`, "--port", String(freePort()));
            m = await measure(bt.cmd, [...args, "--json", "--quiet"], { killAfterMs: bound });
            ok = m.code === 0;
            if (r >= 0) figures[c].push(btfetchDhtFigures(parseEvents(m.stdout)));
          } else {
            const args = ["-u", LT_DHT_HELPER, "--mode", "leech", "--magnet", magnet, "--dir", dir];
            args.push("--bootstrap", boot, "--max-seconds", String(bound / 1000 + 5));
            m = await measure(SYSTEM_PYTHON, args, { killAfterMs: bound });
            ok = m.code === 0 && /^DONE$/m.test(m.stdout);
            if (r >= 0) figures[c].push(libtorrentDhtFigures(m.stdout));
          }
        } finally {
          await swarm.proc.close();
        }
        if (ok) {
          await verifyDownload(payload, dir, c);
        } else {
          const why = m.timedOut ? `not complete within ${bound / 1000} s` : `exit ${m.code}`;
          const last = tail(m.stderr, 1) || tail(m.stdout, 1);
          const round = r < 0 ? "warm-up round" : `round ${r + 1}`;
          result.notes.push(`${c} ${round}: ${why}${last ? ` (last output: ${last.slice(0, 200)})` : ""}`);
        }
        const sample: Sample = { wallS: m.wallS, cpuS: m.cpuS, rssMiB: m.rssMiB, incomplete: !ok };
        if (r >= 0) samples[c].push(sample);
        const label = r < 0 ? "warm-up (not counted)" : `round ${r + 1}/${o.rounds}`;
        ctx.log(`dht ${label} ${c}: ${ok ? "" : "NOT DONE, "}${fmtSample(sample)}`);
        await done.add(dir);
      }
    }
  } finally {
    await done.clear();
  }
  result.clients = clients.map((c) => summarise(c, commands[c], samples[c], payload.size));
  result.ratios = ratiosOf(result.clients, "btfetch", ["libtorrent"]);
  const completed = (c: string, keys: string[]) =>
    medianFigures(figures[c].filter((_, i) => !samples[c][i].incomplete), keys) || "no run completed";
  const figureNotes: string[] = [];
  if (clients.includes("btfetch")) {
    const keys = ["lookup", "queries", "answered", "metadata", "dht-peer", "complete"];
    figureNotes.push(
      `btfetch's own clock (t of its JSON events, medians of the runs that completed): ` +
        completed("btfetch", keys) + `; lookup = the first dht event (the first lookup ended), ` +
        `metadata = a DHT peer found and the info dictionary fetched, dht-peer = the download's first connection ` +
        `to a peer the DHT gave`,
      `btfetch lookups per run (ms, queries): ` +
        figures.btfetch.map((f) => `${f.lookup ?? "-"} (${f.queries ?? "-"})`).join(", "),
    );
  }
  if (clients.includes("libtorrent")) {
    figureNotes.push(
      `libtorrent's clock (ms since the helper started, medians of the runs that completed): ` +
        completed("libtorrent", ["dht-up", "dht-peers", "metadata", "complete"]),
    );
  }
  result.notes = [
    ...figureNotes,
    ...result.notes,
    `a run past ${bound / 1000} s is stopped, counted at that time in the median, and shown as ">" in the runs`,
    "each client ran once more before the rounds, uncounted (a warm-up: its files and the OS's caches as a later " +
    "start finds them)",
    await startupNote(bt),
  ];
  return result;
};

/** An nginx serving `root` on 127.0.0.1:`port`, run in the foreground by this script. */
interface Nginx {
  proc: LineProcess;
  close(): Promise<void>;
}

/**
 * The nginx config of the `webseed` scenario: the files under `root` on 127.0.0.1:`port`, `sendfile` and `tcp_nopush`
 * on, keep-alive connections for as many requests as a client makes, no access log, a worker per core, every temp
 * path and the pid file under `prefix` (so it runs unprivileged too). As root, the workers stay root (the default
 * user, nobody, cannot read a private temp folder).
 */
export function nginxConfig(o: { prefix: string; root: string; port: number; asRoot: boolean }): string {
  return [
    ...(o.asRoot ? ["user root;"] : []),
    "worker_processes auto;",
    `pid ${o.prefix}/nginx.pid;`,
    "events { worker_connections 1024; }",
    "http {",
    "  access_log off;",
    "  sendfile on;",
    "  tcp_nopush on;",
    "  keepalive_requests 1000000;",
    "  keepalive_timeout 120s;",
    "  default_type application/octet-stream;",
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${o.prefix}/${t};`),
    `  server { listen 127.0.0.1:${o.port}; root ${o.root}; }`,
    "}",
    "",
  ].join("\n");
}

/** Starts nginx on 127.0.0.1:`port` serving `root`; resolves once it listens. */
async function startNginx(work: string, root: string, port: number): Promise<Nginx> {
  const prefix = `${work}/nginx`;
  await Deno.mkdir(prefix, { recursive: true });
  const conf = `${prefix}/nginx.conf`;
  await Deno.writeTextFile(conf, nginxConfig({ prefix, root, port, asRoot: Deno.uid() === 0 }));
  const proc = new LineProcess("nginx", NGINX, [
    "-p",
    prefix,
    "-c",
    conf,
    "-e",
    `${prefix}/error.log`,
    "-g",
    "daemon off;",
  ]);
  const close = async () => void await proc.close();
  try {
    await Promise.race([
      waitListening(port, 15_000),
      proc.child.status.then(() => {
        throw new Error("nginx exited");
      }),
    ]);
  } catch (e) {
    await close();
    const log = await Deno.readTextFile(`${prefix}/error.log`).catch(() => "");
    throw new Error(`nginx did not start: ${e instanceof Error ? e.message : e}\n${tail(log)}\n${proc.tail(5)}`);
  }
  return { proc, close };
}

const webseedScenario: Scenario = async (ctx) => {
  const { o } = ctx;
  const timeoutMs = boundMs(o, "webseed");
  const size = sizeFor(o, "webseed");
  const files = webseedFiles(size);
  const result: ScenarioResult = {
    scenario: "webseed",
    title: `fetch ${fmtSize(size)} in ${files.length} files (piece ${fmtSize(o.pieceSize)}) from one nginx web ` +
      `seed (url-list), no peers, ${o.rounds} round(s)`,
    size,
    clients: [],
    notes: [],
  };
  if (!haveProgram(NGINX)) return { ...result, skipped: `${NGINX} is not installed (apt-get install nginx-light)` };
  const clients = installed(o.clients, result.notes);
  const port = freePort();
  const payload = await makePayload(ctx.work, "webseed", {
    name: "ws-payload",
    files,
    pieceSize: o.pieceSize,
    urlList: [`http://127.0.0.1:${port}/`],
  });
  await sync();
  const bt = btfetchArgv();
  const commands: Record<string, string> = {
    btfetch: `${bt.what} get T -o D --json --quiet --no-dht --port P (the web seed from the torrent's url-list)`,
    libtorrent: "python3 scripts/_bench_lt.py --mode leech --torrent T (no peer; high_performance_seed())",
    aria2c: "aria2c T --seed-time=0 --file-allocation=none, DHT/LPD/PEX off (the web seed from the url-list)",
  };
  const samples: Record<string, Sample[]> = Object.fromEntries(clients.map((c) => [c, []]));
  const done = leftovers(ctx.tmpfs);
  const nginx = await startNginx(ctx.work, payload.dir, port);
  try {
    for (let r = 0; r < o.rounds; r++) {
      for (const c of clients.map((_, i) => clients[(i + r) % clients.length])) {
        const dir = `${ctx.work}/dl-webseed-${c}-${r}`;
        await Deno.mkdir(dir);
        let m: Measured;
        if (c === "btfetch") {
          const args = [...bt.pre, "get", payload.torrent, "-o", dir, "--json", "--quiet", "--no-dht"];
          m = await measure(bt.cmd, [...args, "--port", String(freePort())], { killAfterMs: timeoutMs });
        } else if (c === "libtorrent") {
          const args = ["-u", LT_HELPER, "--mode", "leech", "--torrent", payload.torrent, "--dir", dir];
          m = await measure(SYSTEM_PYTHON, [...args, "--max-seconds", String(timeoutMs / 1000)], {
            killAfterMs: timeoutMs,
          });
          if (m.code === 0 && !/^DONE$/m.test(m.stdout)) m.code = 1;
        } else {
          m = await measure("aria2c", [...aria2Args(dir, freePort(), timeoutMs / 1000), payload.torrent], {
            killAfterMs: timeoutMs,
          });
        }
        if (nginx.proc.exited) throw new Error(`nginx exited during the ${c} run\n${nginx.proc.tail(5)}`);
        if (m.code !== 0) throw new Error(`${c} exited ${m.code}\n${tail(m.stdout)}\n${tail(m.stderr)}`);
        await verifyDownload(payload, dir, c);
        samples[c].push(m);
        ctx.log(`webseed round ${r + 1}/${o.rounds} ${c}: ${fmtSample(m)}`);
        await done.add(dir);
        await sync();
      }
    }
  } finally {
    await nginx.close();
    await done.clear();
  }
  result.clients = clients.map((c) => summarise(c, commands[c], samples[c], payload.size));
  result.ratios = ratiosOf(result.clients, "btfetch", ["libtorrent", "aria2c"]);
  result.notes.push(
    `files: ${files.map(([p, n]) => `${p} ${n}`).join(", ")}; nginx: sendfile on, keep-alive`,
    await startupNote(bt),
  );
  return result;
};

/** Every scenario, by name. */
export const SCENARIOS: Record<string, Scenario> = {
  fetch: fetchScenario,
  seed: seedScenario,
  create: createScenario,
  dht: dhtScenario,
  webseed: webseedScenario,
};

// ---------------------------------------------------------------------------------------------------------------
// Output

function fmtSize(n: number): string {
  if (n >= 1 << 30 && n % (1 << 30) === 0) return `${n / (1 << 30)} GiB`;
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

function fmtSample(s: Sample): string {
  return `${s.wallS.toFixed(2)} s wall, ${s.cpuS.toFixed(2)} s CPU, ${s.rssMiB.toFixed(0)} MiB RSS`;
}

/** The table for one scenario. */
export function formatTable(r: ScenarioResult): string {
  const lines = [`== ${r.title}`];
  if (r.skipped) return [...lines, `   skipped: ${r.skipped}`].join("\n");
  const bounded = r.boundS !== undefined;
  const head = ["client", "wall s (median)", "MiB/s", "CPU s", "peak RSS MiB"];
  if (bounded) head.push(`done in ${r.boundS} s`);
  head.push("runs: wall s");
  const rows = r.clients.map((c) => [
    c.client,
    c.median.wallS.toFixed(2),
    c.median.mibps.toFixed(0),
    c.median.cpuS.toFixed(2),
    c.median.rssMiB.toFixed(0),
    ...(bounded ? [`${c.samples.length - c.incomplete}/${c.samples.length}`] : []),
    c.samples.map((s) => `${s.incomplete ? ">" : ""}${s.wallS.toFixed(2)}`).join(" "),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const fmt = (row: string[]) =>
    row.map((cell, i) => (i === 0 || i === row.length - 1 ? cell.padEnd(w[i]) : cell.padStart(w[i]))).join("  ")
      .trimEnd();
  lines.push(fmt(head), fmt(w.map((n) => "-".repeat(n))), ...rows.map(fmt));
  for (const q of r.ratios ?? []) {
    lines.push(
      `${q.me} / ${q.vs}: wall x${q.wall.toFixed(2)}, CPU x${q.cpu.toFixed(2)}, peak RSS x${q.rss.toFixed(2)}`,
    );
  }
  for (const c of r.clients) lines.push(`  ${c.client}: ${c.command}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// Main

/**
 * The temp folder's parent: `--workdir`, else /dev/shm when it is a tmpfs with `need` bytes free (downloads are then
 * deleted as soon as they are checked), else /tmp.
 */
async function chooseWorkdir(o: BenchOptions, need: number, log: (s: string) => void): Promise<string> {
  if (o.workdir !== undefined) return o.workdir;
  const shm = await fsInfo("/dev/shm");
  if (shm?.tmpfs && shm.free >= need) return "/dev/shm";
  log(
    `bench: /dev/shm ${shm ? `${shm.tmpfs ? "" : "is not a tmpfs, "}has ${fmtSize(shm.free)} free` : "is missing"}, ` +
      `${fmtSize(need)} wanted: working in /tmp`,
  );
  return "/tmp";
}

/** Runs the benchmark; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseBenchArgs(args);
  } catch (e) {
    console.error(`bench: ${e instanceof Error ? e.message : e}\n${USAGE}`);
    return 2;
  }
  if (!haveLibtorrent()) {
    console.error(`bench: python3-libtorrent is needed (${SYSTEM_PYTHON} -c "import libtorrent" failed)`);
    return 1;
  }
  const log = (s: string) => console.error(s);
  // room for every payload and one download of the largest (rounded up to whole MiB, plus torrents and slack)
  const sizes = o.scenarios.map((s) => sizeFor(o, s));
  const payloads = [...new Set(o.scenarios.map((s) => (s === "webseed" ? "w" : "s") + sizeFor(o, s)))];
  const need = payloads.reduce((n, k) => n + Number(k.slice(1)), 0) + Math.max(...sizes) + 64 * MiB;
  const work = await Deno.makeTempDir({ dir: await chooseWorkdir(o, need, log), prefix: "btfetch-bench-" });
  const tmpfs = (await fsInfo(work))?.tmpfs ?? false;
  const singles = new Map<number, Promise<Payload>>();
  const results: ScenarioResult[] = [];
  let code = 0;
  try {
    log(`bench: working in ${work}${tmpfs ? " (tmpfs)" : ""}; measuring with ${measurementMethod()}`);
    if (!o.fromSource) await bundleBtfetch(work, log);
    log(`bench: btfetch is ${btfetchArgv().what}`);
    const single = (size: number): Promise<Payload> => {
      let p = singles.get(size);
      if (!p) {
        log(`bench: generating ${fmtSize(size)} ...`);
        p = makePayload(work, `single-${size}`, { name: "payload.bin", files: [["", size]], pieceSize: o.pieceSize })
          .then(async (payload) => {
            await sync();
            log(`bench: payload sha1 ${payload.files[0].sha1}, info-hash ${payload.infoHash}`);
            return payload;
          });
        singles.set(size, p);
      }
      return p;
    };
    const ctx: Ctx = { o, work, tmpfs, single, log };
    for (const s of o.scenarios) {
      try {
        const r = await SCENARIOS[s](ctx);
        results.push(r);
        if (!o.json) console.log(formatTable(r) + "\n");
      } catch (e) {
        code = 1;
        console.error(`bench: scenario ${s} failed: ${e instanceof Error ? e.message : e}`);
      }
    }
  } finally {
    if (o.keep) log(`bench: kept ${work}`);
    else await Deno.remove(work, { recursive: true });
  }
  if (o.json) {
    console.log(JSON.stringify({
      pieceSize: o.pieceSize,
      rounds: o.rounds,
      seeders: o.seeders,
      workdir: work,
      tmpfs,
      measurement: measurementMethod(),
      btfetch: btfetchArgv().what,
      host: { os: Deno.build.os, arch: Deno.build.arch, deno: Deno.version.deno },
      results,
    }));
  }
  return code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/**
 * Writes to `out` a torrent of the payload that announces to `trackerUrl` (made by libtorrent, as the payload's own),
 * and checks that its info-hash is the payload's: only the announce list differs. Returns `out`.
 */
async function trackedTorrent(
  payload: { readonly path: string; readonly infoHash: string },
  pieceSize: number,
  trackerUrl: string,
  out: string,
): Promise<string> {
  const t = await makeTorrentWithLibtorrent({
    path: payload.path,
    out,
    pieceLength: pieceSize,
    trackers: [[trackerUrl]],
  });
  if (t.infoHash !== payload.infoHash) throw new Error("the tracked torrent has a different info-hash");
  return out;
}
