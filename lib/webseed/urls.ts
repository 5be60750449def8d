/**
 * Web seed URLs (BEP 19, GetRight style): from a `url-list` entry, a magnet's `ws=` or `--web-seed` to the URL of
 * each file of a torrent. Pure: no IO.
 *
 * Policy:
 * - Only `http:` and `https:` URLs are used (BEP 19 also allows FTP, which btfetch does not speak): anything else is
 *   refused (`unsupported-scheme`), and so is text that is not an absolute URL (`bad-url`) or is longer than
 *   {@linkcode WEBSEED_MAX_URL_CHARS} (`too-long`). The URL is normalised as the WHATWG URL parser does (lowercase
 *   scheme and host, default port dropped, IDN hosts in punycode, IPv4 written as dotted quads) and its fragment is
 *   dropped: it is never sent.
 * - Single-file torrent: the URL is the file's. When its path ends with `/` (`http://h/pub/`, or `http://h` with no
 *   path at all) the torrent's name is appended, as libtorrent does.
 * - Multi-file torrent: the URL names a folder. A `/` is added when missing (libtorrent's fix for torrents that forget
 *   it), then the torrent's name and each component of the file's path. A query, if any, stays after the path.
 * - Each appended component is percent-encoded from its UTF-8 bytes, keeping only RFC 3986's unreserved characters
 *   (`A-Z a-z 0-9 - . _ ~`): a space is `%20` (never `+`, which servers read literally in a path), and `%`, `?`, `#`,
 *   `/`, `+`, `&`, `;` are encoded, so each component stays exactly one path segment whatever it holds. (`/` cannot
 *   occur in a checked name; were it there, it would stay inside its segment as `%2F`.) A component that is empty,
 *   `.` or `..` is refused (`bad-path`): `parseMetainfo` never lets one through, and a URL parser would fold it away.
 * - Padding files (BEP 47) get no URL (null): they are never requested. Neither does a file whose URL would be longer
 *   than the limit: the seed is treated as not having it.
 * - Names are those the torrent gives (`urlPath`), not the ones sanitised for the disk (see `lib/metainfo.ts`): a
 *   file named `a?b` in the torrent is saved as `a_b` but asked for as `a%3Fb`, the name the server holds it under
 *   (libtorrent asks for the sanitised name, and then usually gets a 404). Every raw component passed the metainfo's
 *   checks (no separator, control, `.` or `..`), so it stays one segment.
 * @module
 */
import type { Metainfo } from "../metainfo.ts";
import { WEBSEED_MAX_URL_CHARS } from "../limits.ts";
import { WebSeedError } from "./error.ts";

/** What {@linkcode webSeedUrls} reads from a torrent. */
export type UrlGeometry = Pick<Metainfo, "files" | "multiFile">;

const utf8 = new TextEncoder();
const HEX = "0123456789ABCDEF";

function unreserved(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d ||
    b === 0x2e || b === 0x5f || b === 0x7e;
}

/**
 * Parses and checks a web seed URL: absolute, `http:` or `https:`, at most {@linkcode WEBSEED_MAX_URL_CHARS}
 * characters; the fragment is removed.
 * @throws {WebSeedError} `too-long`, `bad-url` or `unsupported-scheme`.
 * @example
 * ```ts
 * import { strictEqual as eq, throws } from "node:assert/strict";
 * eq(parseWebSeedUrl("HTTP://Mirror.Example:80/pub/#x").href, "http://mirror.example/pub/");
 * throws(() => parseWebSeedUrl("ftp://mirror.example/pub/"), { name: "WebSeedError", code: "unsupported-scheme" });
 * ```
 */
export function parseWebSeedUrl(text: string): URL {
  if (text.length > WEBSEED_MAX_URL_CHARS) {
    throw new WebSeedError("too-long", text, `${text.length} characters exceed the limit of ${WEBSEED_MAX_URL_CHARS}`);
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new WebSeedError("bad-url", text, "not an absolute URL");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new WebSeedError("unsupported-scheme", text, `scheme ${u.protocol} is not http or https`);
  }
  u.hash = "";
  if (u.href.length > WEBSEED_MAX_URL_CHARS) {
    throw new WebSeedError("too-long", text, `the normalised URL exceeds the limit of ${WEBSEED_MAX_URL_CHARS}`);
  }
  return u;
}

/**
 * Percent-encodes one path component: its UTF-8 bytes, all but RFC 3986's unreserved characters as `%XX`.
 * @throws {WebSeedError} `bad-path` for an empty component, `.` or `..`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(encodePathComponent("a b#1?.txt"), "a%20b%231%3F.txt");
 * eq(encodePathComponent("é~"), "%C3%A9~");
 * ```
 */
export function encodePathComponent(component: string): string {
  if (component === "" || component === "." || component === "..") {
    throw new WebSeedError("bad-path", component, "an empty, . or .. path component cannot be a URL segment");
  }
  let out = "";
  for (const b of utf8.encode(component)) {
    out += unreserved(b) ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/**
 * The URL of each file of a torrent on the web seed `base`, by file index; null for padding files and for files whose
 * URL would exceed {@linkcode WEBSEED_MAX_URL_CHARS}. See the module policy.
 * @throws {WebSeedError} when `base` is not a usable URL (see {@linkcode parseWebSeedUrl}), or `bad-path` for a path
 * component that cannot be a URL segment.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const multi = {
 *   multiFile: true,
 *   files: [
 *     { index: 0, path: ["My Album", "01 intro.flac"], length: 9, offset: 0, padding: false },
 *     { index: 1, path: ["My Album", ".pad", "7"], length: 7, offset: 9, padding: true },
 *   ],
 * };
 * eq(webSeedUrls(multi, "http://m.example/pub"), ["http://m.example/pub/My%20Album/01%20intro.flac", null]);
 * const single = { multiFile: false, files: [{ index: 0, path: ["a b.iso"], length: 5, offset: 0, padding: false }] };
 * eq(webSeedUrls(single, "http://m.example/isos/"), ["http://m.example/isos/a%20b.iso"]);
 * eq(webSeedUrls(single, "http://m.example/get/x.iso"), ["http://m.example/get/x.iso"]);
 * ```
 */
export function webSeedUrls(meta: UrlGeometry, base: string): (string | null)[] {
  const u = parseWebSeedUrl(base);
  const href = u.href;
  // A special-scheme href is origin (with any userinfo) + pathname + search; the fragment is already gone.
  const head = href.slice(0, href.length - u.pathname.length - u.search.length);
  const fit = (url: string): string | null => url.length <= WEBSEED_MAX_URL_CHARS ? url : null;
  if (!meta.multiFile) {
    return meta.files.map((f) => {
      if (f.padding) return null;
      if (!u.pathname.endsWith("/")) return href;
      const path = f.urlPath ?? f.path;
      const last = path[path.length - 1];
      if (head.length + u.pathname.length + last.length > WEBSEED_MAX_URL_CHARS) return null;
      return fit(head + u.pathname + encodePathComponent(last) + u.search);
    });
  }
  const folder = head + (u.pathname.endsWith("/") ? u.pathname : `${u.pathname}/`);
  return meta.files.map((f) => {
    if (f.padding) return null;
    let url = folder;
    const path = f.urlPath ?? f.path;
    for (let i = 0; i < path.length; i++) {
      if (url.length + path[i].length > WEBSEED_MAX_URL_CHARS) return null; // encoding never shortens: stop now
      url += (i > 0 ? "/" : "") + encodePathComponent(path[i]);
      if (url.length > WEBSEED_MAX_URL_CHARS) return null;
    }
    return fit(url + u.search);
  });
}
