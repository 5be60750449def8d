import * as fs from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "../_assert.ts";
import { fuzzSeed, randomBytes, seeded } from "../_gen.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import { checkOutputDir, PieceStore, StorageError } from "../../lib/storage/disk.ts";
import { loadOrVerify, saveResume } from "../../lib/storage/resume.ts";
import { makeGeom } from "./_geom.ts";
import { canMount, withReadOnlyView } from "./_mount.ts";

function shuffled(n: number, rand: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** A multi-file torrent with odd sizes, an empty file and a padding file. */
function sample(seed = 1) {
  const rand = seeded(seed);
  return makeGeom([
    { name: "a.bin", data: randomBytes(rand, 1000) },
    { name: ".pad/24", data: new Uint8Array(24), padding: true },
    { name: "sub/b.bin", data: randomBytes(rand, 3000) },
    { name: "sub/empty", data: new Uint8Array(0) },
    { name: "c.bin", data: randomBytes(rand, 77) },
    { name: "deep/er/d.bin", data: randomBytes(rand, 2500) },
  ], 256);
}

Deno.test("PieceStore.writePiece() in random order reproduces every file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const seed = fuzzSeed(3);
    const g = sample(seed);
    const store = PieceStore.open(g.meta, dir);
    for (const p of shuffled(g.meta.pieceCount, seeded(seed))) store.writePiece(p, g.piece(p));
    store.flush();
    store.close();
    for (const f of g.meta.files) {
      const path = join(dir, ...f.path);
      if (f.padding) assert(!exists(path), `padding file ${path} must not exist`);
      else if (f.length > 0) assertEquals(new Uint8Array(fs.readFileSync(path)), g.contents[f.index], `seed ${seed}`);
    }
    assert(!exists(join(dir, "t", ".pad")), "no directory is made for padding files");
    assertEquals(store.filePath(2), join(dir, "t", "sub", "b.bin"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore writes sparsely: unwritten regions read as zeros and nothing else is created", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pl = 64 * 1024;
    const big = new Uint8Array(16 * 1024 * 1024).fill(7);
    const g = makeGeom([{ name: "big", data: big }, { name: "small", data: new Uint8Array(10).fill(9) }], pl);
    const store = PieceStore.open(g.meta, dir);
    store.writePiece(3, g.piece(3));
    store.close();
    const path = join(dir, "t", "big");
    const st = fs.statSync(path);
    assertEquals(st.size, big.length, "created at its full length");
    assert(st.blocks * 512 < 4 * 1024 * 1024, `sparse: ${st.blocks} blocks allocated`);
    assert(!exists(join(dir, "t", "small")), "a file no written piece touches is not created");
    const bytes = fs.readFileSync(path);
    assertEquals(bytes.subarray(0, 3 * pl).every((b) => b === 0), true);
    assertEquals(bytes.subarray(3 * pl, 4 * pl).every((b) => b === 7), true);
    assertEquals(bytes.subarray(4 * pl).every((b) => b === 0), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore.readPiece() and readBlock() read back across files, padding as zeros", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample();
    const store = PieceStore.open(g.meta, dir);
    assertEquals(store.readPiece(0), null, "nothing on disk yet");
    assertEquals(assertThrows(() => store.readBlock(0, 0, 10), StorageError).code, "read");
    for (let p = 0; p < g.meta.pieceCount; p++) store.writePiece(p, g.piece(p));
    const into = new Uint8Array(1000).fill(0xee);
    for (let p = 0; p < g.meta.pieceCount; p++) {
      assertEquals(store.readPiece(p), g.piece(p), `piece ${p}`);
      assertEquals(store.readPiece(p, into), g.piece(p), `piece ${p} into a buffer`);
    }
    // piece 3 holds the end of a.bin, the padding and the start of sub/b.bin
    assertEquals(store.readBlock(3, 200, 56), g.piece(3).subarray(200, 256));
    assertEquals(store.readBlock(3, 230, 26, into), g.piece(3).subarray(230, 256));
    assertThrows(() => store.readBlock(3, 250, 10), RangeError);
    assertThrows(() => store.readPiece(0, new Uint8Array(10)), RangeError);
    assertThrows(() => store.writePiece(0, new Uint8Array(10)), RangeError);
    store.close();
    // a truncated file makes its pieces unreadable
    fs.truncateSync(join(dir, "t", "c.bin"), 10);
    const p = Math.floor(g.meta.files[4].offset / 256);
    assertEquals(store.readPiece(p), null);
    const err = assertThrows(() => store.readBlock(p, 0, g.piece(p).length), StorageError);
    assertEquals([err.code, err.path], ["read", join(dir, "t", "c.bin")]);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore.verify() finds exactly the pieces written, and a corrupt byte fails one piece", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const seed = fuzzSeed(5);
    const rand = seeded(seed);
    const g = sample(seed);
    const store = PieceStore.open(g.meta, dir);
    const written = new Bitfield(g.meta.pieceCount);
    for (let p = 0; p < g.meta.pieceCount; p++) {
      if (rand.int(2) === 0) {
        store.writePiece(p, g.piece(p));
        written.set(p);
      }
    }
    store.close();
    const progress: number[] = [];
    const have = await store.verify({ onProgress: (c, t) => progress.push(c / t) });
    // a piece lying wholly in written files' ranges may verify even if not written by us only if its bytes are zero;
    // random data makes that impossible, so the sets are equal
    assertEquals([...have.indexes()], [...written.indexes()], `seed ${seed}`);
    assertEquals(progress.at(-1), 1);

    // write everything, then flip one byte in the middle of sub/b.bin
    for (let p = 0; p < g.meta.pieceCount; p++) store.writePiece(p, g.piece(p));
    store.close();
    assertEquals((await store.verify()).complete, true);
    const b = g.meta.files[2];
    const fd = fs.openSync(join(dir, "t", "sub", "b.bin"), "r+");
    fs.writeSync(fd, new Uint8Array([g.contents[2][1500] ^ 1]), 0, 1, 1500);
    fs.closeSync(fd);
    const after = await store.verify();
    const bad = Math.floor((b.offset + 1500) / 256);
    assertEquals(after.count, g.meta.pieceCount - 1);
    assertEquals(after.has(bad), false);
    // only the pieces asked for are checked
    const some = new Bitfield(g.meta.pieceCount);
    some.set(0);
    some.set(bad);
    assertEquals([...(await store.verify({ pieces: some })).indexes()], [0]);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore.verify() of a file shorter than the torrent says keeps the pieces it holds in full", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample(3);
    const b = g.meta.files[2]; // sub/b.bin, 3000 bytes
    for (const keep of [1700, 1024 + 256 - (b.offset % 256), 0]) {
      fs.rmSync(join(dir, "t"), { recursive: true, force: true });
      // a store of its own each time: one that wrote the data would refuse to extend a file cut since (zeros)
      const store = PieceStore.open(g.meta, dir);
      for (let p = 0; p < g.meta.pieceCount; p++) store.writePiece(p, g.piece(p));
      store.close();
      fs.truncateSync(join(dir, "t", "sub", "b.bin"), keep);
      const have = await store.verify();
      // bad: the pieces holding a byte of b.bin at or past `keep`; every other piece verifies
      const firstBad = Math.floor((b.offset + keep) / 256);
      const lastBad = Math.floor((b.offset + b.length - 1) / 256);
      const want = Array.from({ length: g.meta.pieceCount }, (_, i) => i).filter((i) => i < firstBad || i > lastBad);
      assertEquals([...have.indexes()], want, `b.bin cut to ${keep} bytes`);
      store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore reads no file through a directory swapped for a link after it was checked", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample(6);
    const store = PieceStore.open(g.meta, dir);
    for (let p = 0; p < g.meta.pieceCount; p++) store.writePiece(p, g.piece(p));
    store.close();
    const b = g.meta.files[2]; // sub/b.bin
    const piece = Math.floor((b.offset + 1000) / 256);
    assertEquals(store.readBlock(piece, 0, 16), g.piece(piece).subarray(0, 16)); // sub/ checked and remembered
    store.close(); // descriptors go (as the cache evicts them), the checked directories stay remembered
    // a local user swaps sub/ for a link to a folder holding a file of the same name
    await Deno.mkdir(join(dir, "outside"));
    await Deno.writeFile(join(dir, "outside", "b.bin"), new Uint8Array(3000).fill(0x5a));
    await Deno.rename(join(dir, "t", "sub"), join(dir, "t", "sub.old"));
    await Deno.symlink(join(dir, "outside"), join(dir, "t", "sub"));
    const e = assertThrows(() => store.readBlock(piece, 0, 16), StorageError);
    assertEquals(e.code, "unsafe-path");
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore.verify() of missing files finds nothing and stops on abort", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample();
    const store = PieceStore.open(g.meta, join(dir, "not-yet"));
    assertEquals((await store.verify()).count, 0);
    assert(!exists(join(dir, "not-yet")), "verify creates nothing");
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    const err = await assertRejects(() => store.verify({ signal: ac.signal }), Error);
    assertEquals(err.message, "stop");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore refuses symlinks under the output directory", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample();
    await t.step("a symlinked directory component", () => {
      const out = join(dir, "o1");
      const elsewhere = join(dir, "elsewhere");
      fs.mkdirSync(join(out, "t"), { recursive: true });
      fs.mkdirSync(elsewhere);
      fs.symlinkSync(elsewhere, join(out, "t", "sub"));
      const store = PieceStore.open(g.meta, out);
      const p = Math.floor((g.meta.files[2].offset + 500) / 256); // wholly inside sub/b.bin
      const err = assertThrows(() => store.writePiece(p, g.piece(p)), StorageError);
      assertEquals([err.code, err.path], ["unsafe-path", join(out, "t", "sub")]);
      assertEquals(fs.readdirSync(elsewhere), []);
      assertThrows(() => store.readPiece(p), StorageError);
      store.close();
    });
    await t.step("a symlinked torrent folder", () => {
      const out = join(dir, "o2");
      fs.mkdirSync(out);
      fs.mkdirSync(join(dir, "elsewhere2"));
      fs.symlinkSync(join(dir, "elsewhere2"), join(out, "t"));
      const store = PieceStore.open(g.meta, out);
      assertEquals(assertThrows(() => store.writePiece(0, g.piece(0)), StorageError).code, "unsafe-path");
      store.close();
    });
    await t.step("a symlinked file", () => {
      const out = join(dir, "o3");
      fs.mkdirSync(join(out, "t"), { recursive: true });
      const target = join(dir, "victim");
      fs.writeFileSync(target, "keep me");
      fs.symlinkSync(target, join(out, "t", "a.bin"));
      const store = PieceStore.open(g.meta, out);
      const err = assertThrows(() => store.writePiece(0, g.piece(0)), StorageError);
      assertEquals([err.code, err.path], ["unsafe-path", join(out, "t", "a.bin")]);
      assertEquals(fs.readFileSync(target, "utf8"), "keep me");
      store.close();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore reports unusable output paths with a StorageError code", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample();
    // Tests run as root, where chmod stops nothing: force the errors another way.
    await t.step("output under a regular file (ENOTDIR) gives create, at open", () => {
      fs.writeFileSync(join(dir, "file"), "x");
      const out = join(dir, "file", "out");
      const err = assertThrows(() => PieceStore.open(g.meta, out), StorageError);
      assertEquals([err.code, err.path], ["create", out]);
      // opened for reading, the same output fails at the first write
      const store = PieceStore.open(g.meta, out, { readOnly: true });
      const err2 = assertThrows(() => store.writePiece(0, g.piece(0)), StorageError);
      assertEquals([err2.code, err2.path], ["create", out]);
      store.close();
    });
    await t.step("a directory where a file should be gives not-a-file", () => {
      fs.mkdirSync(join(dir, "o", "t", "a.bin"), { recursive: true });
      const store = PieceStore.open(g.meta, join(dir, "o"));
      assertEquals(assertThrows(() => store.writePiece(0, g.piece(0)), StorageError).code, "not-a-file");
      assertEquals(assertThrows(() => store.readBlock(0, 0, 1), StorageError).code, "not-a-file");
      store.close();
    });
    await t.step("a file where a directory should be gives create", () => {
      fs.mkdirSync(join(dir, "o2", "t"), { recursive: true });
      fs.writeFileSync(join(dir, "o2", "t", "sub"), "x");
      const store = PieceStore.open(g.meta, join(dir, "o2"));
      const p = Math.floor((g.meta.files[2].offset + 500) / 256);
      assertEquals(assertThrows(() => store.writePiece(p, g.piece(p)), StorageError).code, "create");
      assertEquals(store.readPiece(p), null, "reading treats it as missing");
      store.close();
    });
    // sysfs refuses mkdir with EPERM even for root: that is the permission code
    const sysfs = (() => {
      try {
        return fs.statSync("/sys/kernel").isDirectory();
      } catch {
        return false;
      }
    })();
    await t.step({
      name: "an unwritable place (/sys, EPERM) gives permission",
      ignore: !sysfs,
      fn: () => {
        const err = assertThrows(() => PieceStore.open(g.meta, "/sys/btfetch-test-out"), StorageError);
        assertEquals([err.code, err.path], ["permission", "/sys/btfetch-test-out"]);
        const store = PieceStore.open(g.meta, "/sys/btfetch-test-out", { readOnly: true });
        const err2 = assertThrows(() => store.writePiece(0, g.piece(0)), StorageError);
        assertEquals([err2.code, err2.path], ["permission", "/sys/btfetch-test-out"]);
        assert(err2.message.includes("/sys/btfetch-test-out"), err2.message);
        store.close();
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore.ensureFiles() creates selected empty files, sizes the others, never padding", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample();
    const t = join(dir, "t");
    fs.mkdirSync(join(t, "deep", "er"), { recursive: true });
    fs.writeFileSync(join(t, "a.bin"), g.contents[0]); // whole
    fs.writeFileSync(join(t, "deep", "er", "d.bin"), new Uint8Array(2600)); // longer than the torrent says
    const store = PieceStore.open(g.meta, dir, { selected: new Set([0, 1, 3, 5]) });
    store.ensureFiles();
    store.close();
    assertEquals(new Uint8Array(fs.readFileSync(join(t, "a.bin"))), g.contents[0]);
    assertEquals(fs.statSync(join(t, "sub", "empty")).size, 0);
    assertEquals(fs.statSync(join(t, "deep", "er", "d.bin")).size, 2500);
    assert(!exists(join(t, ".pad")));
    assert(!exists(join(t, "sub", "b.bin")), "unselected");
    assert(!exists(join(t, "c.bin")), "unselected");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore never makes again, or extends, a file that holds verified data (zeros would pass for it)", async (t) => {
  const g = sample();
  for (
    const [name, harm, message] of [
      ["removed", (path: string) => fs.rmSync(path), /it is gone/],
      ["cut short", (path: string) => fs.truncateSync(path, 10), /cut to 10 bytes/],
    ] as const
  ) {
    await t.step(`${name}: writePiece() and ensureFiles() refuse, nothing is made`, async () => {
      const dir = await Deno.makeTempDir();
      try {
        const store = PieceStore.open(g.meta, dir, { selected: new Set([0]) });
        store.writePiece(0, g.piece(0)); // a.bin holds verified data now
        store.close(); // its descriptor goes: the next write opens the file again
        const path = join(dir, "t", "a.bin");
        harm(path);
        for (const call of [() => store.writePiece(1, g.piece(1)), () => store.ensureFiles()]) {
          const e = assertThrows(call, StorageError);
          assertEquals([e.code, e.path], ["write", path]);
          assert(message.test(e.message), e.message);
        }
        store.close();
        assertEquals(exists(path) ? fs.statSync(path).size : -1, name === "removed" ? -1 : 10);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
  await t.step("noteHave(): data a resume record or a hash found counts too", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const store = PieceStore.open(g.meta, dir, { selected: new Set([0]) });
      store.noteHave(Bitfield.full(g.meta.pieceCount));
      const e = assertThrows(() => store.writePiece(0, g.piece(0)), StorageError);
      assert(/it is gone/.test(e.message), e.message);
      assert(!exists(join(dir, "t", "a.bin")));
      store.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("PieceStore.ensureFiles() does not make a removed non-empty file again (zeros would pass for the data)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample();
    const store = PieceStore.open(g.meta, dir, { selected: new Set([0]) });
    const e = assertThrows(() => store.ensureFiles(), StorageError);
    assertEquals([e.code, e.path], ["write", join(dir, "t", "a.bin")]);
    assert(/removed while btfetch ran/.test(e.message), e.message);
    fs.mkdirSync(join(dir, "t"));
    const e2 = assertThrows(() => store.ensureFiles(), StorageError);
    assert(/it is gone/.test(e2.message), e2.message);
    store.close();
    assert(!exists(join(dir, "t", "a.bin")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore keeps working past its open-file limit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rand = seeded(11);
    const files = Array.from(
      { length: 150 },
      (_, i) => ({ name: `d${i % 7}/f${i}`, data: randomBytes(rand, 1 + rand.int(90)) }),
    );
    const g = makeGeom(files, 64);
    const store = PieceStore.open(g.meta, dir);
    for (const p of shuffled(g.meta.pieceCount, rand)) store.writePiece(p, g.piece(p));
    for (const p of shuffled(g.meta.pieceCount, rand)) assertEquals(store.readPiece(p), g.piece(p));
    assertEquals((await store.verify()).complete, true);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore.open() on a single-file torrent puts the file at outDir/<name>", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = randomBytes(seeded(2), 700);
    const g = makeGeom([{ data }], 256, { name: "movie.mkv", single: true });
    const store = PieceStore.open(g.meta, dir);
    for (let p = g.meta.pieceCount - 1; p >= 0; p--) store.writePiece(p, g.piece(p));
    store.close();
    assertEquals(new Uint8Array(fs.readFileSync(join(dir, "movie.mkv"))), data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore never writes through a hard link at a file's place, but reads through one", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const g = sample();
    const victim = join(dir, "victim");
    const plant = (out: string, name: string, body: string | Uint8Array): string => {
      fs.mkdirSync(join(out, "t", "sub"), { recursive: true });
      fs.writeFileSync(victim, body);
      fs.linkSync(victim, join(out, "t", name));
      return join(out, "t", name);
    };
    const rows: { name: string; write: (s: PieceStore) => void }[] = [
      { name: "writePiece()", write: (s) => s.writePiece(0, g.piece(0)) },
      { name: "ensureFiles() of a file of another size", write: (s) => s.ensureFiles() },
    ];
    for (const [k, row] of rows.entries()) {
      await t.step(row.name, () => {
        const out = join(dir, `o${k}`);
        const at = plant(out, "a.bin", "keep me");
        const store = PieceStore.open(g.meta, out);
        const err = assertThrows(() => row.write(store), StorageError);
        assertEquals([err.code, err.path], ["unsafe-path", at]);
        assert(/hard link/.test(err.message), err.message);
        assertEquals(fs.readFileSync(victim, "utf8"), "keep me");
        store.close();
        fs.rmSync(victim);
      });
    }
    await t.step("data hard-linked into place is read, verified and left alone by ensureFiles()", async () => {
      const out = join(dir, "o-read");
      plant(out, "a.bin", g.contents[0]);
      const store = PieceStore.open(g.meta, out, { readOnly: true, selected: new Set([0]) });
      const have = await store.verify();
      assert(have.has(0) && have.has(3), "the pieces wholly inside a.bin are verified");
      store.ensureFiles();
      store.close();
      assertEquals(fs.statSync(victim).nlink, 2);
      assertEquals(new Uint8Array(fs.readFileSync(victim)), g.contents[0]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceStore refuses a directory swapped for a symlink after it was checked", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rand = seeded(3);
    const g = makeGeom(
      [{ name: "d/x", data: randomBytes(rand, 300) }, { name: "d/y", data: randomBytes(rand, 300) }],
      256,
    );
    const out = join(dir, "out");
    const store = PieceStore.open(g.meta, out);
    store.writePiece(0, g.piece(0)); // checks (and remembers) t/d, opens t/d/x
    const elsewhere = join(dir, "elsewhere");
    fs.mkdirSync(elsewhere);
    fs.renameSync(join(out, "t", "d"), join(dir, "old-d"));
    fs.symlinkSync(elsewhere, join(out, "t", "d"));
    const err = assertThrows(() => store.writePiece(2, g.piece(2)), StorageError); // wholly inside d/y
    assertEquals([err.code, err.path], ["unsafe-path", join(out, "t", "d", "y")]);
    if (Deno.build.os === "linux") assertEquals(fs.readdirSync(elsewhere), [], "a file was made outside the folder");
    for (const name of fs.readdirSync(elsewhere)) assertEquals(fs.statSync(join(elsewhere, name)).size, 0, name);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "PieceStore makes no directory through a directory swapped for a symlink after it was checked (Linux)",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const rand = seeded(4);
      const g = makeGeom(
        [{ name: "d/x", data: randomBytes(rand, 300) }, { name: "d/e/y", data: randomBytes(rand, 300) }],
        256,
      );
      const out = join(dir, "out");
      const store = PieceStore.open(g.meta, out);
      store.writePiece(0, g.piece(0)); // checks (and remembers) t/d
      const elsewhere = join(dir, "elsewhere");
      fs.mkdirSync(elsewhere);
      fs.renameSync(join(out, "t", "d"), join(dir, "old-d"));
      fs.symlinkSync(elsewhere, join(out, "t", "d"));
      const err = assertThrows(() => store.writePiece(2, g.piece(2)), StorageError); // wholly inside d/e/y
      assertEquals([err.code, err.path], ["unsafe-path", join(out, "t", "d", "e")]);
      assert(/a directory on its path is a link/.test(err.message), err.message);
      assertEquals(fs.readdirSync(elsewhere), [], "something was made outside the folder");
      store.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("PieceStore writes a single-file torrent into an output folder that is a symlink (the user's choice)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    fs.mkdirSync(join(dir, "real"));
    fs.symlinkSync(join(dir, "real"), join(dir, "link"));
    const data = randomBytes(seeded(2), 700);
    const g = makeGeom([{ data }], 256, { name: "movie.mkv", single: true });
    const store = PieceStore.open(g.meta, join(dir, "link"));
    for (let p = 0; p < g.meta.pieceCount; p++) store.writePiece(p, g.piece(p));
    store.close();
    assertEquals(new Uint8Array(fs.readFileSync(join(dir, "real", "movie.mkv"))), data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkOutputDir() accepts what can be written, refuses the rest, and leaves nothing behind", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    fs.writeFileSync(join(dir, "plain"), "x");
    fs.mkdirSync(join(dir, "real"));
    fs.symlinkSync(join(dir, "real"), join(dir, "link"));
    const rows: { name: string; out: string; code?: string }[] = [
      { name: "an existing folder", out: join(dir, "real") },
      { name: "missing folders", out: join(dir, "new", "deeper") },
      { name: "a symlink to a folder (the user's choice)", out: join(dir, "link") },
      { name: "a regular file", out: join(dir, "plain"), code: "not-a-file" },
      { name: "under a regular file", out: join(dir, "plain", "sub"), code: "create" },
      { name: "under /proc", out: "/proc/btfetch-test-out", code: "create" },
    ];
    for (const row of rows) {
      await t.step(row.name, () => {
        if (row.code === undefined) checkOutputDir(row.out);
        else {
          const err = assertThrows(() => checkOutputDir(row.out), StorageError);
          assertEquals([err.code, err.path], [row.code, row.out]);
        }
        assertEquals(fs.readdirSync(dir).sort(), ["link", "plain", "real"]);
        assertEquals(fs.readdirSync(join(dir, "real")), []);
      });
    }
    await t.step({
      name: "a read-only mount, existing or under it",
      ignore: !canMount,
      fn: () =>
        withReadOnlyView(join(dir, "real"), (ro) => {
          for (const out of [ro, join(ro, "sub")]) {
            const err = assertThrows(() => checkOutputDir(out), StorageError);
            assertEquals([err.code, err.path], ["permission", out]);
            assertEquals(assertThrows(() => PieceStore.open(sample().meta, out), StorageError).code, "permission");
          }
        }),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "PieceStore opened readOnly serves complete data on a read-only mount (a seed's calls)",
  ignore: !canMount,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const g = sample();
      const all = Bitfield.full(g.meta.pieceCount);
      const src = PieceStore.open(g.meta, dir);
      for (let p = 0; p < g.meta.pieceCount; p++) src.writePiece(p, g.piece(p));
      src.ensureFiles();
      assertEquals(saveResume(src, g.meta, all), true);
      src.close();
      await withReadOnlyView(dir, async (ro) => {
        for (const withRecord of [true, false]) {
          if (!withRecord) fs.rmSync(join(dir, ".btfetch"), { recursive: true }); // seen through the view too
          const warnings: StorageError[] = [];
          const store = PieceStore.open(g.meta, ro, { readOnly: true, onWarning: (e) => warnings.push(e) });
          const { have, source } = await loadOrVerify(store, g.meta);
          assertEquals([source, have.complete], [withRecord ? "resume" : "hash", true]);
          store.ensureFiles();
          store.flush();
          // unchanged since loaded: nothing to write; after a hash there is, and failing to is only a warning
          assertEquals(saveResume(store, g.meta, have), withRecord);
          assertEquals(warnings.map((w) => w.code), withRecord ? [] : ["permission"]);
          assertEquals(store.readPiece(1), g.piece(1));
          assertEquals(store.readBlock(2, 10, 20), g.piece(2).subarray(10, 30));
          store.close();
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
