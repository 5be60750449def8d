/**
 * Reads the torrent a command names: a local path or an http(s) URL of a `.torrent`.
 * @module
 */
import { MAX_TORRENT_BYTES } from "../limits.ts";
import { type Magnet, parseInfoHash, parseMagnet } from "../magnet.ts";
import { type Metainfo, parseMetainfo } from "../metainfo.ts";
import { concatBytes, toHex } from "../bytes.ts";

/** The source could not be read: a missing file (`unreadable`), a URL that failed (`network`), or a magnet. */
export class SourceError extends Error {
  override readonly name = "SourceError";
  /** Makes the error. */
  constructor(readonly code: "unreadable" | "network" | "unsupported", message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** How long fetching a .torrent over HTTP may take. */
const TORRENT_FETCH_TIMEOUT_MS = 30_000;

/**
 * Loads and parses a torrent from a path or URL.
 * @throws {SourceError} when it cannot be read; `MetainfoError` when it is not a valid torrent.
 */
export async function loadTorrent(source: string): Promise<{ meta: Metainfo; bytes: Uint8Array }> {
  const bytes = await readSource(source);
  return { meta: parseMetainfo(bytes), bytes };
}

/** What a source names: a parsed torrent, or a magnet (a bare info-hash is a magnet with nothing else). */
export type OpenedSource =
  | { readonly kind: "torrent"; readonly meta: Metainfo; readonly bytes: Uint8Array }
  | { readonly kind: "magnet"; readonly magnet: Magnet };

/**
 * Opens a source for `get`: a .torrent path or URL, a `magnet:` URI or a bare info-hash (40 hex or 32 base32).
 * @throws {SourceError} as {@linkcode loadTorrent}; `MagnetError` for a bad magnet.
 */
export async function openSource(source: string): Promise<OpenedSource> {
  if (/^magnet:/i.test(source)) return { kind: "magnet", magnet: parseMagnet(source) };
  const hash = parseInfoHash(source);
  if (hash !== null) {
    const infoHashHex = toHex(hash);
    return { kind: "magnet", magnet: { infoHash: hash, infoHashHex, trackers: [], webSeeds: [], peers: [] } };
  }
  return { kind: "torrent", ...(await loadTorrent(source)) };
}

async function readSource(source: string): Promise<Uint8Array> {
  if (/^magnet:/i.test(source) || parseInfoHash(source) !== null) {
    throw new SourceError("unsupported", "This command needs the .torrent file; only get takes a magnet link");
  }
  if (/^https?:\/\//i.test(source)) return await fetchTorrent(source);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(source);
  } catch (e) {
    throw new SourceError("unreadable", `Cannot read torrent ${source}: ${e instanceof Error ? e.message : e}`, {
      cause: e,
    });
  }
  if (!info.isFile) throw new SourceError("unreadable", `Cannot read torrent ${source}: not a file`);
  if (info.size > MAX_TORRENT_BYTES) {
    throw new SourceError(
      "unreadable",
      `Cannot read torrent ${source}: ${info.size} bytes is over the limit of ${MAX_TORRENT_BYTES}`,
    );
  }
  try {
    return await Deno.readFile(source);
  } catch (e) {
    throw new SourceError("unreadable", `Cannot read torrent ${source}: ${e instanceof Error ? e.message : e}`, {
      cause: e,
    });
  }
}

async function fetchTorrent(url: string): Promise<Uint8Array> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TORRENT_FETCH_TIMEOUT_MS);
  try {
    const res = await fetch(url, { signal: ctl.signal });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new SourceError("network", `Cannot fetch torrent ${url}: HTTP ${res.status}`);
    }
    const parts: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of res.body) {
      total += chunk.length;
      if (total > MAX_TORRENT_BYTES) {
        ctl.abort();
        throw new SourceError("unreadable", `Cannot fetch torrent ${url}: larger than ${MAX_TORRENT_BYTES} bytes`);
      }
      parts.push(chunk);
    }
    return concatBytes(parts);
  } catch (e) {
    if (e instanceof SourceError) throw e;
    throw new SourceError("network", `Cannot fetch torrent ${url}: ${e instanceof Error ? e.message : e}`, {
      cause: e,
    });
  } finally {
    clearTimeout(timer);
  }
}
