import { assert, assertEquals } from "../_assert.ts";
import { makeTorrent } from "../_torrent.ts";
import { runSession } from "../../lib/engine/session.ts";
import type { TimedEvent } from "../../lib/engine/events.ts";
import { encodeHandshake, reservedBits } from "../../lib/wire/handshake.ts";

async function readUpTo(conn: Deno.Conn, want: number, ms: number): Promise<number> {
  const buf = new Uint8Array(4096);
  let got = 0;
  const timer = setTimeout(() => conn.close(), ms);
  try {
    while (got < want) {
      const n = await conn.read(buf);
      if (n === null) break;
      got += n;
    }
  } catch {
    /* closed by the timer */
  } finally {
    clearTimeout(timer);
  }
  return got;
}

Deno.test("runSession() counts incoming peers against maxPeers: a second one is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-maxpeers-" });
  const data = new Uint8Array(100_000).map((_, i) => i * 7);
  const { meta } = makeTorrent({ name: "m.bin", pieceLength: 16384, files: data });
  await Deno.writeFile(`${dir}/m.bin`, data);
  const ctl = new AbortController();
  let resolvePort!: (p: number) => void;
  const port = new Promise<number>((r) => (resolvePort = r));
  const events: TimedEvent[] = [];
  const run = runSession({
    meta,
    outDir: dir,
    port: 0,
    maxPeers: 1,
    seed: {},
    signal: ctl.signal,
    onEvent: (e) => {
      events.push(e);
      if (e.event === "listening") resolvePort(e.port);
    },
  });
  const hs = (id: number) =>
    encodeHandshake({ reserved: reservedBits({}), infoHash: meta.infoHash, peerId: new Uint8Array(20).fill(id) });
  const a = await Deno.connect({ hostname: "127.0.0.1", port: await port });
  let b: Deno.TcpConn | null = null;
  try {
    await a.write(hs(0x61));
    assert((await readUpTo(a, 68, 3000)) >= 68, "the first peer gets our handshake");
    b = await Deno.connect({ hostname: "127.0.0.1", port: await port });
    await b.write(hs(0x62));
    assertEquals(await readUpTo(b, 68, 3000), 0, "the second peer is closed without a handshake");
    assertEquals(events.filter((e) => e.event === "peer" && e.action === "connected").length, 1);
  } finally {
    a.close();
    try {
      b?.close();
    } catch { /* closed already */ }
    ctl.abort(new Error("test over"));
    await run.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
