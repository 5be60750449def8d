/**
 * `createTorrent()` against independent implementations (python3-libtorrent, mktorrent), plus determinism, the
 * automatic piece size and the optional fields.
 * @module
 */
import { assertEquals, assertRejects } from "./_assert.ts";
import { autoPieceLength, CreateError, createTorrent, MAX_AUTO_PIECE, MIN_AUTO_PIECE } from "../lib/create.ts";
import { parseMetainfo } from "../lib/metainfo.ts";
import {
  haveLibtorrent,
  haveProgram,
  IN_CI,
  makeTorrentWithMktorrent,
  MiB,
  payloadBytes,
  SYSTEM_PYTHON,
  writeTree,
} from "./interop/_peers.ts";

const LT_INFO_HASH = `
import hashlib, json, sys
import libtorrent as lt
o = json.loads(sys.argv[1])
fs = lt.file_storage()
if o.get("single"):
    lt.add_files(fs, o["path"])
else:
    for rel, size in o["files"]:
        fs.add_file(o["name"] + "/" + rel, size)
ct = lt.create_torrent(fs, o["pieceLength"], flags=lt.create_torrent.v1_only)
lt.set_piece_hashes(ct, o["parent"])
e = ct.generate()
print(hashlib.sha1(lt.bencode(e[b"info"])).hexdigest())
`;

async function libtorrentInfoHash(o: Record<string, unknown>): Promise<string> {
  const r = await new Deno.Command(SYSTEM_PYTHON, {
    args: ["-c", LT_INFO_HASH, JSON.stringify(o)],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`libtorrent failed: ${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout).trim();
}

/** Skipped without the program, except under CI=true, where the test runs and fails. */
const skipUnless = (have: boolean) => !have && !IN_CI;

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-create-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A tree whose readdir order and per-folder byte order differ, with an empty file and a nested folder. */
const TREE: Array<[string, number]> = [
  ["b.bin", 40_000],
  ["B.bin", 1],
  ["a.bin", 16_384],
  ["sub/x.bin", 70_001],
  ["sub-y.bin", 5],
  ["sub/deeper/z.bin", 123_457],
  ["empty.txt", 0],
  ["ü-utf8.bin", 999],
];

async function writeTestTree(root: string): Promise<void> {
  await writeTree(root, TREE.map(([p, n], i) => [p, payloadBytes(500 + i, n)]));
}

Deno.test({
  name: "createTorrent() gives the info-hash python3-libtorrent computes for a single file",
  ignore: skipUnless(haveLibtorrent()),
  async fn() {
    await withTmp(async (dir) => {
      for (const [size, pieceLength] of [[1, 16384], [3 * MiB + 7, 32768], [1 * MiB, 262144]]) {
        const path = `${dir}/single-${size}.bin`;
        await Deno.writeFile(path, payloadBytes(size, size));
        const { meta } = await createTorrent(path, { pieceLength });
        const lt = await libtorrentInfoHash({ single: true, path, parent: dir, pieceLength });
        assertEquals(meta.infoHashHex, lt, `size ${size}, piece ${pieceLength}`);
      }
    });
  },
});

Deno.test({
  name: "createTorrent() of a folder gives libtorrent's info-hash for the same files in btfetch's order",
  ignore: skipUnless(haveLibtorrent()),
  async fn() {
    await withTmp(async (dir) => {
      await writeTestTree(`${dir}/tree`);
      const { meta } = await createTorrent(`${dir}/tree`, { pieceLength: 16384 });
      const files = meta.files.map((f) => [f.path.slice(1).join("/"), f.length]);
      assertEquals(files.length, TREE.length);
      const lt = await libtorrentInfoHash({ name: "tree", files, parent: dir, pieceLength: 16384 });
      assertEquals(meta.infoHashHex, lt);
    });
  },
});

Deno.test("createTorrent() lists a folder's files sorted by bytes, folders recursed in place", async () => {
  await withTmp(async (dir) => {
    // no name here is a prefix of another followed by a byte below "/" (see the ignored mktorrent test below)
    await writeTree(
      `${dir}/tree`,
      ["b", "B", "a", "sub/x", "sub/deeper/z", "subz", "ü", "0"].map((p) => [p, Uint8Array.of(1)]),
    );
    const { meta } = await createTorrent(`${dir}/tree`, { pieceLength: 16384 });
    assertEquals(meta.files.map((f) => f.path.slice(1).join("/")), [
      "0",
      "B",
      "a",
      "b",
      "sub/deeper/z",
      "sub/x",
      "subz",
      "ü",
    ]);
  });
});

async function mktorrentFolderCase(tree: Array<[string, number]>): Promise<void> {
  await withTmp(async (dir) => {
    await writeTree(`${dir}/tree`, tree.map(([p, n], i) => [p, payloadBytes(900 + i, n)]));
    const mk = await makeTorrentWithMktorrent({ path: `${dir}/tree`, out: `${dir}/mk.torrent`, pieceLengthLog2: 15 });
    const { meta } = await createTorrent(`${dir}/tree`, { pieceLength: 32768 });
    const mkMeta = parseMetainfo(await Deno.readFile(mk.path));
    assertEquals(meta.files.map((f) => f.path.join("/")), mkMeta.files.map((f) => f.path.join("/")));
    assertEquals(meta.infoHashHex, mk.infoHash);
  });
}

Deno.test({
  name: "createTorrent() of a folder gives mktorrent's info-hash",
  ignore: skipUnless(haveProgram("mktorrent") && haveLibtorrent()),
  fn: () => mktorrentFolderCase(TREE.filter(([p]) => p !== "sub-y.bin")),
});

Deno.test({
  name: "createTorrent() of a folder orders 'sub-y' before 'sub/x' as mktorrent does",
  ignore: skipUnless(haveProgram("mktorrent") && haveLibtorrent()),
  fn: () => mktorrentFolderCase(TREE),
});

Deno.test({
  name: "createTorrent() gives mktorrent's info-hash for a single file with the same piece size",
  ignore: skipUnless(haveProgram("mktorrent") && haveLibtorrent()),
  async fn() {
    await withTmp(async (dir) => {
      const path = `${dir}/mk.bin`;
      await Deno.writeFile(path, payloadBytes(77, 2 * MiB + 333));
      for (const log2 of [15, 18]) {
        const mk = await makeTorrentWithMktorrent({ path, out: `${dir}/mk-${log2}.torrent`, pieceLengthLog2: log2 });
        const { meta } = await createTorrent(path, { pieceLength: 2 ** log2 });
        assertEquals(meta.infoHashHex, mk.infoHash, `piece 2^${log2}`);
        // and btfetch's own parser agrees with libtorrent on mktorrent's file
        assertEquals(parseMetainfo(await Deno.readFile(mk.path)).infoHashHex, mk.infoHash);
      }
    });
  },
});

Deno.test("createTorrent() is deterministic: the same tree twice, or copied elsewhere, gives the same bytes", async () => {
  await withTmp(async (dir) => {
    await writeTestTree(`${dir}/one/tree`);
    await writeTestTree(`${dir}/two/tree`);
    const o = { announce: [["http://127.0.0.1:1/announce"]], comment: "c" };
    const a = await createTorrent(`${dir}/one/tree`, o);
    const b = await createTorrent(`${dir}/one/tree`, o);
    const c = await createTorrent(`${dir}/two/tree/`, o);
    assertEquals(a.bytes, b.bytes);
    assertEquals(a.bytes, c.bytes);
    assertEquals(a.meta.name, "tree");
  });
});

Deno.test("autoPieceLength() is the smallest power of two giving at most 1500 pieces, within bounds", async (t) => {
  const rows: Array<[number, number]> = [
    [1, MIN_AUTO_PIECE],
    [1500 * 16384, 16384],
    [1500 * 16384 + 1, 32768],
    [1024 ** 3, MiB],
    [1500 * MiB, MiB],
    [1500 * MiB + 1, 2 * MiB],
    [2 ** 50, MAX_AUTO_PIECE],
  ];
  for (const [total, want] of rows) {
    await t.step(`${total} bytes -> ${want}`, () => assertEquals(autoPieceLength(total), want));
  }
});

Deno.test("createTorrent() picks the automatic piece size when none is given", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/auto.bin`;
    const size = 40 * MiB;
    await Deno.writeFile(path, payloadBytes(3, size));
    const { meta } = await createTorrent(path);
    assertEquals(meta.pieceLength, autoPieceLength(size));
    assertEquals(meta.pieceLength, 32768);
    assertEquals(meta.pieceCount, Math.ceil(size / meta.pieceLength));
  });
});

Deno.test("createTorrent() writes trackers by tier, web seeds, private and comment", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/opt.bin`;
    await Deno.writeFile(path, payloadBytes(4, 1000));
    const plain = await createTorrent(path);
    const { meta } = await createTorrent(path, {
      announce: [["http://a.example/announce", "udp://b.example:80/announce"], ["http://c.example/announce"]],
      webSeeds: ["http://w.example/files/"],
      private: true,
      comment: "hello",
    });
    assertEquals(meta.announce, [
      ["http://a.example/announce", "udp://b.example:80/announce"],
      ["http://c.example/announce"],
    ]);
    assertEquals(meta.urlList, ["http://w.example/files/"]);
    assertEquals(meta.private, true);
    assertEquals(meta.comment, "hello");
    assertEquals(plain.meta.private, false);
    // private lives in the info dictionary, so it changes the info-hash; the rest does not
    assertEquals(plain.meta.infoHashHex === meta.infoHashHex, false);
    const pub = await createTorrent(path, { announce: [["http://x/announce"]], comment: "other" });
    assertEquals(pub.meta.infoHashHex, plain.meta.infoHashHex);
  });
});

Deno.test("createTorrent() refuses a missing path and a folder with no data", async (t) => {
  await withTmp(async (dir) => {
    await t.step("missing path", async () => {
      const e = await assertRejects(() => createTorrent(`${dir}/nope`), CreateError);
      assertEquals(e.code, "not-found");
    });
    await t.step("empty folder", async () => {
      await Deno.mkdir(`${dir}/empty`);
      const e = await assertRejects(() => createTorrent(`${dir}/empty`), CreateError);
      assertEquals(e.code, "empty");
    });
    await t.step("folder of empty files", async () => {
      await writeTree(`${dir}/zeros`, [["a", new Uint8Array()], ["b/c", new Uint8Array()]]);
      const e = await assertRejects(() => createTorrent(`${dir}/zeros`), CreateError);
      assertEquals(e.code, "empty");
    });
  });
});
