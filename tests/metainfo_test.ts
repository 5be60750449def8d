import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { makeTorrent, sha1 } from "./_torrent.ts";
import { BencodeError, type BencodeInput, encodeBencode, keyBytes, latin1Key } from "../lib/bencode.ts";
import { MetainfoError, type MetainfoErrorCode, parseInfoDict, parseMetainfo, pieceLengthOf } from "../lib/metainfo.ts";
import { MAX_PATH_COMPONENT_BYTES, MAX_PATH_COMPONENTS, MAX_PIECE_LENGTH } from "../lib/limits.ts";

const te = new TextEncoder();
const hashes = (n: number): Uint8Array => new Uint8Array(20 * n);

type Over = Record<string, BencodeInput | undefined>;

/** A valid single-file info dict (5 bytes, one piece), with keys replaced or (undefined) removed. */
function info(over: Over = {}): Map<string, BencodeInput> {
  const m = new Map<string, BencodeInput>([
    ["length", 5],
    ["name", "x"],
    ["piece length", 16384],
    ["pieces", hashes(1)],
  ]);
  for (const [k, v] of Object.entries(over)) v === undefined ? m.delete(k) : m.set(k, v);
  return m;
}

/** A file entry. */
const file = (path: BencodeInput[], length = 1, extra: Over = {}): Map<string, BencodeInput> => {
  const m = new Map<string, BencodeInput>([["length", length], ["path", path]]);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) m.set(k, v);
  return m;
};

/** A multi-file info dict from file entries (total must fit one piece unless `pieces` is given). */
const multi = (files: BencodeInput[], over: Over = {}): Map<string, BencodeInput> =>
  info({ length: undefined, files, ...over });

const torrent = (inf: BencodeInput, top: Over = {}): Uint8Array => {
  const m = new Map<string, BencodeInput>([["info", inf]]);
  for (const [k, v] of Object.entries(top)) if (v !== undefined) m.set(k, v);
  return encodeBencode(m);
};

/** Bytes of a binary string. */
const raw = (s: string): Uint8Array => keyBytes(s);
const canonicalInfo = latin1Key(encodeBencode(info()));

const hostile: { name: string; bytes: Uint8Array; code: MetainfoErrorCode; keyPath: string; cause?: string }[] = [
  {
    name: "path traversal ..",
    bytes: torrent(multi([file(["..", "etc"])])),
    code: "unsafe-path",
    keyPath: "info.files[0].path[0]",
  },
  {
    name: "deep traversal",
    bytes: torrent(multi([file(["a", "..", "..", "x"])])),
    code: "unsafe-path",
    keyPath: "info.files[0].path[1]",
  },
  {
    name: "absolute component",
    bytes: torrent(multi([file(["/etc/passwd"])])),
    code: "unsafe-path",
    keyPath: "info.files[0].path[0]",
  },
  { name: "absolute name", bytes: torrent(info({ name: "/etc/passwd" })), code: "unsafe-path", keyPath: "info.name" },
  { name: "name ..", bytes: torrent(info({ name: ".." })), code: "unsafe-path", keyPath: "info.name" },
  { name: "name .", bytes: torrent(info({ name: "." })), code: "unsafe-path", keyPath: "info.name" },
  { name: "empty name", bytes: torrent(info({ name: "" })), code: "unsafe-path", keyPath: "info.name" },
  { name: "drive letter name", bytes: torrent(info({ name: "C:" })), code: "unsafe-path", keyPath: "info.name" },
  {
    name: "drive letter path",
    bytes: torrent(multi([file(["c:windows"])])),
    code: "unsafe-path",
    keyPath: "info.files[0].path[0]",
  },
  {
    name: "backslash",
    bytes: torrent(multi([file(["a\\..\\b"])])),
    code: "unsafe-path",
    keyPath: "info.files[0].path[0]",
  },
  {
    name: "NUL byte",
    bytes: torrent(multi([file(["a\x00b"])])),
    code: "unsafe-path",
    keyPath: "info.files[0].path[0]",
  },
  { name: "newline", bytes: torrent(multi([file(["a\nb"])])), code: "unsafe-path", keyPath: "info.files[0].path[0]" },
  {
    name: "dot component",
    bytes: torrent(multi([file(["a", "."])])),
    code: "unsafe-path",
    keyPath: "info.files[0].path[1]",
  },
  {
    name: "empty component",
    bytes: torrent(multi([file(["a", ""])])),
    code: "unsafe-path",
    keyPath: "info.files[0].path[1]",
  },
  { name: "empty path list", bytes: torrent(multi([file([])])), code: "unsafe-path", keyPath: "info.files[0].path" },
  {
    name: "component over the byte limit",
    bytes: torrent(multi([file(["é".repeat(128)])])),
    code: "unsafe-path",
    keyPath: "info.files[0].path[0]",
  },
  {
    name: "too many components",
    bytes: torrent(multi([file(Array(MAX_PATH_COMPONENTS).fill("d"))])),
    code: "unsafe-path",
    keyPath: "info.files[0].path",
  },
  {
    name: "path.utf-8 wins and is checked",
    bytes: torrent(multi([file(["ok"], 1, { "path.utf-8": [".."] })])),
    code: "unsafe-path",
    keyPath: "info.files[0].path.utf-8[0]",
  },
  {
    name: "name.utf-8 wins and is checked",
    bytes: torrent(info({ "name.utf-8": ".." })),
    code: "unsafe-path",
    keyPath: "info.name",
  },
  {
    name: "same path twice",
    bytes: torrent(multi([file(["a"]), file(["a"])])),
    code: "duplicate-path",
    keyPath: "info.files[1].path",
  },
  {
    name: "file then folder",
    bytes: torrent(multi([file(["a"]), file(["a", "b"])])),
    code: "duplicate-path",
    keyPath: "info.files[1].path",
  },
  {
    name: "folder then file",
    bytes: torrent(multi([file(["a", "b"]), file(["a"])])),
    code: "duplicate-path",
    keyPath: "info.files[1].path",
  },
  {
    name: "invalid UTF-8 collapsing into one name",
    bytes: torrent(multi([file([new Uint8Array([0xff])]), file([new Uint8Array([0xfe])])])),
    code: "duplicate-path",
    keyPath: "info.files[1].path",
  },
  {
    name: "two names equal once sanitised",
    bytes: torrent(multi([file(["a?"]), file(["a*"])])),
    code: "duplicate-path",
    keyPath: "info.files[1].path",
  },
  {
    name: "a device name and its sanitised form",
    bytes: torrent(multi([file(["_CON"]), file(["CON"])])),
    code: "duplicate-path",
    keyPath: "info.files[1].path",
  },
  {
    name: "a device name at the byte limit grows past it",
    bytes: torrent(multi([file([`CON.${"a".repeat(MAX_PATH_COMPONENT_BYTES - 4)}`])])),
    code: "unsafe-path",
    keyPath: "info.files[0].path[0]",
  },
  { name: "pieces too few", bytes: torrent(info({ length: 16385 })), code: "bad-pieces", keyPath: "info.pieces" },
  { name: "pieces too many", bytes: torrent(info({ pieces: hashes(2) })), code: "bad-pieces", keyPath: "info.pieces" },
  {
    name: "pieces not a multiple of 20",
    bytes: torrent(info({ pieces: new Uint8Array(19) })),
    code: "bad-pieces",
    keyPath: "info.pieces",
  },
  { name: "pieces missing", bytes: torrent(info({ pieces: undefined })), code: "missing", keyPath: "info.pieces" },
  { name: "pieces an integer", bytes: torrent(info({ pieces: 5 })), code: "wrong-type", keyPath: "info.pieces" },
  { name: "negative length", bytes: torrent(info({ length: -1 })), code: "out-of-range", keyPath: "info.length" },
  { name: "huge length", bytes: torrent(info({ length: 2n ** 64n })), code: "out-of-range", keyPath: "info.length" },
  { name: "length a string", bytes: torrent(info({ length: "5" })), code: "wrong-type", keyPath: "info.length" },
  {
    name: "file lengths overflow",
    bytes: torrent(multi([file(["a"], 2 ** 52), file(["b"], 2 ** 52)])),
    code: "out-of-range",
    keyPath: "info.files[1].length",
  },
  {
    name: "negative file length",
    bytes: torrent(multi([file(["a"], -5)])),
    code: "out-of-range",
    keyPath: "info.files[0].length",
  },
  {
    name: "file length missing",
    bytes: torrent(multi([new Map([["path", ["a"]]])])),
    code: "missing",
    keyPath: "info.files[0].length",
  },
  {
    name: "file path missing",
    bytes: torrent(multi([new Map([["length", 1]])])),
    code: "missing",
    keyPath: "info.files[0].path",
  },
  {
    name: "file path a string",
    bytes: torrent(multi([file("a" as unknown as BencodeInput[])])),
    code: "wrong-type",
    keyPath: "info.files[0].path",
  },
  {
    name: "path component an integer",
    bytes: torrent(multi([file([1])])),
    code: "wrong-type",
    keyPath: "info.files[0].path[0]",
  },
  { name: "file entry a list", bytes: torrent(multi([["a"]])), code: "wrong-type", keyPath: "info.files[0]" },
  {
    name: "files a dict",
    bytes: torrent(info({ length: undefined, files: {} })),
    code: "wrong-type",
    keyPath: "info.files",
  },
  {
    name: "piece length zero",
    bytes: torrent(info({ "piece length": 0 })),
    code: "out-of-range",
    keyPath: "info.piece length",
  },
  {
    name: "piece length 512",
    bytes: torrent(info({ "piece length": 512 })),
    code: "out-of-range",
    keyPath: "info.piece length",
  },
  {
    name: "piece length over the limit",
    bytes: torrent(info({ "piece length": MAX_PIECE_LENGTH * 2 })),
    code: "out-of-range",
    keyPath: "info.piece length",
  },
  {
    name: "piece length missing",
    bytes: torrent(info({ "piece length": undefined })),
    code: "missing",
    keyPath: "info.piece length",
  },
  { name: "both length and files", bytes: torrent(info({ files: [file(["a"])] })), code: "conflict", keyPath: "info" },
  { name: "neither length nor files", bytes: torrent(info({ length: undefined })), code: "missing", keyPath: "info" },
  { name: "zero length", bytes: torrent(info({ length: 0, pieces: hashes(0) })), code: "empty", keyPath: "info" },
  { name: "no files", bytes: torrent(multi([], { pieces: hashes(0) })), code: "empty", keyPath: "info" },
  {
    name: "only empty files",
    bytes: torrent(multi([file(["a"], 0)], { pieces: hashes(0) })),
    code: "empty",
    keyPath: "info",
  },
  { name: "name missing", bytes: torrent(info({ name: undefined })), code: "missing", keyPath: "info.name" },
  { name: "name a list", bytes: torrent(info({ name: ["x"] })), code: "wrong-type", keyPath: "info.name" },
  { name: "info missing", bytes: encodeBencode({ announce: "http://t" }), code: "missing", keyPath: "info" },
  { name: "info a string", bytes: encodeBencode({ info: "x" }), code: "wrong-type", keyPath: "info" },
  { name: "top level a list", bytes: raw("le"), code: "wrong-type", keyPath: "" },
  {
    name: "info keys unsorted",
    bytes: raw(`d4:infod4:name1:x6:lengthi5e12:piece lengthi16384e6:pieces20:${"\x00".repeat(20)}ee`),
    code: "bencode",
    keyPath: "info",
    cause: "unsorted-keys",
  },
  {
    name: "info keys duplicated",
    bytes: raw(`d4:info${canonicalInfo.slice(0, -1)}6:piecesi1eee`),
    code: "bencode",
    keyPath: "info",
    cause: "duplicate-key",
  },
  {
    name: "nested dict in info unsorted",
    bytes: raw(`d4:info${canonicalInfo.slice(0, -1)}1:zd1:bi1e1:ai1eeee`),
    code: "bencode",
    keyPath: "info",
    cause: "unsorted-keys",
  },
  {
    name: "two info dicts",
    bytes: raw(`d4:info${canonicalInfo}4:info${canonicalInfo}e`),
    code: "bencode",
    keyPath: "",
    cause: "duplicate-key",
  },
  { name: "truncated", bytes: torrent(info()).subarray(0, 40), code: "bencode", keyPath: "", cause: "truncated" },
  {
    name: "trailing bytes",
    bytes: raw(`${latin1Key(torrent(info()))}\n`),
    code: "bencode",
    keyPath: "",
    cause: "trailing-bytes",
  },
  {
    name: "deep nesting",
    bytes: raw(`d1:a${"l".repeat(100)}${"e".repeat(100)}4:info${canonicalInfo}e`),
    code: "bencode",
    keyPath: "",
    cause: "too-deep",
  },
  {
    name: "leading zero",
    bytes: raw(`d4:info${canonicalInfo.replace("i5e", "i05e")}e`),
    code: "bencode",
    keyPath: "",
    cause: "leading-zero",
  },
  { name: "empty input", bytes: new Uint8Array(), code: "bencode", keyPath: "", cause: "truncated" },
];

Deno.test("parseMetainfo() refuses hostile torrents with code and key path", async (t) => {
  for (const c of hostile) {
    await t.step(c.name, () => {
      const err = assertThrows(() => parseMetainfo(c.bytes), MetainfoError);
      assert(err instanceof SyntaxError);
      assertEquals({ code: err.code, keyPath: err.keyPath }, { code: c.code, keyPath: c.keyPath });
      if (c.cause !== undefined) {
        assert(err.cause instanceof BencodeError, "cause is a BencodeError");
        assertEquals(err.cause.code, c.cause);
      }
    });
  }
});

Deno.test("parseMetainfo() sanitises names a Windows build cannot create, and bidi controls, as libtorrent does", async (t) => {
  const rows: { name: string; component: string; want: string }[] = [
    { name: "a plain name is kept", component: "report 2.txt", want: "report 2.txt" },
    { name: "letters beyond ASCII are kept", component: "Über café ü.mkv", want: "Über café ü.mkv" },
    { name: "a no-break space is kept", component: "a\u00a0b", want: "a\u00a0b" },
    { name: "a leading dot is kept", component: ".hidden", want: ".hidden" },
    { name: "CON", component: "CON", want: "_CON" },
    { name: "con in lower case", component: "con", want: "_con" },
    { name: "PRN", component: "PRN", want: "_PRN" },
    { name: "AUX with an extension", component: "AUX.h", want: "_AUX.h" },
    { name: "NUL with spaces before the extension", component: "Nul .txt", want: "_Nul .txt" },
    { name: "a device name with two extensions", component: "con.tar.gz", want: "_con.tar.gz" },
    { name: "COM1", component: "COM1", want: "_COM1" },
    { name: "com9 with an extension", component: "com9.log", want: "_com9.log" },
    { name: "COM0", component: "COM0", want: "_COM0" },
    { name: "LPT1", component: "LPT1", want: "_LPT1" },
    { name: "lpt9 with an extension", component: "lpt9.txt", want: "_lpt9.txt" },
    { name: "COM with a superscript digit", component: "COM\u00b9.txt", want: "_COM\u00b9.txt" },
    { name: "CONIN$", component: "CONIN$", want: "_CONIN$" },
    { name: "CON with a trailing dot", component: "CON.", want: "_CON" },
    { name: "COM10 is no device", component: "COM10", want: "COM10" },
    { name: "CONSOLE is no device", component: "CONSOLE.txt", want: "CONSOLE.txt" },
    { name: "a device name after a dot is no device", component: "x.con", want: "x.con" },
    { name: "a trailing dot", component: "name.", want: "name" },
    { name: "a trailing space", component: "name ", want: "name" },
    { name: "trailing dots and spaces", component: "name. . .", want: "name" },
    { name: "only dots", component: "...", want: "_" },
    { name: "only spaces", component: "   ", want: "_" },
    { name: "angle brackets", component: "a<b>c", want: "a_b_c" },
    { name: "colon, quote, bar, question mark, star", component: 'ab:c"d|e?f*g', want: "ab_c_d_e_f_g" },
    { name: "DEL", component: "a\x7fb", want: "a_b" },
    { name: "C1 controls", component: "a\x80b\x85c\x9fd", want: "a_b_c_d" },
    { name: "right-to-left override", component: "evil\u202etxt.exe", want: "eviltxt.exe" },
    {
      name: "every bidi embedding, override and isolate",
      component: "a\u202ab\u202bc\u202cd\u202de\u202ef\u2066g\u2067h\u2068i\u2069j",
      want: "abcdefghij",
    },
    { name: "left-to-right and right-to-left marks", component: "a\u200eb\u200fc", want: "abc" },
    { name: "Arabic letter mark", component: "a\u061cb", want: "ab" },
    { name: "zero-width characters and BOM", component: "\ufeffa\u200bb\u200cc\u200dd\u2060e", want: "abcde" },
    { name: "only bidi controls", component: "\u202e\u2066", want: "_" },
    { name: "bidi controls around dots never make ..", component: ".\u202e.", want: "_" },
    { name: "a hidden colon after a drive letter", component: "C\u202e:x", want: "C_x" },
    { name: "a hidden device name", component: "C\u202eON.txt", want: "_CON.txt" },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const single = parseMetainfo(torrent(info({ name: r.component })));
      assertEquals([single.name, single.files[0].path], [r.want, [r.want]]);
      const meta = parseMetainfo(torrent(multi([file(["d", r.component])], { name: r.component })));
      assertEquals(meta.files[0].path, [r.want, "d", r.want]);
      // web seeds ask for the names the torrent gives: kept beside the sanitised path when they differ
      const changed = r.want !== r.component;
      assertEquals(single.files[0].urlPath, changed ? [r.component] : undefined);
      assertEquals(meta.files[0].urlPath, changed ? [r.component, "d", r.component] : undefined);
    });
  }
});

Deno.test("parseMetainfo() keeps __proto__ keys as data and pollutes nothing", () => {
  const bytes = torrent(info({ __proto__: { polluted: 1 } }), { __proto__: { polluted: 1 }, announce: "http://t/" });
  const meta = parseMetainfo(bytes);
  assertEquals(meta.name, "x");
  assertEquals(({} as Record<string, unknown>).polluted, undefined);
  assertEquals(Object.getPrototypeOf(meta), Object.prototype);
});

Deno.test("parseMetainfo() hashes the raw info span, ignoring outer unknown keys and outer key order", async () => {
  const infoText = `d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:${"\x01".repeat(20)}5:zzzzzi7ee`;
  const bytes = raw(`d9:zzunknowni1e7:comment2:hi4:info${infoText}8:announce8:http://te`);
  const meta = parseMetainfo(bytes);
  const want = new Uint8Array(await crypto.subtle.digest("SHA-1", new Uint8Array(raw(infoText))));
  assertEquals(meta.infoHash, want);
  assertEquals(meta.infoHashHex, [...want].map((x) => x.toString(16).padStart(2, "0")).join(""));
  assertEquals(latin1Key(meta.infoBytes), infoText);
  assertEquals([meta.comment, meta.announce], ["hi", [["http://t"]]]);
  assertEquals(parseInfoDict(meta.infoBytes).infoHash, want);
});

Deno.test("parseMetainfo() reads a real-ish multi-file torrent with an empty file, padding and unicode", () => {
  const bytesOf = (n: number, seed: number) => new Uint8Array(n).map((_, k) => (k * 31 + seed) & 0xff);
  const { bytes, meta, payload } = makeTorrent({
    name: "Über ✓",
    pieceLength: 1024,
    files: [
      { path: ["docs", "read me.txt"], data: bytesOf(1000, 1) },
      { path: ["empty"], data: new Uint8Array() },
      { path: [".pad", "24"], data: new Uint8Array(24) },
      { path: ["日本", "データ.bin"], data: bytesOf(3000, 2) },
    ],
    announceList: [["http://a/ann", "http://b/ann"], [], ["udp://c:1"]],
    urlList: ["http://seed/"],
    private: true,
  });
  assertEquals(parseMetainfo(bytes), meta);
  assertEquals(meta.name, "Über ✓");
  assertEquals(meta.multiFile, true);
  assertEquals(meta.totalLength, 4024);
  assertEquals(payload.length, 4024);
  assertEquals([meta.pieceLength, meta.pieceCount], [1024, 4]);
  assertEquals(meta.files.map((f) => [f.index, f.path, f.length, f.offset, f.padding]), [
    [0, ["Über ✓", "docs", "read me.txt"], 1000, 0, false],
    [1, ["Über ✓", "empty"], 0, 1000, false],
    [2, ["Über ✓", ".pad", "24"], 24, 1000, true],
    [3, ["Über ✓", "日本", "データ.bin"], 3000, 1024, false],
  ]);
  for (let i = 0; i < meta.pieceCount; i++) {
    const start = i * meta.pieceLength;
    const piece = payload.subarray(start, start + pieceLengthOf(meta, i));
    assertEquals(meta.pieceHashes.subarray(20 * i, 20 * i + 20), sha1(piece), `piece ${i}`);
  }
  assertEquals(meta.announce, [["http://a/ann", "http://b/ann"], ["udp://c:1"]]);
  assertEquals(meta.urlList, ["http://seed/"]);
  assertEquals(meta.private, true);
  assertEquals(meta.infoHash, sha1(meta.infoBytes));
});

Deno.test("parseMetainfo() reads a single-file torrent from makeTorrent()", () => {
  const data = new Uint8Array(40_000).map((_, k) => k % 251);
  const { meta, payload } = makeTorrent({ name: "file.bin", pieceLength: 16384, files: data, announce: "http://t/a" });
  assertEquals(payload, data);
  assertEquals(meta.multiFile, false);
  assertEquals(meta.files, [{ index: 0, path: ["file.bin"], length: 40_000, offset: 0, padding: false }]);
  assertEquals([meta.pieceCount, pieceLengthOf(meta, 2)], [3, 40_000 - 2 * 16384]);
  assertEquals(meta.announce, [["http://t/a"]]);
  assertEquals([meta.urlList, meta.private, meta.comment], [[], false, undefined]);
});

Deno.test("parseMetainfo() flags BEP 47 padding files and lets them share a path", async (t) => {
  const rows: { name: string; entry: Map<string, BencodeInput>; padding: boolean }[] = [
    { name: "attr p", entry: file(["pad"], 1, { attr: "p" }), padding: true },
    { name: "attr with other flags", entry: file(["pad"], 1, { attr: "xp" }), padding: true },
    { name: "legacy .pad folder", entry: file([".pad", "1"]), padding: true },
    { name: "legacy BitComet name", entry: file(["_____padding_file_0_"]), padding: true },
    { name: "attr x only", entry: file(["pad"], 1, { attr: "x" }), padding: false },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const meta = parseMetainfo(torrent(multi([file(["a"]), r.entry], { pieces: hashes(1) })));
      assertEquals(meta.files[1].padding, r.padding);
    });
  }
  await t.step("repeated padding paths", () => {
    const meta = parseMetainfo(torrent(multi([file(["a"]), file([".pad", "1"]), file(["b"]), file([".pad", "1"])])));
    assertEquals(meta.files.map((f) => f.padding), [false, true, false, true]);
  });
});

Deno.test("parseMetainfo() accepts edge values within limits", async (t) => {
  const rows: { name: string; bytes: Uint8Array; check: (m: ReturnType<typeof parseMetainfo>) => void }[] = [
    {
      name: "component at the byte limit",
      bytes: torrent(multi([file(["a".repeat(MAX_PATH_COMPONENT_BYTES)])])),
      check: (m) => assertEquals(m.files[0].path[1].length, MAX_PATH_COMPONENT_BYTES),
    },
    {
      name: "components at the limit",
      bytes: torrent(multi([file(Array(MAX_PATH_COMPONENTS - 1).fill("d"))])),
      check: (m) => assertEquals(m.files[0].path.length, MAX_PATH_COMPONENTS),
    },
    {
      name: "names differing only in case",
      bytes: torrent(multi([file(["A"]), file(["a"])])),
      check: (m) => assertEquals(m.files.length, 2),
    },
    {
      name: "dots inside names",
      bytes: torrent(multi([file(["..a"]), file(["a.."]), file([".hidden"])])),
      check: (m) => assertEquals(m.files.length, 3),
    },
    {
      name: "piece length not a power of two",
      bytes: torrent(info({ "piece length": 3000, length: 6001, pieces: hashes(3) })),
      check: (m) => assertEquals([m.pieceCount, pieceLengthOf(m, 2)], [3, 1]),
    },
    {
      name: "invalid UTF-8 name becomes U+FFFD",
      bytes: torrent(info({ name: new Uint8Array([0x61, 0xff]) })),
      check: (m) => assertEquals(m.name, "a\ufffd"),
    },
    {
      name: "name.utf-8 is preferred",
      bytes: torrent(info({ name: new Uint8Array([0xe9]), "name.utf-8": "é" })),
      check: (m) => assertEquals(m.name, "é"),
    },
    {
      name: "invalid name.utf-8 falls back to name",
      bytes: torrent(info({ "name.utf-8": new Uint8Array([0xff]) })),
      check: (m) => assertEquals(m.name, "x"),
    },
    {
      name: "path.utf-8 is preferred",
      bytes: torrent(multi([file([new Uint8Array([0xe9])], 1, { "path.utf-8": ["é"] })])),
      check: (m) => assertEquals(m.files[0].path, ["x", "é"]),
    },
    {
      name: "private other than 1 is public",
      bytes: torrent(info({ private: 2 })),
      check: (m) => assertEquals(m.private, false),
    },
    {
      name: "optional fields read leniently",
      bytes: torrent(info(), { comment: [1], "created by": "mktorrent 1.1", "creation date": -5 }),
      check: (m) => assertEquals([m.comment, m.createdBy, m.creationDate], [undefined, "mktorrent 1.1", undefined]),
    },
    {
      name: "creation date",
      bytes: torrent(info(), { "creation date": 1700000000 }),
      check: (m) => assertEquals(m.creationDate, 1700000000),
    },
  ];
  for (const r of rows) await t.step(r.name, () => r.check(parseMetainfo(r.bytes)));
});

Deno.test("parseMetainfo() reads trackers leniently (BEP 12, BEP 19)", async (t) => {
  const rows: { name: string; top: Over; announce: string[][]; urlList?: string[] }[] = [
    { name: "announce only", top: { announce: "http://a" }, announce: [["http://a"]] },
    { name: "nothing", top: {}, announce: [] },
    {
      name: "announce-list wins",
      top: { announce: "http://a", "announce-list": [["http://b"]] },
      announce: [["http://b"]],
    },
    {
      name: "malformed tiers skipped",
      top: { "announce-list": [["http://b", 5, ""], "http://x", [], [["nested"]], ["udp://c:1"]] },
      announce: [["http://b"], ["udp://c:1"]],
    },
    {
      name: "duplicates dropped across tiers",
      top: { announce: "http://a", "announce-list": [["http://a", "http://a"], ["http://a", "http://b"]] },
      announce: [["http://a"], ["http://b"]],
    },
    {
      name: "empty announce-list falls back",
      top: { announce: "http://a", "announce-list": [[]] },
      announce: [["http://a"]],
    },
    {
      name: "announce-list not a list",
      top: { announce: "http://a", "announce-list": "http://b" },
      announce: [["http://a"]],
    },
    { name: "announce not a string", top: { announce: 5 }, announce: [] },
    { name: "invalid UTF-8 dropped", top: { announce: new Uint8Array([0xff]) }, announce: [] },
    { name: "url-list string", top: { "url-list": "http://w/" }, announce: [], urlList: ["http://w/"] },
    {
      name: "url-list list",
      top: { "url-list": ["http://w/", 1, "", "http://w/", "http://v/"] },
      announce: [],
      urlList: ["http://w/", "http://v/"],
    },
    { name: "url-list empty string", top: { "url-list": "" }, announce: [], urlList: [] },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const meta = parseMetainfo(torrent(info(), r.top));
      assertEquals(meta.announce, r.announce);
      assertEquals(meta.urlList, r.urlList ?? []);
    });
  }
});

Deno.test("parseInfoDict() reads a bare info dict strictly, with trackers from elsewhere", async (t) => {
  const infoBytes = encodeBencode(info());
  await t.step("same result as the whole torrent", () => {
    const meta = parseInfoDict(infoBytes, {
      announce: [["http://a", "http://a"], [], ["http://b"]],
      urlList: ["w", "w"],
    });
    const whole = parseMetainfo(torrent(info()));
    assertEquals(meta.infoHash, whole.infoHash);
    assertEquals(meta.files, whole.files);
    assertEquals(meta.announce, [["http://a"], ["http://b"]]);
    assertEquals(meta.urlList, ["w"]);
  });
  await t.step("unsorted keys refused", () => {
    const err = assertThrows(
      () => parseInfoDict(raw(`d4:name1:x6:lengthi5e12:piece lengthi16384e6:pieces20:${"\x00".repeat(20)}e`)),
      MetainfoError,
    );
    assertEquals([err.code, (err.cause as BencodeError).code], ["bencode", "unsorted-keys"]);
  });
  await t.step("trailing bytes refused", () => {
    const err = assertThrows(() => parseInfoDict(raw(`${latin1Key(infoBytes)}x`)), MetainfoError);
    assertEquals([err.code, (err.cause as BencodeError).code], ["bencode", "trailing-bytes"]);
  });
  await t.step("not a dict", () => {
    const err = assertThrows(() => parseInfoDict(raw("le")), MetainfoError);
    assertEquals([err.code, err.keyPath], ["wrong-type", "info"]);
  });
});

Deno.test("pieceLengthOf() sizes every piece and refuses indexes out of range", async (t) => {
  const meta = { pieceLength: 100, pieceCount: 3, totalLength: 300 };
  await t.step("exact multiple", () => assertEquals([0, 1, 2].map((i) => pieceLengthOf(meta, i)), [100, 100, 100]));
  await t.step("short last piece", () => assertEquals(pieceLengthOf({ ...meta, totalLength: 201 }, 2), 1));
  for (const bad of [-1, 3, 1.5, NaN]) {
    await t.step(`index ${bad}`, () => void assertThrows(() => pieceLengthOf(meta, bad), RangeError));
  }
});

Deno.test("parseMetainfo() parses a 40 MB torrent of 2,000,000 pieces", () => {
  const pieceCount = 2_000_000;
  const bytes = torrent(info({ length: pieceCount * 16384, pieces: new Uint8Array(20 * pieceCount) }));
  assert(bytes.length > 40_000_000);
  const meta = parseMetainfo(bytes);
  assertEquals(meta.pieceCount, pieceCount);
});

Deno.test("parseMetainfo() parses 100,000 files with their offsets", () => {
  const files = Array.from({ length: 100_000 }, (_, k) => file([`dir${k % 100}`, `file${k}.bin`], 1));
  const bytes = torrent(multi(files, { pieces: hashes(Math.ceil(100_000 / 16384)) }));
  const meta = parseMetainfo(bytes);
  assertEquals(meta.files.length, 100_000);
  assertEquals(meta.files[99_999].offset, 99_999);
});

Deno.test("makeTorrent() output is what parseMetainfo() reads, and its trackers survive", () => {
  const { bytes, meta } = makeTorrent({
    name: "n",
    pieceLength: 16384,
    files: te.encode("hello"),
    announce: "http://x/announce",
    urlList: ["http://w/"],
  });
  assertEquals(parseMetainfo(bytes), meta);
  assertEquals([meta.announce, meta.urlList], [[["http://x/announce"]], ["http://w/"]]);
});
