/**
 * Uploading in the swarm: requests checked and queued (`uploads.ts` holds the queue and the piece cache), blocks sent
 * while the peer's socket keeps up and the upload rate allows, pieces read once through the runtime and cached. Pure.
 * @module
 */
import { BLOCK_BYTES, MAX_BLOCK_BYTES, MAX_PEER_QUEUED_REQUESTS } from "../limits.ts";
import { WireError } from "../wire/frame.ts";
import { pieceLength } from "./picker.ts";
import { addBytes, takeTokens } from "./rate.ts";
import type { Swarm, SwarmIO, SwarmPeer } from "./swarm.ts";
import { share } from "./swarm_blocks.ts";
import { nextUpload, queueUpload, UPLOAD_BACKLOG_BYTES } from "./uploads.ts";

export function onRequest(
  sw: Swarm,
  peer: SwarmPeer,
  index: number,
  begin: number,
  length: number,
  now: number,
  io: SwarmIO,
): void {
  if (
    index >= sw.meta.pieceCount || length === 0 || length > MAX_BLOCK_BYTES ||
    begin + length > pieceLength(sw.picker, index)
  ) {
    throw new WireError("bad-payload", 0, `request out of bounds (piece ${index}, ${begin}+${length})`);
  }
  if (peer.state.amChoking || !sw.picker.have.has(index) || length > (sw.o.maxServedBlock ?? BLOCK_BYTES)) {
    if (peer.state.fast) io.send(peer.id, { type: "reject", index, begin, length });
    return;
  }
  if (!queueUpload(peer.uploads, { index, begin, length })) {
    throw new WireError("bad-payload", 0, `more than ${MAX_PEER_QUEUED_REQUESTS} requests queued`);
  }
  serveUploads(sw, peer.id, now, io);
}

/**
 * Sends queued blocks to a peer while its backlog allows (on a request, when its socket drains, on a tick).
 * @throws {import("../storage/disk.ts").StorageError} from `io.readPiece` callers when verified data is gone.
 */
export function serveUploads(sw: Swarm, id: number, now: number, io: SwarmIO): void {
  const peer = sw.peers.get(id);
  if (!peer) return;
  for (;;) {
    const u = peer.uploads[0];
    if (u === undefined) return;
    if (io.backlog(peer.id) >= UPLOAD_BACKLOG_BYTES) return; // the drain retries
    if (sw.o.maxUploadRate && takeTokens(sw.upBucket, u.length, now) > 0) return; // the tick retries
    if (nextUpload(peer.uploads, io.backlog(peer.id)) === null) return;
    const piece = pieceForUpload(sw, u.index, io);
    if (piece === null) {
      throw new MissingPieceError(u.index);
    }
    io.sendBlock(peer.id, u.index, u.begin, piece.subarray(u.begin, u.begin + u.length));
    peer.uploaded += u.length;
    peer.lastUsefulAt = now;
    sw.ts.uploaded += u.length;
    share(sw, peer.key, peer.client).uploaded += u.length;
    addBytes(peer.upRate, u.length, now);
    addBytes(sw.upRate, u.length, now);
  }
}

/** A piece we verified is gone from disk (the runtime maps this to a disk error). */
export class MissingPieceError extends Error {
  override readonly name = "MissingPieceError";
  /** Makes the error for piece `index`. */
  constructor(readonly index: number) {
    super(`piece ${index} was verified but its data is gone from disk`);
  }
}

function pieceForUpload(sw: Swarm, index: number, io: SwarmIO): Uint8Array | null {
  const hit = sw.cache.get(index);
  if (hit) return hit;
  // into a pool buffer (evicted pieces go back to the pool): a fresh 1 MiB buffer per piece read cost page faults and
  // garbage, a quarter of a second of seeding a GiB
  const buf = sw.bufferPool.take(pieceLength(sw.picker, index));
  const data = io.readPiece(index, buf);
  if (data === null) {
    sw.bufferPool.give(buf);
    return null;
  }
  // a piece larger than the whole cache comes straight back: it is being served, so it is not pooled
  for (const old of sw.cache.put(index, data)) if (old !== data) sw.bufferPool.give(old);
  return data;
}
