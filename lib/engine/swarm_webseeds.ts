/**
 * Web seeds (BEP 19) in the swarm: each takes runs of consecutive pieces nobody has started, sized to its measured
 * rate; its blocks sit in a request queue so endgame and the request time-out treat them like a peer's, and what a run
 * did not deliver goes back to the picker. The seed's own rules (files missing or banned, back-off, `Retry-After`)
 * are `webseed/seed_state.ts`; the HTTP is the runtime's (`webseed_conn.ts`). Pure.
 * @module
 */
import { WebSeedError } from "../webseed/error.ts";
import { planRun } from "../webseed/plan.ts";
import {
  canStart,
  createSeedState,
  type FileMissingReason,
  nextRunPieces,
  type SeedEvent,
  servesPiece,
  stepSeed,
  type WebSeedState,
} from "../webseed/seed_state.ts";
import { claimRun, releaseBlock } from "./picker.ts";
import { createQueue, dropAll, dropRequest, expireRequests, requestsSent } from "./requests.ts";
import type { Swarm, SwarmIO, WebSeed } from "./swarm.ts";
import { rateOf } from "./rate.ts";
import { acceptBlock, keepBlock, senderOf, share } from "./swarm_blocks.ts";

/** A web seed takes over the runs of one this many times slower than itself, once it has nothing else to fetch. */
export const STEAL_RATIO = 4;

/**
 * Adds the torrent's web seeds (`url-list`) and `extra` ones. A URL that cannot serve this torrent (not http(s), no
 * file it can name) is reported as a warning and left out.
 */
export function addWebSeeds(sw: Swarm, extra: readonly string[], now: number, io: SwarmIO): void {
  const urls = [...new Set([...sw.meta.urlList, ...extra])];
  for (const url of urls) {
    let state: WebSeedState;
    try {
      state = createSeedState(sw.meta, url, now);
    } catch (e) {
      if (!(e instanceof WebSeedError)) throw e;
      io.emit({ event: "warning", message: `Web seed ${JSON.stringify(url.slice(0, 200))} left out: ${e.message}` });
      continue;
    }
    if (state.dropped !== null) continue;
    const id = sw.nextPeerId++;
    const key = state.url;
    const address = { host: key, port: 0 }; // blame numbers senders by address; a URL stands in for one
    sw.webSeeds.set(id, {
      id,
      key,
      state,
      queue: createQueue(now),
      sender: senderOf(sw, address, key),
      runs: new Map(),
      nextRun: 1,
      from: 0,
    });
    sw.webSeedSenders.set(senderOf(sw, address, key), key);
    sw.pool.found.webseed++;
    io.emit({
      event: "peer",
      action: "connected",
      address: key,
      incoming: false,
      source: "webseed",
      client: "web seed",
    });
  }
}

/** Gives each web seed that may take one a run of pieces nobody has started (on every tick). */
export function feedWebSeeds(sw: Swarm, now: number, io: SwarmIO): void {
  if (sw.ts.completeAt !== null) return;
  for (const w of sw.webSeeds.values()) {
    while (canStart(w.state, now)) {
      let claim = claimRun(sw.picker, nextRunPieces(w.state, now), w.from, (i) => servesPiece(w.state, i));
      if (!claim && stealFromSlow(sw, w, now, io)) {
        claim = claimRun(sw.picker, nextRunPieces(w.state, now), w.from, (i) => servesPiece(w.state, i));
      }
      if (!claim) break;
      const { first, last } = claim.run;
      // a piece this seed cut short before: ask from its first missing block, not again for what it sent
      const skip = claim.blocks[0]?.index === first ? claim.blocks[0].begin : 0;
      requestsSent(w.queue, claim.blocks, now);
      const runId = w.nextRun++;
      w.runs.set(runId, { first, last, skip });
      w.from = last + 1 < sw.meta.pieceCount ? last + 1 : 0;
      [w.state] = stepSeed(w.state, { type: "run-started" }, now);
      io.fetchRun(w.id, runId, planRun(sw.meta, { first, last, skip, urls: w.state.urls }));
    }
  }
}

/** A block of a web seed's run arrived (the runtime cut it from the HTTP body). */
export function webSeedBlock(
  sw: Swarm,
  seed: number,
  index: number,
  begin: number,
  data: Uint8Array,
  now: number,
  io: SwarmIO,
): void {
  const w = sw.webSeeds.get(seed);
  if (!w) return;
  share(sw, w.key, "web seed").downloaded += data.length;
  [w.state] = stepSeed(w.state, { type: "data", bytes: data.length }, now);
  if (acceptBlock(sw, w.queue, index, begin, data, now)) keepBlock(sw, w.queue, w.sender, index, begin, data, io);
}

/** How a web seed's run ended, as the runtime saw it. */
export type WebSeedRunEnd =
  | { readonly kind: "ok" | "short" | "failed" | "aborted" }
  | { readonly kind: "retry"; readonly afterMs: number | null }
  | { readonly kind: "missing"; readonly fileIndex: number; readonly reason: FileMissingReason };

/** A web seed's run ended: what it did not deliver goes back to the picker; the seed backs off, loses files, or goes. */
export function webSeedRunEnded(
  sw: Swarm,
  seed: number,
  run: number,
  end: WebSeedRunEnd,
  now: number,
  io: SwarmIO,
): void {
  const w = sw.webSeeds.get(seed);
  if (!w) return;
  const r = w.runs.get(run);
  if (!r) return;
  w.runs.delete(run);
  const undelivered = releaseRun(sw, w, r);
  // the seed's state wants the bytes that did arrive (none: a failure that backs off)
  const delivered = Math.max(0, runBytes(sw, r) - undelivered);
  const outcome = end.kind === "ok" && undelivered === 0
    ? { result: "done" as const }
    : end.kind === "ok" || end.kind === "short"
    ? { result: "short" as const, bytes: delivered }
    : end.kind === "retry"
    ? { result: "retry" as const, retryAfterMs: end.afterMs }
    : end.kind === "missing"
    ? { result: "missing" as const, fileIndex: end.fileIndex, reason: end.reason }
    : { result: "failed" as const };
  webSeedStep(sw, w, { type: "run-ended", outcome }, now, io);
  feedWebSeeds(sw, now, io); // the next run at once, not at the next tick: a seed idles between runs otherwise
}

/** Gives back the blocks of a run still outstanding; returns their bytes. */
function releaseRun(sw: Swarm, w: WebSeed, r: { readonly first: number; readonly last: number }): number {
  let bytes = 0;
  for (const o of [...w.queue.outstanding.values()]) {
    if (o.index < r.first || o.index > r.last) continue;
    dropRequest(w.queue, o.index, o.begin);
    releaseBlock(sw.picker, o.index, o.begin);
    bytes += o.length;
  }
  return bytes;
}

/** The payload bytes of a run of pieces (after the bytes of its first piece it skipped). */
function runBytes(sw: Swarm, r: { readonly first: number; readonly last: number; readonly skip?: number }): number {
  const m = sw.meta;
  return Math.min(m.totalLength, (r.last + 1) * m.pieceLength) - r.first * m.pieceLength - (r.skip ?? 0);
}

/** Stops the seed's runs that hold a piece it may no longer serve (a file found missing or banned). */
function abortUnserved(sw: Swarm, w: WebSeed, io: SwarmIO): void {
  for (const [id, r] of w.runs) {
    for (let i = r.first; i <= r.last; i++) {
      if (servesPiece(w.state, i)) continue;
      releaseRun(sw, w, r); // its blocks go back at once; the run's end, when it comes, finds none
      io.abortRun(w.id, id);
      break;
    }
  }
}

/**
 * A web seed with nothing to claim takes over the run of a seed at least {@linkcode STEAL_RATIO} times slower: the
 * slow run's blocks go back to the picker (and the run is stopped), so a slow mirror cannot hold the last pieces.
 */
function stealFromSlow(sw: Swarm, thief: WebSeed, now: number, io: SwarmIO): boolean {
  const fast = rateOf(thief.queue.rate, now);
  if (fast <= 0) return false;
  for (const w of sw.webSeeds.values()) {
    if (w === thief || w.runs.size === 0 || rateOf(w.queue.rate, now) * STEAL_RATIO > fast) continue;
    for (const [id, r] of w.runs) {
      if (![...range(r)].every((i) => servesPiece(thief.state, i))) continue;
      releaseRun(sw, w, r);
      io.abortRun(w.id, id);
      return true;
    }
  }
  return false;
}

function* range(r: { readonly first: number; readonly last: number }): Iterable<number> {
  for (let i = r.first; i <= r.last; i++) yield i;
}

export function webSeedStep(sw: Swarm, w: WebSeed, ev: SeedEvent, now: number, io: SwarmIO): void {
  const [next, actions] = stepSeed(w.state, ev, now);
  w.state = next;
  for (const a of actions) {
    switch (a.type) {
      case "wake":
        break;
      case "lost-piece":
        abortUnserved(sw, w, io);
        break;
      case "lost-file":
        abortUnserved(sw, w, io);
        io.emit({
          event: "warning",
          message: `Web seed ${w.key}: ${sw.meta.files[a.fileIndex].path.join("/")} ${
            a.fault.kind === "banned" ? "sent bad data: not asked again" : `is not there (${a.fault.reason})`
          }`,
        });
        break;
      case "dropped":
        dropWebSeed(sw, w, a.reason === "bad-data" ? "sent bad data" : "serves none of the files", now, io);
        break;
    }
  }
}

function dropWebSeed(sw: Swarm, w: WebSeed, reason: string, now: number, io: SwarmIO): void {
  if (!sw.webSeeds.delete(w.id)) return;
  // a web seed banned for bad data counts as a banned peer: a run that ends with only such sources is exit 6, bad data
  if (reason === "sent bad data") sw.pool.bans++;
  for (const run of w.runs.keys()) io.abortRun(w.id, run);
  for (const o of dropAll(w.queue)) releaseBlock(sw.picker, o.index, o.begin);
  const s = sw.shares.get(w.key);
  io.emit({
    event: "peer",
    action: reason === "sent bad data" ? "banned" : "disconnected",
    address: w.key,
    incoming: false,
    source: "webseed",
    client: "web seed",
    reason,
    downloaded: s?.downloaded ?? 0,
    uploaded: 0,
  });
  void now;
}

/** A web seed whose runs have delivered nothing for the request time-out loses them (on every tick). */
export function expireWebSeeds(sw: Swarm, now: number, io: SwarmIO): void {
  for (const w of sw.webSeeds.values()) {
    const expired = expireRequests(w.queue, now);
    if (expired.length === 0) continue;
    for (const r of expired) releaseBlock(sw.picker, r.index, r.begin);
    for (const run of w.runs.keys()) io.abortRun(w.id, run); // each reports its end as aborted: a failure
  }
}
