import * as fs from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import { PieceStore, type StorageError } from "../../lib/storage/disk.ts";
import { loadOrVerify, loadResume, resumePath, saveResume } from "../../lib/storage/resume.ts";
import { makeGeom } from "./_geom.ts";
import { canMount, withTmpfs } from "./_mount.ts";

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
      // a.bin was cut in the step before: a record claiming its pieces is not trusted at all, so claim b/c's only
      const bOnly = new Bitfield(g.meta.pieceCount);
      for (const p of have.indexes()) if (p * 256 >= g.meta.files[2].offset) bOnly.set(p);
      saveResume(store, g.meta, bOnly);
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

Deno.test("saveResume() never writes through a symlinked .btfetch or record folder: it warns and returns false", async (t) => {
  for (const link of [".btfetch", `.btfetch/${"ab".repeat(20)}`]) {
    await t.step(link, async () => {
      const dir = await Deno.makeTempDir();
      try {
        const g = sample();
        const warnings: StorageError[] = [];
        const store = PieceStore.open(g.meta, dir, { onWarning: (e) => warnings.push(e) });
        const have = new Bitfield(g.meta.pieceCount);
        store.writePiece(0, g.piece(0));
        have.set(0);
        assertEquals(saveResume(store, g.meta, have), true);
        assert(loadResume(store, g.meta) !== null);
        // move the real folder away and leave a symlink to it in its place
        const moved = join(dir, "elsewhere");
        fs.renameSync(join(dir, link), moved);
        fs.symlinkSync(moved, join(dir, link));
        const before = fs.readdirSync(moved, { recursive: true }).sort();
        assertEquals(loadResume(store, g.meta), null, "a record behind a symlink is not trusted");
        have.set(1);
        store.writePiece(1, g.piece(1));
        assertEquals(saveResume(store, g.meta, have), false);
        assertEquals(saveResume(store, g.meta, have), false);
        assertEquals(warnings.map((w) => [w.code, w.path]), [["unsafe-path", join(dir, link)]], "warned once");
        assert(/resume record was not saved/.test(warnings[0].message), warnings[0].message);
        assertEquals(fs.readdirSync(moved, { recursive: true }).sort(), before, "nothing written behind the link");
        store.close();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});

Deno.test("saveResume() refuses a have-set of the wrong size", async () => {
  const { dir, g, store } = await setup();
  try {
    assertThrows(() => saveResume(store, g.meta, new Bitfield(1)), RangeError);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveResume() warns, and does not throw, when the output directory is unusable", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample();
    fs.writeFileSync(join(dir, "file"), "x");
    const warnings: StorageError[] = [];
    const store = PieceStore.open(g.meta, join(dir, "file"), { readOnly: true, onWarning: (e) => warnings.push(e) });
    // the output "directory" is a regular file: it exists and is not a directory
    assertEquals(saveResume(store, g.meta, new Bitfield(g.meta.pieceCount)), false);
    assertEquals(warnings.map((w) => w.code), ["not-a-file"]);
    assertEquals(loadResume(store, g.meta), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveResume() never opens a planted resume.json.tmp: a hard link there keeps its target intact", async () => {
  const { dir, g, store, have } = await setup();
  try {
    assertEquals(saveResume(store, g.meta, have), true);
    const victim = join(dir, "victim");
    fs.writeFileSync(victim, "keep me");
    fs.linkSync(victim, `${resumePath(dir, g.meta)}.tmp`);
    store.writePiece(1, g.piece(1));
    have.set(1);
    assertEquals(saveResume(store, g.meta, have), true);
    assertEquals(fs.readFileSync(victim, "utf8"), "keep me");
    assertEquals(fs.statSync(victim).nlink, 1, "the planted link was removed, not written through");
    assertEquals(loadResume(store, g.meta)?.count, have.count);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveResume() rewrites nothing when the record already says the same", async () => {
  const { dir, g, store, have } = await setup();
  try {
    assertEquals(saveResume(store, g.meta, have), true);
    const path = resumePath(dir, g.meta);
    const before = fs.statSync(path);
    assertEquals(saveResume(store, g.meta, have), true);
    const after = fs.statSync(path);
    assertEquals([after.ino, after.mtimeMs], [before.ino, before.mtimeMs]);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "saveResume() on a full disk warns no-space and leaves no temporary file",
  ignore: !canMount,
  fn: () =>
    withTmpfs(64, (mnt) => {
      const g = sample();
      const warnings: StorageError[] = [];
      const store = PieceStore.open(g.meta, mnt, { onWarning: (e) => warnings.push(e) });
      try {
        const have = new Bitfield(g.meta.pieceCount);
        store.writePiece(0, g.piece(0));
        have.set(0);
        assertEquals(saveResume(store, g.meta, have), true);
        // fill what is left of the file system
        const fd = fs.openSync(join(mnt, "filler"), "w");
        try {
          const chunk = new Uint8Array(4096);
          for (let at = 0;; at += chunk.length) fs.writeSync(fd, chunk, 0, chunk.length, at);
        } catch (e) {
          assertEquals((e as { code?: string }).code, "ENOSPC");
        } finally {
          fs.closeSync(fd);
        }
        have.set(2);
        assertEquals(saveResume(store, g.meta, have), false);
        assertEquals(warnings.map((w) => w.code), ["no-space"]);
        assertEquals(fs.readdirSync(join(mnt, ".btfetch", g.meta.infoHashHex)), ["resume.json"]);
        assertEquals(loadResume(store, g.meta)?.count, 1, "the old record stays");
      } finally {
        store.close();
      }
    }),
});

Deno.test("loadResume() does not trust a record claiming pieces of a file that is missing or not the torrent's length", async (t) => {
  for (
    const [what, damage] of [
      ["deleted", (p: string) => Deno.removeSync(p)],
      ["truncated", (p: string) => Deno.truncateSync(p, 1000)],
    ] as const
  ) {
    await t.step(`a file ${what} after the save, the record re-stamped as it is now`, async () => {
      const dir = await Deno.makeTempDir();
      try {
        const g = sample();
        const store = PieceStore.open(g.meta, dir);
        const have = new Bitfield(g.meta.pieceCount);
        for (let p = 0; p < g.meta.pieceCount; p++) {
          store.writePiece(p, g.piece(p));
          have.set(p);
        }
        // the state a writer into a removed or cut file leaves: the record saved after the damage
        damage(store.filePath(2)); // b/c
        store.close();
        assert(saveResume(store, g.meta, have));
        assertEquals(loadResume(store, g.meta), null);
        const checked = await loadOrVerify(store, g.meta);
        assertEquals(checked.source, "hash");
        assert(checked.have.count < g.meta.pieceCount);
        store.close();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});
