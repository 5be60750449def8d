/**
 * The swarm of one torrent as a state machine: its connected peers and what is said to each. The runtime
 * (`session.ts`) feeds it events — a peer connected, a message arrived, a peer's socket drained, the writer thread
 * hashed a piece, the clock ticked — with the time, and the swarm answers through a {@linkcode SwarmIO} the runtime
 * implements: messages to send, connections to close, pieces to hash and store, events to report. It opens no
 * socket, reads no clock and touches no file (a piece to upload is read through `io.readPiece`), so a whole download
 * can be driven on a virtual clock in a test.
 *
 * The choices are made by the modules it composes: {@linkcode PeerPool} (whom to dial, accept, evict or ban),
 * `peer_state.ts` (one peer's protocol state), `request_strategy.ts` (what to request), the picker, `blame.ts`,
 * `uploads.ts`, the choker and `torrent_state.ts` (counters, completion, when to stop).
 * @module
 */
import { formatAddress, type PeerAddress } from "../address.ts";
import type { Bitfield } from "../bitfield.ts";
import { BLOCK_BYTES, MAX_OUTSTANDING_REQUESTS, MAX_PEER_QUEUED_REQUESTS } from "../limits.ts";
import type { Metainfo } from "../metainfo.ts";
import { encodeExtHandshake } from "../wire/extension.ts";
import { WireError } from "../wire/frame.ts";
import type { Message } from "../wire/messages.ts";
import { decodeMetadataMessage, encodeMetadataMessage, METADATA_PIECE_BYTES, UT_METADATA } from "../wire/metadata.ts";
import { UT_PEX } from "../wire/pex.ts";
import type { Segment } from "../webseed/plan.ts";
import type { WebSeedState } from "../webseed/seed_state.ts";
import { type Blame, createBlame, pieceFailed as blameFailed, piecePassed, wantsDigests } from "./blame.ts";
import { BufferPool } from "./buffer_pool.ts";
import { type ChokerState, decideChokes, DEFAULT_UPLOAD_SLOTS, INITIAL_CHOKER } from "./choker.ts";
import type { EventFile, PeerShare, SessionEvent } from "./events.ts";
import { OUR_UT_METADATA_ID } from "./metadata_fetch.ts";
import {
  addCandidate,
  admitIncoming,
  ban,
  createPool,
  type EvictionView,
  hasRoom,
  peerClosed,
  peerConnected,
  type PeerPool,
  type PeerSource,
  pickEviction,
  readyCount,
} from "./peer_pool.ts";
import {
  createPex,
  forgetPexPeer,
  OUR_UT_PEX_ID,
  type PexPeerView,
  pexReceived,
  type PexState,
  pexTick,
} from "./pex.ts";
import { applyMessage, createPeerState, MAX_REJECTS_IN_A_ROW, type PeerState } from "./peer_state.ts";
import {
  addPeerPiece,
  addPeerPieces,
  createPicker,
  isDone,
  isInteresting,
  type Picker,
  pieceFailed,
  pieceVerified,
  releaseBlock,
  removePeerPieces,
} from "./picker.ts";
import { createBucket, createRateMeter, type RateMeter, rateOf, takeTokens, type TokenBucket } from "./rate.ts";
import { planRequests } from "./request_strategy.ts";
import {
  blockKey,
  createQueue,
  dropAll,
  dropRequest,
  expireRequests,
  type RequestQueue,
  requestsSent,
  setPeerReqq,
} from "./requests.ts";
import {
  checkLimits,
  createTorrentState,
  type LimitDecision,
  pieceVerifiedIn,
  type SeedLimits,
  type TorrentState,
} from "./torrent_state.ts";
import { cancelUpload, PieceCache, type UploadQueue } from "./uploads.ts";

import { acceptBlock, keepBlock, senderOf, share } from "./swarm_blocks.ts";
import { onRequest, serveUploads } from "./swarm_uploads.ts";
import { expireWebSeeds, feedWebSeeds, webSeedStep } from "./swarm_webseeds.ts";

export { MissingPieceError, serveUploads } from "./swarm_uploads.ts";
export { addWebSeeds, webSeedBlock, type WebSeedRunEnd, webSeedRunEnded } from "./swarm_webseeds.ts";

/** The version string peers see (BEP 10 `v`). */
export const CLIENT_NAME = "btfetch 0.1.0";
/**
 * The most memory for pieces being fetched or verified: bounds how many pieces are started at once (at least 4). A
 * download starts with {@linkcode MIN_PIECE_MEMORY_BYTES} and grows towards this while the network, not the writer
 * thread, is what holds it back ({@linkcode updatePieceCap}).
 */
export const PIECE_MEMORY_BYTES = 24 * 1024 * 1024;
/**
 * The memory for started pieces a download starts with. When the peers deliver faster than the writer thread hashes and
 * stores (near peers: a LAN, loopback), more would only queue pieces, and their fresh memory, for the writer.
 */
export const MIN_PIECE_MEMORY_BYTES = 8 * 1024 * 1024;
/** Pieces waiting for the writer thread, at most, for the started-pieces cap to grow (the writer keeps up). */
export const WRITER_KEEPS_UP = 2;

/**
 * How many pieces of `pieceLength` bytes fit in `memory` bytes of piece buffers: at least 4, at most 256.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(maxStartedPieces(1024 * 1024), 24);
 * eq(maxStartedPieces(1024 * 1024, MIN_PIECE_MEMORY_BYTES), 8);
 * eq(maxStartedPieces(16 * 1024 * 1024), 4);
 * ```
 */
export function maxStartedPieces(pieceLength: number, memory: number = PIECE_MEMORY_BYTES): number {
  return Math.max(4, Math.min(256, Math.floor(memory / pieceLength)));
}

/**
 * Grows the started-pieces cap by one piece, up to {@linkcode PIECE_MEMORY_BYTES}, when it is full while the writer
 * thread keeps up (at most {@linkcode WRITER_KEEPS_UP} pieces wait for it): then the peers' pipelines, not the disk,
 * are what the cap holds back (far peers, whose requests take long to answer). Called on each verified piece and each
 * tick; the cap never shrinks (a piece once started stays started until it is verified).
 */
export function updatePieceCap(sw: Swarm): void {
  const p = sw.picker;
  if (p.partial.size >= p.maxPartial && sw.verifying.size <= WRITER_KEEPS_UP) {
    const most = maxStartedPieces(sw.meta.pieceLength);
    if (p.maxPartial < most) {
      p.maxPartial++;
      p.version++; // room to start a piece
    }
  }
}

/** Request time-outs in a row after which a peer is dropped. */
export const MAX_TIMEOUTS = 2;
/** How often due ut_pex messages are looked for (each peer still gets at most one a minute). */
export const PEX_TICK_MS = 1_000;
/** A peer that sends no message for this long is dropped. */
export const IDLE_TIMEOUT_MS = 180_000;

/** What the swarm asks of the runtime. Calls happen during a swarm function; none may call back into the swarm. */
export interface SwarmIO {
  /** Queues a message to a peer. */
  send(peer: number, m: Message): void;
  /** Queues a `piece` message; `block` is only valid during the call. */
  sendBlock(peer: number, index: number, begin: number, block: Uint8Array): void;
  /** Bytes queued to a peer and not yet written. */
  backlog(peer: number): number;
  /** Closes a peer's connection (the swarm has already forgotten it). */
  close(peer: number): void;
  /** Hashes and stores a complete piece; the outcome comes back through {@linkcode pieceOutcome}. */
  submit(index: number, buf: Uint8Array): void;
  /**
   * A verified piece's bytes from disk, read into `into` (a pool buffer of at least the piece's length; the result is
   * a view of it), or null when they are gone.
   */
  readPiece(index: number, into: Uint8Array): Uint8Array | null;
  /** Reports an event. */
  emit(e: SessionEvent): void;
  /** Every wanted piece is verified: make the files whole and save the state. */
  completed(): void;
  /**
   * Fetches one run of a web seed's pieces (the HTTP requests in `segments`); the runtime reports its blocks through
   * {@linkcode webSeedBlock} and its end through {@linkcode webSeedRunEnded}.
   */
  fetchRun(seed: number, run: number, segments: readonly Segment[]): void;
  /** Stops a run under way (its end is still reported, as aborted). */
  abortRun(seed: number, run: number): void;
}

/** What a swarm is asked to do. */
export interface SwarmOptions {
  readonly meta: Metainfo;
  /** The pieces already verified. */
  readonly have: Bitfield;
  /** The pieces wanted. */
  readonly wanted: Bitfield;
  /** 0-based indexes into `meta.files` to fetch; all when absent. */
  readonly selected?: ReadonlySet<number>;
  readonly maxPeers?: number;
  readonly sequential?: boolean;
  /** Keep seeding after completion; absent: stop when complete. */
  readonly seed?: SeedLimits;
  readonly timeoutMs?: number;
  readonly stallTimeoutMs?: number;
  readonly maxDownloadRate?: number;
  readonly maxUploadRate?: number;
  readonly uploadSlots?: number;
  /** The largest block we serve (default 16 KiB). */
  readonly maxServedBlock?: number;
  /** Our listening port, for the extension handshake (0: none). */
  readonly port: number;
  /** Exchange peers with peers (BEP 11; default true); never for a private torrent (BEP 27). */
  readonly pex?: boolean;
  /** Web seed URLs besides the torrent's `url-list` (BEP 19). */
  readonly webSeeds?: readonly string[];
  readonly random: () => number;
  readonly now: number;
}

/** One connected peer, as the swarm sees it. */
export interface SwarmPeer {
  readonly id: number;
  readonly key: string;
  readonly address: PeerAddress;
  readonly source: PeerSource;
  readonly incoming: boolean;
  readonly client: string;
  readonly state: PeerState;
  readonly queue: RequestQueue;
  readonly uploads: UploadQueue;
  readonly upRate: RateMeter;
  readonly connectedAt: number;
  /** Its address's number for blame. */
  readonly sender: number;
  /** The port it listens on, from `p` in its extension handshake. */
  listenPort?: number;
  /** When it last sent a block we asked for or asked for one we served. */
  lastUsefulAt: number | null;
  downloaded: number;
  uploaded: number;
  /** Blocks that arrived without a request of ours (late after a cancel or choke, or pushed at us). */
  unasked: number;
  closed: boolean;
}

/** Bans the address behind a blame number: its connection, if any, is dropped; it is never dialled or let in again. */
function banSender(sw: Swarm, sender: number, reason: string, now: number, io: SwarmIO): void {
  const address = sw.senders.addresses.get(sender);
  if (!address) return;
  const key = formatAddress(address);
  for (const p of sw.peers.values()) {
    if (p.key === key) {
      dropPeer(sw, p, reason, now, io, true);
      return;
    }
  }
  // gone already (it hung up after sending bad data): ban the address all the same
  if (ban(sw.pool, address)) {
    io.emit({ event: "peer", action: "banned", address: key, incoming: false, source: "manual", reason });
  }
}

/** A web seed (BEP 19) as the swarm sees it: an HTTP source of runs of whole pieces. */
export interface WebSeed {
  readonly id: number;
  /** The seed's URL (its name in events and `done`). */
  readonly key: string;
  state: WebSeedState;
  /** The blocks of its runs in flight, so endgame and time-outs treat them like a peer's requests. */
  readonly queue: RequestQueue;
  readonly sender: number;
  /** Runs in flight, by run id. */
  readonly runs: Map<number, { readonly first: number; readonly last: number; readonly skip?: number }>;
  nextRun: number;
  /** Where its next run starts looking (it reads files in order). */
  from: number;
}

interface PieceBuffer {
  /**
   * The piece's bytes, a view of a pool buffer. Submitted, its buffer is transferred to the writer thread (this view is
   * then detached) and comes back with the outcome.
   */
  buf: Uint8Array;
  /** Who sent each block (the sender's address number, see `Swarm.senders`; 0: nobody yet), for blame. */
  readonly from: Int32Array;
}

/** The swarm's state (mutated in place by the functions here, like the picker's). */
export interface Swarm {
  readonly o: SwarmOptions;
  readonly meta: Metainfo;
  readonly pool: PeerPool;
  readonly picker: Picker;
  readonly ts: TorrentState;
  readonly blame: Blame;
  /** A number per peer address for blame (so it outlives a connection), and back; bounded, oldest forgotten. */
  readonly senders: { readonly ids: Map<string, number>; readonly addresses: Map<number, PeerAddress>; next: number };
  readonly peers: Map<number, SwarmPeer>;
  nextPeerId: number;
  /** Pieces being received. */
  readonly buffers: Map<number, PieceBuffer>;
  /** Complete pieces the writer is hashing and storing. */
  readonly verifying: Map<number, PieceBuffer>;
  readonly bufferPool: BufferPool;
  readonly cache: PieceCache;
  choker: ChokerState;
  readonly downRate: RateMeter;
  readonly upRate: RateMeter;
  readonly downBucket: TokenBucket;
  readonly upBucket: TokenBucket;
  /** Bytes moved per peer address in this run. */
  readonly shares: Map<string, { client: string; downloaded: number; uploaded: number }>;
  /** Web seeds by id (ids shared with peers' id space). */
  readonly webSeeds: Map<number, WebSeed>;
  /** Every web seed's blame number and URL, dropped ones included: web seeds are judged by their own rules. */
  readonly webSeedSenders: Map<number, string>;
  /** Peer exchange (BEP 11), or null when off (`pex: false`, or a private torrent). */
  readonly pex: PexState | null;
  /** When PEX messages were last considered. */
  lastPexAt: number;
  /** Set once the swarm has nothing more to do (complete without seeding, or stopped). */
  stopped: boolean;
}

/**
 * Makes the swarm of a torrent whose verified pieces are `o.have`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import { Bitfield } from "../bitfield.ts";
 * import { parseMetainfo } from "../metainfo.ts";
 * import { encodeBencode } from "../bencode.ts";
 * const info = new Map<string, unknown>([["length", 10], ["name", "a"], ["piece length", 16384],
 *   ["pieces", new Uint8Array(20)]]);
 * const meta = parseMetainfo(encodeBencode(new Map([["info", info]]) as never));
 * const sw = createSwarm({ meta, have: new Bitfield(1), wanted: Bitfield.full(1), port: 0, random: () => 0, now: 0 });
 * eq(sw.picker.remaining, 1);
 * ```
 */
export function createSwarm(o: SwarmOptions): Swarm {
  const m = o.meta;
  const maxPartial = maxStartedPieces(m.pieceLength, MIN_PIECE_MEMORY_BYTES);
  const pool = createPool({ maxPeers: o.maxPeers ?? 50 });
  return {
    o,
    meta: m,
    pool,
    picker: createPicker({
      pieceCount: m.pieceCount,
      pieceLength: m.pieceLength,
      totalLength: m.totalLength,
      have: o.have,
      wanted: o.wanted,
      random: o.random,
      sequential: o.sequential,
      maxPartial,
    }),
    ts: createTorrentState(m, { have: o.have, wanted: o.wanted, selected: o.selected, now: o.now }),
    blame: createBlame(),
    senders: { ids: new Map(), addresses: new Map(), next: 1 },
    peers: new Map(),
    nextPeerId: 1,
    buffers: new Map(),
    verifying: new Map(),
    bufferPool: new BufferPool(m.pieceLength, maxStartedPieces(m.pieceLength)),
    cache: new PieceCache(),
    choker: INITIAL_CHOKER,
    downRate: createRateMeter(o.now),
    upRate: createRateMeter(o.now),
    downBucket: createBucket(o.maxDownloadRate ?? 0, o.now),
    upBucket: createBucket(o.maxUploadRate ?? 0, o.now),
    shares: new Map(),
    webSeeds: new Map(),
    webSeedSenders: new Map(),
    pex: o.pex === false || m.private ? null : createPex({ self: pool.self }),
    lastPexAt: -Infinity,
    stopped: false,
  };
}

/**
 * The selected files complete when the swarm starts, empty files included (no piece will ever complete them), for
 * their `file-complete` events: each selected file gets exactly one per run.
 */
export function filesCompleteAtStart(sw: Swarm): SessionEvent[] {
  const out: SessionEvent[] = [];
  for (const f of sw.meta.files) {
    if (f.padding || (sw.o.selected && !sw.o.selected.has(f.index))) continue;
    if (f.length === 0 || sw.ts.fileRemaining[f.index] === 0) {
      out.push({ event: "file-complete", index: displayIndex(sw, f.index), path: f.path.join("/") });
    }
  }
  return out;
}

/** Whether the swarm still wants connections: downloading, or seeding after completion. */
export function wantsPeers(sw: Swarm): boolean {
  return !sw.stopped && (sw.ts.completeAt === null || sw.o.seed !== undefined);
}

/** The files as events describe them (1-based over non-padding files). */
export function eventFiles(meta: Metainfo, selected: ReadonlySet<number> | undefined): EventFile[] {
  const out: EventFile[] = [];
  let n = 0;
  for (const f of meta.files) {
    if (f.padding) continue;
    n++;
    out.push({ index: n, path: f.path.join("/"), length: f.length, selected: !selected || selected.has(f.index) });
  }
  return out;
}

/** What is known of a peer whose handshake completed. */
export interface NewPeer {
  readonly address: PeerAddress;
  readonly source: PeerSource;
  readonly incoming: boolean;
  readonly client: string;
  readonly fast: boolean;
  readonly extended: boolean;
}

/**
 * Whether an incoming peer may have a slot; when the slots are full, a peer that gave nothing is evicted first
 * (through `io.close`). Returns false to refuse it.
 */
export function admit(sw: Swarm, address: PeerAddress, now: number, io: SwarmIO): boolean {
  if (!wantsPeers(sw)) return false;
  const d = admitIncoming(sw.pool, address, now, evictionViews(sw));
  if (!d.accept) return false;
  if (d.evict !== undefined) {
    const victim = sw.peers.get(d.evict);
    if (victim) dropPeer(sw, victim, "evicted for a new peer: gave nothing", now, io);
  }
  return true;
}

/**
 * A peer's handshake completed (dialled, or incoming and admitted): it takes a slot. Returns its id (the runtime
 * then binds its connection to the id and calls {@linkcode greet}), or null when that address is connected already
 * (the runtime closes this second connection).
 */
export function addPeer(sw: Swarm, p: NewPeer, now: number, io: SwarmIO): number | null {
  if (!peerConnected(sw.pool, p.address, p.source)) return null;
  const key = formatAddress(p.address);
  const peer: SwarmPeer = {
    id: sw.nextPeerId++,
    key,
    address: p.address,
    source: p.source,
    incoming: p.incoming,
    client: p.client,
    state: createPeerState(sw.meta.pieceCount, p.fast, p.extended),
    queue: createQueue(now),
    uploads: [],
    upRate: createRateMeter(now),
    connectedAt: now,
    sender: senderOf(sw, p.address, key),
    lastUsefulAt: null,
    downloaded: 0,
    uploaded: 0,
    unasked: 0,
    closed: false,
  };
  sw.peers.set(peer.id, peer);
  io.emit({
    event: "peer",
    action: "connected",
    address: peer.key,
    incoming: peer.incoming,
    source: peer.source,
    client: peer.client,
  });
  return peer.id;
}

/**
 * Sends our opening messages to a new peer: the extension handshake (BEP 10) and the pieces we have. `opened`: the
 * peer had an opening from us already (a connection taken over from the metadata fetch, which sent `have-none` or
 * nothing), so our pieces go as `have` messages, and the extension handshake updates the earlier one.
 */
export function greet(sw: Swarm, id: number, io: SwarmIO, opened = false): void {
  const peer = sw.peers.get(id);
  if (!peer) return;
  const meta = sw.meta;
  if (peer.state.extended) {
    io.send(peer.id, {
      type: "extended",
      id: 0,
      payload: encodeExtHandshake({
        // metadata for magnet users (BEP 9) and peer exchange (BEP 11), never for private torrents
        // (after an opening from the metadata fetch, which offered ut_metadata, a private torrent turns it off: 0)
        m: new Map([
          ...(meta.private
            ? (opened ? [[UT_METADATA, 0] as const] : [])
            : [[UT_METADATA, OUR_UT_METADATA_ID] as const]),
          ...(sw.pex ? [[UT_PEX, OUR_UT_PEX_ID] as const] : []),
        ]),
        v: CLIENT_NAME,
        p: sw.o.port || undefined,
        reqq: MAX_PEER_QUEUED_REQUESTS,
        metadataSize: meta.private ? undefined : meta.infoBytes.length,
      }),
    });
  }
  const have = sw.picker.have;
  if (opened) {
    // its opening went out already (have-none, or nothing): a bitfield may not come now, a have at any time
    if (have.count > 0) {
      for (let i = 0; i < have.size; i++) if (have.has(i)) io.send(peer.id, { type: "have", index: i });
    }
    return;
  }
  if (peer.state.fast && have.count === 0) io.send(peer.id, { type: "have-none" });
  else if (peer.state.fast && have.complete) io.send(peer.id, { type: "have-all" });
  else if (have.count > 0) io.send(peer.id, { type: "bitfield", bits: have.bytes });
}

/** Drops a peer (its connection ended, or the swarm decided so); `ban` bans its address. */
export function dropPeer(sw: Swarm, peer: SwarmPeer, reason: string, now: number, io: SwarmIO, ban = false): void {
  if (peer.closed) return;
  peer.closed = true;
  sw.peers.delete(peer.id);
  io.close(peer.id);
  for (const r of dropAll(peer.queue)) releaseBlock(sw.picker, r.index, r.begin);
  if (peer.state.hasCounted) removePeerPieces(sw.picker, peer.state.has);
  peerClosed(sw.pool, peer.address, now, { ban });
  if (sw.pex) forgetPexPeer(sw.pex, peer.id);
  io.emit({
    event: "peer",
    action: ban ? "banned" : "disconnected",
    address: peer.key,
    incoming: peer.incoming,
    source: peer.source,
    client: peer.client,
    reason,
    downloaded: peer.downloaded,
    uploaded: peer.uploaded,
  });
  if (!sw.stopped && peer.state.peerInterested && !peer.state.amChoking) {
    sw.choker = { ...sw.choker, roundAt: -Infinity };
  }
}

/** Drops the peer with this id, if it is still connected. */
export function dropPeerById(sw: Swarm, id: number, reason: string, now: number, io: SwarmIO, ban = false): void {
  const p = sw.peers.get(id);
  if (p) dropPeer(sw, p, reason, now, io, ban);
}

// ---- messages ------------------------------------------------------------------------------------------------------

/**
 * A message from a peer.
 * @throws {WireError} when the peer broke the protocol (the runtime drops it).
 */
export function peerMessage(sw: Swarm, id: number, msg: Message, now: number, io: SwarmIO): void {
  const peer = sw.peers.get(id);
  if (!peer) return;
  if (msg.type === "piece") {
    // the hot path: what applyMessage does for a block (the time of the last message), without an event object
    peer.state.lastMessageAt = now;
    onBlock(sw, peer, msg.index, msg.begin, msg.block, now, io);
    return;
  }
  const s = peer.state;
  const e = applyMessage(s, msg, now);
  switch (e.kind) {
    case "none":
    case "not-interested":
      return;
    case "allowed-fast":
      if (s.peerChoking) fillRequests(sw, peer, now, io);
      return;
    case "choked":
      for (const r of dropAll(peer.queue)) {
        if (!s.allowedFast.has(r.index)) releaseBlock(sw.picker, r.index, r.begin);
        else peer.queue.outstanding.set(blockKey(r.index, r.begin), r);
      }
      return;
    case "unchoked":
      fillRequests(sw, peer, now, io);
      return;
    case "interested":
      // decide now, not on the next tick: a free slot is worth using at once (aria2c acts on a 1 s tick)
      sw.choker = { ...sw.choker, roundAt: -Infinity };
      choke(sw, now, io);
      return;
    case "have":
      addPeerPiece(sw.picker, e.index);
      s.hasCounted = true;
      if (!s.amInterested && sw.ts.wanted.has(e.index) && !sw.picker.have.has(e.index)) {
        updateInterest(sw, peer, now, io);
      }
      fillRequests(sw, peer, now, io);
      return;
    case "pieces":
      if (e.previous) removePeerPieces(sw.picker, e.previous);
      addPeerPieces(sw.picker, s.has);
      s.hasCounted = true;
      updateInterest(sw, peer, now, io);
      fillRequests(sw, peer, now, io);
      return;
    case "request":
      onRequest(sw, peer, e.index, e.begin, e.length, now, io);
      return;
    case "cancel":
      cancelUpload(peer.uploads, e.index, e.begin);
      return;
    case "rejected": {
      const r = dropRequest(peer.queue, e.index, e.begin);
      if (r) {
        releaseBlock(sw.picker, r.index, r.begin);
        s.allowedFast.delete(r.index);
      }
      if (e.tooMany) {
        dropPeer(sw, peer, `rejected ${MAX_REJECTS_IN_A_ROW} requests in a row while unchoking us`, now, io);
        return;
      }
      fillRequests(sw, peer, now, io);
      return;
    }
    case "ext-handshake":
      if (s.reqq !== undefined) setPeerReqq(peer.queue, s.reqq);
      if (e.handshake.p !== undefined) peer.listenPort = e.handshake.p;
      return;
    case "ext-message":
      if (e.id === OUR_UT_METADATA_ID) serveMetadata(sw, peer, e.payload, io);
      else if (e.id === OUR_UT_PEX_ID && sw.pex) receivePex(sw, sw.pex, peer, e.payload, now, io);
      return;
  }
}

/** A peer's ut_pex message (BEP 11): the peers it knows join the pool; a peer that floods or lies is dropped. */
function receivePex(sw: Swarm, pex: PexState, peer: SwarmPeer, payload: Uint8Array, now: number, io: SwarmIO): void {
  const v = pexReceived(pex, { peer: peer.id, address: peer.address, listenPort: peer.listenPort, payload }, now);
  if (v.kind === "drop") {
    dropPeer(sw, peer, v.reason, now, io);
    return;
  }
  for (const l of v.learnt) addCandidate(sw.pool, l.address, "pex");
}

/** Sends the ut_pex messages that are due (BEP 11: the peers connected and gone since the last one, once a minute). */
function sendPex(sw: Swarm, pex: PexState, now: number, io: SwarmIO): void {
  const views: PexPeerView[] = [];
  for (const p of sw.peers.values()) {
    views.push({
      id: p.id,
      address: p.address,
      incoming: p.incoming,
      listenPort: p.listenPort,
      utPexId: p.state.extensions.get(UT_PEX),
      seed: p.state.has.complete,
    });
  }
  for (const m of pexTick(pex, now, views)) io.send(m.peer, { type: "extended", id: m.extId, payload: m.payload });
}

/** A peer asks for a piece of the info dictionary (BEP 9): send it, or reject for private torrents. */
function serveMetadata(sw: Swarm, peer: SwarmPeer, payload: Uint8Array, io: SwarmIO): void {
  const m = decodeMetadataMessage(payload);
  const theirId = peer.state.extensions.get(UT_METADATA) ?? 0;
  if (m.type !== "request" || theirId === 0) return;
  const info = sw.meta.infoBytes;
  const start = m.piece * METADATA_PIECE_BYTES;
  const reply = sw.meta.private || start >= info.length
    ? encodeMetadataMessage({ type: "reject", piece: m.piece })
    : encodeMetadataMessage({
      type: "data",
      piece: m.piece,
      totalSize: info.length,
      data: info.subarray(start, Math.min(info.length, start + METADATA_PIECE_BYTES)),
    });
  io.send(peer.id, { type: "extended", id: theirId, payload: reply });
}

function updateInterest(sw: Swarm, peer: SwarmPeer, now: number, io: SwarmIO): void {
  const s = peer.state;
  const want = sw.ts.completeAt === null && isInteresting(sw.picker, s.has);
  if (want !== s.amInterested) {
    s.amInterested = want;
    io.send(peer.id, { type: want ? "interested" : "not-interested" });
  }
  // two seeds have nothing to say to each other
  if (!want && s.has.complete && sw.picker.have.complete) dropPeer(sw, peer, "both seeding", now, io);
}

// ---- downloading ---------------------------------------------------------------------------------------------------

function fillRequests(sw: Swarm, peer: SwarmPeer, now: number, io: SwarmIO): void {
  if (peer.closed || sw.ts.completeAt !== null) return;
  const reqs = planRequests(
    sw.picker,
    peer,
    () => otherQueues(sw, peer),
    now,
    sw.o.maxDownloadRate ? (n) => downloadAllowance(sw, n, now) : undefined,
  );
  if (reqs.length === 0) {
    if (peer.state.amInterested && peer.queue.outstanding.size === 0 && !peer.state.peerChoking) {
      updateInterest(sw, peer, now, io);
    }
    return;
  }
  requestsSent(peer.queue, reqs, now);
  for (const r of reqs) io.send(peer.id, { type: "request", index: r.index, begin: r.begin, length: r.length });
}

/** No other queue: what {@linkcode otherQueues} gives a lone peer, without building anything. */
const NO_QUEUES: readonly RequestQueue[] = [];

function otherQueues(sw: Swarm, peer: SwarmPeer): readonly RequestQueue[] {
  if (sw.peers.size <= 1 && sw.webSeeds.size === 0) return NO_QUEUES;
  const out: RequestQueue[] = [];
  for (const p of sw.peers.values()) if (p !== peer) out.push(p.queue);
  for (const w of sw.webSeeds.values()) out.push(w.queue); // a slow web seed's blocks go to faster peers in endgame
  return out;
}

function downloadAllowance(sw: Swarm, n: number, now: number): number {
  let allowed = 0;
  while (allowed < n && takeTokens(sw.downBucket, BLOCK_BYTES, now) === 0) allowed++;
  return allowed;
}

function onBlock(
  sw: Swarm,
  peer: SwarmPeer,
  index: number,
  begin: number,
  data: Uint8Array,
  now: number,
  io: SwarmIO,
): void {
  const length = data.length;
  peer.downloaded += length;
  share(sw, peer.key, peer.client).downloaded += length;
  if (!acceptBlock(sw, peer.queue, index, begin, data, now)) {
    // not asked for (pushed at us, or late after a cancel or a choke): never let it near a piece in progress
    if (++peer.unasked > MAX_OUTSTANDING_REQUESTS) {
      throw new WireError("bad-payload", 0, `more than ${MAX_OUTSTANDING_REQUESTS} blocks we did not ask for`);
    }
    return;
  }
  peer.state.rejectsInARow = 0;
  peer.lastUsefulAt = now;
  keepBlock(sw, peer.queue, peer.sender, index, begin, data, io);
  fillRequests(sw, peer, now, io);
}

/** Bytes moved with each peer address in this run. */
export function peerShares(sw: Swarm): PeerShare[] {
  return [...sw.shares].map(([address, s]) => ({ address, ...s }));
}

/** Whether the outcome of piece `index` should come with block digests (for blame). */
export function wantsBlockDigests(sw: Swarm, index: number): boolean {
  return wantsDigests(sw.blame, index);
}

/**
 * The writer hashed piece `index`: `ok` means it matched and is stored. `digests` (20 bytes per 16 KiB block) are
 * needed for failed pieces, and for passing ones when {@linkcode wantsBlockDigests} said so; without them a failed
 * piece still counts a strike against a lone sender. `data` is the piece's bytes handed back by the writer (the
 * submitted view, whose buffer went to the writer thread and back).
 */
export function pieceOutcome(
  sw: Swarm,
  index: number,
  ok: boolean,
  digests: Uint8Array | undefined,
  data: Uint8Array,
  now: number,
  io: SwarmIO,
): void {
  const pb = sw.verifying.get(index);
  if (!pb) return;
  sw.verifying.delete(index);
  pb.buf = data;
  const cap = sw.picker.maxPartial;
  updatePieceCap(sw);
  // this piece still counts as started; a cap that grew lets the peers it held back ask for more too
  const atCap = sw.picker.partial.size >= cap || sw.picker.maxPartial > cap;
  if (!ok) {
    onHashFail(sw, index, pb, digests, now, io);
    sw.bufferPool.give(pb.buf);
    if (atCap) requestFromAll(sw, now, io);
    return;
  }
  pieceVerified(sw.picker, index);
  const done = pieceVerifiedIn(sw.ts, index, now);
  for (const sender of piecePassed(sw.blame, index, digests)) {
    if (!sw.webSeedSenders.has(sender)) banSender(sw, sender, "sent a block that failed its hash", now, io);
  }
  // cancel endgame duplicates and tell everyone
  for (const p of sw.peers.values()) {
    for (let b = 0; b < pb.from.length; b++) {
      const r = dropRequest(p.queue, index, b * BLOCK_BYTES);
      if (r) io.send(p.id, { type: "cancel", index, begin: r.begin, length: r.length });
    }
    io.send(p.id, { type: "have", index });
  }
  // keep the piece in the upload cache while some peer may want it; else reuse its buffer
  let wanted = false;
  for (const p of sw.peers.values()) if (p.state.peerInterested && !p.state.has.has(index)) wanted = true;
  if (wanted) { for (const old of sw.cache.put(index, pb.buf)) sw.bufferPool.give(old); }
  else sw.bufferPool.give(pb.buf);
  for (const f of done) {
    io.emit({ event: "file-complete", index: displayIndex(sw, f), path: sw.meta.files[f].path.join("/") });
  }
  if (isDone(sw.picker)) complete(sw, now, io);
  else {
    if (sw.webSeeds.size > 0) feedWebSeeds(sw, now, io); // a verified piece frees room for a web seed's next run
    if (atCap) requestFromAll(sw, now, io);
  }
}

/**
 * A piece left the started set while it was full: peers the cap held back ask for new pieces now, not at the next
 * tick (while the writer thread is behind, every pipeline may have drained). Only then: outside that case the usual
 * top-ups suffice, and in endgame a round of top-ups would hand slow peers duplicates that faster ones should get.
 */
function requestFromAll(sw: Swarm, now: number, io: SwarmIO): void {
  if (sw.stopped || sw.picker.remaining === 0) return;
  for (const p of sw.peers.values()) fillRequests(sw, p, now, io);
}

function displayIndex(sw: Swarm, fileIndex: number): number {
  let n = 0;
  for (const f of sw.meta.files) {
    if (!f.padding) n++;
    if (f.index === fileIndex) return n;
  }
  return n;
}

function onHashFail(
  sw: Swarm,
  index: number,
  pb: PieceBuffer,
  digests: Uint8Array | undefined,
  now: number,
  io: SwarmIO,
): void {
  sw.ts.hashFailures++;
  sw.ts.wasted += pb.buf.length;
  pieceFailed(sw.picker, index);
  const names: string[] = [];
  for (const sender of new Set(pb.from)) {
    const url = sw.webSeedSenders.get(sender);
    const a = sw.senders.addresses.get(sender);
    if (url !== undefined) names.push(url);
    else if (a) names.push(formatAddress(a));
  }
  io.emit({ event: "piece-failed", piece: index, peers: names });
  // a web seed that supplied bytes of the piece is judged by its own rules (the file is banned, or the seed). Blame
  // still sees it as a sender, so a peer that shared the piece with it is no lone sender taking the strike: its blocks
  // are compared when the piece passes (smart ban), and only the peers among blame's verdicts are banned here.
  for (const w of [...sw.webSeeds.values()]) {
    if (pb.from.includes(w.sender)) webSeedStep(sw, w, { type: "bad-piece", piece: index }, now, io);
  }
  for (const sender of blameFailed(sw.blame, index, pb.from, digests ?? new Uint8Array(pb.from.length * 20))) {
    if (!sw.webSeedSenders.has(sender)) banSender(sw, sender, "sent pieces that failed their hash", now, io);
  }
}

/** Every wanted piece is verified (or was at the start): tell the runtime, peers and events. */
export function complete(sw: Swarm, now: number, io: SwarmIO): void {
  const ts = sw.ts;
  if (ts.completeAt !== null) return;
  ts.completeAt = now;
  io.completed();
  io.emit({ event: "complete", verified: ts.verifiedBytes, elapsed_ms: Math.round(now) });
  for (const p of [...sw.peers.values()]) {
    for (const r of dropAll(p.queue)) {
      io.send(p.id, { type: "cancel", index: r.index, begin: r.begin, length: r.length });
    }
    updateInterest(sw, p, now, io);
  }
  for (const w of sw.webSeeds.values()) for (const run of w.runs.keys()) io.abortRun(w.id, run);
  const seed = sw.o.seed;
  if (seed === undefined) {
    sw.stopped = true;
    return;
  }
  ts.seedStartedAt = now;
  const until = seed.ratio === undefined && seed.timeMs === undefined ? null : {
    ratio: seed.ratio ?? null,
    time_s: seed.timeMs === undefined ? null : Math.round(seed.timeMs / 1000),
  };
  io.emit({ event: "seeding", until });
}

// ---- time ----------------------------------------------------------------------------------------------------------

/**
 * The clock ticked: request time-outs, idle peers, topping up requests and uploads, the choker, eviction for waiting
 * candidates. Returns what the torrent's limits say (go on, stop, or fail); `onPeerFault` receives a peer whose
 * handling threw, so one peer's fault never stops the tick for the others.
 */
export function tick(
  sw: Swarm,
  now: number,
  io: SwarmIO,
  onPeerFault: (peer: SwarmPeer, e: unknown) => void,
): LimitDecision {
  updatePieceCap(sw);
  for (const p of [...sw.peers.values()]) {
    if (p.closed) continue;
    try {
      const expired = expireRequests(p.queue, now);
      if (expired.length > 0) {
        for (const r of expired) releaseBlock(sw.picker, r.index, r.begin);
        // a peer that never sent a block we asked for goes at its first time-out (bytes pushed at us do not count)
        if (p.queue.timeouts >= MAX_TIMEOUTS || p.queue.rate.total === 0) {
          dropPeer(sw, p, "requests timed out", now, io);
          continue;
        }
      }
      if (now - (p.state.lastMessageAt ?? p.connectedAt) > IDLE_TIMEOUT_MS) {
        dropPeer(sw, p, "idle", now, io);
        continue;
      }
      fillRequests(sw, p, now, io);
      if (p.uploads.length > 0) serveUploads(sw, p.id, now, io);
    } catch (e) {
      onPeerFault(p, e);
    }
  }
  expireWebSeeds(sw, now, io);
  feedWebSeeds(sw, now, io);
  choke(sw, now, io);
  evictForWaiting(sw, now, io);
  if (sw.pex && now - sw.lastPexAt >= PEX_TICK_MS) {
    sw.lastPexAt = now;
    sendPex(sw, sw.pex, now, io);
  }
  if (sw.stopped) return { kind: "stop" };
  return checkLimits(sw.ts, now, sw.o);
}

/** When every slot is taken and candidates wait, one peer that gives nothing makes room (at most one a tick). */
function evictForWaiting(sw: Swarm, now: number, io: SwarmIO): void {
  if (!wantsPeers(sw) || hasRoom(sw.pool) || readyCount(sw.pool, now) === 0) return;
  const id = pickEviction(evictionViews(sw), now);
  if (id !== null) dropPeerById(sw, id, "evicted: gave nothing while other peers wait", now, io);
}

function* evictionViews(sw: Swarm): Iterable<EvictionView> {
  for (const p of sw.peers.values()) {
    yield {
      id: p.id,
      key: p.key,
      connectedAt: p.connectedAt,
      lastMessageAt: p.state.lastMessageAt,
      lastUsefulAt: p.lastUsefulAt,
    };
  }
}

function choke(sw: Swarm, now: number, io: SwarmIO): void {
  const stats = [...sw.peers.values()].map((p) => ({
    id: p.id,
    interested: p.state.peerInterested,
    downloadRate: rateOf(p.queue.rate, now),
    uploadRate: rateOf(p.upRate, now),
    lastBlockAt: p.queue.lastBlockAt,
    amInterested: p.state.amInterested,
  }));
  const next = decideChokes(sw.choker, stats, {
    slots: sw.o.uploadSlots ?? DEFAULT_UPLOAD_SLOTS,
    seeding: sw.ts.completeAt !== null,
    now,
    random: sw.o.random,
  });
  if (next === sw.choker) return;
  sw.choker = next;
  for (const p of sw.peers.values()) {
    const s = p.state;
    const unchoke = next.unchoked.has(p.id);
    if (unchoke && s.amChoking) {
      s.amChoking = false;
      io.send(p.id, { type: "unchoke" });
    } else if (!unchoke && !s.amChoking) {
      s.amChoking = true;
      io.send(p.id, { type: "choke" });
      if (s.fast) {
        for (const u of p.uploads) io.send(p.id, { type: "reject", index: u.index, begin: u.begin, length: u.length });
      }
      p.uploads.length = 0;
    }
  }
}

/** Progress as the `progress` event reports it. */
export function progressEvent(sw: Swarm, now: number): SessionEvent {
  const rate = rateOf(sw.downRate, now);
  const left = sw.ts.wantedBytes - sw.ts.verifiedBytes;
  return {
    event: "progress",
    verified: sw.ts.verifiedBytes,
    total: sw.ts.wantedBytes,
    downloaded: sw.ts.downloaded,
    uploaded: sw.ts.uploaded,
    download_rate: Math.round(rate),
    upload_rate: Math.round(rateOf(sw.upRate, now)),
    peers: sw.peers.size,
    web_seeds: sw.webSeeds.size,
    eta_s: left === 0 ? 0 : rate > 1 ? Math.round(left / rate) : null,
  };
}
