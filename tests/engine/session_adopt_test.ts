/**
 * A magnet's metadata peer carried into the download: `fetchMetadata` hands its connection over and `runSession`
 * adopts it (`SessionOptions.adopt`), against a fake peer that accepts one connection only, so a download that dialled
 * it again would get nowhere.
 */
import { assert, assertEquals } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { makeTorrent } from "../_torrent.ts";
import { blockOf, FakePeer, type Wire } from "./_fake_peer.ts";
import { fetchMetadata, type MetadataPeer, OUR_UT_METADATA_ID } from "../../lib/engine/metadata_fetch.ts";
import { runSession } from "../../lib/engine/session.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import { encodeExtHandshake } from "../../lib/wire/extension.ts";
import { encodeHandshake, reservedBits } from "../../lib/wire/handshake.ts";
import {
  decodeMetadataMessage,
  encodeMetadataMessage,
  METADATA_PIECE_BYTES,
  UT_METADATA,
} from "../../lib/wire/metadata.ts";

const PIECE = 32 * 1024;
const t = makeTorrent({ name: "adopt.bin", pieceLength: PIECE, files: randomBytes(seeded(5), 40 * PIECE + 100) });
const info = t.meta.infoBytes;

interface PeerOptions {
  /** Speaks the fast extension (have-all), else sends a bitfield. */
  readonly fast: boolean;
  /** Sends a later extended handshake naming only ut_pex right after the metadata (BEP 10 allows that). */
  readonly update?: boolean;
}

/** A seeder that serves the metadata and the pieces on its first connection and hangs up on any later one. */
function oneConnectionSeeder(o: PeerOptions, received: string[]): FakePeer {
  let connections = 0;
  return new FakePeer(async (w: Wire) => {
    if (++connections > 1) return; // refused: the download must go on with the first
    if (!await w.handshake(5000)) return;
    const peerId = new TextEncoder().encode("-FK0001-" + "a".repeat(12));
    const reserved = reservedBits({ extended: true, fast: o.fast });
    if (!await w.sendRaw(encodeHandshake({ reserved, infoHash: t.meta.infoHash, peerId }))) return;
    if (o.fast) await w.send({ type: "have-all" });
    else await w.send({ type: "bitfield", bits: Bitfield.full(t.meta.pieceCount).bytes });
    const ext = encodeExtHandshake({ m: new Map([[UT_METADATA, 3]]), metadataSize: info.length });
    await w.send({ type: "extended", id: 0, payload: ext });
    for (;;) {
      const m = await w.next(10_000);
      if (m === null || m === "timeout") return;
      received.push(m.type === "extended" ? `extended ${m.id}` : m.type);
      if (m.type === "interested") await w.send({ type: "unchoke" });
      if (m.type === "request") await w.send({ type: "piece", index: m.index, begin: m.begin, block: blockOf(t, m) });
      const msg = m.type === "extended" && m.id === 3 ? decodeMetadataMessage(m.payload) : null;
      if (msg?.type !== "request") continue;
      const at = msg.piece * METADATA_PIECE_BYTES;
      const data = info.subarray(at, at + Math.min(METADATA_PIECE_BYTES, info.length - at));
      const payload = encodeMetadataMessage({ type: "data", piece: msg.piece, totalSize: info.length, data });
      await w.send({ type: "extended", id: OUR_UT_METADATA_ID, payload });
      if (o.update && at + data.length >= info.length) {
        await w.send({ type: "extended", id: 0, payload: encodeExtHandshake({ m: new Map([["ut_pex", 9]]) }) });
      }
    }
  });
}

for (
  const o of [
    { name: "a fast-extension peer (have-all)", fast: true },
    { name: "a peer without the fast extension (bitfield)", fast: false },
    { name: "a peer that updates its extended handshake after the metadata", fast: true, update: true },
  ]
) {
  Deno.test(`runSession() adopts the metadata's connection and downloads over it: ${o.name}`, async () => {
    const received: string[] = [];
    const peer = oneConnectionSeeder(o, received);
    const out = await Deno.makeTempDir({ prefix: "btfetch-adopt-" });
    let handed: MetadataPeer | undefined;
    try {
      const got = await fetchMetadata({
        infoHash: t.meta.infoHash,
        peers: [{ host: "127.0.0.1", port: peer.port }],
        tiers: [],
        peerId: new TextEncoder().encode("-BF0001-adopttest000"),
        port: 6881,
        timeoutMs: 20_000,
        clientName: "btfetch test",
        onHandOver: (p) => handed = p,
      });
      assertEquals(got, info);
      assert(handed !== undefined, "handed over");
      // the download starts a while later (a check of data on disk can take minutes): the peer goes on talking
      await new Promise((r) => setTimeout(r, 100));
      const connected: string[] = [];
      const r = await runSession({
        meta: t.meta,
        outDir: out,
        peers: [{ host: "127.0.0.1", port: peer.port }],
        adopt: handed,
        port: null,
        useTorrentTrackers: false,
        pex: false,
        stallTimeoutMs: 8000,
        timeoutMs: 20_000,
        onEvent: (e) => {
          if (e.event === "peer" && e.action === "connected") connected.push(`${e.address} ${e.source}`);
        },
      });
      assertEquals(r.complete, true);
      assertEquals(peer.accepted, 1);
      assertEquals(connected, [`127.0.0.1:${peer.port} manual`]);
      assertEquals(await Deno.readFile(`${out}/adopt.bin`), t.payload);
      // on the wire: our opening once (have-none only to a fast peer), a second extended handshake, no bitfield
      const opening = received.filter((x) => x === "have-none" || x === "bitfield" || x === "have-all");
      assertEquals(opening, o.fast ? ["have-none"] : []);
      assertEquals(received.filter((x) => x === "extended 0").length, 2);
      assert(received.includes("interested") && received.includes("request"));
    } finally {
      handed?.pc.close();
      await peer.close();
      await Deno.remove(out, { recursive: true });
    }
  });
}
