/**
 * Reads the torrent a command names: a local path, `-` (standard input) or an http(s) URL of a `.torrent`.
 * @module
 */
import { MAX_TORRENT_BYTES } from "../limits.ts";
import { type Magnet, parseInfoHash, parseMagnet } from "../magnet.ts";
import { type Metainfo, parseMetainfo } from "../metainfo.ts";
import { concatBytes, toHex } from "../bytes.ts";
import { osCode, osWords, plainOsText } from "./os_words.ts";
import { clearTimer, setTimer } from "../timers.ts";

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

/** Where a source's bytes come from when it is `-`: standard input by default, injectable for tests. */
export type StdinReader = () => Promise<Uint8Array>;

/**
 * Loads and parses a torrent from a path, URL or `-` (standard input).
 * @throws {SourceError} when it cannot be read; `MetainfoError` when it is not a valid torrent.
 */
export async function loadTorrent(
  source: string,
  stdin: StdinReader = readStdin,
): Promise<{ meta: Metainfo; bytes: Uint8Array }> {
  const bytes = source === "-" ? await stdin() : await readSource(source);
  if (source === "-" && magnetText(bytes) !== null) {
    throw new SourceError("unsupported", "This command needs the .torrent file; only get takes a magnet link");
  }
  return { meta: parseMetainfo(bytes), bytes };
}

/** What a source names: a parsed torrent, or a magnet (a bare info-hash is a magnet with nothing else). */
export type OpenedSource =
  | { readonly kind: "torrent"; readonly meta: Metainfo; readonly bytes: Uint8Array }
  | { readonly kind: "magnet"; readonly magnet: Magnet };

/**
 * Opens a source for `get`: a .torrent path or URL, a `magnet:` URI or a bare info-hash (40 hex or 32 base32), or `-`:
 * standard input holding a .torrent, a magnet URI or an info-hash.
 * @throws {SourceError} as {@linkcode loadTorrent}; `MagnetError` for a bad magnet.
 */
export async function openSource(source: string, stdin: StdinReader = readStdin): Promise<OpenedSource> {
  if (source === "-") {
    const bytes = await stdin();
    const text = magnetText(bytes);
    if (text !== null) return openSource(text);
    return { kind: "torrent", meta: parseMetainfo(bytes), bytes };
  }
  if (/^magnet:/i.test(source)) return { kind: "magnet", magnet: parseMagnet(source) };
  const hash = parseInfoHash(source);
  if (hash !== null) {
    const infoHashHex = toHex(hash);
    return { kind: "magnet", magnet: { infoHash: hash, infoHashHex, trackers: [], webSeeds: [], peers: [] } };
  }
  return { kind: "torrent", ...(await loadTorrent(source)) };
}

/** The longest magnet URI read from standard input (far more than any tracker list a magnet carries in practice). */
const MAX_STDIN_MAGNET_BYTES = 64 * 1024;

/** Standard input's text when it is a magnet URI or a bare info-hash (one line), else null (a .torrent). */
function magnetText(bytes: Uint8Array): string | null {
  if (bytes.length > MAX_STDIN_MAGNET_BYTES || bytes[0] === 0x64) return null; // a .torrent is a bencoded dictionary
  const text = new TextDecoder().decode(bytes).trim();
  return /^magnet:\S*$/i.test(text) || parseInfoHash(text) !== null ? text : null;
}

/** The most a torrent read from standard input may hold: the same bound as a file. */
const STDIN_LIMIT = MAX_TORRENT_BYTES;

/**
 * Reads standard input to its end (at most {@linkcode MAX_TORRENT_BYTES}).
 * @throws {SourceError} `unreadable` when it is a terminal (nothing was piped in), empty or too large.
 */
export async function readStdin(): Promise<Uint8Array> {
  if (Deno.stdin.isTerminal()) {
    throw new SourceError(
      "unreadable",
      "Cannot read the torrent from standard input: it is a terminal; pipe a .torrent into btfetch, e.g. btfetch - < file.torrent",
    );
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(64 * 1024);
  while (true) {
    let n: number | null;
    try {
      n = await Deno.stdin.read(buf);
    } catch (e) {
      throw new SourceError("unreadable", `Cannot read the torrent from standard input: ${osWords(e) ?? e}`, {
        cause: e,
      });
    }
    if (n === null) break;
    total += n;
    if (total > STDIN_LIMIT) {
      throw new SourceError(
        "unreadable",
        `Cannot read the torrent from standard input: more than ${STDIN_LIMIT} bytes, the limit for a .torrent`,
      );
    }
    parts.push(buf.slice(0, n));
  }
  if (total === 0) {
    throw new SourceError("unreadable", "Cannot read the torrent from standard input: it is empty");
  }
  return concatBytes(parts);
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
    throw unreadable(source, e);
  }
  if (!info.isFile) {
    throw new SourceError("unreadable", `Cannot read ${source}: it is ${info.isDirectory ? "a folder" : "not a file"}`);
  }
  if (info.size > MAX_TORRENT_BYTES) {
    throw new SourceError(
      "unreadable",
      `Cannot read ${source}: ${info.size} bytes is over the limit of ${MAX_TORRENT_BYTES} for a .torrent`,
    );
  }
  try {
    return await Deno.readFile(source);
  } catch (e) {
    throw unreadable(source, e);
  }
}

/** "Cannot read x.torrent: no such file", in plain words whatever the OS said. */
function unreadable(source: string, e: unknown): SourceError {
  const words = osCode(e) === "ENOENT"
    ? "no such file"
    : osWords(e) ?? plainOsText(e instanceof Error ? e.message : String(e));
  return new SourceError("unreadable", `Cannot read ${source}: ${words}`, { cause: e });
}

async function fetchTorrent(url: string): Promise<Uint8Array> {
  const ctl = new AbortController();
  const timer = setTimer(() => ctl.abort(), TORRENT_FETCH_TIMEOUT_MS);
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
    throw new SourceError(
      "network",
      `Cannot fetch torrent ${url}: ${plainOsText(e instanceof Error ? e.message : String(e))}`,
      {
        cause: e,
      },
    );
  } finally {
    clearTimer(timer);
  }
}
