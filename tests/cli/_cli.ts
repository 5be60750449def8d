/**
 * Helpers for the CLI tests: temporary folders, directory listings, and running several btfetch children at once.
 * @module
 */
import type { Metainfo } from "../../lib/metainfo.ts";
import { makeTorrent } from "../_torrent.ts";
import {
  type BtEvent,
  btfetchArgv,
  type BtfetchHandle,
  type BtfetchResult,
  parseEvents,
  REPO_ROOT,
  spawnBtfetch,
} from "../interop/_btfetch.ts";
import { payloadBytes } from "../interop/_peers.ts";

/** Makes a temporary folder, runs `fn` with it, and removes it afterwards. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The names in `dir` (sorted), or null when `dir` does not exist. */
export async function namesIn(dir: string): Promise<string[] | null> {
  try {
    const out: string[] = [];
    for await (const e of Deno.readDir(dir)) out.push(e.name);
    return out.sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Runs `fn` over `items` with at most `limit` running at once; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The `error` events of a run. */
export function errorEvents(r: { events: BtEvent[] }): BtEvent[] {
  return r.events.filter((e) => e.event === "error");
}

/** A short description of a run for assertion messages. */
export function brief(r: BtfetchResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}${r.timedOut ? " [timed out]" : ""}\nstdout: ${
    r.stdout.slice(-2000)
  }\nstderr: ${r.stderr.slice(-2000)}`;
}

/** Bencode written by hand, so tests can make what a canonical encoder never would. */
export const B = {
  /** A byte string from text (UTF-8) or bytes. */
  str(s: string | Uint8Array): Uint8Array {
    const b = typeof s === "string" ? new TextEncoder().encode(s) : s;
    return cat([new TextEncoder().encode(`${b.length}:`), b]);
  },
  int(n: number | bigint): Uint8Array {
    return new TextEncoder().encode(`i${n}e`);
  },
  list(items: Uint8Array[]): Uint8Array {
    return cat([Uint8Array.of(0x6c), ...items, Uint8Array.of(0x65)]);
  },
  /** A dictionary with entries in the order given (not sorted, duplicates kept). */
  dict(entries: [string, Uint8Array][]): Uint8Array {
    return cat([Uint8Array.of(0x64), ...entries.flatMap(([k, v]) => [B.str(k), v]), Uint8Array.of(0x65)]);
  },
};

/** Concatenates byte arrays. */
export function cat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Waits at most `ms` for a spawned btfetch to exit by itself; past that, kills it (SIGKILL) and reports `killed`.
 * Either way the child is reaped and its pipes drained.
 */
export async function exitWithin(
  h: { wait(): Promise<BtfetchResult>; kill(signal?: Deno.Signal): void },
  ms: number,
): Promise<{ result: BtfetchResult; killed: boolean }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = h.wait();
  const late = await Promise.race([
    done.then(() => false),
    new Promise<boolean>((r) => timer = setTimeout(() => r(true), ms)),
  ]);
  clearTimeout(timer);
  if (late) h.kill("SIGKILL");
  return { result: await done, killed: late };
}

/** A single-file torrent written to `dir/t.torrent`, with its payload complete at `dir/data/<name>`. */
export async function torrentWithData(
  dir: string,
  opts: { name?: string; size?: number; seed?: number; pieceLength?: number } = {},
): Promise<{ path: string; dataDir: string; bytes: Uint8Array; meta: Metainfo; payload: Uint8Array }> {
  const t = makeTorrent({
    name: opts.name ?? "payload.bin",
    pieceLength: opts.pieceLength ?? 16 * 1024,
    files: payloadBytes(opts.seed ?? 1, opts.size ?? 300_000),
  });
  await Deno.mkdir(`${dir}/data`, { recursive: true });
  await Deno.writeFile(`${dir}/data/${t.meta.name}`, t.payload);
  await Deno.writeFile(`${dir}/t.torrent`, t.bytes);
  return { path: `${dir}/t.torrent`, dataDir: `${dir}/data`, ...t };
}

/** A `btfetch seed` child (`--json`) and the port it listens on. Always `await stop()`. */
export interface SeedChild {
  readonly port: number;
  readonly handle: BtfetchHandle;
  /** Sends SIGTERM and waits for the exit. */
  stop(): Promise<BtfetchResult>;
}

/** Starts `btfetch seed TORRENT -d DIR` on any free port, offline, and waits until it seeds. */
export async function startSeed(torrent: string, dataDir: string, extra: string[] = []): Promise<SeedChild> {
  const handle = spawnBtfetch(
    ["seed", torrent, "-d", dataDir, "--json", "--no-dht", "--port", "0", ...extra],
    { timeoutMs: 300_000 },
  );
  try {
    const port = (await handle.waitForEvent((e) => e.event === "listening", 30_000)).port as number;
    await handle.waitForEvent((e) => e.event === "seeding", 30_000);
    return {
      port,
      handle,
      async stop() {
        handle.kill("SIGTERM");
        return (await exitWithin(handle, 20_000)).result;
      },
    };
  } catch (e) {
    handle.kill("SIGKILL");
    await handle.wait();
    throw e;
  }
}

/** Runs btfetch with `input` on its standard input. */
export async function runWithStdin(
  args: string[],
  input: Uint8Array,
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<BtfetchResult> {
  const [cmd, argv] = btfetchArgv(args);
  const child = new Deno.Command(cmd, {
    args: argv,
    cwd: opts.cwd ?? REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  try {
    const w = child.stdin.getWriter();
    await w.write(input);
    await w.close();
    const r = await child.output();
    const stdout = new TextDecoder().decode(r.stdout);
    return {
      code: r.code,
      signal: r.signal,
      timedOut: false,
      events: parseEvents(stdout),
      stdout,
      stderr: new TextDecoder().decode(r.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}
