/**
 * `btfetch get`: fetch a torrent's files into `-o DIR`, and seed afterwards when asked.
 * @module
 */
import { runSession, type SessionResult } from "../engine/session.ts";
import type { CliOptions } from "./flags.ts";
import { onInterrupt } from "./interrupt.ts";
import type { Reporter } from "./report.ts";
import { selectFiles } from "./select.ts";
import { loadTorrent } from "./source.ts";

/**
 * Runs `get` (also `seed`, which is `get` over data that is already there). Resolves when done.
 * @throws whatever ended the session: `FetchError`, `StorageError`, `Interrupted`, …
 */
export async function runGet(o: CliOptions, report: Reporter, seedOnly = false): Promise<SessionResult> {
  const { meta } = await loadTorrent(o.source ?? "");
  const selected = selectFiles(meta, o.select);
  const seeding = seedOnly || o.seed || o.seedRatio !== undefined || o.seedTimeMs !== undefined;
  const interrupt = onInterrupt();
  try {
    return await runSession({
      meta,
      outDir: seedOnly ? o.dir ?? "." : o.out,
      selected,
      peers: o.peers,
      trackers: o.trackers,
      maxPeers: o.maxPeers,
      port: o.port,
      timeoutMs: o.timeoutMs,
      stallTimeoutMs: o.stallTimeoutMs,
      check: o.check,
      sequential: o.sequential,
      seed: seeding ? { ratio: o.seedRatio, timeMs: o.seedTimeMs } : undefined,
      maxDownloadRate: o.maxDownloadRate,
      maxUploadRate: o.maxUploadRate,
      requireComplete: seedOnly,
      signal: interrupt.signal,
      onEvent: (e) => report.event(e),
    });
  } finally {
    interrupt.dispose();
    report.close();
  }
}
