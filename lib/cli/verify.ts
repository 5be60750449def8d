/**
 * `btfetch verify <torrent> [-d DIR]`: hash the data at DIR/<name> (DIR: the current folder by default) and report
 * each file.
 * @module
 */
import type { Bitfield } from "../bitfield.ts";
import type { Metainfo } from "../metainfo.ts";
import { PieceStore } from "../storage/disk.ts";
import { filePieceRange } from "../storage/layout.ts";
import type { CliOptions } from "./flags.ts";
import { Interrupted, onInterrupt } from "./interrupt.ts";
import type { Reporter } from "./report.ts";
import { visibleFiles } from "./select.ts";
import { loadTorrent } from "./source.ts";

/** One file's verdict. */
export interface FileVerdict {
  readonly index: number;
  readonly path: string;
  readonly length: number;
  readonly ok: boolean;
  readonly bad_pieces: number;
  readonly pieces: number;
}

/** Per-file verdicts from the set of pieces that hashed correctly. */
export function fileVerdicts(meta: Metainfo, have: Bitfield): FileVerdict[] {
  return visibleFiles(meta).map(({ n, fileIndex }) => {
    const f = meta.files[fileIndex];
    const range = filePieceRange(meta, fileIndex);
    let bad = 0;
    let pieces = 0;
    if (range) {
      for (let i = range.first; i <= range.last; i++) {
        pieces++;
        if (!have.has(i)) bad++;
      }
    }
    return { index: n, path: f.path.join("/"), length: f.length, ok: bad === 0, bad_pieces: bad, pieces };
  });
}

/**
 * Runs `verify`; returns whether every file matched.
 * @throws `StorageError` when the data cannot be read for a reason other than absence.
 */
export async function runVerify(o: CliOptions, report: Reporter, out: (text: string) => void): Promise<boolean> {
  const { meta } = await loadTorrent(o.source ?? "");
  const store = PieceStore.open(meta, o.out, { readOnly: true }); // opens nothing for writing: works on a read-only mount
  const interrupt = onInterrupt();
  let have: Bitfield;
  const t0 = performance.now();
  try {
    have = await store.verify({ signal: interrupt.signal });
  } catch (e) {
    throw e instanceof Interrupted ? new Interrupted(e.signal, "verify") : e; // no state, no resume: say so
  } finally {
    interrupt.dispose();
    store.close();
  }
  const verdicts = fileVerdicts(meta, have);
  const ok = verdicts.every((v) => v.ok);
  for (const v of verdicts) {
    report.json_({ event: "file", t: Math.round(performance.now() - t0), ...v });
    out(
      `${v.ok ? "ok " : "BAD"}  ${v.path}${
        v.ok ? "" : ` (${v.bad_pieces} of ${v.pieces} pieces missing or damaged)`
      }\n`,
    );
  }
  report.json_({
    event: "verified",
    t: Math.round(performance.now() - t0),
    ok,
    pieces: meta.pieceCount,
    good_pieces: have.count,
    files: verdicts.length,
    bad_files: verdicts.filter((v) => !v.ok).length,
  });
  report.say(
    ok
      ? verdicts.length === 1 ? "The file matches" : `All ${verdicts.length} files match`
      : `${verdicts.filter((v) => !v.ok).length} of ${verdicts.length} files do not match`,
  );
  return ok;
}
