/**
 * Helpers for the btfetch-only swarm tests: torrents made with btfetch's own `createTorrent`, `btfetch seed` and
 * `btfetch get` children whose listening port is known, bounded stops, and who-sent-what from `done` events.
 * @module
 */
import { type CreateOptions, createTorrent } from "../../lib/create.ts";
import { type BtEvent, type BtfetchHandle, type BtfetchResult, describeRun, spawnBtfetch } from "./_btfetch.ts";
import { freePort } from "./_peers.ts";

/** A torrent written to disk by btfetch's library. */
export interface BtTorrent {
  readonly path: string;
  readonly infoHash: string;
  readonly pieceLength: number;
  readonly size: number;
}

/** Writes a .torrent for `dataPath` with btfetch's `createTorrent`. */
export async function makeBtTorrent(dataPath: string, out: string, o: CreateOptions = {}): Promise<BtTorrent> {
  const { bytes, meta } = await createTorrent(dataPath, o);
  await Deno.writeFile(out, bytes);
  return { path: out, infoHash: meta.infoHashHex, pieceLength: meta.pieceLength, size: meta.totalLength };
}

/** A running btfetch child with the port it listens on. */
export interface Running {
  readonly handle: BtfetchHandle;
  readonly port: number;
}

/**
 * Starts `btfetch seed TORRENT --dir DIR --json --port P ...extra` and waits (bounded) until it listens.
 * On failure the child is killed and reaped before the error is thrown.
 */
export async function startBtSeed(torrent: string, dir: string, extra: string[] = []): Promise<Running> {
  const port = freePort();
  const handle = spawnBtfetch(["seed", torrent, "--dir", dir, "--json", "--port", String(port), ...extra], {
    timeoutMs: 180_000,
  });
  try {
    await handle.waitForEvent((e) => e.event === "listening", 30_000);
  } catch (e) {
    handle.kill("SIGKILL");
    await handle.wait();
    throw e;
  }
  return { handle, port };
}

/** Starts `btfetch get TORRENT -o OUT --json --port P ...extra` (no wait). */
export function startBtGet(torrent: string, out: string, extra: string[] = []): Running {
  const port = freePort();
  const handle = spawnBtfetch(
    ["get", torrent, "-o", out, "--json", "--no-dht", "--port", String(port), "--timeout", "120s", ...extra],
    { timeoutMs: 180_000 },
  );
  return { handle, port };
}

/** Sends SIGTERM, waits at most `ms` for exit, then SIGKILLs; always reaps the child and drains its pipes. */
export async function stopWithin(h: BtfetchHandle, ms = 15_000): Promise<{ result: BtfetchResult; killed: boolean }> {
  h.kill("SIGTERM");
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

/** Kills (SIGKILL) and reaps every handle, ignoring those already gone; for `finally` blocks. */
export async function killAll(hs: readonly BtfetchHandle[]): Promise<void> {
  for (const h of hs) h.kill("SIGKILL");
  await Promise.all(hs.map((h) => h.wait()));
}

/** One entry of a `done` event's `peers`. */
export interface Share {
  readonly address: string;
  readonly downloaded: number;
  readonly uploaded: number;
}

/** The single `done` event of a run, checked for shape. */
export function doneOf(r: BtfetchResult): BtEvent & { peers: Share[]; downloaded: number; uploaded: number } {
  const dones = r.events.filter((e) => e.event === "done");
  if (dones.length !== 1) throw new Error(`expected one done event, got ${dones.length}\n${describeRun(r)}`);
  const d = dones[0];
  if (!Array.isArray(d.peers)) throw new Error(`done.peers is not an array\n${describeRun(r)}`);
  return d as BtEvent & { peers: Share[]; downloaded: number; uploaded: number };
}

/**
 * Bytes that leecher `l` received from the seeder `s`, counted on both ends so that the connection's direction does
 * not matter: over connections `l` dialed, `l` sees the seeder at its listening port; over connections the seeder
 * dialed, the seeder sees `l` at `l`'s listening port (and `l` sees an ephemeral port).
 */
export function bytesFromSeeder(
  leecher: { port: number; peers: readonly Share[] },
  seeder: { port: number; peers: readonly Share[] },
): number {
  const lKey = `127.0.0.1:${leecher.port}`;
  const sKey = `127.0.0.1:${seeder.port}`;
  const dialedByLeecher = leecher.peers.filter((p) => p.address === sKey).reduce((n, p) => n + p.downloaded, 0);
  const dialedBySeeder = seeder.peers.filter((p) => p.address === lKey).reduce((n, p) => n + p.uploaded, 0);
  return dialedByLeecher + dialedBySeeder;
}
