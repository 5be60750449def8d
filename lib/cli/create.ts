/**
 * `btfetch create <path> -o FILE`: write a v1 .torrent.
 * @module
 */
import { createTorrent } from "../create.ts";
import { StorageError } from "../storage/disk.ts";
import type { CliOptions } from "./flags.ts";
import type { Reporter } from "./report.ts";
import { formatBytes } from "./units.ts";

/** Runs `create`. */
export async function runCreate(o: CliOptions, report: Reporter): Promise<void> {
  const t0 = performance.now();
  const { bytes, meta } = await createTorrent(o.source ?? "", {
    pieceLength: o.pieceSize,
    announce: o.announceTiers,
    webSeeds: o.webSeeds,
    private: o.private,
    comment: o.comment,
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
