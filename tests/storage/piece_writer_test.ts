import * as fs from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { assert, assertEquals } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { BLOCK_BYTES, MAX_OPEN_FILES } from "../../lib/limits.ts";
import { PieceStore, type StorageError } from "../../lib/storage/disk.ts";
import { discardWriterThread, PieceWriter, prestartWriterThread } from "../../lib/storage/piece_writer.ts";
import { makeGeom } from "./_geom.ts";

/** Two files, pieces of 2.5 blocks: block digests cover a short last block, and a piece may span both files. */
function sample() {
  const rand = seeded(5);
  return makeGeom([
    { name: "a.bin", data: randomBytes(rand, 50_000) },
    { name: "b.bin", data: randomBytes(rand, 60_000) },
  ], 40 * 1024);
}

/** A copy of `data` in a buffer of its own, which submit transfers. */
function own(data: Uint8Array): Uint8Array {
  return data.slice();
}

function blockSums(piece: Uint8Array): Uint8Array {
  const n = Math.ceil(piece.length / BLOCK_BYTES);
  const out = new Uint8Array(n * 20);
  for (let b = 0; b < n; b++) {
    const block = piece.subarray(b * BLOCK_BYTES, Math.min(piece.length, (b + 1) * BLOCK_BYTES));
    out.set(createHash("sha1").update(block).digest(), b * 20);
  }
  return out;
}

interface Outcome {
  ok: boolean;
  blocks: Uint8Array | undefined;
  /** The bytes handed back. */
  data: Uint8Array;
}

/** Runs `fn` with a writer over a fresh store; outcomes by piece and write errors are collected. */
async function withWriter(
  fn: (w: PieceWriter, store: PieceStore, dir: string) => void | Promise<void>,
): Promise<{ outcomes: Map<number, Outcome>; errors: StorageError[] }> {
  const dir = await Deno.makeTempDir();
  const g = sample();
  const store = PieceStore.open(g.meta, dir);
  const outcomes = new Map<number, Outcome>();
  const errors: StorageError[] = [];
  const w = new PieceWriter(
    store,
    (index, ok, blocks, data) => outcomes.set(index, { ok, blocks, data }),
    (e) => errors.push(e),
  );
  try {
    await fn(w, store, dir);
    await w.drain(10_000);
  } finally {
    w.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
  return { outcomes, errors };
}

Deno.test("PieceWriter reports block digests for failed pieces always, for passing ones when asked", async () => {
  const g = sample();
  const hash = (i: number) => g.meta.pieceHashes.subarray(i * 20, i * 20 + 20);
  const damaged = g.piece(1).slice();
  damaged[20_000] ^= 1; // in the second block
  const { outcomes, errors } = await withWriter((w) => {
    w.submit(0, own(g.piece(0)), hash(0));
    w.submit(1, own(damaged), hash(1));
    w.submit(2, own(g.piece(2)), hash(2), { blockDigests: true });
  });
  assertEquals(errors, []);
  assertEquals(outcomes.get(0), { ok: true, blocks: undefined, data: g.piece(0) }, "unasked: no block digests");
  assertEquals(outcomes.get(1), { ok: false, blocks: blockSums(damaged), data: damaged });
  assertEquals(outcomes.get(2), { ok: true, blocks: blockSums(g.piece(2)), data: g.piece(2) });
  assertEquals(outcomes.get(2)?.blocks?.length, 20 * 2, "a short last piece has a short last block");
  // the damaged block, and only it, differs from the good data's
  const good = blockSums(g.piece(1));
  const differs = [0, 1, 2].map((b) =>
    outcomes.get(1)?.blocks?.subarray(b * 20, b * 20 + 20).join() !== good.subarray(b * 20, b * 20 + 20).join()
  );
  assertEquals(differs, [false, true, false]);
});

Deno.test("PieceWriter.prepare() hands back buffers made ready on its thread, and they carry pieces like any other", async () => {
  const g = sample();
  const rows = [
    { length: 1 << 20, count: 3 }, // a MiB each
    { length: 40 * 1024, count: 60 }, // small pieces, several to a message
  ];
  for (const r of rows) {
    const got: Uint8Array[] = [];
    const { outcomes, errors } = await withWriter(async (w) => {
      w.prepare(r.length, r.count, (buf) => got.push(buf));
      const until = Date.now() + 10_000;
      while (got.length < r.count && Date.now() < until) await new Promise((res) => setTimeout(res, 5));
      // a prepared buffer carries a piece like any other
      const piece = got[0].subarray(0, g.piece(0).length);
      piece.set(g.piece(0));
      w.submit(0, piece, g.meta.pieceHashes.subarray(0, 20));
    });
    assertEquals(errors, []);
    assertEquals(got.length, r.count);
    assert(
      got.slice(1).every((b) => b.length === r.length && b.buffer instanceof ArrayBuffer && b.every((x) => x === 0)),
    );
    assertEquals(new Set(got.map((b) => b.buffer)).size, r.count, "each its own buffer");
    assertEquals(outcomes.get(0)?.ok, true);
  }
  // nothing is asked for none, and a closed writer asks for nothing
  const { errors } = await withWriter((w) => {
    w.prepare(1024, 0, () => {
      throw new Error("no buffer expected");
    });
    w.close();
    w.prepare(1024, 2, () => {
      throw new Error("no buffer expected");
    });
  });
  assertEquals(errors, []);
});

Deno.test("PieceWriter's thread refuses a file swapped for a hard link after the store checked it", async () => {
  const g = sample();
  const hash = (i: number) => g.meta.pieceHashes.subarray(i * 20, i * 20 + 20);
  let victim = "";
  const { outcomes, errors } = await withWriter((w, store, dir) => {
    store.writePiece(0, g.piece(0)); // the store has a.bin open and checked
    victim = join(dir, "..", `victim-${crypto.randomUUID()}`);
    fs.writeFileSync(victim, "keep me");
    const path = join(dir, "t", "a.bin");
    fs.rmSync(path);
    fs.linkSync(victim, path);
    w.submit(0, own(g.piece(0)), hash(0));
  });
  try {
    assertEquals(errors.map((e) => [e.code, e.path.endsWith("/t/a.bin")]), [["unsafe-path", true]]);
    assertEquals(outcomes.size, 0);
    assertEquals(fs.readFileSync(victim, "utf8"), "keep me");
  } finally {
    fs.rmSync(victim);
  }
});

Deno.test("PieceWriter's thread creates the files it writes, and refuses what the store refuses", async (t) => {
  const g = sample();
  const hash = (i: number) => g.meta.pieceHashes.subarray(i * 20, i * 20 + 20);
  const outside = await Deno.makeTempDir();
  try {
    await t.step("a missing file is created at its full length and written", async () => {
      const { outcomes, errors } = await withWriter((w, _store, dir) => {
        w.submit(0, own(g.piece(0)), hash(0));
        return w.drain(10_000).then(() => assertEquals(fs.statSync(join(dir, "t", "a.bin")).size, 50_000));
      });
      assertEquals([errors.length, outcomes.get(0)?.ok], [0, true]);
    });
    const cases: { name: string; plant: (at: string, victim: string) => void; code: string; message: RegExp }[] = [
      {
        name: "a symbolic link",
        plant: (at, victim) => fs.symlinkSync(victim, at),
        code: "unsafe-path",
        message: /link/,
      },
      {
        name: "a hard link",
        plant: (at, victim) => fs.linkSync(victim, at),
        code: "unsafe-path",
        message: /hard link/,
      },
      {
        name: "a FIFO (the open does not block)",
        plant: (at) => new Deno.Command("mkfifo", { args: [at] }).outputSync(),
        code: "not-a-file",
        message: /regular file/,
      },
    ];
    for (const [k, c] of cases.entries()) {
      await t.step(c.name, async () => {
        const victim = join(outside, `victim-${k}`);
        fs.writeFileSync(victim, "keep me");
        const { outcomes, errors } = await withWriter((w, _store, dir) => {
          fs.mkdirSync(join(dir, "t"));
          c.plant(join(dir, "t", "a.bin"), victim);
          w.submit(0, own(g.piece(0)), hash(0));
        });
        assertEquals(errors.map((e) => [e.code, e.path.endsWith("/t/a.bin")]), [[c.code, true]]);
        assert(c.message.test(errors[0].message), errors[0].message);
        assertEquals(outcomes.size, 0);
        assertEquals(fs.readFileSync(victim, "utf8"), "keep me");
      });
    }
    await t.step({
      name: "a directory swapped for a link after the store checked it (Linux: where the descriptor really is)",
      ignore: Deno.build.os !== "linux",
      fn: async () => {
        const { outcomes, errors } = await withWriter((w, store, dir) => {
          store.planWrite(0); // the store makes and checks t/, and remembers it
          fs.renameSync(join(dir, "t"), join(dir, "t-moved"));
          fs.symlinkSync(outside, join(dir, "t"));
          w.submit(0, own(g.piece(0)), hash(0));
        });
        assertEquals(errors.map((e) => e.code), ["unsafe-path"]);
        assert(/a directory on its path is a link/.test(errors[0].message), errors[0].message);
        assertEquals(outcomes.size, 0);
        assert(!fs.existsSync(join(outside, "a.bin")), "a file was made outside the folder");
      },
    });
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("PieceWriter's thread never makes again a file that holds verified data, when it opens it anew", async () => {
  // more files than the thread keeps open: the first ones' descriptors are closed, and opened again by path
  const rand = seeded(9);
  const n = MAX_OPEN_FILES + 6;
  const g = makeGeom(Array.from({ length: n }, (_, i) => ({ name: `f${i}.bin`, data: randomBytes(rand, 1024) })), 1024);
  const hash = (i: number) => g.meta.pieceHashes.subarray(i * 20, i * 20 + 20);
  const dir = await Deno.makeTempDir();
  const store = PieceStore.open(g.meta, dir);
  const passed: number[] = [];
  const errors: StorageError[] = [];
  const w = new PieceWriter(store, (index, ok) => {
    if (ok) {
      passed.push(index);
      store.noteVerified(index); // as the session does
    }
  }, (e) => errors.push(e));
  try {
    for (let p = 0; p < n; p++) w.submit(p, own(g.piece(p)), hash(p));
    await w.drain(10_000);
    assertEquals([passed.length, errors.length], [n, 0]);
    const first = join(dir, "t", "f0.bin");
    fs.rmSync(first); // removed while btfetch runs: its data is gone
    w.submit(0, own(g.piece(0)), hash(0)); // the same piece again (a peer's duplicate, say)
    await w.drain(10_000);
    assertEquals(errors.map((e) => [e.code, e.path]), [["write", first]]);
    assert(/it is gone/.test(errors[0].message), errors[0].message);
    assert(!fs.existsSync(first), "not made again as a file of zeros");
  } finally {
    w.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceWriter's thread stops writing into a file that holds verified data and was removed or cut since", async (t) => {
  const g = sample();
  const hash = (i: number) => g.meta.pieceHashes.subarray(i * 20, i * 20 + 20);
  for (
    const [name, harm, message] of [
      ["removed", (path: string) => fs.rmSync(path), /it is gone/],
      ["cut", (path: string) => fs.truncateSync(path, 100), /cut to 100 bytes/],
    ] as const
  ) {
    await t.step(name, async () => {
      const { errors } = await withWriter(async (w, store, dir) => {
        w.submit(0, own(g.piece(0)), hash(0)); // a.bin: opened, kept open by the thread
        await w.drain(10_000);
        store.noteVerified(0); // as the session does on the outcome
        harm(join(dir, "t", "a.bin"));
        w.submit(1, own(g.piece(1)), hash(1)); // spans a.bin (50,000 bytes) and b.bin
      });
      assertEquals(errors.map((e) => [e.code, e.path.endsWith("/t/a.bin")]), [["write", true]]);
      assert(message.test(errors[0].message), errors[0].message);
    });
  }
});

Deno.test("PieceWriter.flush() flushes what the thread wrote, after the pieces submitted before it", async () => {
  const g = sample();
  const hash = (i: number) => g.meta.pieceHashes.subarray(i * 20, i * 20 + 20);
  const dir = await Deno.makeTempDir();
  const store = PieceStore.open(g.meta, dir);
  const passed: number[] = [];
  const errors: StorageError[] = [];
  const w = new PieceWriter(store, (index, ok) => ok && passed.push(index), (e) => errors.push(e));
  try {
    await w.flush(); // nothing written yet: resolves at once
    for (let p = 0; p < g.meta.pieceCount; p++) w.submit(p, own(g.piece(p)), hash(p));
    await w.flush();
    assertEquals(passed.length, g.meta.pieceCount, "the pieces submitted before the flush were stored before it");
    assertEquals([(await store.verify()).complete, errors.length], [true, 0]);
  } finally {
    w.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceWriter.flush() rejects once the writer is closed", async () => {
  const g = sample();
  const dir = await Deno.makeTempDir();
  const store = PieceStore.open(g.meta, dir);
  const w = new PieceWriter(store, () => {}, () => {});
  try {
    const pending = w.flush();
    w.close();
    const e = await pending.then(() => null, (e) => e);
    assert(e !== null && /closed/.test(e.message), String(e));
    const after = await w.flush().then(() => null, (e) => e);
    assert(after !== null && /closed/.test(after.message), String(after));
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PieceWriter stores a passing piece across files and reports it", async () => {
  const g = sample();
  const hash = (i: number) => g.meta.pieceHashes.subarray(i * 20, i * 20 + 20);
  let read: (Uint8Array | null)[] = [];
  const { outcomes, errors } = await withWriter(async (w, store) => {
    for (let p = 0; p < g.meta.pieceCount; p++) w.submit(p, own(g.piece(p)), hash(p));
    await w.drain(10_000);
    read = Array.from({ length: g.meta.pieceCount }, (_, p) => store.readPiece(p));
  });
  assertEquals(errors, []);
  assert([...outcomes.values()].every((o) => o.ok));
  assertEquals(read, Array.from({ length: g.meta.pieceCount }, (_, p) => g.piece(p)));
});

Deno.test("PieceWriter takes a piece's buffer to its thread and hands the same bytes back with the outcome", async () => {
  const g = sample();
  const hash = (i: number) => g.meta.pieceHashes.subarray(i * 20, i * 20 + 20);
  // a pool-like buffer: the piece is a view at an offset, with spare room after it
  const backing = new Uint8Array(g.meta.pieceLength + 100);
  const view = backing.subarray(10, 10 + g.piece(1).length);
  view.set(g.piece(1));
  let detachedAfterSubmit = -1;
  const { outcomes, errors } = await withWriter((w) => {
    w.submit(1, view, hash(1));
    detachedAfterSubmit = backing.buffer.byteLength;
  });
  assertEquals(errors, []);
  assertEquals(detachedAfterSubmit, 0, "the submitted buffer is transferred, not copied");
  const back = outcomes.get(1)?.data;
  assert(back !== undefined);
  assertEquals([back.byteOffset, back.length, back.buffer.byteLength], [
    10,
    g.piece(1).length,
    g.meta.pieceLength + 100,
  ]);
  assertEquals(back, g.piece(1));
});

Deno.test("PieceWriter.submit() refuses a buffer it cannot transfer", async (t) => {
  const g = sample();
  const rows = [
    { name: "a SharedArrayBuffer view", data: new Uint8Array(new SharedArrayBuffer(g.piece(0).length)) },
    {
      name: "a detached view (already submitted)",
      data: (() => {
        const d = g.piece(0).slice();
        d.buffer.transfer();
        return d;
      })(),
    },
  ];
  for (const r of rows) {
    await t.step(r.name, async () => {
      let thrown: unknown = null;
      const { outcomes } = await withWriter((w) => {
        try {
          w.submit(0, r.data, g.meta.pieceHashes.subarray(0, 20));
        } catch (e) {
          thrown = e;
        }
      });
      assert(thrown instanceof TypeError);
      assertEquals(outcomes.size, 0);
    });
  }
});

Deno.test("PieceWriter takes a thread started ahead by prestartWriterThread(), and a spare nobody took can be stopped (twice is harmless)", async () => {
  const g = sample();
  const hash = (i: number) => g.meta.pieceHashes.subarray(i * 20, i * 20 + 20);
  prestartWriterThread();
  prestartWriterThread(); // at most one is kept
  const { outcomes, errors } = await withWriter((w) => {
    for (let p = 0; p < g.meta.pieceCount; p++) w.submit(p, own(g.piece(p)), hash(p));
  });
  assertEquals(errors, []);
  assertEquals([...outcomes.values()].map((o) => o.ok), Array(g.meta.pieceCount).fill(true));
  prestartWriterThread();
  discardWriterThread();
  discardWriterThread();
});

Deno.test("PieceWriter's thread writes a single-file torrent into an output folder that is a symlink", async () => {
  const dir = await Deno.makeTempDir();
  try {
    fs.mkdirSync(join(dir, "real"));
    fs.symlinkSync(join(dir, "real"), join(dir, "link")); // the user's choice, e.g. ~/Downloads -> /data/dl
    const data = randomBytes(seeded(2), 700);
    const g = makeGeom([{ data }], 256, { name: "movie.mkv", single: true });
    const store = PieceStore.open(g.meta, join(dir, "link"));
    const passed: number[] = [];
    const errors: StorageError[] = [];
    const w = new PieceWriter(store, (index, ok) => ok && passed.push(index), (e) => errors.push(e));
    try {
      for (let p = 0; p < g.meta.pieceCount; p++) {
        w.submit(p, own(g.piece(p)), g.meta.pieceHashes.subarray(p * 20, p * 20 + 20));
      }
      await w.drain(10_000);
    } finally {
      w.close();
      store.close();
    }
    assertEquals(errors.map((e) => e.message), []);
    assertEquals(passed.sort(), [0, 1, 2]);
    assertEquals(new Uint8Array(fs.readFileSync(join(dir, "real", "movie.mkv"))), data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
