/**
 * `btfetch create <path> -o FILE`: write a v1 .torrent.
 *
 * The hashing threads are started before `lib/create.ts` and its `node:` modules load, so the threads' start-up
 * (~50 ms each, on other cores) overlaps this thread's.
 * @module
 */
import { HashThreads, hashThreadsFor } from "../hash_claim.ts";
import { StorageError } from "../storage/storage_error.ts";
import type { CliOptions } from "./flags.ts";
import type { Reporter } from "./report.ts";
import { formatBytes } from "./units.ts";

/** Runs `create`. */
export async function runCreate(o: CliOptions, report: Reporter): Promise<void> {
  const t0 = performance.now();
  const source = o.source ?? "";
  using threads = HashThreads.start(hashThreadsFor(fileSize(source)));
  const { createTorrent } = await import("../create.ts");
  const { bytes, meta } = await createTorrent(source, {
    pieceLength: o.pieceSize,
    announce: o.announceTiers,
    webSeeds: o.webSeeds,
    private: o.private,
    comment: o.comment,
    threads: threads.size > 0 ? threads : undefined,
  });
  const out = o.output ?? "";
  try {
    await Deno.writeFile(out, bytes);
  } catch (e) {
    throw StorageError.fromOs("write", out, e);
  }
  const ms = Math.round(performance.now() - t0);
  report.json_({
    event: "created",
    t: ms,
    file: out,
    name: meta.name,
    info_hash: meta.infoHashHex,
    size: meta.totalLength,
    piece_length: meta.pieceLength,
    pieces: meta.pieceCount,
    files: meta.files.length,
  });
  report.say(
    `Wrote ${out}: ${meta.name}, ${formatBytes(meta.totalLength)} in ${meta.files.length} file(s), ` +
      `${meta.pieceCount} pieces of ${formatBytes(meta.pieceLength)}, info-hash ${meta.infoHashHex}`,
  );
}

/**
 * The size of `path` when it is a regular file, else 0: a folder's threads are started by `createTorrent` once it has
 * listed the files, and errors are `createTorrent`'s to report.
 */
function fileSize(path: string): number {
  try {
    const st = Deno.statSync(path);
    return st.isFile ? st.size : 0;
  } catch {
    return 0;
  }
}
