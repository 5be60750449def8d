/**
 * Fake peers that serve (or fake) an info dictionary over ut_metadata (BEP 9), for metadata-fetch tests: run one
 * with `new FakePeer(metadataPeer({...}))` from `_fake_peer.ts`.
 * @module
 */
import { encodeExtHandshake } from "../../lib/wire/extension.ts";
import { encodeHandshake, reservedBits } from "../../lib/wire/handshake.ts";
import {
  decodeMetadataMessage,
  encodeMetadataMessage,
  METADATA_PIECE_BYTES,
  metadataPieceCount,
  UT_METADATA,
} from "../../lib/wire/metadata.ts";
import { OUR_UT_METADATA_ID } from "../../lib/engine/metadata_fetch.ts";
import type { Wire } from "./_fake_peer.ts";

/** The id this fake peer wants for ut_metadata messages it receives. */
const FAKE_UT_METADATA_ID = 3;

/** How a {@linkcode metadataPeer} behaves. */
export interface MetadataPeerOptions {
  readonly infoHash: Uint8Array;
  /** The true info dictionary (what `serve` sends). */
  readonly info: Uint8Array;
  /** The `metadata_size` it claims (default `info.length`). */
  readonly claim?: number;
  /** How it answers a request: the true piece (default), garbage of the claimed piece's length, or a reject. */
  readonly answer?: "serve" | "garbage" | "reject";
  /** Sends garbage for every piece of its claim right after its extended handshake, asked or not. */
  readonly push?: boolean;
  /** Every piece asked of it. */
  readonly asked?: number[];
}

/** A peer handler for `FakePeer`: handshake, extended handshake with `metadata_size`, then answers as told. */
export function metadataPeer(o: MetadataPeerOptions): (w: Wire) => Promise<void> {
  const claim = o.claim ?? o.info.length;
  const answer = o.answer ?? "serve";
  const pieceLength = (i: number) => Math.min(METADATA_PIECE_BYTES, claim - i * METADATA_PIECE_BYTES);
  const garbage = new Uint8Array(METADATA_PIECE_BYTES).fill(0x5a);
  const data = (piece: number, how: "serve" | "garbage") => {
    const bytes = how === "serve"
      ? o.info.subarray(piece * METADATA_PIECE_BYTES, piece * METADATA_PIECE_BYTES + pieceLength(piece))
      : garbage.subarray(0, pieceLength(piece));
    return encodeMetadataMessage({ type: "data", piece, totalSize: claim, data: bytes });
  };
  return async (w) => {
    if (!await w.handshake(5000)) return;
    const peerId = new TextEncoder().encode("-FK0001-" + "m".repeat(12));
    if (
      !await w.sendRaw(encodeHandshake({ reserved: reservedBits({ extended: true }), infoHash: o.infoHash, peerId }))
    ) {
      return;
    }
    const ext = encodeExtHandshake({ m: new Map([[UT_METADATA, FAKE_UT_METADATA_ID]]), metadataSize: claim });
    if (!await w.send({ type: "extended", id: 0, payload: ext })) return;
    if (o.push) {
      for (let i = 0; i < metadataPieceCount(claim); i++) {
        if (!await w.send({ type: "extended", id: OUR_UT_METADATA_ID, payload: data(i, "garbage") })) return;
      }
    }
    for (;;) {
      const m = await w.next(30_000);
      if (m === null || m === "timeout") return;
      if (m.type !== "extended" || m.id !== FAKE_UT_METADATA_ID) continue;
      const msg = decodeMetadataMessage(m.payload);
      if (msg.type !== "request") continue;
      o.asked?.push(msg.piece);
      const payload = answer === "reject"
        ? encodeMetadataMessage({ type: "reject", piece: msg.piece })
        : data(msg.piece, answer === "serve" ? "serve" : "garbage");
      if (!await w.send({ type: "extended", id: OUR_UT_METADATA_ID, payload })) return;
    }
  };
}
