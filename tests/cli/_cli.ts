/**
 * Helpers for the CLI tests: temporary folders, directory listings, and running several btfetch children at once.
 * @module
 */
import type { BtEvent, BtfetchResult } from "../interop/_btfetch.ts";

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
