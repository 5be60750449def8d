import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { seeded } from "../_gen.ts";
import { makeTorrent } from "../_torrent.ts";
import { FileStream, ReaderGone } from "../../lib/cli/stream.ts";
import { StorageError } from "../../lib/storage/storage_error.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import { concatBytes, equalBytes } from "../../lib/bytes.ts";

/** A 3-file torrent whose middle file spans pieces shared with its neighbours, written to disk at `dir`. */
async function setup(dir: string) {
  const rand = seeded(5);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => rand.int(256));
  const files = [
    { path: ["a.bin"], data: bytes(5000) },
    { path: ["b.bin"], data: bytes(70_000) },
    { path: ["c.bin"], data: bytes(3000) },
  ];
  const tor = makeTorrent({ name: "t", pieceLength: 16384, files });
  await Deno.mkdir(`${dir}/t`, { recursive: true });
  for (const f of files) await Deno.writeFile(`${dir}/t/${f.path[0]}`, f.data);
  return { tor, files };
}

Deno.test("FileStream writes one file in order as pieces verify, whatever their order, and only its bytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-stream-" });
  try {
    const { tor, files } = await setup(dir);
    const out: Uint8Array[] = [];
    let writes = 0;
    const s = new FileStream(tor.meta, dir, 1, async (b) => {
      writes++;
      await new Promise((r) => setTimeout(r, 1)); // a slow reader: pieces verify while writes wait
      out.push(b.slice());
    });
    const have = new Bitfield(tor.meta.pieceCount);
    s.update(have); // nothing yet
    const order = [3, 0, 4, 2, 1];
    for (const i of order) {
      have.set(i);
      s.update(have);
      await new Promise((r) => setTimeout(r, 0));
      // never a byte past the first piece still missing (piece 0 holds b's first 11,384 bytes)
      const written = out.reduce((n, b) => n + b.length, 0);
      const firstMissing = [0, 1, 2, 3, 4].find((k) => !have.has(k)) ?? 5;
      assert(
        written <= Math.max(0, firstMissing * 16384 - 5000),
        `${written} bytes written before piece ${firstMissing}`,
      );
    }
    assertEquals(await s.done, "written");
    const got = concatBytes(out);
    assertEquals(got, files[1].data);
    assert(writes >= 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FileStream ends with closed when the reader goes away, and at once for an empty file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-stream-" });
  try {
    const { tor } = await setup(dir);
    const s = new FileStream(tor.meta, dir, 1, () => Promise.reject(new ReaderGone()));
    s.update(Bitfield.full(tor.meta.pieceCount));
    assertEquals(await s.done, "closed");
    assertEquals(s.written, false);
    const empty = makeTorrent({
      name: "e",
      pieceLength: 16384,
      files: [{ path: ["x"], data: new Uint8Array(1) }, { path: ["z"], data: new Uint8Array(0) }],
    });
    const e = new FileStream(empty.meta, dir, 1, () => Promise.resolve());
    assertEquals(await e.done, "written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FileStream rejects with a StorageError when a write fails other than by the reader going, or the file is gone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-stream-" });
  try {
    const { tor } = await setup(dir);
    const full = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
    const s = new FileStream(tor.meta, dir, 1, () => Promise.reject(full));
    s.update(Bitfield.full(tor.meta.pieceCount));
    const e = await assertRejects(() => s.done, StorageError);
    assertEquals([e.code, e.path], ["no-space", "standard output"]);
    assertEquals(s.written, false);
    await Deno.remove(`${dir}/t/b.bin`);
    const gone = new FileStream(tor.meta, dir, 1, () => Promise.resolve());
    gone.update(Bitfield.full(tor.meta.pieceCount));
    const r = await assertRejects(() => gone.done, StorageError);
    assertEquals(r.code, "read");
    assert(r.path.endsWith("t/b.bin"), r.path);
    const ok = new FileStream(tor.meta, dir, 0, () => Promise.resolve());
    ok.update(Bitfield.full(tor.meta.pieceCount));
    assertEquals([await ok.done, ok.written], ["written", true]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FileStream keeps reading the file it opened: one swapped for a link meanwhile does not reach the output", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-stream-" });
  try {
    const { tor, files } = await setup(dir);
    const out: Uint8Array[] = [];
    const s = new FileStream(tor.meta, dir, 1, (b) => {
      out.push(b.slice());
      return Promise.resolve();
    });
    const have = new Bitfield(tor.meta.pieceCount);
    have.set(0);
    s.update(have); // b.bin's first bytes go out, through the file opened now
    for (let i = 0; i < 2000 && out.length === 0; i++) await new Promise((r) => setTimeout(r, 1));
    assert(out.length > 0, "nothing written for the first piece");
    // another program swaps the file for a link to a secret of the same size
    await Deno.writeFile(`${dir}/secret`, new Uint8Array(files[1].data.length).fill(0x5a));
    await Deno.rename(`${dir}/t/b.bin`, `${dir}/t/b.old`);
    await Deno.symlink(`${dir}/secret`, `${dir}/t/b.bin`);
    s.update(Bitfield.full(tor.meta.pieceCount));
    assertEquals(await s.done, "written");
    const got = concatBytes(out);
    assertEquals(got.length, files[1].data.length);
    assert(equalBytes(got, files[1].data), "bytes of the link's target reached the output");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "FileStream never opens its file through a directory swapped for a link (Linux: where the descriptor really is)",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "btfetch-stream-" });
    const outside = await Deno.makeTempDir({ prefix: "btfetch-secret-" });
    try {
      const { tor, files } = await setup(dir);
      // another program swaps the torrent's folder for a link to a folder of its own, before the stream opens
      await Deno.writeFile(`${outside}/b.bin`, new Uint8Array(files[1].data.length).fill(0x5a));
      await Deno.rename(`${dir}/t`, `${dir}/t-moved`);
      await Deno.symlink(outside, `${dir}/t`);
      const out: Uint8Array[] = [];
      const s = new FileStream(tor.meta, dir, 1, (b) => {
        out.push(b.slice());
        return Promise.resolve();
      });
      s.update(Bitfield.full(tor.meta.pieceCount));
      const e = await assertRejects(() => s.done, StorageError);
      assertEquals(e.code, "unsafe-path");
      assert(/a directory on its path is a link/.test(e.message), e.message);
      assertEquals(out.length, 0, "bytes from outside the folder reached the output");
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(outside, { recursive: true });
    }
  },
});
