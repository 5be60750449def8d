import * as fs from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import { PieceStore, StorageError } from "../../lib/storage/disk.ts";
import { loadOrVerify, loadResume, resumePath, saveResume } from "../../lib/storage/resume.ts";
import { makeGeom } from "./_geom.ts";

function sample(infoHashByte = 0xab) {
  const rand = seeded(9);
  return makeGeom(
    [
      { name: "a", data: randomBytes(rand, 900) },
      { name: ".pad/124", data: new Uint8Array(124), padding: true },
      { name: "b/c", data: randomBytes(rand, 2100) },
      { name: "empty", data: new Uint8Array(0) },
    ],
    256,
    { infoHashByte },
  );
}

/** A store with the even pieces written, and that have-set. */
async function setup() {
  const dir = await Deno.makeTempDir();
  const g = sample();
  const store = PieceStore.open(g.meta, dir);
  const have = new Bitfield(g.meta.pieceCount);
  for (let p = 0; p < g.meta.pieceCount; p += 2) {
    store.writePiece(p, g.piece(p));
    have.set(p);
  }
  return { dir, g, store, have };
}

Deno.test("saveResume() then loadResume() round-trips the have-set, beside the data", async () => {
  const { dir, g, store, have } = await setup();
  try {
    saveResume(store, g.meta, have);
    const path = join(dir, ".btfetch", g.meta.infoHashHex, "resume.json");
    assertEquals(resumePath(dir, g.meta), path);
    assertEquals(fs.readdirSync(join(dir, ".btfetch", g.meta.infoHashHex)), ["resume.json"], "no temporary left");
    const loaded = loadResume(store, g.meta);
    assertEquals(loaded?.bytes, have.bytes);
    assertEquals((await loadOrVerify(store, g.meta)).source, "resume");
    const checked = await loadOrVerify(store, g.meta, { check: true });
    assertEquals([checked.source, [...checked.have.indexes()]], ["hash", [...have.indexes()]]);
    // saving again replaces the record
    store.writePiece(1, g.piece(1));
    have.set(1);
    saveResume(store, g.meta, have);
    assertEquals(loadResume(store, g.meta)?.count, have.count);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadResume() returns null when a file changed after the save", async (t) => {
  const { dir, g, store, have } = await setup();
  try {
    const a = join(dir, "t", "a");
    const stamp = fs.statSync(a).mtime;
    await t.step("a touched file (mtime change)", () => {
      saveResume(store, g.meta, have);
      fs.utimesSync(a, stamp, new Date(stamp.getTime() + 5000));
      assertEquals(loadResume(store, g.meta), null);
    });
    await t.step("a file whose size changed", () => {
      saveResume(store, g.meta, have);
      const mtime = fs.statSync(a).mtime;
      fs.truncateSync(a, 10);
      fs.utimesSync(a, mtime, mtime); // same mtime: the size alone must tell
      assertEquals(loadResume(store, g.meta), null);
    });
    await t.step("a file that appeared (saved while missing)", () => {
      const empty = join(dir, "t", "empty");
      assert(!fs.existsSync(empty));
      saveResume(store, g.meta, have);
      assert(loadResume(store, g.meta) !== null);
      fs.writeFileSync(empty, "");
      assertEquals(loadResume(store, g.meta), null);
    });
    await t.step("loadOrVerify() then hashes the data", async () => {
      const r = await loadOrVerify(store, g.meta);
      assertEquals(r.source, "hash");
      assertEquals(r.have.has(0), false, "a.bin was truncated");
    });
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadResume() treats a missing, corrupt or foreign record as absent", async (t) => {
  const { dir, g, store, have } = await setup();
  try {
    assertEquals(loadResume(store, g.meta), null, "no record yet");
    saveResume(store, g.meta, have);
    const path = resumePath(dir, g.meta);
    const good = JSON.parse(fs.readFileSync(path, "utf8"));
    const rows: [string, string | Uint8Array][] = [
      ["empty file", ""],
      ["garbage bytes", new Uint8Array([0xff, 0xfe, 0, 1, 2])],
      ["truncated JSON", JSON.stringify(good).slice(0, 40)],
      ["not an object", "[1,2,3]"],
      ["another version", JSON.stringify({ ...good, version: 99 })],
      ["another info-hash", JSON.stringify({ ...good, infoHash: "cd".repeat(20) })],
      ["another piece length", JSON.stringify({ ...good, pieceLength: 512 })],
      ["have of the wrong length", JSON.stringify({ ...good, have: "AAAAAAAA" })],
      ["have with a spare bit set", JSON.stringify({ ...good, have: btoa(String.fromCharCode(0, 0x01)) })],
      ["have not base64", JSON.stringify({ ...good, have: "!!!" })],
      ["files missing", JSON.stringify({ ...good, files: [] })],
      ["files of the wrong shape", JSON.stringify({ ...good, files: good.files.map(() => "x") })],
      ["wrong field types", JSON.stringify({ ...good, pieceCount: "12" })],
    ];
    for (const [name, body] of rows) {
      await t.step(name, () => {
        fs.writeFileSync(path, body);
        assertEquals(loadResume(store, g.meta), null);
      });
    }
    await t.step("the record of a different torrent", () => {
      fs.writeFileSync(path, JSON.stringify(good));
      assert(loadResume(store, g.meta) !== null, "the good record still loads");
      const other = sample(0xcd);
      const otherStore = PieceStore.open(other.meta, dir);
      assertEquals(loadResume(otherStore, other.meta), null, "its own path has no record");
      fs.mkdirSync(join(dir, ".btfetch", other.meta.infoHashHex));
      fs.copyFileSync(path, resumePath(dir, other.meta));
      assertEquals(loadResume(otherStore, other.meta), null, "a copied record names another info-hash");
    });
    await t.step("a directory where the record should be", () => {
      fs.rmSync(path);
      fs.mkdirSync(path);
      assertEquals(loadResume(store, g.meta), null);
      fs.rmdirSync(path);
    });
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveResume() refuses a symlinked .btfetch and a have-set of the wrong size", async () => {
  const { dir, g, store, have } = await setup();
  try {
    fs.mkdirSync(join(dir, "elsewhere"));
    fs.symlinkSync(join(dir, "elsewhere"), join(dir, ".btfetch"));
    const err = assertThrows(() => saveResume(store, g.meta, have), StorageError);
    assertEquals([err.code, err.path], ["unsafe-path", join(dir, ".btfetch")]);
    assertEquals(fs.readdirSync(join(dir, "elsewhere")), []);
    assertThrows(() => saveResume(store, g.meta, new Bitfield(1)), RangeError);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveResume() reports an unwritable output directory as a StorageError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample();
    fs.writeFileSync(join(dir, "file"), "x");
    const store = PieceStore.open(g.meta, join(dir, "file"));
    // the output "directory" is a regular file: it exists and is not a directory
    assertEquals(
      assertThrows(() => saveResume(store, g.meta, new Bitfield(g.meta.pieceCount)), StorageError).code,
      "not-a-file",
    );
    assertEquals(loadResume(store, g.meta), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
