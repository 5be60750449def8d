import { assertEquals, assertThrows } from "../_assert.ts";
import { encodePathComponent, parseWebSeedUrl, type UrlGeometry, webSeedUrls } from "../../lib/webseed/urls.ts";
import { WebSeedError } from "../../lib/webseed/error.ts";
import { WEBSEED_MAX_URL_CHARS } from "../../lib/limits.ts";
import type { TorrentFile } from "../../lib/metainfo.ts";
import { makeTorrent } from "../_torrent.ts";

function files(paths: string[][], padding: number[] = []): TorrentFile[] {
  return paths.map((path, index) => ({ index, path, length: 1, offset: index, padding: padding.includes(index) }));
}

function multi(name: string, ...paths: string[][]): UrlGeometry {
  return { multiFile: true, files: files(paths.map((p) => [name, ...p])) };
}

function single(name: string): UrlGeometry {
  return { multiFile: false, files: files([[name]]) };
}

const cases: { name: string; meta: UrlGeometry; base: string; want: (string | null)[] }[] = [
  {
    name: "single file, URL is the file's",
    meta: single("a.iso"),
    base: "http://h/x/y.iso",
    want: ["http://h/x/y.iso"],
  },
  {
    name: "single file, base ending in / gets the name",
    meta: single("a.iso"),
    base: "http://h/x/",
    want: ["http://h/x/a.iso"],
  },
  { name: "single file, bare host gets the name", meta: single("a.iso"), base: "http://h", want: ["http://h/a.iso"] },
  { name: "single file, space in the name", meta: single("a b.iso"), base: "http://h/", want: ["http://h/a%20b.iso"] },
  {
    name: "single file, query kept after the name",
    meta: single("a"),
    base: "http://h/d/?k=1",
    want: ["http://h/d/a?k=1"],
  },
  {
    name: "single file, the file's URL is not re-encoded",
    meta: single("a"),
    base: "http://h/a%20b",
    want: ["http://h/a%20b"],
  },
  { name: "fragment dropped", meta: single("a"), base: "http://h/f.iso#part", want: ["http://h/f.iso"] },
  { name: "multi-file, slash added", meta: multi("T", ["a"]), base: "http://h/pub", want: ["http://h/pub/T/a"] },
  { name: "multi-file, slash kept", meta: multi("T", ["a"]), base: "http://h/pub/", want: ["http://h/pub/T/a"] },
  { name: "multi-file, bare host", meta: multi("T", ["a"]), base: "https://h", want: ["https://h/T/a"] },
  {
    name: "multi-file, nested path",
    meta: multi("T", ["d", "e", "f.txt"]),
    base: "http://h/",
    want: ["http://h/T/d/e/f.txt"],
  },
  {
    name: "spaces are %20, never +",
    meta: multi("My T", ["a b+c"]),
    base: "http://h/",
    want: ["http://h/My%20T/a%20b%2Bc"],
  },
  {
    name: "unicode as UTF-8 bytes",
    meta: multi("Ünï", ["日本.txt"]),
    base: "http://h/",
    want: ["http://h/%C3%9Cn%C3%AF/%E6%97%A5%E6%9C%AC.txt"],
  },
  { name: "% is encoded", meta: multi("T", ["100%.txt"]), base: "http://h/", want: ["http://h/T/100%25.txt"] },
  { name: "? is encoded", meta: multi("T", ["why?.txt"]), base: "http://h/", want: ["http://h/T/why%3F.txt"] },
  { name: "# is encoded", meta: multi("T", ["#1.txt"]), base: "http://h/", want: ["http://h/T/%231.txt"] },
  {
    name: "reserved and sub-delims are encoded, unreserved kept",
    meta: multi("T", ["a&b=c;d,e!f'(g)*h:@[]$~-._"]),
    base: "http://h/",
    want: ["http://h/T/a%26b%3Dc%3Bd%2Ce%21f%27%28g%29%2Ah%3A%40%5B%5D%24~-._"],
  },
  {
    name: "a slash stays inside its segment",
    meta: multi("T", ["a/b"]),
    base: "http://h/",
    want: ["http://h/T/a%2Fb"],
  },
  { name: "multi-file, query kept", meta: multi("T", ["a"]), base: "http://h/p?tok=9", want: ["http://h/p/T/a?tok=9"] },
  {
    name: "userinfo, port and IPv6 host kept",
    meta: multi("T", ["a"]),
    base: "http://u:p@[::1]:8080/s",
    want: ["http://u:p@[::1]:8080/s/T/a"],
  },
  {
    name: "scheme and host normalised",
    meta: multi("T", ["a"]),
    base: "HTTP://EX.org:80/",
    want: ["http://ex.org/T/a"],
  },
  {
    name: "padding files get no URL",
    meta: { multiFile: true, files: files([["T", "a"], ["T", ".pad", "3"], ["T", "b"]], [1]) },
    base: "http://h/",
    want: ["http://h/T/a", null, "http://h/T/b"],
  },
  {
    name: "a URL over the limit is null, others kept",
    meta: multi("T", ["a"], ["b".repeat(WEBSEED_MAX_URL_CHARS)]),
    base: "http://h/",
    want: ["http://h/T/a", null],
  },
];

Deno.test("webSeedUrls() derives each file's URL as BEP 19 and libtorrent do", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => assertEquals(webSeedUrls(c.meta, c.base), c.want));
  }
});

Deno.test("webSeedUrls() gives URLs a URL parser keeps as they are and decodes back to the path", async (t) => {
  const names = ["a b", "日本", "100%", "why?", "#hash", "a+b", "~tilde", "émoji 🎉", "semi;colon", 'quote"d'];
  for (const name of names) {
    await t.step(name, () => {
      const [url] = webSeedUrls(multi("T", [name]), "http://h/base/");
      if (url === null) throw new Error("no URL");
      const u = new URL(url);
      assertEquals(u.href, url);
      assertEquals(u.search, "");
      assertEquals(u.hash, "");
      assertEquals(u.pathname.split("/").map(decodeURIComponent), ["", "base", "T", name]);
    });
  }
});

Deno.test("webSeedUrls() works on a parsed torrent's files", () => {
  const data = new Uint8Array(10);
  const multiT = makeTorrent({
    name: "My T",
    pieceLength: 16384,
    files: [{ path: ["d", "x y"], data }, { path: ["e"], data }],
  });
  assertEquals(webSeedUrls(multiT.meta, "http://h/p"), ["http://h/p/My%20T/d/x%20y", "http://h/p/My%20T/e"]);
  const singleT = makeTorrent({ name: "s s.bin", pieceLength: 16384, files: data });
  assertEquals(webSeedUrls(singleT.meta, "http://h/p/"), ["http://h/p/s%20s.bin"]);
});

const refused: { name: string; base: string; code: string }[] = [
  { name: "ftp", base: "ftp://h/f", code: "unsupported-scheme" },
  { name: "file", base: "file:///etc/passwd", code: "unsupported-scheme" },
  { name: "javascript", base: "javascript:alert(1)", code: "unsupported-scheme" },
  { name: "data", base: "data:text/plain,x", code: "unsupported-scheme" },
  { name: "relative", base: "/pub/f", code: "bad-url" },
  { name: "not a URL", base: "not a url", code: "bad-url" },
  { name: "empty", base: "", code: "bad-url" },
  { name: "bad port", base: "http://h:99999/", code: "bad-url" },
  { name: "over the limit", base: `http://h/${"x".repeat(WEBSEED_MAX_URL_CHARS)}`, code: "too-long" },
  {
    name: "over the limit once normalised",
    base: `http://h/${" ".repeat(WEBSEED_MAX_URL_CHARS - 20)}x`,
    code: "too-long",
  },
];

Deno.test("webSeedUrls() refuses unusable base URLs with a WebSeedError", async (t) => {
  for (const c of refused) {
    await t.step(c.name, () => {
      const e = assertThrows(() => webSeedUrls(single("a"), c.base), WebSeedError);
      assertEquals(e.code, c.code);
    });
  }
});

Deno.test("encodePathComponent() refuses components a URL parser would fold away", async (t) => {
  for (const c of ["", ".", ".."]) {
    await t.step(JSON.stringify(c), () => {
      assertEquals(assertThrows(() => encodePathComponent(c), WebSeedError).code, "bad-path");
      assertEquals(assertThrows(() => webSeedUrls(multi("T", [c]), "http://h/"), WebSeedError).code, "bad-path");
    });
  }
  assertEquals(encodePathComponent("..."), "...");
});

Deno.test("encodePathComponent() encodes a lone surrogate as U+FFFD instead of throwing", () => {
  assertEquals(encodePathComponent("a\ud800"), "a%EF%BF%BD");
});

Deno.test("parseWebSeedUrl() normalises and drops the fragment", () => {
  assertEquals(parseWebSeedUrl("https://Ex.ORG:443/a/../b#f").href, "https://ex.org/b");
});

Deno.test("webSeedUrls() asks for the names the torrent gives, not the ones sanitised for the disk", () => {
  const data = new Uint8Array(3);
  const { meta } = makeTorrent({
    name: "Q&A: part 1?",
    pieceLength: 16384,
    files: [{ path: ["notes*.txt"], data }, { path: ["ok.txt"], data }],
  });
  assertEquals(meta.files.map((f) => f.path.join("/")), ["Q&A_ part 1_/notes_.txt", "Q&A_ part 1_/ok.txt"]);
  assertEquals(webSeedUrls(meta, "http://h/pub/"), [
    "http://h/pub/Q%26A%3A%20part%201%3F/notes%2A.txt",
    "http://h/pub/Q%26A%3A%20part%201%3F/ok.txt",
  ]);
  const single = makeTorrent({ name: "a<b>.iso", pieceLength: 16384, files: data }).meta;
  assertEquals(single.files[0].path, ["a_b_.iso"]);
  assertEquals(webSeedUrls(single, "http://h/isos/"), ["http://h/isos/a%3Cb%3E.iso"]);
});

Deno.test("webSeedUrls() uses the sanitised name when the raw one is over the component limit", () => {
  const data = new Uint8Array(3);
  // a megabyte of trailing spaces is stripped from the name on disk; kept for URLs it would cost every file's URL a
  // megabyte of percent-encoding
  const { meta } = makeTorrent({
    name: "a" + " ".repeat(1_000_000),
    pieceLength: 16384,
    files: Array.from({ length: 20 }, (_, i) => ({ path: [`f${i}`], data })),
  });
  assertEquals(meta.files[0].path, ["a", "f0"]);
  assertEquals(meta.files[0].urlPath, undefined);
  assertEquals(webSeedUrls(meta, "http://h/")[0], "http://h/a/f0");
});

Deno.test("webSeedUrls() gives no URL for a component that alone is past the URL limit, without encoding it", () => {
  const long = "x".repeat(WEBSEED_MAX_URL_CHARS);
  const f = (path: string[]): TorrentFile => ({ index: 0, path, length: 1, offset: 0, padding: false });
  assertEquals(webSeedUrls({ multiFile: true, files: [f(["T", long])] }, "http://h/"), [null]);
  assertEquals(webSeedUrls({ multiFile: false, files: [f([long])] }, "http://h/pub/"), [null]);
});
