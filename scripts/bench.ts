/**
 * `deno task bench`: btfetch side by side with reference clients on loopback, on a generated payload.
 *
 * ```
 * deno run -A scripts/bench.ts [--scenario fetch|seed|create|all] [--size 1G] [--rounds 3] [--piece-size 1M]
 *                              [--clients btfetch,libtorrent,aria2c] [--workdir /tmp] [--timeout 600] [--json] [--keep]
 * ```
 *
 * Scenarios (each a function in {@link SCENARIOS}; add one there):
 * - `fetch`: ONE python3-libtorrent seeder; downloaders take turns, round after round, each into a fresh empty
 *   folder: btfetch (`dist/btfetch-<host target>` if built, else `deno run -A main.ts`; `BTFETCH_BIN` overrides),
 *   python3-libtorrent (`scripts/_bench_lt.py --mode leech`, which exits the moment it has every piece) and aria2c
 *   (`--seed-time=0`, DHT/LPD/PEX off, `--file-allocation=none`). btfetch and libtorrent connect to the seeder;
 *   aria2c has no "connect to this peer" option, so the seeder connects to it once it listens.
 * - `seed`: one aria2c downloader per round fetches from a seeder that takes turns: `btfetch seed` vs a
 *   python3-libtorrent seeder. aria2c finds the seeder through a tiny loopback HTTP tracker this script serves.
 * - `create`: `btfetch create` vs `mktorrent` (both 4 threads? each at its defaults) on the same payload.
 *
 * Measurement: wall time is the downloader's (or creator's) process lifetime, timed here. CPU seconds (user + sys)
 * and peak RSS come from GNU time (`/usr/bin/time -f "%e %U %S %M"`, `apt-get install time`) wrapped around the
 * process; without it, from polling `/proc/<pid>/stat` and `VmHWM` in `/proc/<pid>/status` every 50 ms (the last
 * sample before exit). In `seed`, the seeder's CPU is the `/proc/<pid>/stat` difference over the download and its
 * RSS its `VmHWM` (which includes checking the data before seeding). Every download is checked: size and SHA-1 of
 * the payload. The payload, torrents and downloads live in a temp folder under `--workdir` (default /tmp), removed
 * at the end unless `--keep`.
 * @module
 */
import { parseArgs } from "node:util";
import { createHash, randomFillSync } from "node:crypto";
import { parseMetainfo } from "../lib/metainfo.ts";
import {
  aria2LoopbackArgs,
  freePort,
  haveLibtorrent,
  haveProgram,
  LineProcess,
  makeTorrentWithLibtorrent,
  SYSTEM_PYTHON,
} from "../tests/interop/_peers.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const LT_HELPER = `${ROOT}/scripts/_bench_lt.py`;
const GNU_TIME = "/usr/bin/time";
const MiB = 1 << 20;
const CLK_TCK = 100;

// ---------------------------------------------------------------------------------------------------------------
// Options

/** Parsed command-line options. */
export interface BenchOptions {
  scenarios: string[];
  size: number;
  rounds: number;
  pieceSize: number;
  clients: string[];
  workdir: string;
  timeoutMs: number;
  json: boolean;
  keep: boolean;
}

/** Parses "256M", "1G", "1GiB", "512K", "1048576" into bytes. */
export function parseSize(s: string): number {
  const m = s.trim().match(/^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i);
  if (!m) throw new Error(`"${s}" is not a size (e.g. 256M, 1G)`);
  const mult = { "": 1, K: 1 << 10, M: 1 << 20, G: 1 << 30, T: 2 ** 40 }[m[2].toUpperCase() as "" | "K"]!;
  return Math.round(Number(m[1]) * mult);
}

const ALL_SCENARIOS = ["fetch", "seed", "create"];
const FETCH_CLIENTS = ["btfetch", "libtorrent", "aria2c"];

const USAGE =
  `Usage: deno run -A scripts/bench.ts [--scenario fetch|seed|create|all] [--size 1G] [--rounds 3] [--piece-size 1M]
       [--clients btfetch,libtorrent,aria2c] [--workdir /tmp] [--timeout SECONDS] [--json] [--keep]`;

/** Parses argv. */
export function parseBenchArgs(args: string[]): BenchOptions {
  const { values: v } = parseArgs({
    args,
    options: {
      scenario: { type: "string", default: "fetch" },
      size: { type: "string", default: "1G" },
      rounds: { type: "string", default: "3" },
      "piece-size": { type: "string", default: "1M" },
      clients: { type: "string", default: FETCH_CLIENTS.join(",") },
      workdir: { type: "string", default: "/tmp" },
      timeout: { type: "string", default: "600" },
      json: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
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
  const rounds = Number(v.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: "${v.rounds}" is not a positive integer`);
  const pieceSize = parseSize(v["piece-size"]);
  if (pieceSize < 16384 || (pieceSize & (pieceSize - 1)) !== 0) {
    throw new Error("--piece-size must be a power of two of at least 16K");
  }
  return {
    scenarios,
    size: parseSize(v.size),
    rounds,
    pieceSize,
    clients,
    workdir: v.workdir,
    timeoutMs: Number(v.timeout) * 1000,
    json: v.json,
    keep: v.keep,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Measuring a process

/** One measured run. */
export interface Sample {
  wallS: number;
  cpuS: number;
  rssMiB: number;
}

/** A process run to completion under measurement. */
interface Measured extends Sample {
  code: number;
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
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
  }, opts.killAfterMs);
  let finished = false;
  opts.abortOn?.finally(() => {
    if (finished) return;
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
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
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
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
  return { code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr), wallS, cpuS: cpu, rssMiB: rss };
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** The btfetch command line: `BTFETCH_BIN`, else the compiled binary for this host if built, else `deno run`. */
export function btfetchArgv(): { cmd: string; pre: string[]; what: string } {
  const env = Deno.env.get("BTFETCH_BIN");
  if (env) return { cmd: env, pre: [], what: `BTFETCH_BIN=${env}` };
  const arch = Deno.build.arch;
  const target = Deno.build.os === "linux"
    ? `${arch}-unknown-linux-gnu`
    : Deno.build.os === "darwin"
    ? `${arch}-apple-darwin`
    : `${arch}-pc-windows-msvc`;
  const bin = `${ROOT}/dist/btfetch-${target}${Deno.build.os === "windows" ? ".exe" : ""}`;
  try {
    if (Deno.statSync(bin).isFile) return { cmd: bin, pre: [], what: bin };
  } catch {
    // not built
  }
  return {
    cmd: Deno.execPath(),
    pre: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/main.ts`],
    what: "deno run -A main.ts",
  };
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

/** The generated payload and its reference torrent. */
interface Payload {
  dir: string;
  name: string;
  path: string;
  size: number;
  sha1: string;
  torrent: string;
  infoHash: string;
}

/** Writes `size` random bytes to `dir/name` (computing their SHA-1 on the way) and a v1 torrent made by libtorrent. */
async function makePayload(work: string, size: number, pieceSize: number): Promise<Payload> {
  const dir = `${work}/seed`;
  const name = "payload.bin";
  await Deno.mkdir(dir, { recursive: true });
  const h = createHash("sha1");
  {
    using f = await Deno.open(`${dir}/${name}`, { write: true, create: true, truncate: true });
    const buf = new Uint8Array(16 * MiB);
    for (let left = size; left > 0;) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      const chunk = buf.subarray(0, n);
      h.update(chunk);
      for (let o = 0; o < n;) o += await f.write(chunk.subarray(o));
      left -= n;
    }
  }
  const torrent = `${work}/payload.torrent`;
  const t = await makeTorrentWithLibtorrent({ path: `${dir}/${name}`, out: torrent, pieceLength: pieceSize });
  return { dir, name, path: `${dir}/${name}`, size, sha1: h.digest("hex"), torrent, infoHash: t.infoHash };
}

/** Throws unless `path` has the payload's size and SHA-1. */
async function verifyDownload(p: Payload, path: string, who: string): Promise<void> {
  let size = -1;
  try {
    size = (await Deno.stat(path)).size;
  } catch {
    throw new Error(`${who}: ${path} is missing`);
  }
  if (size !== p.size) throw new Error(`${who}: ${path} has ${size} bytes, expected ${p.size}`);
  const got = await sha1OfFile(path);
  if (got !== p.sha1) throw new Error(`${who}: ${path} has SHA-1 ${got}, expected ${p.sha1}`);
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

function median(xs: number[]): number {
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
  median: Sample & { mibps: number };
}

/** What a scenario produced: rows, ratios, or why it was skipped. */
export interface ScenarioResult {
  scenario: string;
  title: string;
  /** Set when the scenario could not run (a command is unavailable). */
  skipped?: string;
  clients: ClientResult[];
  /** btfetch / reference, for wall, CPU and peak RSS. */
  ratios?: { vs: string; wall: number; cpu: number; rss: number };
  notes: string[];
}

/** Shared state: options, the payload, the work folder. */
interface Ctx {
  o: BenchOptions;
  work: string;
  payload: Payload;
  log: (s: string) => void;
}

/** A scenario: runs its rounds and returns its rows. Add new ones here. */
type Scenario = (ctx: Ctx) => Promise<ScenarioResult>;

function summarise(client: string, command: string, samples: Sample[], bytes: number): ClientResult {
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
  };
}

function ratiosOf(rows: ClientResult[], me: string, vs: string): ScenarioResult["ratios"] {
  const a = rows.find((r) => r.client === me), b = rows.find((r) => r.client === vs);
  if (!a || !b) return undefined;
  return {
    vs,
    wall: a.median.wallS / b.median.wallS,
    cpu: a.median.cpuS / b.median.cpuS,
    rss: a.median.rssMiB / b.median.rssMiB,
  };
}

/** A long-running python3-libtorrent seeder of the payload (helper seed mode). */
async function startLtSeeder(ctx: Ctx, torrent = ctx.payload.torrent): Promise<{ proc: LineProcess; port: number }> {
  const proc = new LineProcess("libtorrent-seeder", SYSTEM_PYTHON, [
    "-u",
    LT_HELPER,
    "--mode",
    "seed",
    "--torrent",
    torrent,
    "--dir",
    ctx.payload.dir,
  ]);
  try {
    const m = await proc.waitForLine(/^READY (\d+)$/, 300_000);
    return { proc, port: Number(m[1]) };
  } catch (e) {
    await proc.close();
    throw e;
  }
}

const fetchScenario: Scenario = async (ctx) => {
  const { o, payload } = ctx;
  const result: ScenarioResult = {
    scenario: "fetch",
    title: `fetch ${fmtSize(payload.size)} (piece ${fmtSize(o.pieceSize)}) from one python3-libtorrent seeder, ` +
      `${o.rounds} round(s)`,
    clients: [],
    notes: [],
  };
  const clients = o.clients.filter((c) => {
    const missing = c === "libtorrent" ? !haveLibtorrent() : c === "aria2c" ? !haveProgram("aria2c") : false;
    if (missing) result.notes.push(`${c}: not installed, left out`);
    return !missing;
  });
  const bt = btfetchArgv();
  const commands: Record<string, string> = {
    btfetch: `${bt.what} get T -o D --peer 127.0.0.1:S --json --quiet --no-dht`,
    libtorrent: "python3 scripts/_bench_lt.py --mode leech --connect 127.0.0.1:S (exits when complete)",
    aria2c: "aria2c --seed-time=0 --file-allocation=none, DHT/LPD/PEX off (the seeder connects to it)",
  };
  const samples: Record<string, Sample[]> = Object.fromEntries(clients.map((c) => [c, []]));
  const leftovers: string[] = [];
  const seeder = await startLtSeeder(ctx);
  try {
    for (let r = 0; r < o.rounds; r++) {
      const order = clients.map((_, i) => clients[(i + r) % clients.length]);
      for (const c of order) {
        const dir = `${ctx.work}/dl-${c}-${r}`;
        await Deno.mkdir(dir);
        let m: Measured;
        if (c === "btfetch") {
          const args = [...bt.pre, "get", payload.torrent, "-o", dir, "--peer", `127.0.0.1:${seeder.port}`];
          args.push("--json", "--quiet", "--no-dht", "--port", String(freePort()));
          m = await measure(bt.cmd, args, { killAfterMs: o.timeoutMs });
          if (m.code !== 0) throw new Error(`btfetch exited ${m.code}\n${tail(m.stdout)}\n${tail(m.stderr)}`);
        } else if (c === "libtorrent") {
          const args = ["-u", LT_HELPER, "--mode", "leech", "--torrent", payload.torrent, "--dir", dir];
          args.push("--connect", `127.0.0.1:${seeder.port}`, "--max-seconds", String(o.timeoutMs / 1000));
          m = await measure(SYSTEM_PYTHON, args, { killAfterMs: o.timeoutMs });
          if (m.code !== 0 || !/^DONE$/m.test(m.stdout)) {
            throw new Error(`libtorrent leecher exited ${m.code}\n${tail(m.stdout)}\n${tail(m.stderr)}`);
          }
        } else {
          const port = freePort();
          m = await measure("aria2c", [...aria2Args(dir, port, o.timeoutMs / 1000), payload.torrent], {
            killAfterMs: o.timeoutMs,
            onStart: async () => {
              await waitListening(port, 30_000);
              const w = seeder.proc.child.stdin.getWriter();
              await w.write(new TextEncoder().encode(`CONNECT 127.0.0.1:${port}\n`));
              w.releaseLock();
            },
          });
          if (m.code !== 0) throw new Error(`aria2c exited ${m.code}\n${tail(m.stdout)}\n${tail(m.stderr)}`);
        }
        await verifyDownload(payload, `${dir}/${payload.name}`, c);
        samples[c].push(m);
        ctx.log(`fetch round ${r + 1}/${o.rounds} ${c}: ${fmtSample(m)}`);
        // kept until the scenario ends: deleting 1 GiB on a filesystem mounted with `discard` stalls the next
        // round's writes for seconds, at random, whichever client runs next
        leftovers.push(dir);
        await sync();
      }
    }
  } finally {
    await seeder.proc.close();
    for (const d of leftovers) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
  result.clients = clients.map((c) => summarise(c, commands[c], samples[c], payload.size));
  result.ratios = ratiosOf(result.clients, "btfetch", "libtorrent");
  return result;
};

/** Serves a loopback HTTP tracker whose every answer lists 127.0.0.1:`port()`. */
function tinyTracker(port: () => number): { url: string; close(): Promise<void> } {
  const enc = new TextEncoder();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    const p = port();
    const peer = new Uint8Array([127, 0, 0, 1, p >> 8, p & 0xff]);
    const head = enc.encode("d8:intervali1800e12:min intervali60e5:peers6:");
    const body = new Uint8Array(head.length + 6 + 1);
    body.set(head);
    body.set(peer, head.length);
    body[body.length - 1] = 0x65; // "e"
    return new Response(body, { headers: { "content-type": "text/plain" } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/announce`, close: () => server.shutdown() };
}

const seedScenario: Scenario = async (ctx) => {
  const { o, payload } = ctx;
  const result: ScenarioResult = {
    scenario: "seed",
    title: `seed ${fmtSize(payload.size)} (piece ${fmtSize(o.pieceSize)}) to one aria2c downloader per round, ` +
      `${o.rounds} round(s); wall = aria2c's run, CPU/RSS = the seeder's`,
    clients: [],
    notes: [],
  };
  for (const [ok, what] of [[haveProgram("aria2c"), "aria2c"], [haveLibtorrent(), "python3-libtorrent"]] as const) {
    if (!ok) return { ...result, skipped: `${what} is not installed` };
  }
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
  const tracker = tinyTracker(() => seederPort);
  const tracked = `${ctx.work}/tracked.torrent`;
  const leftovers: string[] = [];
  try {
    const t = await makeTorrentWithLibtorrent({
      path: payload.path,
      out: tracked,
      pieceLength: o.pieceSize,
      trackers: [[tracker.url]],
    });
    if (t.infoHash !== payload.infoHash) throw new Error("the tracked torrent has a different info-hash");
    result.notes.push(`aria2c finds the seeder through a loopback HTTP tracker (adds aria2c's ~1 s tick to wall)`);
    const clients = ["btfetch", "libtorrent"].filter((c) => o.clients.includes(c));
    const samples: Record<string, Sample[]> = { btfetch: [], libtorrent: [] };
    for (let r = 0; r < o.rounds; r++) {
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
          const s = await startLtSeeder(ctx);
          proc = s.proc;
          seederPort = s.port;
        }
        const dir = `${ctx.work}/dl-seed-${c}-${r}`;
        await Deno.mkdir(dir);
        try {
          const pid = proc.child.pid;
          const cpu0 = procCpu(pid) ?? 0;
          const m = await measure("aria2c", [...aria2Args(dir, freePort(), o.timeoutMs / 1000), tracked], {
            killAfterMs: o.timeoutMs,
            abortOn: proc.child.status,
          });
          const cpu1 = procCpu(pid), rss = procPeakRss(pid);
          if (proc.exited) throw new Error(`the ${c} seeder exited during the download\n${proc.tail(6)}`);
          if (m.code !== 0) throw new Error(`aria2c exited ${m.code}\n${tail(m.stdout)}\n${proc.tail()}`);
          if (cpu1 === undefined || rss === undefined) throw new Error(`${c} seeder died\n${proc.tail()}`);
          await verifyDownload(payload, `${dir}/${payload.name}`, `aria2c from ${c}`);
          const s: Sample = { wallS: m.wallS, cpuS: cpu1 - cpu0, rssMiB: rss };
          samples[c].push(s);
          ctx.log(`seed round ${r + 1}/${o.rounds} ${c}: ${fmtSample(s)} (aria2c: ${fmtSample(m)})`);
        } finally {
          await proc.close();
          leftovers.push(dir); // removed at the end, as in the fetch scenario
          await Deno.remove(`${payload.dir}/.btfetch`, { recursive: true }).catch(() => {});
          await sync();
        }
      }
    }
    const commands: Record<string, string> = {
      btfetch: `${bt.what} seed T --dir D --port P`,
      libtorrent: "python3 scripts/_bench_lt.py --mode seed",
    };
    result.clients = clients.map((c) => summarise(c, commands[c], samples[c], payload.size));
    result.ratios = ratiosOf(result.clients, "btfetch", "libtorrent");
  } finally {
    await tracker.close();
    for (const d of leftovers) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
  return result;
};

const createScenario: Scenario = async (ctx) => {
  const { o, payload } = ctx;
  const result: ScenarioResult = {
    scenario: "create",
    title: `create a torrent for ${fmtSize(payload.size)} (piece ${fmtSize(o.pieceSize)}), ${o.rounds} round(s)`,
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
    return await measure(cmd, args, { killAfterMs: o.timeoutMs });
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
  result.ratios = ratiosOf(result.clients, "btfetch", "mktorrent");
  return result;
};

/** Every scenario, by name. */
export const SCENARIOS: Record<string, Scenario> = { fetch: fetchScenario, seed: seedScenario, create: createScenario };

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
  const head = ["client", "wall s (median)", "MiB/s", "CPU s", "peak RSS MiB", "runs: wall s"];
  const rows = r.clients.map((c) => [
    c.client,
    c.median.wallS.toFixed(2),
    c.median.mibps.toFixed(0),
    c.median.cpuS.toFixed(2),
    c.median.rssMiB.toFixed(0),
    c.samples.map((s) => s.wallS.toFixed(2)).join(" "),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const fmt = (row: string[]) =>
    row.map((cell, i) => (i === 0 || i === row.length - 1 ? cell.padEnd(w[i]) : cell.padStart(w[i]))).join("  ")
      .trimEnd();
  lines.push(fmt(head), fmt(w.map((n) => "-".repeat(n))), ...rows.map(fmt));
  if (r.ratios) {
    lines.push(
      `btfetch / ${r.ratios.vs}: wall x${r.ratios.wall.toFixed(2)}, CPU x${r.ratios.cpu.toFixed(2)}, ` +
        `peak RSS x${r.ratios.rss.toFixed(2)}`,
    );
  }
  for (const c of r.clients) lines.push(`  ${c.client}: ${c.command}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// Main

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
  const work = await Deno.makeTempDir({ dir: o.workdir, prefix: "btfetch-bench-" });
  const results: ScenarioResult[] = [];
  let code = 0;
  try {
    log(`bench: generating ${fmtSize(o.size)} in ${work} ...`);
    const payload = await makePayload(work, o.size, o.pieceSize);
    await sync();
    log(`bench: payload sha1 ${payload.sha1}, info-hash ${payload.infoHash}; measuring with ${measurementMethod()}`);
    const ctx: Ctx = { o, work, payload, log };
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
      size: o.size,
      pieceSize: o.pieceSize,
      rounds: o.rounds,
      measurement: measurementMethod(),
      btfetch: btfetchArgv().what,
      host: { os: Deno.build.os, arch: Deno.build.arch, deno: Deno.version.deno },
      results,
    }));
  }
  return code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
