import { assert, assertEquals } from "../_assert.ts";
import { seeded } from "../_gen.ts";
import { BlockCutter, fetchRun } from "../../lib/engine/webseed_conn.ts";
import { RangeClient } from "../../lib/engine/webseed_http.ts";
import { BLOCK_BYTES } from "../../lib/limits.ts";

/** A payload of `total` bytes in pieces of `pieceLength`, and the blocks a cutter emits for it fed in `chunks`. */
function cut(total: number, pieceLength: number, chunkSizes: (k: number) => number, from = 0) {
  const rand = seeded(3);
  const payload = Uint8Array.from({ length: total }, () => rand.int(256));
  const blocks: { piece: number; begin: number; data: Uint8Array }[] = [];
  const c = new BlockCutter(
    { files: [], pieceLength, totalLength: total, pieceCount: Math.ceil(total / pieceLength) },
    (piece, begin, data) => blocks.push({ piece, begin, data: data.slice() }),
  );
  c.seek(from);
  for (let at = from, k = 0; at < total; k++) {
    const n = Math.min(chunkSizes(k), total - at);
    c.feed(payload.subarray(at, at + n));
    at += n;
  }
  return { payload, blocks };
}

Deno.test("BlockCutter cuts a run's bytes into 16 KiB blocks of each piece, whatever the chunking", async (t) => {
  const rows: [string, number, number, (k: number) => number][] = [
    ["one chunk", 100_000, 32_768, () => 1e9],
    ["1-byte chunks", 40_000, 32_768, () => 1],
    ["chunks across blocks and pieces", 200_001, 65_536, (k) => 1 + (k * 7919) % 40_000],
    ["pieces shorter than a block", 50_000, 16_384, () => 5_000],
    ["whole blocks handed on as views, then staged ones (chunks of a block and a half)", 300_000, 65_536, () => 24_576],
    ["block-sized chunks, a short last piece", 5 * 65_536 + 100, 65_536, () => BLOCK_BYTES],
  ];
  for (const [name, total, pieceLength, sizes] of rows) {
    await t.step(name, () => {
      const { payload, blocks } = cut(total, pieceLength, sizes);
      let at = 0;
      for (const b of blocks) {
        assertEquals(b.piece * pieceLength + b.begin, at, `block at ${at}`);
        assertEquals(b.begin % BLOCK_BYTES, 0);
        const pieceEnd = Math.min(total, (b.piece + 1) * pieceLength);
        assertEquals(b.data.length, Math.min(BLOCK_BYTES, pieceEnd - at));
        assertEquals(b.data, payload.subarray(at, at + b.data.length));
        at += b.data.length;
      }
      assertEquals(at, total);
    });
  }
});

Deno.test("BlockCutter starts at a run's first piece and fills padding with zeros", () => {
  const blocks: { piece: number; begin: number; data: Uint8Array }[] = [];
  const c = new BlockCutter(
    { files: [], pieceLength: 32_768, totalLength: 98_304, pieceCount: 3 },
    (piece, begin, data) => blocks.push({ piece, begin, data: data.slice() }),
  );
  c.seek(32_768);
  c.feed(new Uint8Array(20_000).fill(7));
  c.zeros(12_768); // a padding file to the piece's end
  assertEquals(blocks.map((b) => [b.piece, b.begin, b.data.length]), [[1, 0, 16_384], [1, 16_384, 16_384]]);
  assertEquals(blocks[1].data.subarray(0, 3_616), new Uint8Array(3_616).fill(7));
  assertEquals(blocks[1].data.subarray(3_616), new Uint8Array(12_768));
});

Deno.test("fetchRun() ends as failed a run whose server goes silent, on its own idle time-out", async (t) => {
  // answers every request with a head promising 32 KiB, sends 100 bytes of it, then nothing
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const c of listener) {
      conns.push(c);
      await c.read(new Uint8Array(4096));
      const head =
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-32767/32768\r\nContent-Length: 32768\r\n\r\n";
      await c.write(new TextEncoder().encode(head + "x".repeat(100)));
    }
  })();
  const url = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/f`;
  const geometry = {
    files: [{ index: 0, path: ["f"], length: 32768, offset: 0, padding: false }],
    pieceLength: 32768,
    totalLength: 32768,
    pieceCount: 1,
  };
  const segments = [{
    kind: "get" as const,
    url,
    rangeStart: 0,
    rangeEnd: 32767,
    fileIndex: 0,
    length: 32768,
    payloadOffset: 0,
    piece: 0,
    pieceOffset: 0,
  }];
  try {
    for (
      const [name, client] of [["our own connection", new RangeClient()], ["fetch()", new RangeClient(false)]] as const
    ) {
      await t.step(name, async () => {
        const t0 = performance.now();
        const end = await fetchRun(geometry as never, segments, () => {}, new AbortController().signal, client, 200);
        client.close();
        assertEquals(end.kind, "failed");
        assert(performance.now() - t0 < 5_000, "ended by the idle time-out, not held");
      });
    }
  } finally {
    listener.close();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await serving.catch(() => {});
  }
});
