import * as fs from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { assert, assertEquals } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { BLOCK_BYTES } from "../../lib/limits.ts";
import { PieceStore, type StorageError } from "../../lib/storage/disk.ts";
import { PieceWriter } from "../../lib/storage/piece_writer.ts";
import { makeGeom } from "./_geom.ts";

/** Two files, pieces of 2.5 blocks: block digests cover a short last block, and a piece may span both files. */
function sample() {
  const rand = seeded(5);
  return makeGeom([
    { name: "a.bin", data: randomBytes(rand, 50_000) },
    { name: "b.bin", data: randomBytes(rand, 60_000) },
  ], 40 * 1024);
}

function shared(data: Uint8Array): Uint8Array {
  const view = new Uint8Array(new SharedArrayBuffer(data.length));
  view.set(data);
  return view;
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
  args: number;
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
    (...args: [number, boolean, Uint8Array?]) =>
      outcomes.set(args[0], { ok: args[1], blocks: args[2], args: args.length }),
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
    w.submit(0, shared(g.piece(0)), hash(0));
    w.submit(1, shared(damaged), hash(1));
    w.submit(2, shared(g.piece(2)), hash(2), { blockDigests: true });
  });
  assertEquals(errors, []);
  assertEquals(outcomes.get(0), { ok: true, blocks: undefined, args: 2 }, "unasked: the outcome is as before");
  assertEquals(outcomes.get(1), { ok: false, blocks: blockSums(damaged), args: 3 });
  assertEquals(outcomes.get(2), { ok: true, blocks: blockSums(g.piece(2)), args: 3 });
  assertEquals(outcomes.get(2)?.blocks?.length, 20 * 2, "a short last piece has a short last block");
  // the damaged block, and only it, differs from the good data's
  const good = blockSums(g.piece(1));
  const differs = [0, 1, 2].map((b) =>
    outcomes.get(1)?.blocks?.subarray(b * 20, b * 20 + 20).join() !== good.subarray(b * 20, b * 20 + 20).join()
  );
  assertEquals(differs, [false, true, false]);
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
    w.submit(0, shared(g.piece(0)), hash(0));
  });
  try {
    assertEquals(errors.map((e) => [e.code, e.path.endsWith("/t/a.bin")]), [["unsafe-path", true]]);
    assertEquals(outcomes.size, 0);
    assertEquals(fs.readFileSync(victim, "utf8"), "keep me");
  } finally {
    fs.rmSync(victim);
  }
});

Deno.test("PieceWriter stores a passing piece across files and reports it", async () => {
  const g = sample();
  const hash = (i: number) => g.meta.pieceHashes.subarray(i * 20, i * 20 + 20);
  let read: (Uint8Array | null)[] = [];
  const { outcomes, errors } = await withWriter(async (w, store) => {
    for (let p = 0; p < g.meta.pieceCount; p++) w.submit(p, shared(g.piece(p)), hash(p));
    await w.drain(10_000);
    read = Array.from({ length: g.meta.pieceCount }, (_, p) => store.readPiece(p));
  });
  assertEquals(errors, []);
  assert([...outcomes.values()].every((o) => o.ok));
  assertEquals(read, Array.from({ length: g.meta.pieceCount }, (_, p) => g.piece(p)));
});
