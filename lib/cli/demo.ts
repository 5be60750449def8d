/**
 * `btfetch demo`: a whole swarm on loopback with nothing but btfetch. It generates a payload, makes its torrent,
 * starts one seeder (upload-capped, so leechers must trade among themselves) and several leechers as separate
 * sessions with their own sockets in this process, shows progress, re-verifies every copy from disk, prints who
 * sent what, and removes what it made (unless `-o DIR` keeps it).
 * @module
 */
import { randomFillSync } from "node:crypto";
import { join } from "node:path";
import { createTorrent } from "../create.ts";
import type { PeerShare, TimedEvent } from "../engine/events.ts";
import { runSession } from "../engine/session.ts";
import type { Metainfo } from "../metainfo.ts";
import { PieceStore } from "../storage/disk.ts";
import type { CliOptions } from "./flags.ts";
import { Interrupted, onInterrupt } from "./interrupt.ts";
import type { Reporter } from "./report.ts";
import { formatBytes } from "./units.ts";
import { clearTimer, setRepeat } from "../timers.ts";

/** The demo's payload size by default. */
export const DEMO_SIZE = 64 * 1024 * 1024;
/** Leechers by default. */
export const DEMO_LEECHERS = 3;

/** What one leecher got and sent in a demo run. */
export interface DemoLeecher {
  readonly name: string;
  readonly from_seeder: number;
  readonly from_leechers: number;
  readonly uploaded: number;
}

/** A summary of a demo run: the `demo` event's fields, snake_case like every event's. */
export interface DemoSummary {
  readonly bytes: number;
  readonly elapsed_ms: number;
  readonly leechers: readonly DemoLeecher[];
  readonly seeder_uploaded: number;
  readonly all_verified: boolean;
}

/**
 * Runs the demo; resolves with its summary once every leecher has a verified copy.
 * @throws `Interrupted` on SIGINT/SIGTERM; whatever a session throws.
 */
export async function runDemo(o: CliOptions, report: Reporter, stderr: (t: string) => void): Promise<DemoSummary> {
  const size = o.size ?? DEMO_SIZE;
  const leechers = o.leechers ?? DEMO_LEECHERS;
  const keep = o.out !== ".";
  const root = keep ? o.out : await Deno.makeTempDir({ prefix: "btfetch-demo-" });
  const interrupt = onInterrupt();
  const stop = new AbortController();
  const started: Promise<unknown>[] = [];
  const abortAll = () => stop.abort(interrupt.signal.reason);
  interrupt.signal.addEventListener("abort", abortAll, { once: true });
  try {
    report.say(`btfetch demo: 1 seeder and ${leechers} leechers on 127.0.0.1, ${formatBytes(size)} payload in ${root}`);
    const seedDir = join(root, "seeder");
    await Deno.mkdir(seedDir, { recursive: true });
    const payloadPath = join(seedDir, "demo-payload.bin");
    writePayload(payloadPath, size);
    const { meta } = await createTorrent(payloadPath, { comment: "btfetch demo" });
    report.say(
      `Created the torrent: ${meta.pieceCount} pieces of ${
        formatBytes(meta.pieceLength)
      }, info-hash ${meta.infoHashHex}`,
    );

    const t0 = performance.now();
    const progress = new Map<string, number>();
    const shares = new Map<string, readonly PeerShare[]>();
    let lastLine = 0;
    const tty = report.sinks.stderrIsTty;
    const show = (force = false) => {
      if (report.quiet) return;
      const now = performance.now();
      if (!force && tty && now - lastLine < 250) return;
      lastLine = now;
      // one field a leecher ("leecher-2 45%", "#2 45%" when tight), the later ones dropped first on a narrow terminal
      const fields = [...progress].map(([n, p], i) => ({
        text: `${n} ${(p * 100).toFixed(0)}%`,
        tight: `#${n.replace(/^leecher-/, "")} ${(p * 100).toFixed(0)}%`,
        rank: i + 1,
      }));
      report.live(
        [{ text: `${((now - t0) / 1000).toFixed(1)} s`, rank: 0 }, ...fields],
        now - t0,
        undefined,
        force ? 0 : 2000,
      );
    };
    const onEvent = (name: string) => (e: TimedEvent) => {
      report.json_({ ...e, session: name });
      if (e.event === "done") shares.set(name, e.peers);
      if (e.event === "progress" && e.total > 0 && name !== "seeder") progress.set(name, e.verified / e.total);
      if (e.event === "complete" && name !== "seeder") progress.set(name, 1);
      show();
    };
    const listening = (name: string) => {
      let resolve!: (port: number) => void;
      const port = new Promise<number>((r) => (resolve = r));
      return {
        port,
        onEvent: (e: TimedEvent) => {
          if (e.event === "listening") resolve(e.port);
          onEvent(name)(e);
        },
      };
    };
    const start = (name: string, outDir: string, peers: number[], extra: { maxUploadRate?: number }) => {
      const l = listening(name);
      const run = runSession({
        meta,
        outDir,
        port: 0,
        peers: peers.map((port) => ({ host: "127.0.0.1", port })),
        seed: {},
        signal: stop.signal,
        stallTimeoutMs: 60_000,
        random: Math.random,
        onEvent: l.onEvent,
        ...extra,
      });
      started.push(run.catch(() => {}));
      return { name, run, port: l.port };
    };

    // the seeder sends at most about a quarter of the payload a second, so the leechers must share
    const seeder = start("seeder", seedDir, [], { maxUploadRate: Math.max(1024 * 1024, Math.floor(size / 4)) });
    const ports = [await raceAbort(seeder.port, stop.signal)];
    const runs = [seeder];
    for (let i = 1; i <= leechers; i++) {
      const name = `leecher-${i}`;
      progress.set(name, 0);
      const l = start(name, join(root, name), [...ports], {});
      runs.push(l);
      ports.push(await raceAbort(l.port, stop.signal));
    }
    // every leecher seeds until all are complete, then everyone stops
    const complete = runs.slice(1).map((r) =>
      new Promise<void>((resolve) => {
        const check = setRepeat(() => {
          if (progress.get(r.name) === 1 || stop.signal.aborted) {
            clearTimer(check);
            resolve();
          }
        }, 50);
      })
    );
    const failed = Promise.race(runs.map((r) => r.run.then(() => new Promise<never>(() => {}))));
    await Promise.race([Promise.all(complete), failed]);
    const elapsedMs = performance.now() - t0;
    const interrupted = stop.signal.aborted;
    if (!interrupted) stop.abort(new DemoOver());
    for (const r of runs) {
      try {
        await r.run;
      } catch (e) {
        if (!(e instanceof DemoOver) && !(e instanceof Interrupted)) throw e;
      }
    }
    show(true);
    if (tty && !report.quiet) stderr("\n"); // the last line stays: every leecher at 100%
    if (interrupted) throw interrupt.signal.reason;
    const summary = await summarize(meta, root, leechers, ports[0], elapsedMs, shares);
    printSummary(summary, report);
    report.json_({ event: "demo", t: Math.round(elapsedMs), ...summary });
    return summary;
  } finally {
    // every session started ends (and lets go of its files) before the demo's folder goes
    if (!stop.signal.aborted) stop.abort(new DemoOver());
    await Promise.all(started);
    interrupt.signal.removeEventListener("abort", abortAll);
    interrupt.dispose();
    if (!keep) await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

/** The reason the demo stops its sessions once every leecher is complete. */
class DemoOver extends Error {
  override readonly name = "DemoOver";
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    p.then(resolve, reject);
  });
}

function writePayload(path: string, size: number): void {
  const chunk = new Uint8Array(Math.min(size, 4 * 1024 * 1024));
  const f = Deno.openSync(path, { write: true, create: true, truncate: true });
  try {
    for (let left = size; left > 0;) {
      const n = Math.min(left, chunk.length);
      randomFillSync(chunk, 0, n);
      let off = 0;
      while (off < n) off += f.writeSync(chunk.subarray(off, n));
      left -= n;
    }
  } finally {
    f.close();
  }
}

async function summarize(
  meta: Metainfo,
  root: string,
  leechers: number,
  seederPort: number,
  elapsedMs: number,
  shares: ReadonlyMap<string, readonly PeerShare[]>,
): Promise<DemoSummary> {
  const seederKey = `127.0.0.1:${seederPort}`;
  const rows: { name: string; from_seeder: number; from_leechers: number; uploaded: number }[] = [];
  let allVerified = true;
  let seederUploaded = 0;
  for (let i = 1; i <= leechers; i++) {
    const name = `leecher-${i}`;
    const store = PieceStore.open(meta, join(root, name));
    try {
      const have = await store.verify();
      if (!have.complete) allVerified = false;
    } finally {
      store.close();
    }
    rows.push({ name, from_seeder: 0, from_leechers: 0, uploaded: 0 });
  }
  // who sent what, from the per-peer byte counts each session reported in its `done` event
  for (const [session, peers] of shares) {
    for (const p of peers) {
      if (session === "seeder") {
        seederUploaded += p.uploaded;
        continue;
      }
      const row = rows.find((x) => x.name === session);
      if (!row) continue;
      if (p.address === seederKey) row.from_seeder += p.downloaded;
      else row.from_leechers += p.downloaded;
      row.uploaded += p.uploaded;
    }
  }
  return {
    bytes: meta.totalLength,
    elapsed_ms: Math.round(elapsedMs),
    leechers: rows,
    seeder_uploaded: seederUploaded,
    all_verified: allVerified,
  };
}

function printSummary(s: DemoSummary, report: Reporter): void {
  const secs = s.elapsed_ms / 1000;
  const total = s.bytes * s.leechers.length;
  report.say(
    `All ${s.leechers.length} leechers have ${formatBytes(s.bytes)} in ${secs.toFixed(1)} s ` +
      `(${formatBytes(total / Math.max(secs, 0.001))}/s across the swarm); ` +
      (s.all_verified ? "every copy re-verified from disk" : "SOME COPIES FAILED VERIFICATION"),
  );
  report.say(`  seeder     sent ${formatBytes(s.seeder_uploaded)}`);
  for (const r of s.leechers) {
    report.say(
      `  ${r.name.padEnd(10)} got ${formatBytes(r.from_seeder)} from the seeder, ${
        formatBytes(r.from_leechers)
      } from ` +
        `other leechers; sent ${formatBytes(r.uploaded)}`,
    );
  }
}
