/**
 * aria2c as a downloader for the seeding interop tests: it fetches a .torrent into a folder of its own and exits once
 * every piece is in (`--seed-time=0`). Loopback only, with DHT, local peer discovery and PEX off.
 *
 * aria2c takes no peer address on the command line for a .torrent download, so a trackerless test has the seeder dial
 * aria2c's listening port instead (`btfetch seed --peer`); `--bt-tracker`/`--bt-exclude-tracker` add or drop trackers.
 * @module
 */
import { aria2LoopbackArgs, freePort, LineProcess, settleWithin, sleep } from "./_peers.ts";

/** A running aria2c download. */
export interface Aria2Leecher {
  /** The BitTorrent port it listens on (127.0.0.1). */
  readonly port: number;
  readonly proc: LineProcess;
  /** Waits for aria2c to exit by itself (it does once the download is complete); throws after `timeoutMs`. */
  waitExit(timeoutMs: number): Promise<Deno.CommandStatus>;
  /** Stops it (bounded) and drains its pipes; safe to call after it exited. */
  close(): Promise<void>;
}

/**
 * Starts `aria2c` downloading `torrent` into `dir` (files land in `dir/<name>`). `trackers` are added with
 * `--bt-tracker`; `excludeTrackers` drops the torrent's own (`--bt-exclude-tracker=*`). Resolves once its BitTorrent
 * port accepts connections.
 */
export async function startAria2Leecher(opts: {
  torrent: string;
  dir: string;
  port?: number;
  trackers?: string[];
  excludeTrackers?: boolean;
  timeoutMs?: number;
  extraArgs?: string[];
}): Promise<Aria2Leecher> {
  const port = opts.port ?? freePort();
  const args = [
    ...aria2LoopbackArgs(opts.dir, port),
    "--bt-external-ip=127.0.0.1",
    "--seed-time=0",
    "--file-allocation=none",
    "--allow-overwrite=false",
    "--auto-file-renaming=false",
    "--bt-save-metadata=false",
    "--bt-tracker-connect-timeout=5",
    "--bt-tracker-timeout=5",
    `--stop-with-process=${Deno.pid}`,
    "--stop=300",
    "--summary-interval=0",
    "--show-console-readout=false",
    "--console-log-level=notice",
    "--no-conf=true",
  ];
  if (opts.excludeTrackers) args.push("--bt-exclude-tracker=*");
  if (opts.trackers && opts.trackers.length > 0) args.push(`--bt-tracker=${opts.trackers.join(",")}`);
  args.push(...(opts.extraArgs ?? []), opts.torrent);
  const proc = new LineProcess("aria2c-leecher", "aria2c", args);
  const close = async () => {
    await proc.close();
  };
  try {
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    while (true) {
      if (proc.exited) throw new Error(`aria2c exited before listening\n${proc.tail()}`);
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        c.close();
        break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`aria2c did not listen on ${port}\n${proc.tail()}`);
      await sleep(100);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return {
    port,
    proc,
    async waitExit(timeoutMs: number) {
      await settleWithin(proc.child.status, timeoutMs);
      if (!proc.exited) throw new Error(`aria2c still running after ${timeoutMs} ms\n${proc.tail()}`);
      return await proc.child.status;
    },
    close,
  };
}
