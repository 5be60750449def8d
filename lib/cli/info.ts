/**
 * `btfetch info`: a torrent's metadata for people, or as one JSON object with `--json`.
 * @module
 */
import { magnetFromMetainfo, magnetLeftOutNote } from "../magnet.ts";
import type { Metainfo } from "../metainfo.ts";
import type { CliOptions } from "./flags.ts";
import type { Reporter } from "./report.ts";
import { visibleFiles } from "./select.ts";
import { loadTorrent } from "./source.ts";
import { formatBytes } from "./units.ts";
import { WebSeedError } from "../webseed/error.ts";
import { parseWebSeedUrl, webSeedUrls } from "../webseed/urls.ts";

/** The URL a web seed is asked for each file (null for padding files and unusable URLs). */
function derivedUrls(meta: Metainfo, base: string): (string | null)[] {
  try {
    return webSeedUrls(meta, parseWebSeedUrl(base).href);
  } catch (e) {
    if (e instanceof WebSeedError) return meta.files.map(() => null);
    throw e;
  }
}

/** The JSON form of `info`. */
export function infoJson(meta: Metainfo): Record<string, unknown> {
  return {
    name: meta.name,
    info_hash: meta.infoHashHex,
    size: meta.totalLength,
    piece_length: meta.pieceLength,
    pieces: meta.pieceCount,
    private: meta.private,
    trackers: meta.announce,
    web_seeds: meta.urlList,
    // BEP 19: the URL each web seed is asked for each file (null: none, e.g. a URL that is not http(s))
    web_seed_urls: meta.urlList.map((w) => ({ url: w, files: derivedUrls(meta, w) })),
    comment: meta.comment ?? null,
    created_by: meta.createdBy ?? null,
    creation_date: meta.creationDate ?? null,
    magnet: magnetFromMetainfo(meta),
    files: visibleFiles(meta).map(({ n, fileIndex }) => ({
      index: n,
      path: meta.files[fileIndex].path.join("/"),
      length: meta.files[fileIndex].length,
    })),
  };
}

/** Runs `info`. */
export async function runInfo(o: CliOptions, report: Reporter, out: (text: string) => void): Promise<void> {
  const { meta } = await loadTorrent(o.source ?? "");
  if (o.json) {
    report.json_(infoJson(meta));
    return;
  }
  const lines = [
    `name:       ${meta.name}`,
    `info-hash:  ${meta.infoHashHex}`,
    `size:       ${formatBytes(meta.totalLength)} (${meta.totalLength} bytes)`,
    `pieces:     ${meta.pieceCount} x ${formatBytes(meta.pieceLength)}`,
    `private:    ${meta.private ? "yes" : "no"}`,
  ];
  if (meta.comment) lines.push(`comment:    ${meta.comment}`);
  if (meta.createdBy) lines.push(`created by: ${meta.createdBy}`);
  if (meta.creationDate !== undefined) {
    lines.push(`created:    ${new Date(meta.creationDate * 1000).toISOString()}`);
  }
  meta.announce.forEach((tier, i) => lines.push(`tracker:    tier ${i + 1}: ${tier.join(" ")}`));
  for (const w of meta.urlList) {
    lines.push(`web seed:   ${w}`);
    // what is asked of it (BEP 19): the first few files' URLs, so a wrong base is seen before a download
    const urls = derivedUrls(meta, w);
    const shown = urls.filter((u): u is string => u !== null);
    if (shown.length === 0) lines.push("            (no usable URL: not http(s), or too long)");
    for (const u of shown.slice(0, 3)) lines.push(`            -> ${u}`);
    if (shown.length > 3) lines.push(`            -> ... (${shown.length - 3} more files)`);
  }
  lines.push(`magnet:     ${magnetFromMetainfo(meta)}`);
  const left = magnetLeftOutNote(meta);
  if (left) lines.push(`            (${left})`);
  lines.push("files:");
  const files = visibleFiles(meta);
  const width = String(files.length).length;
  for (const { n, fileIndex } of files) {
    const f = meta.files[fileIndex];
    lines.push(`  ${String(n).padStart(width)}  ${formatBytes(f.length).padStart(10)}  ${f.path.join("/")}`);
  }
  out(lines.join("\n") + "\n");
}
