import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { randomBytes, seeded } from "../_gen.ts";
import { encodeBencode } from "../../lib/bencode.ts";
import { WireError } from "../../lib/wire/frame.ts";
import {
  decodeMetadataMessage,
  encodeMetadataMessage,
  METADATA_PIECE_BYTES,
  metadataPieceCount,
  torrentFromInfo,
} from "../../lib/wire/metadata.ts";
import { parseMetainfo } from "../../lib/metainfo.ts";
import { makeTorrent } from "../_torrent.ts";

Deno.test("encodeMetadataMessage() and decodeMetadataMessage() round-trip every message type", async (t) => {
  const data = new Uint8Array(METADATA_PIECE_BYTES).fill(7);
  const rows = [
    { type: "request", piece: 0 },
    { type: "request", piece: 3 },
    { type: "reject", piece: 1 },
    { type: "data", piece: 0, totalSize: 20000, data },
    { type: "data", piece: 1, totalSize: 20000, data: new Uint8Array(20000 - METADATA_PIECE_BYTES).fill(1) },
  ] as const;
  for (const m of rows) {
    await t.step(`${m.type} ${m.piece}`, () => assertEquals(decodeMetadataMessage(encodeMetadataMessage(m)), m));
  }
});

Deno.test("decodeMetadataMessage() refuses malformed payloads with WireError", async (t) => {
  const b = (v: Parameters<typeof encodeBencode>[0]) => encodeBencode(v);
  const rows: [string, Uint8Array][] = [
    ["not bencode", new TextEncoder().encode("hello")],
    ["a list", b([1, 2])],
    ["no piece", b({ msg_type: 0 })],
    ["negative piece", b({ msg_type: 0, piece: -1 })],
    ["unknown type", b({ msg_type: 9, piece: 0 })],
    ["data without total_size", b({ msg_type: 1, piece: 0 })],
    ["data with a short piece", new Uint8Array([...b({ msg_type: 1, piece: 0, total_size: 100 }), 1, 2, 3])],
    ["data past the total", new Uint8Array([...b({ msg_type: 1, piece: 1, total_size: 100 })])],
    ["total_size over the limit", new Uint8Array([...b({ msg_type: 1, piece: 0, total_size: 2 ** 40 }), 1])],
  ];
  for (const [name, payload] of rows) {
    await t.step(name, () => void assertThrows(() => decodeMetadataMessage(payload), WireError));
  }
});

Deno.test("decodeMetadataMessage() lets only WireError out on mutated input", () => {
  const rand = seeded(17);
  const good = encodeMetadataMessage({ type: "data", piece: 0, totalSize: 50, data: randomBytes(rand, 50) });
  for (let i = 0; i < 3000; i++) {
    const m = good.slice(0, rand.int(good.length + 1));
    for (let k = 0; k < 2 && m.length > 0; k++) m[rand.int(m.length)] = rand.int(256);
    try {
      decodeMetadataMessage(m);
    } catch (e) {
      assert(e instanceof WireError, `seed 17 #${i}: ${e}`);
    }
  }
});

Deno.test("metadataPieceCount() counts 16 KiB pieces", () => {
  assertEquals([1, 16384, 16385, 32768].map(metadataPieceCount), [1, 1, 2, 2]);
});

Deno.test("torrentFromInfo() keeps the info bytes, so the info-hash is unchanged, with trackers and web seeds", () => {
  const { meta } = makeTorrent({ name: "x.bin", pieceLength: 16384, files: new Uint8Array(30000).fill(5) });
  const bytes = torrentFromInfo(meta.infoBytes, [["http://a/announce"], ["udp://b:1"]], ["http://w/"]);
  const back = parseMetainfo(bytes);
  assertEquals(back.infoHashHex, meta.infoHashHex);
  assertEquals(back.announce, [["http://a/announce"], ["udp://b:1"]]);
  assertEquals(back.urlList, ["http://w/"]);
});
