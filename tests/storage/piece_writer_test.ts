import * as fs from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { PieceStore, type StorageError } from "../../lib/storage/disk.ts";
import { PieceWriter } from "../../lib/storage/piece_writer.ts";
import { makeGeom } from "./_geom.ts";

/** Two files, pieces of 2.5 blocks: a piece may span both files. */
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
