/**
 * Fetching a torrent's info dictionary from peers (BEP 9) for a magnet link or a bare info-hash. Peers come from the
 * magnet's trackers, `x.pe` and `--peer`; a few are tried at once, each is asked for every metadata piece, and the
 * assembled bytes count only if their SHA-1 is the info-hash.
 * @module
 */
import { createHash } from "node:crypto";
import { formatAddress, type PeerAddress } from "../address.ts";
import { MAX_METADATA_BYTES } from "../limits.ts";
import { Announcer } from "../tracker/announcer.ts";
import { decodeExtHandshake, encodeExtHandshake } from "../wire/extension.ts";
import { WireError } from "../wire/frame.ts";
import { reservedBits, supportsExtended } from "../wire/handshake.ts";
import type { Message } from "../wire/messages.ts";
import {
  decodeMetadataMessage,
  encodeMetadataMessage,
  METADATA_PIECE_BYTES,
  metadataPieceCount,
  UT_METADATA,
} from "../wire/metadata.ts";
import { FetchError } from "./errors.ts";
import { connectTcp, PeerConn, readHandshake } from "./peer_conn.ts";
import { equalBytes } from "../bytes.ts";

/** The extended-message id we ask peers to use for ut_metadata messages sent to us. */
export const OUR_UT_METADATA_ID = 2;
/** Peers asked for metadata at once. */
const PARALLEL = 8;
/** How long one peer may take to connect and hand over the metadata. */
const PEER_TIMEOUT_MS = 20_000;

/** What {@linkcode fetchMetadata} needs. */
export interface MetadataFetchOptions {
  readonly infoHash: Uint8Array;
  readonly peers: readonly PeerAddress[];
  readonly tiers: readonly (readonly string[])[];
  readonly peerId: Uint8Array;
  /** The port we listen on (announced to trackers). */
  readonly port: number;
  /** Give up after this long (FetchError `timeout`). */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Progress for people: which peer is asked, what a tracker said. */
  readonly onNote?: (text: string) => void;
  readonly clientName: string;
}

/**
 * Fetches and checks the info dictionary; resolves with its raw bytes.
 * @throws {FetchError} `timeout` or `no-peers` when no peer delivers within `timeoutMs`; the signal's reason on abort.
 */
export function fetchMetadata(o: MetadataFetchOptions): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const tried = new Set<string>();
    const queue: PeerAddress[] = [];
    const live = new Set<PeerConn>();
    let active = 0;
    let done = false;
    let announcer: Announcer | null = null;
    const finish = (err: unknown, bytes?: Uint8Array) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      for (const c of live) c.close();
      const stopping = announcer ? announcer.stop(1000) : Promise.resolve();
      stopping.then(() => (bytes ? resolve(bytes) : reject(err)));
    };
    const onAbort = () => finish(o.signal?.reason);
    o.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      const why = tried.size === 0 ? "no peers found" : `none of ${tried.size} peers sent it`;
      finish(new FetchError(tried.size === 0 ? "no-peers" : "timeout", `Could not fetch the metadata: ${why}`));
    }, o.timeoutMs);

    const add = (a: PeerAddress) => {
      const key = formatAddress(a);
      if (tried.has(key) || done) return;
      tried.add(key);
      queue.push(a);
      pump();
    };
    const pump = () => {
      while (!done && active < PARALLEL && queue.length > 0) {
        const a = queue.shift() as PeerAddress;
        active++;
        askPeer(a).then(
          (bytes) => bytes && finish(null, bytes),
          () => {},
        ).finally(() => {
          active--;
          pump();
        });
      }
    };

    const askPeer = async (a: PeerAddress): Promise<Uint8Array | null> => {
      const conn = await connectTcp(a, 5_000);
      const { theirs, leftover } = await readHandshake(conn, 5_000, {
        reserved: reservedBits({ fast: true, extended: true }),
        infoHash: o.infoHash,
        peerId: o.peerId,
      });
      if (!supportsExtended(theirs.reserved) || !equalBytes(theirs.infoHash, o.infoHash)) {
        conn.close();
        return null;
      }
      const pc = new PeerConn(conn, a);
      live.add(pc);
      o.onNote?.(`asking ${formatAddress(a)} for the metadata`);
      const give = setTimeout(() => pc.close(), PEER_TIMEOUT_MS);
      let pieces: (Uint8Array | undefined)[] = [];
      let size = 0;
      let got = 0;
      let result: Uint8Array | null = null;
      pc.send({
        type: "extended",
        id: 0,
        payload: encodeExtHandshake({ m: new Map([[UT_METADATA, OUR_UT_METADATA_ID]]), v: o.clientName }),
      });
      const onMessage = (m: Message) => {
        if (m.type !== "extended") return;
        if (m.id === 0) {
          const h = decodeExtHandshake(m.payload);
          const theirId = h.m.get(UT_METADATA) ?? 0;
          const total = h.metadataSize ?? 0;
          if (theirId === 0 || total <= 0 || total > MAX_METADATA_BYTES) {
            pc.close(); // cannot give us metadata
            return;
          }
          size = total;
          pieces = new Array(metadataPieceCount(size));
          for (let i = 0; i < pieces.length; i++) {
            pc.send({ type: "extended", id: theirId, payload: encodeMetadataMessage({ type: "request", piece: i }) });
          }
          return;
        }
        if (m.id !== OUR_UT_METADATA_ID || size === 0) return;
        const msg = decodeMetadataMessage(m.payload);
        if (msg.type === "reject") {
          pc.close();
          return;
        }
        if (msg.type !== "data" || msg.totalSize !== size || msg.piece >= pieces.length || pieces[msg.piece]) return;
        pieces[msg.piece] = msg.data.slice();
        if (++got < pieces.length) return;
        const bytes = new Uint8Array(size);
        pieces.forEach((p, i) => bytes.set(p as Uint8Array, i * METADATA_PIECE_BYTES));
        const digest = createHash("sha1").update(bytes).digest();
        if (equalBytes(new Uint8Array(digest), o.infoHash)) result = bytes;
        else o.onNote?.(`${formatAddress(a)} sent metadata that does not match the info-hash`);
        pc.close();
      };
      try {
        await pc.run({ onMessage, onDrain: () => {} }, leftover);
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
      } finally {
        clearTimeout(give);
        live.delete(pc);
        pc.close();
      }
      return result;
    };

    for (const a of o.peers) add(a);
    if (o.tiers.length > 0) {
      announcer = new Announcer({
        tiers: o.tiers,
        infoHash: o.infoHash,
        peerId: o.peerId,
        port: o.port,
        stats: () => ({ uploaded: 0, downloaded: 0, left: 1 }),
        onPeers: (peers) => peers.forEach(add),
        onError: (url, err) => o.onNote?.(`tracker ${url}: ${err.message}`),
      });
      announcer.start();
    }
    if (o.peers.length === 0 && o.tiers.length === 0) {
      finish(new FetchError("no-peers", "Could not fetch the metadata: the magnet names no tracker and no peer"));
    }
  });
}
