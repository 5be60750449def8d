/**
 * The swarm's block keeping, shared by peers and web seeds: counting a block, putting it into its piece (a complete
 * piece goes to be hashed), cancelling the other copies of an endgame block, and the numbers blame gives addresses.
 * Pure, like the rest of the swarm: it works on the {@linkcode Swarm} record and speaks through {@linkcode SwarmIO}.
 * @module
 */
import type { PeerAddress } from "../address.ts";
import { BLOCK_BYTES } from "../limits.ts";
import { pieceComplete, pieceLength, receiveBlock, releaseBlock, requestsOut } from "./picker.ts";
import { addBytes } from "./rate.ts";
import { blockArrived, dropRequest, type RequestQueue } from "./requests.ts";
import type { Swarm, SwarmIO } from "./swarm.ts";

/** Addresses numbered for blame at once; past it the oldest number is forgotten. */
export const MAX_SENDERS = 65_536;

export function senderOf(sw: Swarm, address: PeerAddress, key: string): number {
  const s = sw.senders;
  let id = s.ids.get(key);
  if (id === undefined) {
    id = s.next++;
    if (s.ids.size >= MAX_SENDERS) {
      const [oldKey, oldId] = s.ids.entries().next().value as [string, number];
      s.ids.delete(oldKey);
      s.addresses.delete(oldId);
    }
    s.ids.set(key, id);
    s.addresses.set(id, address);
  }
  return id;
}

/** Counts a block from any source; true when it was asked of that source (then {@linkcode keepBlock} it). */
export function acceptBlock(
  sw: Swarm,
  queue: RequestQueue,
  index: number,
  begin: number,
  data: Uint8Array,
  now: number,
): boolean {
  sw.ts.downloaded += data.length;
  addBytes(sw.downRate, data.length, now);
  if (blockArrived(queue, index, begin, data.length, now)) return true;
  sw.ts.wasted += data.length;
  return false;
}

/** Puts an asked-for block into its piece (a duplicate is wasted); a complete piece goes to be hashed and stored. */
export function keepBlock(
  sw: Swarm,
  queue: RequestQueue,
  sender: number,
  index: number,
  begin: number,
  data: Uint8Array,
  io: SwarmIO,
): void {
  if (receiveBlock(sw.picker, index, begin, data.length) !== "new") {
    sw.ts.wasted += data.length;
    return;
  }
  let pb = sw.buffers.get(index);
  if (!pb) {
    const len = pieceLength(sw.picker, index);
    pb = { buf: sw.bufferPool.take(len), from: new Int32Array(Math.ceil(len / BLOCK_BYTES)) };
    sw.buffers.set(index, pb);
  }
  pb.buf.set(data, begin);
  pb.from[begin / BLOCK_BYTES] = sender;
  if (requestsOut(sw.picker, index, begin) > 0) cancelDuplicates(sw, queue, index, begin, io);
  if (pieceComplete(sw.picker, index)) {
    // the last block is in: hash and store it off this thread; the outcome comes back in pieceOutcome
    sw.buffers.delete(index);
    sw.verifying.set(index, pb);
    io.submit(index, pb.buf);
  }
}

/** Endgame: a block arrived that other sources were also asked for; cancel their copies. */
export function cancelDuplicates(sw: Swarm, from: RequestQueue, index: number, begin: number, io: SwarmIO): void {
  for (const p of sw.peers.values()) {
    if (p.queue === from) continue;
    const r = dropRequest(p.queue, index, begin);
    if (r) {
      releaseBlock(sw.picker, index, begin);
      io.send(p.id, { type: "cancel", index, begin, length: r.length });
    }
  }
  for (const w of sw.webSeeds.values()) {
    if (w.queue !== from && dropRequest(w.queue, index, begin)) releaseBlock(sw.picker, index, begin); // its copy is wasted
  }
}

/** The byte counts kept for one peer or web seed address in this run. */
export function share(
  sw: Swarm,
  key: string,
  client: string,
): { client: string; downloaded: number; uploaded: number } {
  let s = sw.shares.get(key);
  if (!s) {
    s = { client, downloaded: 0, uploaded: 0 };
    sw.shares.set(key, s);
  }
  return s;
}
