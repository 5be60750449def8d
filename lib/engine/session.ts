/**
 * A torrent session: fetches the selected files from the swarm, verifies every piece, and serves pieces back while
 * it runs (and, when asked, keeps seeding afterwards). It owns the peers of one torrent, its piece store and its
 * tracker announcer, and one housekeeping timer; the choices (which block, whom to unchoke, when a request is late)
 * are made by the pure modules `picker.ts`, `requests.ts` and `choker.ts`.
 * @module
 */
import { createHash } from "node:crypto";
import { formatAddress, type PeerAddress } from "../address.ts";
import { Bitfield, BitfieldError } from "../bitfield.ts";
import { equalBytes } from "../bytes.ts";
import { BLOCK_BYTES, MAX_BLOCK_BYTES, MAX_OUTSTANDING_REQUESTS, MAX_PEER_QUEUED_REQUESTS } from "../limits.ts";
import type { Metainfo } from "../metainfo.ts";
import { PieceStore, StorageError } from "../storage/disk.ts";
import { PieceWriter } from "../storage/piece_writer.ts";
import { piecesForFiles } from "../storage/layout.ts";
import { loadOrVerify, saveResume } from "../storage/resume.ts";
import { Announcer } from "../tracker/announcer.ts";
import { encodeExtHandshake } from "../wire/extension.ts";
import { WireError } from "../wire/frame.ts";
import { encodeHandshake, type Handshake, reservedBits, supportsExtended, supportsFast } from "../wire/handshake.ts";
import type { Message } from "../wire/messages.ts";
import { decodeMetadataMessage, encodeMetadataMessage, METADATA_PIECE_BYTES, UT_METADATA } from "../wire/metadata.ts";
import { OUR_UT_METADATA_ID } from "./metadata_fetch.ts";
import {
  type Blame,
  createBlame,
  DIGEST_BYTES,
  forgetPeer,
  pieceFailed as blamePieceFailed,
  piecePassed,
  wantsDigests,
} from "./blame.ts";
import { BufferPool } from "./buffer_pool.ts";
import { type ChokerState, decideChokes, DEFAULT_UPLOAD_SLOTS, INITIAL_CHOKER } from "./choker.ts";
import { FetchError } from "./errors.ts";
import type { EventFile, PeerShare, SessionEvent, TimedEvent } from "./events.ts";
import { Listener } from "./listener.ts";
import { ConnectError, connectTcp, type HandshakeExchange, PeerConn, readHandshake } from "./peer_conn.ts";
import {
  addCandidate,
  addSelf,
  admitIncoming,
  ban,
  type Candidate,
  createPool,
  dialFailed,
  type EvictionView,
  hasRoom,
  peerClosed,
  peerConnected,
  type PeerPool,
  type PeerSource,
  pickEviction,
  readyCount,
  takeDials,
} from "./peer_pool.ts";
import { applyMessage, createPeerState, MAX_REJECTS_IN_A_ROW, type PeerState } from "./peer_state.ts";
import {
  addPeerPiece,
  addPeerPieces,
  createPicker,
  isDone,
  isInteresting,
  type Picker,
  pieceComplete,
  pieceFailed,
  pieceLength,
  pieceVerified,
  receiveBlock,
  releaseBlock,
  removePeerPieces,
  requestsOut,
} from "./picker.ts";
import {
  addBytes,
  createBucket,
  createRateMeter,
  type RateMeter,
  rateOf,
  takeTokens,
  type TokenBucket,
} from "./rate.ts";
import { planRequests } from "./request_strategy.ts";
import {
  blockArrived,
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
  bytesLeft,
  checkLimits,
  createTorrentState,
  pieceVerifiedIn,
  type SeedLimits,
  type TorrentState,
} from "./torrent_state.ts";
import { cancelUpload, nextUpload, PieceCache, queueUpload, type UploadQueue } from "./uploads.ts";

/** The version string peers see (BEP 10 `v`) and the peer-id prefix (BEP 20, Azureus style). */
export const CLIENT_NAME = "btfetch 0.1.0";
const PEER_ID_PREFIX = "-bF0100-";

/** The housekeeping tick: time-outs, new connections, rate limits, progress. */
const TICK_MS = 100;
/** How long a TCP connect may take. */
const CONNECT_TIMEOUT_MS = 5_000;
/** How long the peer's handshake may take once connected. */
const HANDSHAKE_TIMEOUT_MS = 5_000;
/** A peer that sends nothing for this long is dropped. */
const IDLE_TIMEOUT_MS = 180_000;
/** We send a keep-alive after this long without writing. */
const KEEPALIVE_MS = 90_000;
/** Request time-outs in a row after which a peer is dropped. */
const MAX_TIMEOUTS = 2;
/** Memory for pieces being fetched or verified: bounds how many pieces are started at once (at least 4). */
const PIECE_MEMORY_BYTES = 24 * 1024 * 1024;
/** How often progress events are emitted. */
const PROGRESS_MS = 1_000;
/** How often the resume record is saved while downloading. */
const RESUME_SAVE_MS = 30_000;
/** Ask trackers for more peers when fewer than this many are connected. */
const LOW_PEERS = 5;

/** When to stop seeding after the download completes. */
export type SeedOptions = SeedLimits;

/** What a session is asked to do. */
export interface SessionOptions {
  readonly meta: Metainfo;
  /** Files land at `outDir/<name>`. */
  readonly outDir: string;
  /** 0-based indexes into `meta.files` to fetch; all when absent. */
  readonly selected?: ReadonlySet<number>;
  /** Peers to connect to besides those the trackers give. */
  readonly peers?: readonly PeerAddress[];
  /** Extra tracker URLs, tried after the torrent's own tiers. */
  readonly trackers?: readonly string[];
  /** Announce to the torrent's own trackers (default true). */
  readonly useTorrentTrackers?: boolean;
  /** Connected peers at most (default 50). */
  readonly maxPeers?: number;
  /** A port to listen on (0: any free port; default tries 6881–6889, then any). `null` disables listening. */
  readonly port?: number | null;
  /** An already open listener to share (several sessions in one process). */
  readonly listener?: Listener;
  /** Give up after this long (ms). */
  readonly timeoutMs?: number;
  /** Give up when no piece verified for this long (ms); default 5 minutes. */
  readonly stallTimeoutMs?: number;
  /** Hash the data on disk even if a resume record says it is good. */
  readonly check?: boolean;
  /** Fetch pieces in order instead of rarest first. */
  readonly sequential?: boolean;
  /** Keep seeding after completion; absent: stop when complete. `{}` seeds until the signal aborts. */
  readonly seed?: SeedOptions;
  /** Bytes per second (0 or absent: unlimited). */
  readonly maxDownloadRate?: number;
  readonly maxUploadRate?: number;
  /** Our 20-byte peer id (random by default). */
  readonly peerId?: Uint8Array;
  /** Receives every event. */
  readonly onEvent?: (e: TimedEvent) => void;
  /** Aborting ends the session cleanly (state saved, `stopped` announced). */
  readonly signal?: AbortSignal;
  /** Randomness (default Math.random). */
  readonly random?: () => number;
  /** Upload slots (default 4). */
  readonly uploadSlots?: number;
  /** Refuse to start unless the data on disk is already complete (`seed`): FetchError `incomplete`. */
  readonly requireComplete?: boolean;
  /**
   * The largest block we serve (default {@linkcode BLOCK_BYTES}, 16 KiB): larger requests up to
   * {@linkcode MAX_BLOCK_BYTES} are rejected, beyond it the peer is dropped.
   */
  readonly maxServedBlock?: number;
}

/** How a session ended. */
export interface SessionResult {
  readonly complete: boolean;
  readonly downloaded: number;
  readonly uploaded: number;
  readonly wasted: number;
  readonly verified: number;
  readonly elapsedMs: number;
  readonly peers: readonly PeerShare[];
}

interface Peer {
  readonly id: number;
  readonly key: string;
  readonly address: PeerAddress;
  readonly source: PeerSource;
  readonly conn: PeerConn;
  readonly incoming: boolean;
  readonly client: string;
  readonly state: PeerState;
  readonly queue: RequestQueue;
  readonly uploads: UploadQueue;
  readonly upRate: RateMeter;
  readonly connectedAt: number;
  /** When it last sent a block we asked for or asked for one we served. */
  lastUsefulAt: number | null;
  downloaded: number;
  uploaded: number;
  /** Blocks that arrived without a request of ours (late after a cancel or choke, or pushed at us). */
  unasked: number;
  closed: boolean;
}

interface PieceBuffer {
  /** A view of a SharedArrayBuffer, so the writer thread reads it in place. */
  readonly buf: Uint8Array;
  /** Who sent each block (peer id; 0: nobody yet), for blame when the hash fails. */
  readonly from: Int32Array;
}

/** Makes a random BEP 20 peer id. */
export function makePeerId(random: () => number = Math.random): Uint8Array {
  const id = new TextEncoder().encode(PEER_ID_PREFIX + "000000000000");
  const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (let i = PEER_ID_PREFIX.length; i < 20; i++) id[i] = alphabet.charCodeAt(Math.floor(random() * alphabet.length));
  return id;
}

/** A readable name for a peer id: the Azureus-style client code, else printable bytes. */
export function clientName(peerId: Uint8Array): string {
  const text = Array.from(peerId, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
  const m = /^-([A-Za-z~]{2})([0-9A-Za-z]{4})-/.exec(text);
  return m ? `${m[1]} ${m[2]}` : text.slice(0, 8);
}

/**
 * Runs a torrent until its selected files are complete (and seeding, if asked, is over), the signal aborts, or a
 * limit runs out.
 * @throws {FetchError} when the swarm cannot deliver within the limits; `StorageError` on disk failures.
 */
export async function runSession(opts: SessionOptions): Promise<SessionResult> {
  const s = new Session(opts);
  return await s.run();
}

class Session {
  readonly o: SessionOptions;
  readonly meta: Metainfo;
  readonly random: () => number;
  readonly peerId: Uint8Array;
  readonly t0 = performance.now();
  readonly store: PieceStore;
  readonly pool: PeerPool;
  readonly blame: Blame = createBlame();
  picker!: Picker;
  ts!: TorrentState;
  readonly peers = new Map<number, Peer>();
  nextPeerId = 1;
  /** Pieces being received. */
  readonly buffers = new Map<number, PieceBuffer>();
  /** Complete pieces the writer thread is hashing and storing. */
  readonly verifying = new Map<number, PieceBuffer>();
  readonly writer: PieceWriter;
  buffersPool!: BufferPool;
  readonly cache = new PieceCache();
  listener: Listener | null = null;
  ownListener = false;
  port = 0;
  announcer: Announcer | null = null;
  choker: ChokerState = INITIAL_CHOKER;
  readonly downRate: RateMeter;
  readonly upRate: RateMeter;
  readonly downBucket: TokenBucket;
  readonly upBucket: TokenBucket;
  lastProgressEventAt = 0;
  lastResumeSaveAt: number;
  readonly shares = new Map<string, { client: string; downloaded: number; uploaded: number }>();
  tickTimer: ReturnType<typeof setInterval> | undefined;
  finish: (r: { error?: unknown }) => void = () => {};
  finished = false;

  constructor(o: SessionOptions) {
    this.o = o;
    this.meta = o.meta;
    this.random = o.random ?? Math.random;
    this.peerId = o.peerId ?? makePeerId(this.random);
    this.pool = createPool({ maxPeers: o.maxPeers ?? 50 });
    this.store = PieceStore.open(o.meta, o.outDir, o.selected ? { selected: o.selected } : {});
    this.writer = new PieceWriter(
      this.store,
      (index, ok) => this.safely(() => this.onPieceOutcome(index, ok)),
      (e) => this.finish({ error: e }),
    );
    const now = this.now();
    this.downRate = createRateMeter(now);
    this.upRate = createRateMeter(now);
    this.downBucket = createBucket(o.maxDownloadRate ?? 0, now);
    this.upBucket = createBucket(o.maxUploadRate ?? 0, now);
    this.lastResumeSaveAt = now;
  }

  now(): number {
    return performance.now() - this.t0;
  }

  emit(e: SessionEvent): void {
    this.o.onEvent?.({ ...e, t: Math.round(this.now()) } as TimedEvent);
  }

  /** Reports a bug that ended one connection, not the session. */
  reportBug(where: string, e: unknown, peer?: string): void {
    this.emit({
      event: "internal-error",
      where,
      peer,
      message: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
      stack: e instanceof Error ? e.stack : undefined,
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------------

  async run(): Promise<SessionResult> {
    const m = this.meta;
    const selected = this.o.selected;
    const wanted = selected ? piecesForFiles(m, selected) : Bitfield.full(m.pieceCount);
    this.emit({
      event: "metadata",
      name: m.name,
      info_hash: m.infoHashHex,
      size: m.totalLength,
      piece_length: m.pieceLength,
      pieces: m.pieceCount,
      private: m.private,
      files: this.eventFiles(),
    });
    let error: unknown = null;
    try {
      let lastCheckEvent = 0;
      const { have, source } = await loadOrVerify(this.store, m, {
        check: this.o.check,
        signal: this.o.signal,
        onProgress: (checked, total) => {
          const t = this.now();
          if (t - lastCheckEvent >= PROGRESS_MS || checked === total) {
            lastCheckEvent = t;
            this.emit({ event: "checking", checked, total });
          }
        },
      });
      const maxPartial = Math.max(4, Math.min(256, Math.floor(PIECE_MEMORY_BYTES / m.pieceLength)));
      this.picker = createPicker({
        pieceCount: m.pieceCount,
        pieceLength: m.pieceLength,
        totalLength: m.totalLength,
        have,
        wanted,
        random: this.random,
        sequential: this.o.sequential,
        maxPartial,
      });
      this.buffersPool = new BufferPool(m.pieceLength, maxPartial);
      this.ts = createTorrentState(m, { have, wanted, selected, now: this.now() });
      this.emit({
        event: "resume",
        source,
        verified: this.ts.verifiedBytes,
        pieces: have.count,
        missing: this.picker.remaining,
      });
      if (this.o.signal?.aborted) throw this.o.signal.reason;
      if (this.o.requireComplete && !isDone(this.picker)) {
        throw new FetchError(
          "incomplete",
          `${this.picker.remaining} of ${wanted.count} pieces are missing or damaged in ${this.store.outDir}`,
        );
      }
      await this.runSwarm();
    } catch (e) {
      error = e;
    }
    try {
      await this.shutdown();
    } catch (e) {
      error ??= e; // what ended the session is the error to report; a failure while saving comes second
    }
    const result = this.result();
    if (error !== null) throw error;
    return result;
  }

  /** Runs the swarm part until done; resolves or rejects through `finish`. */
  runSwarm(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.finish = (r) => {
        if (this.finished) return;
        this.finished = true;
        if (r.error !== undefined) reject(r.error);
        else resolve();
      };
      const onAbort = () => this.finish({ error: this.o.signal?.reason });
      this.o.signal?.addEventListener("abort", onAbort, { once: true });
      if (isDone(this.picker)) this.onComplete();
      if (this.finished) return;
      this.startNetwork();
      this.tickTimer = setInterval(() => this.safely(() => this.tick()), TICK_MS);
    });
  }

  /**
   * Runs a handler for `peer`. A fault of the peer (bad message, lost connection) drops that peer; a disk failure
   * ends the session (exit 5); anything else is a bug: reported, and only that peer is dropped.
   */
  forPeer(peer: Peer, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (isPeerFault(e)) this.dropPeer(peer, e instanceof Error ? e.message : String(e));
      else if (e instanceof StorageError) this.finish({ error: e });
      else {
        this.reportBug("peer message handler", e, peer.key);
        this.dropPeer(peer, "internal error");
      }
    }
  }

  safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.finish({ error: e });
    }
  }

  startNetwork(): void {
    const m = this.meta;
    if (this.o.listener) {
      this.listener = this.o.listener;
    } else if (this.o.port !== null) {
      this.listener = openListener(this.o.port);
      this.ownListener = true;
    }
    if (this.listener) {
      this.port = this.listener.port;
      for (const host of ["127.0.0.1", "::1", "localhost"]) addSelf(this.pool, { host, port: this.port });
      this.listener.register(m.infoHashHex, (conn, theirs, leftover, from) => {
        try {
          return this.acceptIncoming(conn, theirs, leftover, from);
        } catch (e) {
          this.reportBug("accepting a peer", e, formatAddress(from));
          return false;
        }
      });
      this.emit({ event: "listening", port: this.port });
    }
    for (const a of this.o.peers ?? []) addCandidate(this.pool, a, "manual");
    const tiers: string[][] = this.o.useTorrentTrackers === false ? [] : m.announce.map((t) => [...t]);
    for (const url of this.o.trackers ?? []) tiers.push([url]);
    if (tiers.length > 0) {
      this.announcer = new Announcer({
        tiers,
        infoHash: m.infoHash,
        peerId: this.peerId,
        port: this.port || 6881,
        random: this.random,
        stats: () => ({ uploaded: this.ts.uploaded, downloaded: this.ts.downloaded, left: bytesLeft(this.ts) }),
        onPeers: (peers, url) => {
          this.emit({ event: "tracker", url, peers: peers.length });
          for (const p of peers) addCandidate(this.pool, p, "tracker");
          this.connectMore();
        },
        onError: (url, err) => this.emit({ event: "tracker", url, error: err.message }),
        onWarning: (url, message) => this.emit({ event: "tracker", url, warning: message }),
      });
      this.announcer.start();
    }
    this.connectMore();
  }

  async shutdown(): Promise<void> {
    clearInterval(this.tickTimer);
    if (this.listener) {
      this.listener.unregister(this.meta.infoHashHex);
      if (this.ownListener) await this.listener.close();
    }
    for (const p of [...this.peers.values()]) this.dropPeer(p, "shutting down");
    const stopping = this.announcer?.stop(3000);
    await this.writer.drain(10_000); // pieces already received are verified and stored before the state is saved
    this.writer.close();
    try {
      if (this.picker && this.picker.have.count > 0) saveResume(this.store, this.meta, this.picker.have);
    } finally {
      this.store.close();
      await stopping;
    }
  }

  result(): SessionResult {
    const peers: PeerShare[] = [...this.shares].map(([address, s]) => ({ address, ...s }));
    const ts = this.ts as TorrentState | undefined;
    const r: SessionResult = {
      complete: this.picker !== undefined && isDone(this.picker),
      downloaded: ts?.downloaded ?? 0,
      uploaded: ts?.uploaded ?? 0,
      wasted: ts?.wasted ?? 0,
      verified: ts?.verifiedBytes ?? 0,
      elapsedMs: Math.round(this.now()),
      peers,
    };
    this.emit({
      event: "done",
      complete: r.complete,
      downloaded: r.downloaded,
      uploaded: r.uploaded,
      wasted: r.wasted,
      verified: r.verified,
      elapsed_ms: r.elapsedMs,
      peers,
    });
    return r;
  }

  eventFiles(): EventFile[] {
    const out: EventFile[] = [];
    let n = 0;
    for (const f of this.meta.files) {
      if (f.padding) continue;
      n++;
      out.push({
        index: n,
        path: f.path.join("/"),
        length: f.length,
        selected: !this.o.selected || this.o.selected.has(f.index),
      });
    }
    return out;
  }

  // ---- peers: connecting, accepting, dropping --------------------------------------------------------------------

  /** Whether the session still wants connections: downloading, or seeding after completion. */
  wantsPeers(): boolean {
    return !this.finished && (this.ts.completeAt === null || this.o.seed !== undefined);
  }

  connectMore(): void {
    if (!this.wantsPeers()) return;
    // seeds dial out too: a peer that will not accept our connections (Transmission on loopback) is reached that way
    for (const c of takeDials(this.pool, this.now())) {
      this.dial(c).catch((e) => this.reportBug("dialling", e, c.key));
    }
  }

  /** Dials one candidate; every outcome is reported to the pool exactly once. */
  async dial(c: Candidate): Promise<void> {
    const ours: Handshake = {
      reserved: reservedBits({ fast: true, extended: true }),
      infoHash: this.meta.infoHash,
      peerId: this.peerId,
    };
    let conn: Deno.TcpConn | null = null;
    let exchange: HandshakeExchange;
    try {
      conn = await connectTcp(c.address, CONNECT_TIMEOUT_MS);
      exchange = await readHandshake(conn, HANDSHAKE_TIMEOUT_MS, ours);
    } catch (e) {
      closeQuietly(conn);
      dialFailed(this.pool, c.key, this.now());
      if (!isPeerFault(e)) this.reportBug("dialling", e, c.key);
      return;
    }
    const { theirs, leftover } = exchange;
    if (this.finished || !equalBytes(theirs.infoHash, this.meta.infoHash)) {
      closeQuietly(conn);
      dialFailed(this.pool, c.key, this.now());
      return;
    }
    if (equalBytes(theirs.peerId, this.peerId)) {
      closeQuietly(conn);
      dialFailed(this.pool, c.key, this.now());
      ban(this.pool, c.address); // ourselves, listed by a tracker
      return;
    }
    peerConnected(this.pool, c.address, c.source);
    this.startPeer(conn, c.address, c.source, theirs, leftover);
  }

  acceptIncoming(conn: Deno.TcpConn, theirs: Handshake, leftover: Uint8Array, from: PeerAddress): boolean {
    if (this.finished || !this.wantsPeers() || equalBytes(theirs.peerId, this.peerId)) return false;
    const now = this.now();
    const d = admitIncoming(this.pool, from, now, this.evictionViews());
    if (!d.accept) return false;
    if (d.evict !== undefined) {
      const victim = this.peers.get(d.evict);
      if (victim) this.dropPeer(victim, "evicted for a new peer: gave nothing");
    }
    peerConnected(this.pool, from, "incoming");
    const ours: Handshake = {
      reserved: reservedBits({ fast: true, extended: true }),
      infoHash: this.meta.infoHash,
      peerId: this.peerId,
    };
    this.startPeer(conn, from, "incoming", theirs, leftover, ours);
    return true;
  }

  *evictionViews(): Iterable<EvictionView> {
    for (const p of this.peers.values()) {
      yield {
        id: p.id,
        key: p.key,
        connectedAt: p.connectedAt,
        lastMessageAt: p.state.lastMessageAt,
        lastUsefulAt: p.lastUsefulAt,
      };
    }
  }

  /** Starts a peer whose slot the pool has counted; on any failure here the slot is given back. */
  startPeer(
    conn: Deno.TcpConn,
    address: PeerAddress,
    source: PeerSource,
    theirs: Handshake,
    leftover: Uint8Array,
    /** Our handshake, still to send (incoming connections); undefined when it went out before theirs came in. */
    ours?: Handshake,
  ): void {
    const now = this.now();
    const peer: Peer = {
      id: this.nextPeerId++,
      key: formatAddress(address),
      address,
      source,
      conn: new PeerConn(conn, address),
      incoming: ours !== undefined,
      client: clientName(theirs.peerId),
      state: createPeerState(this.meta.pieceCount, supportsFast(theirs.reserved), supportsExtended(theirs.reserved)),
      queue: createQueue(now),
      uploads: [],
      upRate: createRateMeter(now),
      connectedAt: now,
      lastUsefulAt: null,
      downloaded: 0,
      uploaded: 0,
      unasked: 0,
      closed: false,
    };
    this.peers.set(peer.id, peer);
    try {
      this.emit({
        event: "peer",
        action: "connected",
        address: peer.key,
        incoming: peer.incoming,
        source,
        client: peer.client,
      });
      // our handshake (incoming) and opening messages go out before any reply to what the peer already sent
      if (ours) peer.conn.sendRaw(encodeHandshake(ours));
      this.sendOpening(peer);
    } catch (e) {
      this.reportBug("starting a peer", e, peer.key);
      this.dropPeer(peer, "internal error");
      return;
    }
    peer.conn.run({
      onMessage: (msg) => this.forPeer(peer, () => this.onMessage(peer, msg)),
      onDrain: () => this.forPeer(peer, () => this.serveUploads(peer)),
    }, leftover).then(
      () => this.dropPeer(peer, "connection closed"),
      (e) => {
        if (!isPeerFault(e)) this.reportBug("reading from a peer", e, peer.key);
        this.dropPeer(peer, e instanceof Error ? e.message : String(e));
      },
    );
  }

  sendOpening(peer: Peer): void {
    if (peer.state.extended) {
      peer.conn.send({
        type: "extended",
        id: 0,
        payload: encodeExtHandshake({
          // metadata for magnet users (BEP 9), except for private torrents, whose metadata is not handed around
          m: new Map(this.meta.private ? [] : [[UT_METADATA, OUR_UT_METADATA_ID]]),
          v: CLIENT_NAME,
          p: this.port || undefined,
          reqq: MAX_PEER_QUEUED_REQUESTS,
          metadataSize: this.meta.private ? undefined : this.meta.infoBytes.length,
        }),
      });
    }
    const have = this.picker.have;
    if (peer.state.fast && have.count === 0) peer.conn.send({ type: "have-none" });
    else if (peer.state.fast && have.complete) peer.conn.send({ type: "have-all" });
    else if (have.count > 0) peer.conn.send({ type: "bitfield", bits: have.bytes });
  }

  dropPeer(peer: Peer, reason: string, banIt = false): void {
    if (peer.closed) return;
    peer.closed = true;
    peer.conn.close();
    this.peers.delete(peer.id);
    for (const r of dropAll(peer.queue)) releaseBlock(this.picker, r.index, r.begin);
    if (peer.state.hasCounted) removePeerPieces(this.picker, peer.state.has);
    forgetPeer(this.blame, peer.id);
    peerClosed(this.pool, peer.address, this.now(), { ban: banIt });
    this.emit({
      event: "peer",
      action: banIt ? "banned" : "disconnected",
      address: peer.key,
      incoming: peer.incoming,
      source: peer.source,
      client: peer.client,
      reason,
      downloaded: peer.downloaded,
      uploaded: peer.uploaded,
    });
    if (!this.finished && peer.state.peerInterested && !peer.state.amChoking) {
      this.choker = { ...this.choker, roundAt: -Infinity };
    }
  }

  // ---- messages ----------------------------------------------------------------------------------------------------

  onMessage(peer: Peer, msg: Message): void {
    if (peer.closed) return;
    const now = this.now();
    const s = peer.state;
    const e = applyMessage(s, msg, now);
    switch (e.kind) {
      case "none":
      case "not-interested":
      case "allowed-fast":
        if (e.kind === "allowed-fast" && s.peerChoking) this.fillRequests(peer);
        return;
      case "choked":
        for (const r of dropAll(peer.queue)) {
          if (!s.allowedFast.has(r.index)) releaseBlock(this.picker, r.index, r.begin);
          else peer.queue.outstanding.set(blockKey(r.index, r.begin), r);
        }
        return;
      case "unchoked":
        this.fillRequests(peer);
        return;
      case "interested":
        // decide now, not on the next tick: a free slot is worth using at once (aria2c acts on a 1 s tick, so a
        // late unchoke can cost it a second)
        this.choker = { ...this.choker, roundAt: -Infinity };
        this.choke(now);
        return;
      case "have":
        addPeerPiece(this.picker, e.index);
        s.hasCounted = true;
        if (!s.amInterested && this.ts.wanted.has(e.index) && !this.picker.have.has(e.index)) {
          this.updateInterest(peer);
        }
        this.fillRequests(peer);
        return;
      case "pieces":
        if (e.previous) removePeerPieces(this.picker, e.previous);
        addPeerPieces(this.picker, s.has);
        s.hasCounted = true;
        this.updateInterest(peer);
        this.fillRequests(peer);
        return;
      case "request":
        this.onRequest(peer, e.index, e.begin, e.length);
        return;
      case "cancel":
        cancelUpload(peer.uploads, e.index, e.begin);
        return;
      case "rejected": {
        const r = dropRequest(peer.queue, e.index, e.begin);
        if (r) {
          releaseBlock(this.picker, r.index, r.begin);
          s.allowedFast.delete(r.index);
        }
        if (e.tooMany) {
          this.dropPeer(peer, `rejected ${MAX_REJECTS_IN_A_ROW} requests in a row while unchoking us`);
          return;
        }
        this.fillRequests(peer);
        return;
      }
      case "ext-handshake":
        if (s.reqq !== undefined) setPeerReqq(peer.queue, s.reqq);
        return;
      case "ext-message":
        if (e.id === OUR_UT_METADATA_ID) this.onMetadataMessage(peer, e.payload);
        return;
      case "block":
        this.onBlock(peer, e.index, e.begin, e.data, now);
        return;
    }
  }

  /** A peer asks for a piece of the info dictionary (BEP 9): send it, or reject for private torrents. */
  onMetadataMessage(peer: Peer, payload: Uint8Array): void {
    const m = decodeMetadataMessage(payload);
    const theirId = peer.state.extensions.get(UT_METADATA) ?? 0;
    if (m.type !== "request" || theirId === 0) return;
    const info = this.meta.infoBytes;
    const start = m.piece * METADATA_PIECE_BYTES;
    const reply = this.meta.private || start >= info.length
      ? encodeMetadataMessage({ type: "reject", piece: m.piece })
      : encodeMetadataMessage({
        type: "data",
        piece: m.piece,
        totalSize: info.length,
        data: info.subarray(start, Math.min(info.length, start + METADATA_PIECE_BYTES)),
      });
    peer.conn.send({ type: "extended", id: theirId, payload: reply });
  }

  updateInterest(peer: Peer): void {
    const s = peer.state;
    const want = this.ts.completeAt === null && isInteresting(this.picker, s.has);
    if (want !== s.amInterested) {
      s.amInterested = want;
      peer.conn.send({ type: want ? "interested" : "not-interested" });
    }
    // two seeds have nothing to say to each other
    if (!want && s.has.complete && this.picker.have.complete) this.dropPeer(peer, "both seeding");
  }

  // ---- downloading -----------------------------------------------------------------------------------------------

  fillRequests(peer: Peer): void {
    if (peer.closed || this.ts.completeAt !== null) return;
    const now = this.now();
    const reqs = planRequests(
      this.picker,
      peer,
      this.otherQueues(peer),
      now,
      this.o.maxDownloadRate ? (n) => this.downloadAllowance(n, now) : undefined,
    );
    if (reqs.length === 0) {
      if (peer.state.amInterested && peer.queue.outstanding.size === 0 && !peer.state.peerChoking) {
        this.updateInterest(peer);
      }
      return;
    }
    requestsSent(peer.queue, reqs, now);
    for (const r of reqs) peer.conn.send({ type: "request", index: r.index, begin: r.begin, length: r.length });
  }

  *otherQueues(peer: Peer): Iterable<RequestQueue> {
    for (const p of this.peers.values()) if (p !== peer) yield p.queue;
  }

  downloadAllowance(n: number, now: number): number {
    let allowed = 0;
    while (allowed < n && takeTokens(this.downBucket, BLOCK_BYTES, now) === 0) allowed++;
    return allowed;
  }

  onBlock(peer: Peer, index: number, begin: number, data: Uint8Array, now: number): void {
    const length = data.length;
    const ts = this.ts;
    ts.downloaded += length;
    peer.downloaded += length;
    this.share(peer).downloaded += length;
    addBytes(this.downRate, length, now);
    if (!blockArrived(peer.queue, index, begin, length, now)) {
      // not asked for (pushed at us, or late after a cancel or a choke): never let it near a piece in progress
      ts.wasted += length;
      if (++peer.unasked > MAX_OUTSTANDING_REQUESTS) {
        throw new WireError("bad-payload", 0, `more than ${MAX_OUTSTANDING_REQUESTS} blocks we did not ask for`);
      }
      return;
    }
    peer.state.rejectsInARow = 0;
    peer.lastUsefulAt = now;
    if (receiveBlock(this.picker, index, begin, length) !== "new") {
      ts.wasted += length;
      this.fillRequests(peer);
      return;
    }
    let pb = this.buffers.get(index);
    if (!pb) {
      const len = pieceLength(this.picker, index);
      pb = { buf: this.buffersPool.take(len), from: new Int32Array(Math.ceil(len / BLOCK_BYTES)) };
      this.buffers.set(index, pb);
    }
    pb.buf.set(data, begin);
    pb.from[begin / BLOCK_BYTES] = peer.id;
    if (requestsOut(this.picker, index, begin) > 0) this.cancelDuplicates(peer, index, begin);
    if (pieceComplete(this.picker, index)) {
      // the last block is in: hash and store it on the writer thread; the outcome comes back in onPieceOutcome
      this.buffers.delete(index);
      this.verifying.set(index, pb);
      this.writer.submit(index, pb.buf, this.meta.pieceHashes.subarray(index * 20, index * 20 + 20));
    }
    this.fillRequests(peer);
  }

  /** Endgame: a block arrived that other peers were also asked for; cancel their copies. */
  cancelDuplicates(from: Peer, index: number, begin: number): void {
    for (const p of this.peers.values()) {
      if (p === from) continue;
      const r = dropRequest(p.queue, index, begin);
      if (r) {
        releaseBlock(this.picker, index, begin);
        p.conn.send({ type: "cancel", index, begin, length: r.length });
      }
    }
  }

  share(peer: Peer): { client: string; downloaded: number; uploaded: number } {
    let s = this.shares.get(peer.key);
    if (!s) {
      s = { client: peer.client, downloaded: 0, uploaded: 0 };
      this.shares.set(peer.key, s);
    }
    return s;
  }

  /** The writer thread hashed piece `index`: `ok` means it matched and is on disk. */
  onPieceOutcome(index: number, ok: boolean): void {
    const pb = this.verifying.get(index);
    if (!pb) return;
    this.verifying.delete(index);
    const now = this.now();
    if (!ok) {
      this.onHashFail(index, pb);
      this.buffersPool.give(pb.buf);
      return;
    }
    pieceVerified(this.picker, index);
    const done = pieceVerifiedIn(this.ts, index, now);
    const liars = piecePassed(this.blame, index, wantsDigests(this.blame, index) ? blockDigests(pb.buf) : undefined);
    for (const id of liars) {
      const p = this.peers.get(id);
      if (p) this.dropPeer(p, "sent a block that failed its hash", true);
    }
    // cancel endgame duplicates and tell everyone
    for (const p of this.peers.values()) {
      for (let b = 0; b < pb.from.length; b++) {
        const r = dropRequest(p.queue, index, b * BLOCK_BYTES);
        if (r) p.conn.send({ type: "cancel", index, begin: r.begin, length: r.length });
      }
      p.conn.send({ type: "have", index });
    }
    // keep the piece in the upload cache while some peer may want it; else reuse its buffer
    let wanted = false;
    for (const p of this.peers.values()) if (p.state.peerInterested && !p.state.has.has(index)) wanted = true;
    if (wanted) { for (const old of this.cache.put(index, pb.buf)) this.buffersPool.give(old); }
    else this.buffersPool.give(pb.buf);
    for (const f of done) {
      this.emit({ event: "file-complete", index: this.displayIndex(f), path: this.meta.files[f].path.join("/") });
    }
    if (isDone(this.picker)) this.onComplete();
  }

  displayIndex(fileIndex: number): number {
    let n = 0;
    for (const f of this.meta.files) {
      if (!f.padding) n++;
      if (f.index === fileIndex) return n;
    }
    return n;
  }

  onHashFail(index: number, pb: PieceBuffer): void {
    this.ts.hashFailures++;
    this.ts.wasted += pb.buf.length;
    pieceFailed(this.picker, index);
    const names: string[] = [];
    for (const id of new Set(pb.from)) {
      const p = this.peers.get(id);
      if (p) names.push(p.key);
    }
    this.emit({ event: "piece-failed", piece: index, peers: names });
    for (const id of blamePieceFailed(this.blame, index, pb.from, blockDigests(pb.buf))) {
      const p = this.peers.get(id);
      if (p) this.dropPeer(p, "sent pieces that failed their hash", true);
    }
  }

  onComplete(): void {
    const ts = this.ts;
    if (ts.completeAt !== null) return;
    ts.completeAt = this.now();
    this.store.ensureFiles();
    saveResume(this.store, this.meta, this.picker.have);
    this.lastResumeSaveAt = this.now();
    this.emit({ event: "complete", verified: ts.verifiedBytes, elapsed_ms: Math.round(ts.completeAt) });
    this.announcer?.completed();
    for (const p of [...this.peers.values()]) {
      for (const r of dropAll(p.queue)) {
        p.conn.send({ type: "cancel", index: r.index, begin: r.begin, length: r.length });
      }
      this.updateInterest(p);
    }
    if (this.o.seed === undefined) {
      this.finish({});
      return;
    }
    ts.seedStartedAt = this.now();
    const seed = this.o.seed;
    const until = [
      seed.ratio !== undefined ? `ratio ${seed.ratio}` : "",
      seed.timeMs !== undefined ? `${Math.round(seed.timeMs / 1000)} s` : "",
    ].filter(Boolean).join(" or ") || "interrupted";
    this.emit({ event: "seeding", until });
  }

  // ---- uploading ---------------------------------------------------------------------------------------------------

  onRequest(peer: Peer, index: number, begin: number, length: number): void {
    const m = this.meta;
    if (
      index >= m.pieceCount || length === 0 || length > MAX_BLOCK_BYTES ||
      begin + length > pieceLength(this.picker, index)
    ) {
      throw new WireError("bad-payload", 0, `request out of bounds (piece ${index}, ${begin}+${length})`);
    }
    if (peer.state.amChoking || !this.picker.have.has(index) || length > (this.o.maxServedBlock ?? BLOCK_BYTES)) {
      if (peer.state.fast) peer.conn.send({ type: "reject", index, begin, length });
      return;
    }
    if (!queueUpload(peer.uploads, { index, begin, length })) {
      throw new WireError("bad-payload", 0, `more than ${MAX_PEER_QUEUED_REQUESTS} requests queued`);
    }
    this.serveUploads(peer);
  }

  serveUploads(peer: Peer): void {
    if (peer.closed) return;
    const now = this.now();
    for (;;) {
      const u = peer.uploads[0];
      if (u === undefined) return;
      if (this.o.maxUploadRate && takeTokens(this.upBucket, u.length, now) > 0) return; // the tick retries
      if (nextUpload(peer.uploads, peer.conn.backlog) === null) return;
      const piece = this.pieceForUpload(u.index);
      peer.conn.sendPiece(u.index, u.begin, piece.subarray(u.begin, u.begin + u.length));
      peer.uploaded += u.length;
      peer.lastUsefulAt = now;
      this.ts.uploaded += u.length;
      this.share(peer).uploaded += u.length;
      addBytes(peer.upRate, u.length, now);
      addBytes(this.upRate, u.length, now);
    }
  }

  pieceForUpload(index: number): Uint8Array {
    const hit = this.cache.get(index);
    if (hit) return hit;
    const data = this.store.readPiece(index);
    if (!data) {
      throw new StorageError("read", this.store.outDir, `piece ${index} was verified but its data is gone from disk`);
    }
    for (const old of this.cache.put(index, data)) this.buffersPool.give(old);
    return data;
  }

  // ---- housekeeping ----------------------------------------------------------------------------------------------

  tick(): void {
    if (this.finished) return;
    const now = this.now();
    const wall = performance.now();
    for (const p of [...this.peers.values()]) {
      if (p.closed) continue;
      this.forPeer(p, () => {
        const expired = expireRequests(p.queue, now);
        if (expired.length > 0) {
          for (const r of expired) releaseBlock(this.picker, r.index, r.begin);
          if (p.queue.timeouts >= MAX_TIMEOUTS || p.downloaded === 0) {
            this.dropPeer(p, "requests timed out");
            return;
          }
        }
        if (wall - p.conn.lastReadAt > IDLE_TIMEOUT_MS) {
          this.dropPeer(p, "idle");
          return;
        }
        if (wall - p.conn.lastWriteAt > KEEPALIVE_MS) p.conn.send({ type: "keep-alive" });
        this.fillRequests(p);
        if (p.uploads.length > 0) this.serveUploads(p);
      });
    }
    this.choke(now);
    this.evictForWaiting(now);
    this.connectMore();
    if (this.peers.size < LOW_PEERS && this.ts.completeAt === null) this.announcer?.needPeers();
    if (now - this.lastProgressEventAt >= PROGRESS_MS) {
      this.lastProgressEventAt = now;
      this.emitProgress(now);
    }
    if (this.ts.completeAt === null && now - this.lastResumeSaveAt >= RESUME_SAVE_MS) {
      this.lastResumeSaveAt = now;
      saveResume(this.store, this.meta, this.picker.have);
    }
    this.checkLimits(now);
  }

  /** When every slot is taken and candidates wait, one peer that gives nothing makes room (at most one a tick). */
  evictForWaiting(now: number): void {
    if (!this.wantsPeers() || hasRoom(this.pool) || readyCount(this.pool, now) === 0) return;
    const id = pickEviction(this.evictionViews(), now);
    const p = id === null ? undefined : this.peers.get(id);
    if (p) this.dropPeer(p, "evicted: gave nothing while other peers wait");
  }

  emitProgress(now: number): void {
    const rate = rateOf(this.downRate, now);
    const left = bytesLeft(this.ts);
    this.emit({
      event: "progress",
      verified: this.ts.verifiedBytes,
      total: this.ts.wantedBytes,
      downloaded: this.ts.downloaded,
      uploaded: this.ts.uploaded,
      download_rate: Math.round(rate),
      upload_rate: Math.round(rateOf(this.upRate, now)),
      peers: this.peers.size,
      eta_s: left === 0 ? 0 : rate > 1 ? Math.round(left / rate) : null,
    });
  }

  choke(now: number): void {
    const seeding = this.ts.completeAt !== null;
    const stats = [...this.peers.values()].map((p) => ({
      id: p.id,
      interested: p.state.peerInterested,
      downloadRate: rateOf(p.queue.rate, now),
      uploadRate: rateOf(p.upRate, now),
      lastBlockAt: p.queue.lastBlockAt,
      amInterested: p.state.amInterested,
    }));
    const next = decideChokes(this.choker, stats, {
      slots: this.o.uploadSlots ?? DEFAULT_UPLOAD_SLOTS,
      seeding,
      now,
      random: this.random,
    });
    if (next === this.choker) return;
    this.choker = next;
    for (const p of this.peers.values()) {
      const s = p.state;
      const unchoke = next.unchoked.has(p.id);
      if (unchoke && s.amChoking) {
        s.amChoking = false;
        p.conn.send({ type: "unchoke" });
      } else if (!unchoke && !s.amChoking) {
        s.amChoking = true;
        p.conn.send({ type: "choke" });
        if (s.fast) {
          for (const u of p.uploads) p.conn.send({ type: "reject", index: u.index, begin: u.begin, length: u.length });
        }
        p.uploads.length = 0;
      }
    }
  }

  checkLimits(now: number): void {
    const d = checkLimits(this.ts, now, this.o);
    switch (d.kind) {
      case "continue":
        return;
      case "stop":
        this.finish({});
        return;
      case "timeout":
        this.finish({ error: this.limitError("timeout", `Timed out after ${fmtMs(d.afterMs)}`) });
        return;
      case "stalled": {
        const why = this.peers.size === 0 && this.pool.candidates.size === 0
          ? "no peers found"
          : `no piece verified for ${fmtMs(d.afterMs)} (${this.peers.size} peers connected)`;
        this.finish({ error: this.limitError("stalled", `Stalled: ${why}`) });
        return;
      }
    }
  }

  limitError(code: "timeout" | "stalled", message: string): FetchError {
    if (this.ts.hashFailures > 0 && this.pool.bans > 0) {
      return new FetchError(
        "bad-data",
        `${message}; ${this.ts.hashFailures} pieces failed their hash and ${this.pool.bans} peers were banned`,
      );
    }
    if (this.peers.size === 0 && this.pool.candidates.size === 0) {
      const t = this.announcer?.status.lastError;
      return new FetchError("no-peers", t ? `${message}; last tracker error: ${t.message}` : message);
    }
    return new FetchError(code, message);
  }
}

/** Per-block SHA-1 digests of a piece, for blame. */
function blockDigests(buf: Uint8Array): Uint8Array {
  const n = Math.ceil(buf.length / BLOCK_BYTES);
  const out = new Uint8Array(n * DIGEST_BYTES);
  for (let b = 0; b < n; b++) {
    const at = b * BLOCK_BYTES;
    out.set(createHash("sha1").update(buf.subarray(at, Math.min(at + BLOCK_BYTES, buf.length))).digest(), b * 20);
  }
  return out;
}

/** Whether an error is the peer's or the network's doing (drop the peer), as opposed to a bug of ours. */
function isPeerFault(e: unknown): boolean {
  return e instanceof WireError || e instanceof BitfieldError || e instanceof ConnectError || isNetworkError(e);
}

function isNetworkError(e: unknown): boolean {
  const E = Deno.errors;
  return e instanceof E.ConnectionRefused || e instanceof E.ConnectionReset || e instanceof E.ConnectionAborted ||
    e instanceof E.NotConnected || e instanceof E.BrokenPipe || e instanceof E.BadResource ||
    e instanceof E.TimedOut || e instanceof E.Interrupted || e instanceof E.UnexpectedEof ||
    e instanceof E.AddrNotAvailable || e instanceof E.NetworkUnreachable;
}

function closeQuietly(conn: Deno.Conn | null): void {
  try {
    conn?.close();
  } catch { /* already closed, e.g. by a time-out */ }
}

function openListener(port: number | undefined): Listener {
  if (port !== undefined) {
    try {
      return Listener.open(port);
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse) {
        throw new FetchError("listen", `Cannot listen on port ${port}: it is in use`);
      }
      if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
        throw new FetchError("listen", `Cannot listen on port ${port}: permission denied`);
      }
      throw e;
    }
  }
  for (let p = 6881; p <= 6889; p++) {
    try {
      return Listener.open(p);
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse)) throw e;
    }
  }
  return Listener.open(0);
}

function fmtMs(ms: number): string {
  return ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}
