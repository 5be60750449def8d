/**
 * Real BitTorrent peers for the interop tests: a python3-libtorrent seeder/leecher (`lt_seed.py`) and an aria2c
 * seeder, all on 127.0.0.1 with DHT, local peer discovery, UPnP/NAT-PMP, uTP and PEX off. Every wait is bounded and
 * every `close()` kills the process and drains its pipes, so `deno test`'s sanitizers pass.
 * @module
 */

/** Debian's python, which python3-libtorrent is built for (not the pyenv `python3` on PATH). */
export const SYSTEM_PYTHON = "/usr/bin/python3";

const LT_SCRIPT = new URL("./lt_seed.py", import.meta.url).pathname;

/** True when running under CI (`CI=true`): a missing external program is then a failure, not a skip. */
export const IN_CI = Deno.env.get("CI") === "true";

/** Whether an executable exists (an absolute path, or a name looked up on PATH). */
export function haveProgram(name: string): boolean {
  const dirs = name.includes("/") ? [""] : (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
  for (const d of dirs) {
    try {
      const st = Deno.statSync(d === "" ? name : `${d}/${name}`);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** Whether `/usr/bin/python3 -c "import libtorrent"` works. */
export function haveLibtorrent(): boolean {
  if (!haveProgram(SYSTEM_PYTHON)) return false;
  try {
    const r = new Deno.Command(SYSTEM_PYTHON, { args: ["-c", "import libtorrent"], stdout: "null", stderr: "null" })
      .outputSync();
    return r.success;
  } catch {
    return false;
  }
}

/**
 * The `ignore` value for an interop test that needs `programs`: skip when one is missing, except under `CI=true`,
 * where the test runs (and fails with {@link requirePrograms}).
 */
export function ignoreUnless(...programs: string[]): boolean {
  if (IN_CI) return false;
  return missingPrograms(programs).length > 0;
}

/** Throws when a program the test needs is missing (use at the start of the test body). */
export function requirePrograms(...programs: string[]): void {
  const missing = missingPrograms(programs);
  if (missing.length > 0) throw new Error(`interop test needs missing program(s): ${missing.join(", ")}`);
}

function missingPrograms(programs: string[]): string[] {
  return programs.filter((p) => p === "libtorrent" ? !haveLibtorrent() : !haveProgram(p));
}

/** A free TCP port on 127.0.0.1 (listen on port 0, read the port, close). */
/**
 * The aria2c flags every run here starts with: its directory and port, bound to 127.0.0.1, and everything that
 * reaches beyond loopback (IPv6, DHT, local peer discovery, peer exchange) off.
 */
export function aria2LoopbackArgs(dir: string, port: number): string[] {
  return [
    `--dir=${dir}`,
    `--listen-port=${port}`,
    "--interface=127.0.0.1",
    "--disable-ipv6=true",
    "--enable-dht=false",
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
  ];
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for `p` but at most `ms` milliseconds (leaves no timer behind). */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p.then(() => {}, () => {}), new Promise<void>((r) => timer = setTimeout(r, ms))]);
  clearTimeout(timer);
}

/** Polls `cond` every `everyMs` until it is true; throws `what` after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A running reader of a child's output pipe. */
export interface Pump {
  /** Settles when the pipe reaches its end (or is cancelled). */
  done: Promise<void>;
  /** Cancels the read and waits for `done`. */
  cancel(): Promise<void>;
}

/** Reads `stream` as text, calling `onText` per chunk and once more with `end` true at the end. */
export function pumpStream(stream: ReadableStream<Uint8Array>, onText: (text: string, end: boolean) => void): Pump {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  const done = (async () => {
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        onText(dec.decode(value, { stream: true }), false);
      }
    } catch {
      // cancelled or errored: nothing more to read
    }
    onText(dec.decode(), true);
    try {
      reader.releaseLock();
    } catch {
      // already released
    }
  })();
  return {
    done,
    async cancel() {
      try {
        await reader.cancel();
      } catch {
        // already done
      }
      await done;
    },
  };
}

/**
 * Waits for output pumps to reach the end of their pipes after the child exited; cancels them after `graceMs` (a
 * grandchild may still hold a pipe open).
 */
export async function finishPumps(pumps: Pump[], graceMs = 2000): Promise<void> {
  const all = Promise.all(pumps.map((p) => p.done));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = await Promise.race([
    all.then(() => false),
    new Promise<boolean>((r) => timer = setTimeout(() => r(true), graceMs)),
  ]);
  clearTimeout(timer);
  if (late) await Promise.all(pumps.map((p) => p.cancel()));
}

/** A child process whose stdout and stderr are read line by line as they arrive. */
export class LineProcess {
  readonly child: Deno.ChildProcess;
  /** Every stdout line so far. */
  readonly lines: string[] = [];
  /** Every stderr line so far. */
  readonly errLines: string[] = [];
  #pumps: Pump[];
  #waiters: Array<() => void> = [];
  #exited = false;
  #status: Promise<Deno.CommandStatus>;
  readonly name: string;
  /** How it ended, once it has. */
  exitStatus: Deno.CommandStatus | null = null;

  constructor(name: string, cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
    this.name = name;
    this.child = new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      env: opts.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#pumps = [this.#pump(this.child.stdout, this.lines), this.#pump(this.child.stderr, this.errLines)];
    this.#status = this.child.status.then((s) => {
      this.exitStatus = s;
      this.#exited = true;
      this.#wake();
      return s;
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  #pump(stream: ReadableStream<Uint8Array>, into: string[]): Pump {
    let buf = "";
    return pumpStream(stream, (s, end) => {
      buf += s;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        into.push(buf.slice(0, i).replace(/\r$/, ""));
        buf = buf.slice(i + 1);
      }
      if (end && buf !== "") into.push(buf);
      this.#wake();
    });
  }

  #wake(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }

  /** Waits for a stdout line matching `re` and returns its match; throws on timeout or if the process exits first. */
  /** Writes one line (a command to a helper script) to the process's standard input. */
  async tell(line: string): Promise<void> {
    const w = this.child.stdin.getWriter();
    try {
      await w.write(new TextEncoder().encode(`${line}\n`));
    } finally {
      w.releaseLock();
    }
  }

  async waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let from = 0;
    while (true) {
      for (; from < this.lines.length; from++) {
        const m = this.lines[from].match(re);
        if (m) return m;
      }
      if (this.#exited) {
        await settleWithin(Promise.all(this.#pumps.map((p) => p.done)), 500);
        for (; from < this.lines.length; from++) {
          const m = this.lines[from].match(re);
          if (m) return m;
        }
        const st = this.exitStatus;
        const how = st ? (st.signal ? `on signal ${st.signal}` : `with code ${st.code}`) : "";
        throw new Error(`${this.name} exited ${how} before printing ${re}\n${this.tail()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${re}\n${this.tail()}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        timer = setTimeout(r, Math.min(left, 1000));
      });
      clearTimeout(timer);
    }
  }

  /** The last lines of output, for error messages. */
  tail(n = 30): string {
    return `--- ${this.name} stdout ---\n${this.lines.slice(-n).join("\n")}\n--- ${this.name} stderr ---\n${
      this.errLines.slice(-n).join("\n")
    }`;
  }

  /** Closes stdin, sends SIGTERM, then SIGKILL after `graceMs`; waits for exit and for the pipes to drain. */
  async close(graceMs = 3000): Promise<Deno.CommandStatus> {
    try {
      await this.child.stdin.close();
    } catch {
      // already closed
    }
    if (!this.#exited) {
      try {
        this.child.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((r) => {
      timer = setTimeout(() => {
        try {
          this.child.kill("SIGKILL");
        } catch {
          // already gone
        }
        r();
      }, graceMs);
    });
    const st = await Promise.race([this.#status, killed.then(() => this.#status)]);
    clearTimeout(timer);
    await finishPumps(this.#pumps);
    return st;
  }
}

/** A running real peer. */
export interface RealPeer {
  /** Its BitTorrent TCP port on 127.0.0.1. */
  port: number;
  /** The process, with its output lines so far (for diagnostics). */
  proc: LineProcess;
  /** Stops it (bounded) and releases its pipes. */
  close(): Promise<void>;
}

/**
 * Starts a python3-libtorrent seeder for `torrent`, whose data is at `dataDir/<name>`. Resolves once it has checked
 * the data and is seeding (and, with `trackerOk`, once its tracker has answered an announce).
 */
export async function startLibtorrentSeeder(opts: {
  torrent: string;
  dataDir: string;
  port?: number;
  trackerOk?: boolean;
  /** Upload limit in bytes/s (applied to loopback peers too); default unlimited. */
  uploadRate?: number;
  timeoutMs?: number;
}): Promise<RealPeer> {
  const args = [LT_SCRIPT, "--torrent", opts.torrent, "--dir", opts.dataDir, "--port", String(opts.port ?? 0)];
  if (opts.trackerOk) args.push("--tracker-ok");
  if (opts.uploadRate) args.push("--upload-rate", String(opts.uploadRate));
  return await startLt("libtorrent-seeder", args, opts.timeoutMs ?? 30_000);
}

/**
 * Starts a python3-libtorrent leecher that downloads `torrent` into `dataDir` (from its trackers and from `connect`
 * peers). Resolves once it listens; `waitDone()` resolves once it has every piece.
 */
export async function startLibtorrentLeecher(opts: {
  torrent: string;
  dataDir: string;
  port?: number;
  connect?: string[];
  timeoutMs?: number;
}): Promise<RealPeer & { waitDone(timeoutMs: number): Promise<void> }> {
  const args = [LT_SCRIPT, "--mode", "leech", "--torrent", opts.torrent, "--dir", opts.dataDir];
  args.push("--port", String(opts.port ?? 0));
  for (const c of opts.connect ?? []) args.push("--connect", c);
  const peer = await startLt("libtorrent-leecher", args, opts.timeoutMs ?? 30_000);
  return {
    ...peer,
    async waitDone(timeoutMs: number) {
      await peer.proc.waitForLine(/^DONE$/, timeoutMs);
    },
  };
}

async function startLt(name: string, args: string[], timeoutMs: number, retried = false): Promise<RealPeer> {
  const proc = new LineProcess(name, SYSTEM_PYTHON, ["-u", ...args]);
  try {
    const m = await proc.waitForLine(/^READY (\d+)$/, timeoutMs);
    return {
      port: Number(m[1]),
      proc,
      async close() {
        await proc.close();
      },
    };
  } catch (e) {
    await proc.close();
    // seen once in CI: python3-libtorrent gone within 300 ms of its start without a line on stdout or stderr (a crash
    // in the extension): one more start, said on stderr; a second such end, or any other failure, is the test's
    if (!retried && proc.exited && proc.lines.length === 0 && proc.errLines.length === 0) {
      console.error(`${name}: ${e instanceof Error ? e.message.split("\n")[0] : e}; starting it once more`);
      return await startLt(name, args, timeoutMs, true);
    }
    throw e;
  }
}

/** The `[uploaded, downloaded]` payload byte counts a libtorrent peer last printed (`STATS` lines), or `[0, 0]`. */
export function libtorrentStats(peer: RealPeer): [number, number] {
  for (let i = peer.proc.lines.length - 1; i >= 0; i--) {
    const m = peer.proc.lines[i].match(/^STATS (\d+) (\d+)$/);
    if (m) return [Number(m[1]), Number(m[2])];
  }
  return [0, 0];
}

/** A status answer from aria2's JSON-RPC `aria2.tellActive`. */
export interface Aria2Status {
  status: string;
  completedLength: string;
  totalLength: string;
  uploadLength: string;
  seeder?: string;
  numSeeders?: string;
  connections?: string;
}

async function aria2Rpc<T>(rpcPort: number, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${rpcPort}/jsonrpc`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: "t", method, params }),
    signal: AbortSignal.timeout(2000),
  });
  const body = await res.json();
  if (body.error) throw new Error(`aria2 ${method}: ${JSON.stringify(body.error)}`);
  return body.result as T;
}

/**
 * Starts an aria2c seeder for `torrent`, whose data is at `dataDir/<name>` (aria2 may write a `<name>.aria2` control
 * file next to it, so give it its own copy). aria2 checks the data first (`--check-integrity`) and only seeds what
 * verifies. Resolves once aria2 reports itself a seeder over its loopback JSON-RPC.
 */
export async function startAria2Seeder(opts: {
  torrent: string;
  dataDir: string;
  port?: number;
  /** Upload limit in bytes/s; default unlimited. */
  uploadRate?: number;
  timeoutMs?: number;
  extraArgs?: string[];
}): Promise<RealPeer & { rpcPort: number; status(): Promise<Aria2Status | undefined> }> {
  const port = opts.port ?? freePort();
  const rpcPort = freePort();
  const args = [
    ...aria2LoopbackArgs(opts.dataDir, port),
    "--bt-external-ip=127.0.0.1",
    "--check-integrity=true",
    "--bt-seed-unverified=false",
    "--bt-hash-check-seed=true",
    "--seed-ratio=0.0",
    "--file-allocation=none",
    "--allow-overwrite=false",
    "--auto-file-renaming=false",
    "--bt-save-metadata=false",
    "--bt-max-peers=0",
    "--bt-tracker-connect-timeout=5",
    "--bt-tracker-timeout=5",
    `--max-overall-upload-limit=${opts.uploadRate ?? 0}`,
    "--enable-rpc=true",
    "--rpc-listen-all=false",
    `--rpc-listen-port=${rpcPort}`,
    `--stop-with-process=${Deno.pid}`,
    "--stop=600",
    "--summary-interval=0",
    "--show-console-readout=false",
    "--console-log-level=notice",
    "--no-conf=true",
    ...(opts.extraArgs ?? []),
    opts.torrent,
  ];
  const proc = new LineProcess("aria2c-seeder", "aria2c", args);
  const status = async (): Promise<Aria2Status | undefined> => {
    const active = await aria2Rpc<Aria2Status[]>(rpcPort, "aria2.tellActive");
    return active[0];
  };
  try {
    let last: Aria2Status | undefined;
    await waitFor(
      async () => {
        if (proc.exited) throw new Error(`aria2c exited early\n${proc.tail()}`);
        try {
          last = await status();
        } catch {
          return false; // RPC not up yet
        }
        return last?.seeder === "true" && last.completedLength === last.totalLength;
      },
      opts.timeoutMs ?? 30_000,
      `aria2c to seed (last status ${JSON.stringify(last)})`,
      200,
    );
    return {
      port,
      rpcPort,
      proc,
      status,
      async close() {
        await proc.close();
      },
    };
  } catch (e) {
    await proc.close();
    throw new Error(`${e instanceof Error ? e.message : e}\n${proc.tail()}`);
  }
}

const LT_MAKE_TORRENT = `
import hashlib, json, sys
import libtorrent as lt
o = json.loads(sys.argv[1])
fs = lt.file_storage()
lt.add_files(fs, o["path"])
ct = lt.create_torrent(fs, o["pieceLength"], flags=lt.create_torrent.v1_only)
for tier, urls in enumerate(o.get("trackers", [])):
    for u in urls:
        ct.add_tracker(u, tier)
for u in o.get("urlList", []):
    ct.add_url_seed(u)
if o.get("private"):
    ct.set_priv(True)
ct.set_creator("btfetch interop (libtorrent %s)" % lt.__version__)
import os
lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(o["path"])))
e = ct.generate()
info = e[b"info"]
want = o.get("infoHashByte")
tries = 0
if want is not None:
    while bytes([want]) not in hashlib.sha1(lt.bencode(info)).digest():
        tries += 1
        if tries > 5000:
            sys.exit("no info-hash with byte %d in 5000 tries" % want)
        if o.get("vary") == "name":
            info[b"name"] = ("%s-%d" % (o["baseName"], tries)).encode()
        else:
            info[b"x-btfetch-nonce"] = tries
data = lt.bencode(e)
with open(o["out"], "wb") as f:
    f.write(data)
print(json.dumps({"infoHash": hashlib.sha1(lt.bencode(info)).hexdigest(), "name": info[b"name"].decode(), "tries": tries}))
`;

/** What {@link makeTorrentWithLibtorrent} made. */
export interface MadeTorrent {
  /** The .torrent file written. */
  path: string;
  /** Hex SHA-1 of the info dictionary. */
  infoHash: string;
  /** The torrent's name (with `vary: "name"`, the name it settled on). */
  name: string;
}

/**
 * Writes a v1 .torrent for the file or folder at `path` using python3-libtorrent's `create_torrent` (a different
 * implementation from btfetch's, which is the point of interop). `trackers` is a list of tiers. With `infoHashByte`,
 * varies the info dictionary (an extra `x-btfetch-nonce` key, or with `vary: "name"` the name of a single-file torrent,
 * as `<baseName>-<n>`) until its SHA-1 contains that byte; the caller renames the data to the returned `name`.
 */
export async function makeTorrentWithLibtorrent(opts: {
  path: string;
  out: string;
  pieceLength: number;
  trackers?: string[][];
  urlList?: string[];
  private?: boolean;
  infoHashByte?: number;
  vary?: "nonce" | "name";
  baseName?: string;
}): Promise<MadeTorrent> {
  const r = await new Deno.Command(SYSTEM_PYTHON, {
    args: ["-c", LT_MAKE_TORRENT, JSON.stringify(opts)],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`libtorrent create_torrent failed: ${err}`);
  const j = JSON.parse(new TextDecoder().decode(r.stdout));
  return { path: opts.out, infoHash: j.infoHash, name: j.name };
}

/** Writes `files` (relative path -> bytes) under `root`, creating folders; returns `root`. */
export async function writeTree(root: string, files: Array<[string, Uint8Array]>): Promise<string> {
  for (const [rel, data] of files) {
    const p = `${root}/${rel}`;
    await Deno.mkdir(p.slice(0, p.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(p, data);
  }
  return root;
}

/** Copies a file or folder tree (`cp -a`), e.g. to give each seeder its own copy of the data. */
export async function copyTree(from: string, to: string): Promise<void> {
  const r = await new Deno.Command("cp", { args: ["-a", from, to], stdout: "null", stderr: "piped" }).output();
  if (!r.success) throw new Error(`cp -a ${from} ${to}: ${new TextDecoder().decode(r.stderr)}`);
}

/** 1 MiB. */
export const MiB = 1 << 20;

/** Deterministic pseudo-random bytes (xorshift, 4 bytes per step: fast enough for a few MiB). */
export function payloadBytes(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = (seed >>> 0) || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
    out[i + 1] = (s >>> 8) & 0xff;
    out[i + 2] = (s >>> 16) & 0xff;
    out[i + 3] = s >>> 24;
  }
  for (; i < n; i++) out[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
}

/** A payload on disk: `dir/name` is the file (single-file) or folder (multi-file) a torrent describes. */
export interface Payload {
  /** The parent folder (a seeder's `dataDir`). */
  dir: string;
  name: string;
  /** `dir/name`. */
  path: string;
  /** Total bytes. */
  size: number;
}

/** Writes a single file `dir/name` of `size` pseudo-random bytes. */
export async function writeSingleFilePayload(dir: string, name: string, size: number, seed = 1): Promise<Payload> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(`${dir}/${name}`, payloadBytes(seed, size));
  return { dir, name, path: `${dir}/${name}`, size };
}

/** Writes a folder `dir/name` holding `files` (relative path, size) of pseudo-random bytes. */
export async function writeMultiFilePayload(
  dir: string,
  name: string,
  files: Array<[string, number]>,
  seed = 1,
): Promise<Payload> {
  await writeTree(`${dir}/${name}`, files.map(([p, n], i) => [p, payloadBytes(seed + i, n)]));
  return { dir, name, path: `${dir}/${name}`, size: files.reduce((a, [, n]) => a + n, 0) };
}

/**
 * The multi-file layout the fetch tests use: odd sizes, an empty file, files sharing pieces, a nested folder and a
 * short last piece.
 */
export const MULTI_FILES: Array<[string, number]> = [
  ["empty.txt", 0],
  ["one.bin", 1],
  ["sub/a-16383.bin", 16383],
  ["sub/b-16385.bin", 16385],
  ["sub/deeper/c-100000.bin", 100000],
  ["big-3MiB+7.bin", 3 * MiB + 7],
  ["tail-5.bin", 5],
];

/**
 * Makes a torrent for `payload` announcing to a tracker that only exists once the info-hash is known: makes it
 * without trackers first (same info-hash), calls `startTracker(infoHash)`, then writes the final torrent with the
 * returned URL tiers.
 */
export async function makeTrackedTorrent<T extends { close(): Promise<void> }>(opts: {
  payload: Payload;
  out: string;
  pieceLength: number;
  startTracker: (infoHash: string) => Promise<T>;
  trackers: (tracker: T) => string[][];
}): Promise<{ torrent: MadeTorrent; tracker: T }> {
  const pre = await makeTorrentWithLibtorrent({
    path: opts.payload.path,
    out: opts.out,
    pieceLength: opts.pieceLength,
  });
  const tracker = await opts.startTracker(pre.infoHash);
  try {
    const torrent = await makeTorrentWithLibtorrent({
      path: opts.payload.path,
      out: opts.out,
      pieceLength: opts.pieceLength,
      trackers: opts.trackers(tracker),
    });
    if (torrent.infoHash !== pre.infoHash) throw new Error("info-hash changed when adding trackers");
    return { torrent, tracker };
  } catch (e) {
    await tracker.close();
    throw e;
  }
}

/** The hex info-hash of a .torrent file, as python3-libtorrent computes it. */
export async function infoHashOf(torrentPath: string): Promise<string> {
  const r = await new Deno.Command(SYSTEM_PYTHON, {
    args: ["-c", "import libtorrent as lt, sys; print(str(lt.torrent_info(sys.argv[1]).info_hash()))", torrentPath],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`libtorrent could not read ${torrentPath}: ${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout).trim();
}

/** Runs `mktorrent` (piece length 2^`pieceLengthLog2`, 15..28) for `path`, announcing to `announce` if given. */
export async function makeTorrentWithMktorrent(opts: {
  path: string;
  out: string;
  pieceLengthLog2: number;
  announce?: string[];
}): Promise<MadeTorrent> {
  const args = ["-l", String(opts.pieceLengthLog2), "-o", opts.out, "-c", "btfetch interop (mktorrent)"];
  for (const a of opts.announce ?? []) args.push("-a", a);
  await Deno.remove(opts.out).catch(() => {});
  const r = await new Deno.Command("mktorrent", { args: [...args, opts.path], stdout: "piped", stderr: "piped" })
    .output();
  if (!r.success) throw new Error(`mktorrent failed: ${new TextDecoder().decode(r.stderr)}`);
  return {
    path: opts.out,
    infoHash: await infoHashOf(opts.out),
    name: opts.path.slice(opts.path.lastIndexOf("/") + 1),
  };
}
