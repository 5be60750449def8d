/**
 * `.torrent` bytes (BEP 3, v1) to a checked {@linkcode Metainfo}: info-hash from the raw `info` span, piece geometry,
 * and file paths that can never leave the output directory.
 *
 * Policy:
 * - The `info` dictionary must be strict canonical bencode (sorted, unique keys): its bytes are what the info-hash
 *   names, and a client that re-encodes a non-canonical one would compute another hash. The outer dictionary may have
 *   unsorted keys (real torrents sometimes do) but never duplicate keys (two `info` values would be ambiguous), and no
 *   bytes may follow it.
 * - Names and paths: `name.utf-8`/`path.utf-8` win when present and valid UTF-8; otherwise `name`/`path` are decoded
 *   as UTF-8 with invalid bytes replaced by U+FFFD. Every component (the name too) is then checked: empty, `.`,
 *   `..`, `/`, `\`, control characters below U+0020 and drive letters (`C:`) are refused (`unsafe-path`).
 * - What passes is sanitised as libtorrent's `sanitize_append_path_element` does on Windows, but on every platform,
 *   so a torrent's files get the same names everywhere and a Windows build can create each one: invisible and
 *   bidirectional formatting characters (U+061C, U+200B–U+200F, U+202A–U+202E, U+2060–U+2064, U+2066–U+2069,
 *   U+FEFF), which can make `exe.txt` look like `txt.exe`, are removed; `<>:"|?*`, DEL and the C1 controls
 *   (U+0080–U+009F) become `_`; trailing dots and spaces are removed; a name Windows keeps for a device (CON, PRN,
 *   AUX, NUL, CLOCK$, CONIN$, CONOUT$, COM0–COM9, LPT0–LPT9, COM¹–COM³, LPT¹–LPT³, in any case, with any extension
 *   or trailing spaces: `con.tar.gz`, `Nul .txt`) gets a leading `_`; a component left empty is `_`. Then a
 *   component over {@linkcode MAX_PATH_COMPONENT_BYTES} is refused (`unsafe-path`), and so are two files with one
 *   sanitised path, or a file whose path is another file's folder (`duplicate-path`). Names equal only up to case
 *   are allowed. Padding files (BEP 47) are checked and sanitised but not checked for duplicates, as they are never
 *   written.
 * - `announce-list`, `url-list`, `comment`, `created by` and `creation date` are optional and read leniently:
 *   malformed entries are dropped, never fatal.
 * @module
 */
import { type BencodeDict, BencodeError, type BencodeValue, decodeBencode, type DecodeResult } from "./bencode.ts";
import {
  MAX_FILES,
  MAX_PATH_COMPONENT_BYTES,
  MAX_PATH_COMPONENTS,
  MAX_PIECE_LENGTH,
  MAX_PIECES,
  MAX_TORRENT_BYTES,
  MAX_TOTAL_LENGTH,
  MIN_TORRENT_PIECE_LENGTH,
} from "./limits.ts";
import { toHex } from "./bytes.ts";
import { sha1 } from "./sha1.ts";

/** One file of a torrent. */
export interface TorrentFile {
  /** 0-based position in the torrent's file list (padding files included). */
  readonly index: number;
  /**
   * Path relative to the output directory, first component is the torrent name: single-file [name]; multi-file
   * [name, ...path]. Each component checked and sanitised (see the module policy).
   */
  readonly path: readonly string[];
  readonly length: number;
  /** Byte offset of the file's first byte in the torrent's contiguous payload. */
  readonly offset: number;
  /** BEP 47 padding file (attr contains "p", or legacy name `.pad/...` / `_____padding_file_`): never written to disk. */
  readonly padding: boolean;
  /**
   * The path as the torrent names it, before sanitising (first component the raw name), for web-seed URLs (BEP 19: a
   * server holds the files under the names the torrent gives); present only where it differs from `path`.
   */
  readonly urlPath?: readonly string[];
}

/** A checked v1 torrent. */
export interface Metainfo {
  /** 20 bytes: SHA-1 of the raw `info` value bytes (never a re-encoding). */
  readonly infoHash: Uint8Array;
  /** The info-hash in lowercase hex. */
  readonly infoHashHex: string;
  /** The torrent's name, checked and sanitised as a path component (see the module policy). */
  readonly name: string;
  readonly pieceLength: number;
  readonly pieceCount: number;
  /** 20 * pieceCount bytes (a view into the input). */
  readonly pieceHashes: Uint8Array;
  readonly totalLength: number;
  readonly files: readonly TorrentFile[];
  readonly multiFile: boolean;
  /**
   * Tracker tiers: `announce-list` (BEP 12) if present and non-empty, else [[announce]] if present, else []. Empty,
   * non-string and duplicate entries are dropped, and so are tiers left empty.
   */
  readonly announce: readonly (readonly string[])[];
  /** `url-list` (BEP 19): a string or a list of strings. */
  readonly urlList: readonly string[];
  /** `info.private` is 1 (BEP 27). */
  readonly private: boolean;
  readonly comment?: string;
  readonly createdBy?: string;
  /** Seconds since the Unix epoch. */
  readonly creationDate?: number;
  /** The raw bytes of the info dictionary. */
  readonly infoBytes: Uint8Array;
}

/** Why a torrent was refused. */
export type MetainfoErrorCode =
  | "bencode"
  | "missing"
  | "wrong-type"
  | "out-of-range"
  | "bad-pieces"
  | "empty"
  | "conflict"
  | "unsafe-path"
  | "duplicate-path";

/**
 * A torrent that cannot be used. `keyPath` locates the fault (`info.files[3].path[1]`; empty for the whole input);
 * for `bencode`, `cause` is the {@linkcode BencodeError}.
 */
export class MetainfoError extends SyntaxError {
  override readonly name = "MetainfoError";
  /** Makes the error; `detail` says what was wrong, with the bad value. */
  constructor(
    readonly code: MetainfoErrorCode,
    readonly keyPath: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`Cannot read torrent${keyPath ? ` at ${keyPath}` : ""}: ${detail}`, options);
  }
}

const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();

function strictText(b: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(b);
  } catch {
    return undefined;
  }
}

function kindOf(v: BencodeValue): string {
  if (typeof v === "bigint") return "an integer";
  if (v instanceof Uint8Array) return "a string";
  if (Array.isArray(v)) return "a list";
  return "a dictionary";
}

function wrong(path: string, want: string, v: BencodeValue): MetainfoError {
  return new MetainfoError("wrong-type", path, `expected ${want}, found ${kindOf(v)}`);
}

function needDict(d: BencodeDict, key: string, path: string): BencodeDict {
  const v = d.get(key);
  if (v === undefined) throw new MetainfoError("missing", path, "required key is absent");
  if (!(v instanceof Map)) throw wrong(path, "a dictionary", v);
  return v;
}

function needBytes(d: BencodeDict, key: string, path: string): Uint8Array {
  const v = d.get(key);
  if (v === undefined) throw new MetainfoError("missing", path, "required key is absent");
  if (!(v instanceof Uint8Array)) throw wrong(path, "a string", v);
  return v;
}

/** A non-negative safe integer within [min, max]. */
function intIn(v: BencodeValue, path: string, min: number, max: number): number {
  if (typeof v !== "bigint") throw wrong(path, "an integer", v);
  if (v < BigInt(min) || v > BigInt(max)) {
    throw new MetainfoError("out-of-range", path, `${v} is outside ${min}..${max}`);
  }
  return Number(v);
}

function needInt(d: BencodeDict, key: string, path: string, min: number, max: number): number {
  const v = d.get(key);
  if (v === undefined) throw new MetainfoError("missing", path, "required key is absent");
  return intIn(v, path, min, max);
}

const DRIVE = /^[A-Za-z]:/;

/** Quotes a name for a message, cut to its first 40 characters. */
function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
}

/** Formatting characters that are invisible or turn the writing direction, which can disguise a name: removed. */
const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/** Characters Windows cannot store in a name, DEL and the C1 controls: each becomes `_`. */
const NOT_ON_WINDOWS = /[<>:"|?*\x7f-\x9f]/g;

/** Names Windows keeps for devices, whatever extension follows (compared without case, trailing spaces dropped). */
const DEVICE = /^(?:con|prn|aux|nul|clock\$|conin\$|conout\$|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3])$/i;

/** Whether the part of `c` before its first dot, trailing spaces dropped, is a Windows device name. */
function isDeviceName(c: string): boolean {
  const dot = c.indexOf(".");
  let end = dot < 0 ? c.length : dot;
  while (end > 0 && c.charCodeAt(end - 1) === 0x20) end--;
  return end <= 7 && DEVICE.test(c.slice(0, end)); // the longest device name has 7 characters
}

/**
 * Checks one path component from a torrent and returns it sanitised (see the module policy): refuses what could
 * escape or misname the output directory, rewrites what a Windows build could not create or what could disguise the
 * name. Linear in the component's length, whatever it holds.
 */
function safeComponent(raw: string, path: string): string {
  if (raw === "" || raw === "." || raw === "..") {
    throw new MetainfoError("unsafe-path", path, `component ${JSON.stringify(raw)} is not a file name`);
  }
  for (let k = 0; k < raw.length; k++) {
    const ch = raw.charCodeAt(k);
    if (ch < 0x20 || ch === 0x2f || ch === 0x5c) {
      throw new MetainfoError("unsafe-path", path, `component ${quote(raw)} contains a separator or control`);
    }
  }
  if (DRIVE.test(raw)) throw new MetainfoError("unsafe-path", path, `component ${quote(raw)} names a drive`);
  let c = raw.replace(INVISIBLE, "").replace(NOT_ON_WINDOWS, "_");
  let end = c.length; // trailing dots and spaces: a loop, as /[. ]+$/ backtracks quadratically on ". . . x"
  while (end > 0 && (c.charCodeAt(end - 1) === 0x2e || c.charCodeAt(end - 1) === 0x20)) end--;
  c = end === 0 ? "_" : c.slice(0, end);
  if (isDeviceName(c)) c = `_${c}`;
  // a UTF-16 code unit is at most 3 UTF-8 bytes, so short names need no encoding
  const bytes = c.length * 3 <= MAX_PATH_COMPONENT_BYTES ? 0 : utf8.encode(c).length;
  if (bytes > MAX_PATH_COMPONENT_BYTES) {
    throw new MetainfoError(
      "unsafe-path",
      path,
      `component is ${bytes} bytes, over the limit of ${MAX_PATH_COMPONENT_BYTES}`,
    );
  }
  return c;
}

/** `name.utf-8` when valid, else `name` (lenient UTF-8). */
function readName(info: BencodeDict): string {
  const alt = info.get("name.utf-8");
  if (alt instanceof Uint8Array) {
    const s = strictText(alt);
    if (s !== undefined) return s;
  }
  return lenientUtf8.decode(needBytes(info, "name", "info.name"));
}

/** The components of a path list, all strings, or undefined when it is not one. */
function stringList(v: BencodeValue | undefined): Uint8Array[] | undefined {
  if (!Array.isArray(v)) return undefined;
  for (const c of v) if (!(c instanceof Uint8Array)) return undefined;
  return v as Uint8Array[];
}

/** A file's path components, sanitised (`safe`) and as the torrent gives them (`raw`, checked but not rewritten). */
function readPath(file: BencodeDict, path: string): { safe: string[]; raw: string[] } {
  const raw = file.get("path");
  if (raw === undefined) throw new MetainfoError("missing", `${path}.path`, "required key is absent");
  if (!Array.isArray(raw)) throw wrong(`${path}.path`, "a list", raw);
  let parts: string[] | undefined;
  let where = `${path}.path`;
  const alt = stringList(file.get("path.utf-8"));
  if (alt && alt.length > 0) {
    const decoded = alt.map(strictText);
    if (decoded.every((s) => s !== undefined)) {
      parts = decoded as string[];
      where = `${path}.path.utf-8`;
    }
  }
  if (parts === undefined) {
    parts = raw.map((c, k) => {
      if (!(c instanceof Uint8Array)) throw wrong(`${path}.path[${k}]`, "a string", c);
      return lenientUtf8.decode(c);
    });
  }
  if (parts.length === 0) throw new MetainfoError("unsafe-path", where, "path is empty");
  if (parts.length + 1 > MAX_PATH_COMPONENTS) {
    throw new MetainfoError("unsafe-path", where, `path has ${parts.length} components, over the limit`);
  }
  return { safe: parts.map((c, k) => safeComponent(c, `${where}[${k}]`)), raw: parts };
}

/**
 * `raw` when any component differs from `safe`, else undefined (the path serves for URLs as it is). A raw component
 * over {@linkcode MAX_PATH_COMPONENT_BYTES} (sanitising can strip a megabyte of trailing spaces down to one letter) is
 * not kept: the URLs use the sanitised path then.
 */
function urlPathOf(safe: readonly string[], raw: readonly string[]): readonly string[] | undefined {
  if (!safe.some((c, k) => c !== raw[k])) return undefined;
  const fits = (c: string) =>
    c.length * 3 <= MAX_PATH_COMPONENT_BYTES || utf8.encode(c).length <= MAX_PATH_COMPONENT_BYTES;
  return raw.every(fits) ? raw : undefined;
}

function isPadding(file: BencodeDict, parts: readonly string[]): boolean {
  const attr = file.get("attr");
  if (attr instanceof Uint8Array && attr.includes(0x70 /* p */)) return true;
  return parts[0] === ".pad" || parts[parts.length - 1].startsWith("_____padding_file_");
}

function addLength(total: number, length: number, path: string): number {
  const sum = total + length;
  if (sum > MAX_TOTAL_LENGTH) {
    throw new MetainfoError("out-of-range", path, `total length exceeds the limit of ${MAX_TOTAL_LENGTH}`);
  }
  return sum;
}

/** A folder (children) or a file (`file` is its index) in the tree of paths; `by` is the file that made it. */
interface PathNode {
  readonly by: number;
  readonly children: Map<string, PathNode> | null;
}

/** Refuses two files on one path, and a file that is another's folder. Padding files are never written: skipped. */
function checkDistinct(files: readonly TorrentFile[]): void {
  const root = new Map<string, PathNode>();
  for (const f of files) {
    if (f.padding) continue;
    const where = `info.files[${f.index}].path`;
    let dir = root;
    const last = f.path.length - 1;
    for (let k = 0; k < last; k++) {
      const node = dir.get(f.path[k]);
      if (node === undefined) {
        const children = new Map<string, PathNode>();
        dir.set(f.path[k], { by: f.index, children });
        dir = children;
      } else if (node.children === null) {
        const folder = f.path.slice(0, k + 1).join("/");
        throw new MetainfoError("duplicate-path", where, `folder ${JSON.stringify(folder)} is file ${node.by}`);
      } else {
        dir = node.children;
      }
    }
    const clash = dir.get(f.path[last]);
    if (clash !== undefined) {
      const what = clash.children === null ? "is also file" : "is a folder of file";
      throw new MetainfoError("duplicate-path", where, `${JSON.stringify(f.path.join("/"))} ${what} ${clash.by}`);
    }
    dir.set(f.path[last], { by: f.index, children: null });
  }
}

function readFiles(
  info: BencodeDict,
  name: string,
  rawName: string,
): { files: TorrentFile[]; total: number; multiFile: boolean } {
  const length = info.get("length");
  const list = info.get("files");
  if (length !== undefined && list !== undefined) {
    throw new MetainfoError("conflict", "info", "both `length` and `files` are present");
  }
  if (length !== undefined) {
    const n = intIn(length, "info.length", 0, MAX_TOTAL_LENGTH);
    const file: TorrentFile = { index: 0, path: [name], length: n, offset: 0, padding: false };
    const urlPath = urlPathOf([name], [rawName]);
    return { files: [urlPath ? { ...file, urlPath } : file], total: n, multiFile: false };
  }
  if (list === undefined) throw new MetainfoError("missing", "info", "neither `length` nor `files` is present");
  if (!Array.isArray(list)) throw wrong("info.files", "a list", list);
  if (list.length > MAX_FILES) {
    throw new MetainfoError("out-of-range", "info.files", `${list.length} files exceed the limit of ${MAX_FILES}`);
  }
  const files: TorrentFile[] = [];
  let total = 0;
  list.forEach((f, index) => {
    const where = `info.files[${index}]`;
    if (!(f instanceof Map)) throw wrong(where, "a dictionary", f);
    const n = needInt(f, "length", `${where}.length`, 0, MAX_TOTAL_LENGTH);
    const { safe, raw } = readPath(f, where);
    const file: TorrentFile = { index, path: [name, ...safe], length: n, offset: total, padding: isPadding(f, safe) };
    const urlPath = urlPathOf(file.path, [rawName, ...raw]);
    files.push(urlPath ? { ...file, urlPath } : file);
    total = addLength(total, n, `${where}.length`);
  });
  checkDistinct(files);
  return { files, total, multiFile: true };
}

/** Strings of a list, or a lone string, decoded strictly; empty, invalid and repeated ones dropped. */
function textList(v: BencodeValue | undefined, seen: Set<string>): string[] {
  const items = v instanceof Uint8Array ? [v] : Array.isArray(v) ? v : [];
  const out: string[] = [];
  for (const item of items) {
    if (!(item instanceof Uint8Array)) continue;
    const s = strictText(item);
    if (s === undefined || s === "" || seen.has(s)) continue;
    seen.add(s);
    out.push(s);
  }
  return out;
}

function readAnnounce(top: BencodeDict): string[][] {
  const seen = new Set<string>();
  const tiers: string[][] = [];
  const list = top.get("announce-list");
  if (Array.isArray(list)) {
    for (const tier of list) {
      if (!Array.isArray(tier)) continue;
      const urls = textList(tier, seen);
      if (urls.length > 0) tiers.push(urls);
    }
  }
  if (tiers.length > 0) return tiers;
  const one = textList(top.get("announce"), seen);
  return one.length > 0 ? [one] : [];
}

function optionalText(d: BencodeDict, key: string): string | undefined {
  for (const k of [`${key}.utf-8`, key]) {
    const v = d.get(k);
    if (v instanceof Uint8Array) {
      const s = strictText(v);
      if (s !== undefined) return s;
    }
  }
  return undefined;
}

interface Extra {
  announce: string[][];
  urlList: string[];
  comment?: string;
  createdBy?: string;
  creationDate?: number;
}

function build(infoBytes: Uint8Array, info: BencodeDict, extra: Extra): Metainfo {
  const rawName = readName(info);
  const name = safeComponent(rawName, "info.name");
  const pieceLength = needInt(info, "piece length", "info.piece length", MIN_TORRENT_PIECE_LENGTH, MAX_PIECE_LENGTH);
  const pieceHashes = needBytes(info, "pieces", "info.pieces");
  if (pieceHashes.length % 20 !== 0) {
    throw new MetainfoError("bad-pieces", "info.pieces", `${pieceHashes.length} bytes is not a multiple of 20`);
  }
  const pieceCount = pieceHashes.length / 20;
  if (pieceCount > MAX_PIECES) {
    throw new MetainfoError("out-of-range", "info.pieces", `${pieceCount} pieces exceed the limit of ${MAX_PIECES}`);
  }
  const { files, total, multiFile } = readFiles(info, name, rawName);
  if (total === 0) throw new MetainfoError("empty", "info", "the torrent has no data");
  const want = Math.ceil(total / pieceLength);
  if (pieceCount !== want) {
    throw new MetainfoError(
      "bad-pieces",
      "info.pieces",
      `${pieceCount} piece hashes for ${total} bytes in pieces of ${pieceLength}, expected ${want}`,
    );
  }
  const infoHash = sha1(infoBytes);
  return {
    infoHash,
    infoHashHex: toHex(infoHash),
    name,
    pieceLength,
    pieceCount,
    pieceHashes,
    totalLength: total,
    files,
    multiFile,
    announce: extra.announce,
    urlList: extra.urlList,
    private: info.get("private") === 1n,
    ...(extra.comment !== undefined ? { comment: extra.comment } : {}),
    ...(extra.createdBy !== undefined ? { createdBy: extra.createdBy } : {}),
    ...(extra.creationDate !== undefined ? { creationDate: extra.creationDate } : {}),
    infoBytes,
  };
}

function decode(bytes: Uint8Array, allowUnsorted: boolean): DecodeResult {
  if (bytes.length > MAX_TORRENT_BYTES) {
    throw new MetainfoError("out-of-range", "", `${bytes.length} bytes exceed the limit of ${MAX_TORRENT_BYTES}`);
  }
  try {
    return decodeBencode(bytes, { allowUnsorted, spanDepth: 1 });
  } catch (e) {
    if (e instanceof BencodeError) throw new MetainfoError("bencode", "", e.message, { cause: e });
    throw e;
  }
}

/**
 * Reads a whole `.torrent` file.
 * @param bytes The file's bytes; `pieceHashes` and `infoBytes` of the result are views into them.
 * @returns The checked torrent.
 * @throws {MetainfoError} on bad bencode (`bencode`, with the {@linkcode BencodeError} as `cause`), a missing or
 *   mistyped key, values out of range, piece hashes that do not fit the length, no data, or unsafe paths.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { encodeBencode } from "./bencode.ts";
 * const info = { length: 5, name: "a.txt", "piece length": 16384, pieces: new Uint8Array(20) };
 * const meta = parseMetainfo(encodeBencode({ announce: "http://t/a", info }));
 * eq(meta.name, "a.txt");
 * eq(meta.pieceCount, 1);
 * eq(meta.announce[0][0], "http://t/a");
 * eq(meta.infoHashHex.length, 40);
 * ```
 */
export function parseMetainfo(bytes: Uint8Array): Metainfo {
  const decoded = decode(bytes, true);
  const top = decoded.value;
  if (!(top instanceof Map)) throw wrong("", "a dictionary", top);
  const info = needDict(top, "info", "info");
  const span = decoded.valueSpan(top, "info");
  if (span === undefined) throw new MetainfoError("missing", "info", "required key is absent");
  for (const issue of decoded.issues) {
    const inInfo = issue.offset >= span.start && issue.offset < span.end;
    if (inInfo || issue.code === "duplicate-key") {
      const cause = new BencodeError(
        issue.code,
        issue.offset,
        issue.code === "duplicate-key" ? "duplicate key" : "unsorted keys",
      );
      throw new MetainfoError("bencode", inInfo ? "info" : "", cause.message, { cause });
    }
  }
  const creation = top.get("creation date");
  return build(bytes.subarray(span.start, span.end), info, {
    announce: readAnnounce(top),
    urlList: textList(top.get("url-list"), new Set()),
    comment: optionalText(top, "comment"),
    createdBy: optionalText(top, "created by"),
    creationDate: typeof creation === "bigint" && creation >= 0n && creation <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(creation)
      : undefined,
  });
}

/**
 * Reads a bare info dictionary, as fetched from peers for a magnet link (BEP 9); it must be strictly canonical.
 * @param infoBytes The bencoded info dictionary.
 * @param extra Trackers and web seeds known from elsewhere (the magnet link).
 * @returns The checked torrent.
 * @throws {MetainfoError} as {@linkcode parseMetainfo} does.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { encodeBencode } from "./bencode.ts";
 * const info = encodeBencode({ length: 5, name: "a.txt", "piece length": 16384, pieces: new Uint8Array(20) });
 * const meta = parseInfoDict(info, { announce: [["udp://t:1"]] });
 * eq(meta.infoBytes.length, info.length);
 * eq(meta.announce[0][0], "udp://t:1");
 * ```
 */
export function parseInfoDict(
  infoBytes: Uint8Array,
  extra: { announce?: string[][]; urlList?: string[] } = {},
): Metainfo {
  const decoded = decode(infoBytes, false);
  const info = decoded.value;
  if (!(info instanceof Map)) throw wrong("info", "a dictionary", info);
  const seen = new Set<string>();
  const announce: string[][] = [];
  for (const tier of extra.announce ?? []) {
    const urls = tier.filter((u) => u !== "" && !seen.has(u) && seen.add(u));
    if (urls.length > 0) announce.push(urls);
  }
  const seenWs = new Set<string>();
  const urlList = (extra.urlList ?? []).filter((u) => u !== "" && !seenWs.has(u) && seenWs.add(u));
  return build(infoBytes, info, { announce, urlList });
}

/**
 * The length of piece `index`: `pieceLength`, except the last piece, which holds what is left.
 * @throws {RangeError} when `index` is not an integer in [0, pieceCount).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * const meta = { pieceLength: 16384, pieceCount: 3, totalLength: 40000 };
 * eq(pieceLengthOf(meta, 0), 16384);
 * eq(pieceLengthOf(meta, 2), 40000 - 2 * 16384);
 * ```
 */
export function pieceLengthOf(
  meta: Pick<Metainfo, "pieceLength" | "pieceCount" | "totalLength">,
  index: number,
): number {
  if (!Number.isInteger(index) || index < 0 || index >= meta.pieceCount) {
    throw new RangeError(`Cannot size piece ${index}: the torrent has pieces 0..${meta.pieceCount - 1}`);
  }
  return index === meta.pieceCount - 1 ? meta.totalLength - index * meta.pieceLength : meta.pieceLength;
}
