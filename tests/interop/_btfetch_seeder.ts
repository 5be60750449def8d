/**
 * btfetch on the seeding side of the interop tests: `btfetch create` to make a torrent, `btfetch seed` to serve it to a
 * real downloader, and the checks a seeding run must pass when it is stopped.
 * @module
 */
import {
  type BtEvent,
  type BtfetchHandle,
  type BtfetchResult,
  describeRun,
  eventsOf,
  runBtfetch,
  spawnBtfetch,
} from "./_btfetch.ts";
import { freePort } from "./_peers.ts";

/** A torrent written by `btfetch create`. */
export interface BtfetchTorrent {
  path: string;
  infoHash: string;
  name: string;
  pieceLength: number;
  size: number;
}

/** Runs `btfetch create <path> -o <out> [-t URL]... [--piece-size S] --json` and returns what it reported. */
export async function createWithBtfetch(opts: {
  path: string;
  out: string;
  trackers?: string[];
  pieceSize?: string;
}): Promise<BtfetchTorrent> {
  const args = ["create", opts.path, "-o", opts.out, "--json"];
  for (const t of opts.trackers ?? []) args.push("-t", t);
  if (opts.pieceSize) args.push("--piece-size", opts.pieceSize);
  const r = await runBtfetch(args, { timeoutMs: 60_000 });
  const created = eventsOf(r, "created")[0];
  if (r.code !== 0 || !created) throw new Error(`btfetch create failed\n${describeRun(r)}`);
  return {
    path: opts.out,
    infoHash: String(created.info_hash),
    name: String(created.name),
    pieceLength: Number(created.piece_length),
    size: Number(created.size),
  };
}

/**
 * Makes a btfetch torrent announcing to a tracker that needs the info-hash first (opentracker's whitelist): creates it
 * without trackers, starts the tracker, then creates it again with `trackers(tracker)` (the info-hash cannot change:
 * trackers live outside the info dictionary).
 */
export async function createTrackedWithBtfetch<T extends { close(): Promise<void> }>(opts: {
  path: string;
  out: string;
  pieceSize?: string;
  startTracker: (infoHash: string) => Promise<T>;
  trackers: (tracker: T) => string[];
}): Promise<{ torrent: BtfetchTorrent; tracker: T }> {
  const pre = await createWithBtfetch({ path: opts.path, out: opts.out, pieceSize: opts.pieceSize });
  const tracker = await opts.startTracker(pre.infoHash);
  try {
    const torrent = await createWithBtfetch({
      path: opts.path,
      out: opts.out,
      pieceSize: opts.pieceSize,
      trackers: opts.trackers(tracker),
    });
    if (torrent.infoHash !== pre.infoHash) throw new Error("info-hash changed when adding trackers");
    return { torrent, tracker };
  } catch (e) {
    await tracker.close();
    throw e;
  }
}

/** A running `btfetch seed`. */
export interface BtfetchSeeder {
  /** Its listening port on 127.0.0.1. */
  readonly port: number;
  readonly handle: BtfetchHandle;
  /** Whether the process has exited (a seeder should not, until stopped). */
  readonly exited: boolean;
  /** Throws (with its output) if the seeder has exited. */
  assertAlive(): void;
  /** SIGTERM, then waits for exit (the handle kills it with SIGKILL after its own timeout). */
  stop(): Promise<BtfetchResult>;
}

/**
 * Starts `btfetch seed <torrent> --dir <dir> --port N --json` (plus `--peer`s and `--tracker`s) and resolves once it
 * has verified the data and listens (and, with `waitTracker`, once a tracker has answered without an error).
 * @throws {Error} when it exits or errors first, or does not get there within `timeoutMs`.
 */
export async function startBtfetchSeeder(opts: {
  torrent: string;
  dir: string;
  peers?: string[];
  trackers?: string[];
  waitTracker?: boolean;
  extraArgs?: string[];
  timeoutMs?: number;
  /** Kill the seeder after this long regardless; default 150 s. */
  lifetimeMs?: number;
}): Promise<BtfetchSeeder> {
  const port = freePort();
  const args = ["seed", opts.torrent, "--dir", opts.dir, "--port", String(port), "--json"];
  for (const p of opts.peers ?? []) args.push("--peer", p);
  for (const t of opts.trackers ?? []) args.push("--tracker", t);
  args.push(...(opts.extraArgs ?? []));
  const handle = spawnBtfetch(args, { timeoutMs: opts.lifetimeMs ?? 150_000 });
  let exited = false;
  handle.child.status.then(() => exited = true);
  const stop = async () => {
    handle.kill("SIGTERM");
    return await handle.wait();
  };
  try {
    const wait = opts.timeoutMs ?? 30_000;
    const isError = (e: BtEvent) => e.event === "error";
    const ready = await handle.waitForEvent((e) => isError(e) || e.event === "listening", wait);
    if (isError(ready)) throw new Error(`btfetch seed failed: ${JSON.stringify(ready)}`);
    if (eventsOf(handle, "complete").length === 0) throw new Error("btfetch seed listens before its data is complete");
    if (opts.waitTracker) {
      const tr = await handle.waitForEvent((e) => isError(e) || (e.event === "tracker" && "peers" in e), wait);
      if (isError(tr)) throw new Error(`btfetch seed failed: ${JSON.stringify(tr)}`);
    }
  } catch (e) {
    const r = await stop();
    throw new Error(`${e instanceof Error ? e.message : e}\n${describeRun(r)}`);
  }
  return {
    port,
    handle,
    get exited() {
      return exited;
    },
    assertAlive() {
      if (!exited) return;
      const evs = handle.events.filter((e) => e.event !== "progress").slice(-10).map((e) => JSON.stringify(e));
      throw new Error(`btfetch seed exited early\nevents:\n${evs.join("\n")}\nstderr:\n${handle.stderr.slice(-2000)}`);
    },
    stop,
  };
}

/**
 * Checks a seeding run stopped by SIGTERM: exit 130 (interrupted) or 0, no `error` event, nothing downloaded, all of
 * the payload verified, and at least `minUploaded` payload bytes sent. Returns its `done` event.
 */
export function assertSeedOk(r: BtfetchResult, expect: { size: number; minUploaded: number }): BtEvent {
  const fail = (msg: string): never => {
    throw new Error(`${msg}\n${describeRun(r)}`);
  };
  if (r.timedOut) fail("btfetch seed was killed for running too long");
  if (r.code !== 130 && r.code !== 0) fail(`btfetch seed exited ${r.code}, expected 130 (SIGTERM) or 0`);
  const errors = eventsOf(r, "error").filter((e) => e.code !== 130);
  if (errors.length > 0) fail(`btfetch seed reported error events: ${JSON.stringify(errors)}`);
  const done = eventsOf(r, "done")[0] ?? fail("no done event");
  if (done.verified !== expect.size) fail(`done.verified ${done.verified} != payload ${expect.size}`);
  if (done.downloaded !== 0) fail(`a seeder downloaded ${done.downloaded} bytes`);
  if (typeof done.uploaded !== "number" || done.uploaded < expect.minUploaded) {
    fail(`done.uploaded ${done.uploaded} < ${expect.minUploaded}`);
  }
  return done;
}

/**
 * Polls `done` every 250 ms until it is true, failing fast when the seeder exits; throws `what` after `timeoutMs`.
 */
export async function whileSeeding(
  seeder: BtfetchSeeder,
  done: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string | (() => string),
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (await done()) return;
    seeder.assertAlive();
    if (Date.now() > deadline) {
      const evs = seeder.handle.events.filter((e) => e.event !== "progress").slice(-10).map((e) => JSON.stringify(e));
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}\n` +
          `btfetch seed events:\n${evs.join("\n")}\nstderr:\n${seeder.handle.stderr.slice(-2000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
