/**
 * Runs the btfetch CLI (`deno run -A main.ts ...`) as a child process for the interop tests, parses its `--json`
 * event lines, and compares downloaded data with the original byte for byte.
 * @module
 */
import { createHash } from "node:crypto";
import { finishPumps, freePort, pumpStream, settleWithin } from "./_peers.ts";

/** The repository root (two levels above this file). */
export const REPO_ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** The CLI entry point. */
export const MAIN_TS = `${REPO_ROOT}/main.ts`;

/**
 * The flags every interop fetch passes: JSON events, no DHT (tests never leave loopback), bounded time, and a free
 * listening port of its own (test files run in parallel). Peers come from the torrent's trackers or `--peer`.
 */
export function fetchFlags(): string[] {
  return ["--json", "--no-dht", "--timeout", "60s", "--stall-timeout", "30s", "--port", String(freePort())];
}

/** One `--json` event line. */
export type BtEvent = Record<string, unknown> & { event?: string; t?: number };

/** What a finished btfetch run produced. */
export interface BtfetchResult {
  /** The exit code (-1 if it was killed by a signal with no code). */
  code: number;
  /** The signal that ended it, if any. */
  signal: Deno.Signal | null;
  /** Whether the harness killed it for running past `timeoutMs`. */
  timedOut: boolean;
  /** Every stdout line that parsed as a JSON object, in order. */
  events: BtEvent[];
  stdout: string;
  stderr: string;
}

/** Options for a btfetch child process. */
export interface BtfetchOptions {
  /** Kill the child (SIGKILL) after this long; default 90 s. */
  timeoutMs?: number;
  cwd?: string;
  /** Extra environment variables (the rest is inherited). */
  env?: Record<string, string>;
}

/**
 * How btfetch is started: `BTFETCH_BIN` from the environment if set (a built binary, or a bundle wrapper, to run the
 * interop suite against a release artefact), else `deno run -A main.ts`.
 */
export function btfetchArgv(args: string[]): [string, string[]] {
  args = offline(args);
  const bin = Deno.env.get("BTFETCH_BIN");
  if (bin) return [bin, args];
  return [Deno.execPath(), ["run", "-A", `--config=${REPO_ROOT}/deno.json`, MAIN_TS, ...args]];
}

/** Commands that never touch the DHT. */
const NO_DHT_COMMANDS = new Set(["info", "verify", "create", "magnet", "demo", "help", "version", "completion"]);

/**
 * Tests never reach the public DHT: a `get` or `seed` that names no DHT flag of its own (`--no-dht`,
 * `--dht-bootstrap` with loopback nodes) gets `--no-dht`.
 */
export function offline(args: readonly string[]): string[] {
  const out = [...args];
  if (out.length === 0 || NO_DHT_COMMANDS.has(out[0])) return out;
  if (out.some((a) => a === "--help" || a === "-h" || a === "--version" || a === "-V" || a === "--")) return out;
  if (out.some((a) => a === "--no-dht" || a.startsWith("--dht-bootstrap"))) return out;
  out.push("--no-dht");
  return out;
}

function btfetchCommand(args: string[], opts: BtfetchOptions, stdin: "piped" | "null"): Deno.Command {
  const [cmd, argv] = btfetchArgv(args);
  return new Deno.Command(cmd, {
    args: argv,
    cwd: opts.cwd ?? REPO_ROOT,
    env: { NO_COLOR: "1", ...(opts.env ?? {}) },
    stdin,
    stdout: "piped",
    stderr: "piped",
  });
}

/** Parses JSON lines; lines that are not JSON objects are ignored. */
export function parseEvents(stdout: string): BtEvent[] {
  const out: BtEvent[] = [];
  for (const line of stdout.split("\n")) {
    const ev = parseEventLine(line);
    if (ev) out.push(ev);
  }
  return out;
}

function parseEventLine(line: string): BtEvent | undefined {
  const s = line.trim();
  if (!s.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(s);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? v as BtEvent : undefined;
  } catch {
    return undefined;
  }
}

/** A running btfetch process whose events can be watched as they arrive. */
export interface BtfetchHandle {
  child: Deno.ChildProcess;
  /** Every event so far. */
  readonly events: BtEvent[];
  /** stdout and stderr so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Calls `cb` for every event, including those already seen. */
  onEvent(cb: (ev: BtEvent) => void): void;
  /** Events as they arrive, from the first; ends when the process's stdout ends. */
  [Symbol.asyncIterator](): AsyncIterator<BtEvent>;
  /** Waits for the first event satisfying `pred` (checked against past events too); throws on timeout or exit. */
  waitForEvent(pred: (ev: BtEvent) => boolean, timeoutMs: number): Promise<BtEvent>;
  /** Sends a signal (ignored if the process has exited). */
  kill(signal?: Deno.Signal): void;
  /** Waits for exit (killing it after the handle's timeout) and for the pipes to drain. */
  wait(): Promise<BtfetchResult>;
}

/** Starts `btfetch ARGS` and returns a handle on it. Always `await handle.wait()` (e.g. in `finally`). */
export function spawnBtfetch(args: string[], opts: BtfetchOptions = {}): BtfetchHandle {
  const timeoutMs = opts.timeoutMs ?? 90_000;
  const child = btfetchCommand(args, opts, "null").spawn();
  const events: BtEvent[] = [];
  const listeners: Array<(ev: BtEvent) => void> = [];
  let wakers: Array<() => void> = [];
  let stdout = "";
  let stderr = "";
  let ended = false;
  let exited = false;
  let timedOut = false;
  const wake = () => {
    const ws = wakers;
    wakers = [];
    for (const w of ws) w();
  };

  let buf = "";
  const take = (line: string) => {
    const ev = parseEventLine(line);
    if (!ev) return;
    events.push(ev);
    for (const l of listeners) l(ev);
  };
  const pumpOut = pumpStream(child.stdout, (s, end) => {
    stdout += s;
    buf += s;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      take(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    if (end) {
      take(buf);
      buf = "";
      ended = true;
    }
    wake();
  });
  const pumpErr = pumpStream(child.stderr, (s) => {
    stderr += s;
  });

  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
  }, timeoutMs);
  const status = child.status.then((s) => {
    exited = true;
    clearTimeout(timer);
    wake();
    return s;
  });
  let result: Promise<BtfetchResult> | undefined;

  const handle: BtfetchHandle = {
    child,
    events,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    onEvent(cb) {
      for (const ev of events) cb(ev);
      listeners.push(cb);
    },
    [Symbol.asyncIterator]() {
      let i = 0;
      return {
        async next(): Promise<IteratorResult<BtEvent>> {
          while (true) {
            if (i < events.length) return { value: events[i++], done: false };
            if (ended) return { value: undefined, done: true };
            await new Promise<void>((r) => wakers.push(r));
          }
        },
      };
    },
    async waitForEvent(pred, waitMs) {
      const deadline = Date.now() + waitMs;
      let i = 0;
      while (true) {
        for (; i < events.length; i++) if (pred(events[i])) return events[i];
        if (ended || exited) {
          await settleWithin(pumpOut.done, 500);
          for (; i < events.length; i++) if (pred(events[i])) return events[i];
          if (ended) {
            throw new Error(`btfetch ended without the awaited event\nstdout:\n${stdout}\nstderr:\n${stderr}`);
          }
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(
            `timed out after ${waitMs} ms waiting for a btfetch event\nstdout:\n${stdout}\nstderr:\n${stderr}`,
          );
        }
        let t: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((r) => {
          wakers.push(r);
          t = setTimeout(r, Math.min(left, 1000));
        });
        clearTimeout(t);
      }
    },
    kill(signal: Deno.Signal = "SIGTERM") {
      if (exited) return;
      try {
        child.kill(signal);
      } catch {
        // gone
      }
    },
    wait() {
      result ??= (async () => {
        const st = await status;
        await finishPumps([pumpOut, pumpErr]);
        return {
          code: st.signal !== null && st.code === 0 ? -1 : st.code,
          signal: st.signal,
          timedOut,
          events,
          stdout,
          stderr,
        };
      })();
      return result;
    },
  };
  return handle;
}

/** Runs `btfetch ARGS` to completion (killed after `timeoutMs`, default 90 s). */
export async function runBtfetch(args: string[], opts: BtfetchOptions = {}): Promise<BtfetchResult> {
  return await spawnBtfetch(args, opts).wait();
}

/** A one-line summary of a run for assertion messages (exit code, last events, stderr tail). */
export function describeRun(r: BtfetchResult): string {
  const evs = r.events.filter((e) => e.event !== "progress").slice(-15).map((e) => JSON.stringify(e)).join("\n");
  const err = r.stderr.split("\n").slice(-20).join("\n");
  return `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ""}${r.timedOut ? " [killed: timeout]" : ""}\n` +
    `events:\n${evs}\nstderr tail:\n${err}`;
}

/** The events named `name`. */
export function eventsOf(r: { events: BtEvent[] }, name: string): BtEvent[] {
  return r.events.filter((e) => e.event === name);
}

/** Hex digest of a file's bytes (streamed). */
export async function hashFile(path: string, algo: "sha1" | "sha256" = "sha256"): Promise<string> {
  const h = createHash(algo);
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  while (true) {
    const n = await f.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}

/** SHA-256 of a file, hex. */
export function sha256File(path: string): Promise<string> {
  return hashFile(path, "sha256");
}

/** SHA-1 of a file, hex. */
export function sha1File(path: string): Promise<string> {
  return hashFile(path, "sha1");
}

/** Lists regular files under `dir` as sorted relative paths, skipping names for which `skip` is true. */
export async function listTree(dir: string, skip: (name: string) => boolean = () => false): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel === "" ? dir : `${dir}/${rel}`)) {
      if (skip(e.name)) continue;
      const p = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile) out.push(p);
      else throw new Error(`unexpected non-file entry ${dir}/${p}`);
    }
  };
  await walk("");
  return out.sort();
}

/**
 * Asserts that `actual` holds exactly the same regular files as `expected`, byte for byte. A path may be a single
 * file (then both must be files). Names starting with `.btfetch` and ending in `.aria2` are ignored by default.
 */
export async function assertSameTree(
  expected: string,
  actual: string,
  skip: (name: string) => boolean = (n) => n.startsWith(".btfetch") || n.endsWith(".aria2"),
): Promise<void> {
  const se = await Deno.stat(expected);
  let sa: Deno.FileInfo;
  try {
    sa = await Deno.stat(actual);
  } catch (e) {
    throw new Error(`assertSameTree: ${actual} missing (${e instanceof Error ? e.message : e})`);
  }
  if (se.isFile) {
    if (!sa.isFile) throw new Error(`assertSameTree: ${actual} is not a file`);
    await assertSameFile(expected, actual);
    return;
  }
  if (!sa.isDirectory) throw new Error(`assertSameTree: ${actual} is not a directory`);
  const [a, b] = [await listTree(expected, skip), await listTree(actual, skip)];
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(
      `assertSameTree: file lists differ\nexpected: ${JSON.stringify(a)}\nactual:   ${JSON.stringify(b)}`,
    );
  }
  for (const p of a) await assertSameFile(`${expected}/${p}`, `${actual}/${p}`);
}

async function assertSameFile(expected: string, actual: string): Promise<void> {
  const [se, sa] = [await Deno.stat(expected), await Deno.stat(actual)];
  if (se.size !== sa.size) throw new Error(`assertSameTree: ${actual} has ${sa.size} bytes, expected ${se.size}`);
  const [he, ha] = [await sha256File(expected), await sha256File(actual)];
  if (he !== ha) throw new Error(`assertSameTree: ${actual} differs from ${expected} (same size ${se.size})`);
}

/**
 * Asserts a fetch succeeded: exit 0, no `error` event, a `metadata` event, and a sane `done` event (`downloaded` at
 * least the payload, `verified` equal to it, `wasted` small, numeric `uploaded` and `elapsed_ms`). Returns `done`.
 */
export function assertFetchOk(r: BtfetchResult, expect: { size: number; pieceLength: number }): BtEvent {
  const fail = (msg: string): never => {
    throw new Error(`${msg}\n${describeRun(r)}`);
  };
  if (r.timedOut) fail("btfetch was killed for running too long");
  if (r.code !== 0) fail(`btfetch exited ${r.code}, expected 0`);
  const errors = eventsOf(r, "error");
  if (errors.length > 0) fail(`btfetch reported error events: ${JSON.stringify(errors)}`);
  for (const e of r.events) {
    if (typeof e.event !== "string" || typeof e.t !== "number") fail(`bad event ${JSON.stringify(e)}`);
  }
  if (eventsOf(r, "metadata").length === 0) fail("no metadata event");
  const dones = eventsOf(r, "done");
  if (dones.length !== 1) fail(`expected exactly one done event, got ${dones.length}`);
  const done = dones[0];
  for (const k of ["downloaded", "uploaded", "wasted", "verified", "elapsed_ms"]) {
    const v = done[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) fail(`done.${k} is not a non-negative number`);
  }
  const n = (k: string) => done[k] as number;
  if (n("downloaded") < expect.size) fail(`done.downloaded ${n("downloaded")} < payload ${expect.size}`);
  if (n("verified") !== expect.size) fail(`done.verified ${n("verified")} != payload ${expect.size}`);
  const wastedMax = Math.max(4 * expect.pieceLength, expect.size / 10);
  if (n("wasted") > wastedMax) fail(`done.wasted ${n("wasted")} > ${wastedMax}`);
  if (n("downloaded") > expect.size + wastedMax) fail(`done.downloaded ${n("downloaded")} far above payload`);
  return done;
}

/** Whether any `peer` event names 127.0.0.1:`port` (as an `addr`-like string, or `ip`/`host` plus `port` fields). */
export function sawPeer(r: { events: BtEvent[] }, port: number): boolean {
  return eventsOf(r, "peer").some((e) =>
    e.port === port || Object.values(e).some((v) => typeof v === "string" && v.endsWith(`:${port}`))
  );
}
