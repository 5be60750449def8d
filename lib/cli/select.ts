/**
 * `--select` indexes (1-based over the files `info` lists, padding files left out) to file indexes of the torrent.
 * @module
 */
import type { Metainfo } from "../metainfo.ts";
import { UsageError } from "./usage_error.ts";

/** The files a person sees, numbered from 1, with their index in `meta.files`. */
export function visibleFiles(meta: Metainfo): { n: number; fileIndex: number }[] {
  const out: { n: number; fileIndex: number }[] = [];
  for (const f of meta.files) if (!f.padding) out.push({ n: out.length + 1, fileIndex: f.index });
  return out;
}

/**
 * Maps `--select` indexes to `meta.files` indexes.
 * @throws {UsageError} when an index is past the last file.
 */
export function selectFiles(meta: Metainfo, select: readonly number[] | undefined): Set<number> | undefined {
  if (!select) return undefined;
  const files = visibleFiles(meta);
  const out = new Set<number>();
  for (const n of select) {
    if (n > files.length) throw new UsageError(`--select: file ${n} does not exist (the torrent has ${files.length})`);
    out.add(files[n - 1].fileIndex);
  }
  return out;
}
