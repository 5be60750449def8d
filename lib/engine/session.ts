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
import {
  BLOCK_BYTES,
  MAX_BLOCK_BYTES,
  MAX_KNOWN_PEERS,
  MAX_OUTSTANDING_REQUESTS,
  MAX_PEER_QUEUED_REQUESTS,
} from "../limits.ts";
import type { Metainfo } from "../metainfo.ts";
import { PieceStore, StorageError } from "../storage/disk.ts";
import { PieceWriter } from "../storage/piece_writer.ts";
import { piecesForFiles, pieceSpans } from "../storage/layout.ts";
import { loadOrVerify, saveResume } from "../storage/resume.ts";
import { Announcer } from "../tracker/announcer.ts";
import { decodeExtHandshake, encodeExtHandshake } from "../wire/extension.ts";
import { WireError } from "../wire/frame.ts";
import { encodeHandshake, type Handshake, reservedBits, supportsExtended, supportsFast } from "../wire/handshake.ts";
import type { Message } from "../wire/messages.ts";
import { decodeMetadataMessage, encodeMetadataMessage, METADATA_PIECE_BYTES, UT_METADATA } from "../wire/metadata.ts";
import { OUR_UT_METADATA_ID } from "./metadata_fetch.ts";
import { type ChokerState, decideChokes, DEFAULT_UPLOAD_SLOTS, INITIAL_CHOKER } from "./choker.ts";
import { FetchError } from "./errors.ts";
import type { EventFile, PeerShare, SessionEvent, TimedEvent } from "./events.ts";
import { Listener } from "./listener.ts";
import { connectTcp, PeerConn, readHandshake } from "./peer_conn.ts";
import {
  addPeerPiece,
  addPeerPieces,
  createPicker,
  isDone,
  isInteresting,
  pickBlocks,
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
import {
  blockArrived,
  blockKey,
  createQueue,
  dropAll,
  dropRequest,
  expireRequests,
  isOutstanding,
  type RequestQueue,
  requestsSent,
  requestsWanted,
  setPeerReqq,
} from "./requests.ts";
import { equalBytes } from "../bytes.ts";

/** The version string peers see (BEP 10 `v`) and the peer-id prefix (BEP 20, Azureus style). */
export const CLIENT_NAME = "btfetch 0.1.0";
const PEER_ID_PREFIX = "-bF0100-";

/** The housekeeping tick: time-outs, new connections, rate limits, progress. */
const TICK_MS = 100;
/** How long a TCP connect plus handshake may take. */
const CONNECT_TIMEOUT_MS = 5_000;
/** First wait before retrying a peer that failed; doubles per failure. */
const RETRY_BASE_MS = 2_000;
/** The longest wait between retries of one peer. */
const RETRY_MAX_MS = 120_000;
/** Failed connection attempts after which a peer is forgotten. */
const MAX_CONNECT_FAILURES = 8;
/** A peer that sends nothing for this long is dropped. */
const IDLE_TIMEOUT_MS = 180_000;
/** We send a keep-alive after this long without writing. */
const KEEPALIVE_MS = 90_000;
/** Request time-outs in a row after which a peer is dropped. */
const MAX_TIMEOUTS = 2;
/** A peer that alone supplied this many pieces that failed their hash is banned. */
const BAN_STRIKES = 2;
/** Memory for pieces being fetched or verified: bounds how many pieces are started at once (at least 4). */
const PIECE_MEMORY_BYTES = 24 * 1024 * 1024;
/** How much of a peer's request queue it has probably committed to send (libtorrent buffers 500 KB or more). */
const ENDGAME_COMMITTED_BYTES = 1024 * 1024;
/** A block a peer rejected is not asked of it again for this long. */
const REJECT_BACKOFF_MS = 1_000;
/** A peer that unchokes us yet rejects this many requests in a row, sending nothing, is dropped. */
const MAX_REJECTS_IN_A_ROW = 64;
/** Requests are topped up once at least this many are wanted (unless fewer are out). */
const REQUEST_BATCH = 16;
/** How often progress events are emitted. */
const PROGRESS_MS = 1_000;
/** How often the resume record is saved while downloading. */
const RESUME_SAVE_MS = 30_000;
/** Pieces of at most this size are kept in the upload cache. */
const CACHE_BYTES = 32 * 1024 * 1024;
/** Ask trackers for more peers when fewer than this many are connected. */
const LOW_PEERS = 5;

/** When to stop seeding after the download completes. */
export interface SeedOptions {
  /** Stop once uploaded/size reaches this ratio. */
  readonly ratio?: number;
  /** Stop after seeding this long (ms). */
  readonly timeMs?: number;
}

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

interface Candidate {
  readonly address: PeerAddress;
  failures: number;
  nextAttemptAt: number;
  banned: boolean;
  connected: boolean;
}

interface UploadRequest {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

interface Peer {
  readonly id: number;
  readonly key: string;
  readonly address: PeerAddress;
  readonly conn: PeerConn;
  readonly incoming: boolean;
  readonly client: string;
  readonly fast: boolean;
  readonly extended: boolean;
  has: Bitfield;
  hasCounted: boolean;
  amChoking: boolean;
  amInterested: boolean;
  peerChoking: boolean;
  peerInterested: boolean;
  readonly queue: RequestQueue;
  readonly allowedFast: Set<number>;
  /** Blocks this peer rejected (BEP 6), with when: not asked of it again for {@linkcode REJECT_BACKOFF_MS}. */
  readonly rejected: Map<number, number>;
  /** Rejects since the last block it sent. */
  rejectsInARow: number;
  /** The id the peer wants for ut_metadata messages (0: it does not take them). */
  utMetadata: number;
  readonly uploads: UploadRequest[];
  readonly upRate: RateMeter;
  downloaded: number;
  uploaded: number;
  strikes: number;
  /** Blocks that arrived without a request of ours (late after a cancel or choke, or pushed at us). */
  unasked: number;
  closed: boolean;
}

interface PieceBuffer {
  /** A view of a SharedArrayBuffer, so the writer thread reads it in place. */
  readonly buf: Uint8Array;
  readonly received: Uint8Array;
  /** Who sent each block (peer id), for blame when the hash fails. */
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
  readonly maxPeers: number;
  readonly store: PieceStore;
  picker!: Picker;
  wanted!: Bitfield;
  readonly peers = new Map<number, Peer>();
  readonly candidates = new Map<string, Candidate>();
  connecting = 0;
  nextPeerId = 1;
  readonly buffers = new Map<number, PieceBuffer>();
  /** Complete pieces the writer thread is hashing and storing. */
  readonly verifying = new Map<number, PieceBuffer>();
  readonly writer: PieceWriter;
  readonly spareBuffers: Uint8Array[] = [];
  readonly cache = new Map<number, Uint8Array>();
  cacheBytes = 0;
  listener: Listener | null = null;
  ownListener = false;
  port = 0;
  announcer: Announcer | null = null;
  choker: ChokerState = INITIAL_CHOKER;
  readonly downRate: RateMeter;
  readonly upRate: RateMeter;
  readonly downBucket: TokenBucket;
  readonly upBucket: TokenBucket;
  downloaded = 0;
  uploaded = 0;
  wasted = 0;
  hashFailures = 0;
  banned = 0;
  lastProgressAt: number;
  lastProgressEventAt = 0;
  lastResumeSaveAt: number;
  completeAt: number | null = null;
  seedStartedAt: number | null = null;
  fileRemaining!: Int32Array;
  readonly shares = new Map<string, { client: string; downloaded: number; uploaded: number }>();
  tickTimer: ReturnType<typeof setInterval> | undefined;
  finish!: (r: { error?: unknown }) => void;
  finished = false;
  /** Failed pieces with per-block fingerprints, for smart bans once the piece passes. */
  readonly suspects = new Map<number, { from: Int32Array; sums: string[] }>();

  constructor(o: SessionOptions) {
    this.o = o;
    this.meta = o.meta;
    this.random = o.random ?? Math.random;
    this.peerId = o.peerId ?? makePeerId(this.random);
    this.maxPeers = Math.max(1, o.maxPeers ?? 50);
    this.store = PieceStore.open(o.meta, o.outDir, o.selected ? { selected: o.selected } : {});
    this.writer = new PieceWriter(
      this.store,
      (index, ok) => this.safely(() => this.onPieceOutcome(index, ok)),
      (e) => this.finish ? this.finish({ error: e }) : undefined,
    );
    const now = this.now();
    this.downRate = createRateMeter(now);
    this.upRate = createRateMeter(now);
    this.downBucket = createBucket(o.maxDownloadRate ?? 0, now);
    this.upBucket = createBucket(o.maxUploadRate ?? 0, now);
    this.lastProgressAt = now;
    this.lastResumeSaveAt = now;
  }

  now(): number {
    return performance.now() - this.t0;
  }

  emit(e: SessionEvent): void {
    this.o.onEvent?.({ ...e, t: Math.round(this.now()) } as TimedEvent);
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------------

  async run(): Promise<SessionResult> {
    const m = this.meta;
    const selected = this.o.selected;
    this.wanted = selected ? piecesForFiles(m, selected) : Bitfield.full(m.pieceCount);
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
      this.picker = createPicker({
        pieceCount: m.pieceCount,
        pieceLength: m.pieceLength,
        totalLength: m.totalLength,
        have,
        wanted: this.wanted,
        random: this.random,
        sequential: this.o.sequential,
        maxPartial: Math.max(4, Math.min(256, Math.floor(PIECE_MEMORY_BYTES / m.pieceLength))),
      });
      this.initFileCounters();
      this.emit({
        event: "resume",
        source,
        verified: this.verifiedBytes(),
        pieces: have.count,
        missing: this.picker.remaining,
      });
      if (this.o.signal?.aborted) throw this.o.signal.reason;
      if (this.o.requireComplete && !isDone(this.picker)) {
        throw new FetchError(
          "incomplete",
          `${this.picker.remaining} of ${this.wanted.count} pieces are missing or damaged in ${this.store.outDir}`,
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
      if (this.picker && isDone(this.picker)) this.onComplete();
      if (this.finished) return;
      this.startNetwork();
      this.tickTimer = setInterval(() => this.safely(() => this.tick()), TICK_MS);
    });
  }

  /** Runs a handler for `peer`: a protocol fault drops that peer; anything else is a bug that ends the session. */
  forPeer(peer: Peer, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof WireError || e instanceof BitfieldError) this.dropPeer(peer, e.message);
      else this.finish({ error: e });
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
      this.listener.register(
        m.infoHashHex,
        (conn, theirs, leftover, from) => this.acceptIncoming(conn, theirs, leftover, from),
      );
      this.emit({ event: "listening", port: this.port });
    }
    for (const a of this.o.peers ?? []) this.addCandidate(a);
    const tiers: string[][] = this.o.useTorrentTrackers === false ? [] : m.announce.map((t) => [...t]);
    for (const url of this.o.trackers ?? []) tiers.push([url]);
    if (tiers.length > 0) {
      this.announcer = new Announcer({
        tiers,
        infoHash: m.infoHash,
        peerId: this.peerId,
        port: this.port || 6881,
        random: this.random,
        stats: () => ({ uploaded: this.uploaded, downloaded: this.downloaded, left: this.bytesLeft() }),
        onPeers: (peers, url) => {
          this.emit({ event: "tracker", url, peers: peers.length });
          for (const p of peers) this.addCandidate(p);
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
      if (this.picker && this.picker.have.count > 0) {
        this.store.flush();
        saveResume(this.store, this.meta, this.picker.have);
      }
    } finally {
      this.store.close();
      await stopping;
    }
  }

  result(): SessionResult {
    const peers: PeerShare[] = [...this.shares].map(([address, s]) => ({ address, ...s }));
    const r: SessionResult = {
      complete: this.picker !== undefined && isDone(this.picker),
      downloaded: this.downloaded,
      uploaded: this.uploaded,
      wasted: this.wasted,
      verified: this.picker ? this.verifiedBytes() : 0,
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

  // ---- bookkeeping -----------------------------------------------------------------------------------------------

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

  /** Per selected file, how many of its pieces are still missing; -1 for files not followed. */
  initFileCounters(): void {
    const m = this.meta;
    this.fileRemaining = new Int32Array(m.files.length).fill(-1);
    for (const f of m.files) {
      if (f.padding || f.length === 0) continue;
      if (this.o.selected && !this.o.selected.has(f.index)) continue;
      this.fileRemaining[f.index] = 0;
    }
    for (let i = 0; i < m.pieceCount; i++) {
      if (this.picker.have.has(i)) continue;
      for (const s of pieceSpans(m, i)) if (this.fileRemaining[s.fileIndex] >= 0) this.fileRemaining[s.fileIndex]++;
    }
  }

  verifiedBytes(): number {
    let n = 0;
    const have = this.picker.have;
    for (let i = 0; i < this.meta.pieceCount; i++) if (have.has(i)) n += pieceLength(this.picker, i);
    return n;
  }

  bytesLeft(): number {
    if (!this.picker) return this.meta.totalLength;
    let n = 0;
    for (let i = 0; i < this.meta.pieceCount; i++) {
      if (this.wanted.has(i) && !this.picker.have.has(i)) n += pieceLength(this.picker, i);
    }
    return n;
  }

  // ---- peers: connecting, accepting, dropping --------------------------------------------------------------------

  addCandidate(a: PeerAddress): void {
    const key = formatAddress(a);
    if (this.candidates.has(key) || this.candidates.size >= MAX_KNOWN_PEERS) return;
    if (a.port === this.port && isLocalHost(a.host)) return; // ourselves
    this.candidates.set(key, { address: a, failures: 0, nextAttemptAt: 0, banned: false, connected: false });
  }

  wantsPeers(): boolean {
    if (this.finished) return false;
    if (this.completeAt !== null && this.o.seed === undefined) return false;
    return this.peers.size + this.connecting < this.maxPeers;
  }

  connectMore(): void {
    if (!this.wantsPeers()) return;
    // seeds dial out too: a peer that will not accept our connections (Transmission on loopback) is reached that way
    const now = this.now();
    for (const c of this.candidates.values()) {
      if (!this.wantsPeers()) break;
      if (c.banned || c.connected || c.nextAttemptAt > now) continue;
      this.dial(c);
    }
  }

  dial(c: Candidate): void {
    c.connected = true;
    this.connecting++;
    const ours: Handshake = {
      reserved: reservedBits({ fast: true, extended: true }),
      infoHash: this.meta.infoHash,
      peerId: this.peerId,
    };
    (async () => {
      let conn: Deno.TcpConn | null = null;
      try {
        conn = await connectTcp(c.address, CONNECT_TIMEOUT_MS);
        const { theirs, leftover } = await readHandshake(conn, CONNECT_TIMEOUT_MS, ours);
        this.connecting--;
        if (this.finished) {
          conn.close();
          return;
        }
        if (!equalBytes(theirs.infoHash, this.meta.infoHash)) {
          throw new WireError("bad-handshake", 28, "wrong info-hash");
        }
        if (equalBytes(theirs.peerId, this.peerId)) {
          c.banned = true; // ourselves, listed by a tracker
          conn.close();
          return;
        }
        c.failures = 0;
        this.startPeer(conn, c.address, theirs, leftover);
      } catch (_e) {
        this.connecting--;
        conn?.close();
        c.connected = false;
        c.failures++;
        if (c.failures >= MAX_CONNECT_FAILURES) c.banned = true;
        c.nextAttemptAt = this.now() + Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (c.failures - 1));
      }
    })();
  }

  acceptIncoming(conn: Deno.TcpConn, theirs: Handshake, leftover: Uint8Array, from: PeerAddress): boolean {
    if (this.finished || this.peers.size >= this.maxPeers) return false;
    if (equalBytes(theirs.peerId, this.peerId)) return false;
    const key = formatAddress(from);
    const c = this.candidates.get(key);
    if (c?.banned) return false;
    const ours: Handshake = {
      reserved: reservedBits({ fast: true, extended: true }),
      infoHash: this.meta.infoHash,
      peerId: this.peerId,
    };
    this.startPeer(conn, from, theirs, leftover, ours);
    return true;
  }

  startPeer(
    conn: Deno.TcpConn,
    address: PeerAddress,
    theirs: Handshake,
    leftover: Uint8Array,
    /** Our handshake, still to send (incoming connections); undefined when it went out before theirs came in. */
    ours?: Handshake,
  ): Peer {
    const now = this.now();
    const incoming = ours !== undefined;
    const peer: Peer = {
      id: this.nextPeerId++,
      key: formatAddress(address),
      address,
      conn: new PeerConn(conn, address),
      incoming,
      client: clientName(theirs.peerId),
      fast: supportsFast(theirs.reserved),
      extended: supportsExtended(theirs.reserved),
      has: new Bitfield(this.meta.pieceCount),
      hasCounted: false,
      amChoking: true,
      amInterested: false,
      peerChoking: true,
      peerInterested: false,
      queue: createQueue(now),
      allowedFast: new Set(),
      rejected: new Map(),
      rejectsInARow: 0,
      utMetadata: 0,
      uploads: [],
      upRate: createRateMeter(now),
      downloaded: 0,
      uploaded: 0,
      strikes: 0,
      unasked: 0,
      closed: false,
    };
    this.peers.set(peer.id, peer);
    this.emit({ event: "peer", action: "connected", address: peer.key, incoming, client: peer.client });
    // our handshake (incoming) and opening messages go out before any reply to what the peer already sent
    if (ours) peer.conn.sendRaw(encodeHandshake(ours));
    this.sendOpening(peer);
    peer.conn.run({
      onBlock: (index, begin, data) => this.forPeer(peer, () => this.onBlock(peer, index, begin, data)),
      onMessage: (msg) => this.forPeer(peer, () => this.onMessage(peer, msg)),
      onDrain: () => this.forPeer(peer, () => this.serveUploads(peer)),
    }, leftover).then(
      () => this.dropPeer(peer, "connection closed"),
      (e) => this.dropPeer(peer, e instanceof Error ? e.message : String(e)),
    );
    return peer;
  }

  sendOpening(peer: Peer): void {
    if (peer.extended) {
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
    if (peer.fast && have.count === 0) peer.conn.send({ type: "have-none" });
    else if (peer.fast && have.complete) peer.conn.send({ type: "have-all" });
    else if (have.count > 0) peer.conn.send({ type: "bitfield", bits: have.bytes });
  }

  dropPeer(peer: Peer, reason: string, ban = false): void {
    if (peer.closed) return;
    peer.closed = true;
    peer.conn.close();
    this.peers.delete(peer.id);
    for (const r of dropAll(peer.queue)) releaseBlock(this.picker, r.index, r.begin);
    if (peer.hasCounted) removePeerPieces(this.picker, peer.has);
    const c = this.candidates.get(peer.key);
    if (c) {
      c.connected = false;
      c.nextAttemptAt = this.now() + RETRY_BASE_MS * 4;
      if (ban) c.banned = true;
    } else if (ban) {
      this.candidates.set(peer.key, {
        address: peer.address,
        failures: 0,
        nextAttemptAt: Infinity,
        banned: true,
        connected: false,
      });
    }
    if (ban) this.banned++;
    this.emit({
      event: "peer",
      action: ban ? "banned" : "disconnected",
      address: peer.key,
      incoming: peer.incoming,
      client: peer.client,
      reason,
      downloaded: peer.downloaded,
      uploaded: peer.uploaded,
    });
    if (!this.finished && peer.peerInterested && !peer.amChoking) this.choker = { ...this.choker, roundAt: -Infinity };
  }

  // ---- messages ----------------------------------------------------------------------------------------------------

  onMessage(peer: Peer, msg: Message): void {
    if (peer.closed) return;
    switch (msg.type) {
      case "keep-alive":
      case "port":
      case "suggest":
      case "unknown":
        return;
      case "choke":
        peer.peerChoking = true;
        for (const r of dropAll(peer.queue)) {
          if (!peer.allowedFast.has(r.index)) releaseBlock(this.picker, r.index, r.begin);
          else peer.queue.outstanding.set(blockKey(r.index, r.begin), r);
        }
        return;
      case "unchoke":
        peer.peerChoking = false;
        peer.rejected.clear();
        this.fillRequests(peer);
        return;
      case "interested":
        if (!peer.peerInterested) {
          peer.peerInterested = true;
          // decide now, not on the next tick: a free slot is worth using at once (aria2c acts on a 1 s tick, so a
          // late unchoke can cost it a second)
          this.choker = { ...this.choker, roundAt: -Infinity };
          this.choke(this.now());
        }
        return;
      case "not-interested":
        peer.peerInterested = false;
        return;
      case "have":
        if (msg.index >= this.meta.pieceCount) throw new WireError("bad-payload", 0, `have for piece ${msg.index}`);
        if (peer.has.set(msg.index)) {
          addPeerPiece(this.picker, msg.index);
          peer.hasCounted = true;
          if (!peer.amInterested && this.wanted.has(msg.index) && !this.picker.have.has(msg.index)) {
            this.updateInterest(peer);
          }
          this.fillRequests(peer);
        }
        return;
      case "bitfield":
      case "have-all":
      case "have-none": {
        // aria2c sends a fresh bitfield mid-connection instead of `have`s: take it as the peer's new set
        if (peer.hasCounted) removePeerPieces(this.picker, peer.has);
        peer.hasCounted = false;
        let bits: Bitfield;
        if (msg.type === "bitfield") {
          try {
            bits = Bitfield.fromBytes(msg.bits, this.meta.pieceCount);
          } catch (e) {
            if (e instanceof BitfieldError) throw new WireError("bad-payload", 0, e.message);
            throw e;
          }
        } else {
          if (!peer.fast) throw new WireError("bad-payload", 0, `${msg.type} without the Fast extension`);
          bits = msg.type === "have-all" ? Bitfield.full(this.meta.pieceCount) : new Bitfield(this.meta.pieceCount);
        }
        peer.has = bits;
        peer.hasCounted = true;
        addPeerPieces(this.picker, bits);
        this.updateInterest(peer);
        this.fillRequests(peer);
        return;
      }
      case "request":
        this.onRequest(peer, msg.index, msg.begin, msg.length);
        return;
      case "cancel": {
        const i = peer.uploads.findIndex((u) => u.index === msg.index && u.begin === msg.begin);
        if (i >= 0) peer.uploads.splice(i, 1);
        return;
      }
      case "reject": {
        if (!peer.fast) throw new WireError("bad-payload", 0, "reject without the Fast extension");
        const r = dropRequest(peer.queue, msg.index, msg.begin);
        if (r) {
          releaseBlock(this.picker, r.index, r.begin);
          peer.allowedFast.delete(r.index);
          // not asked of this peer again for a while, so a reject cannot turn into a request loop
          peer.rejected.set(blockKey(r.index, r.begin), this.now());
          if (!peer.peerChoking && ++peer.rejectsInARow >= MAX_REJECTS_IN_A_ROW) {
            this.dropPeer(peer, `rejected ${MAX_REJECTS_IN_A_ROW} requests in a row while unchoking us`);
            return;
          }
        }
        this.fillRequests(peer);
        return;
      }
      case "allowed-fast":
        if (msg.index < this.meta.pieceCount) peer.allowedFast.add(msg.index);
        if (peer.peerChoking) this.fillRequests(peer);
        return;
      case "extended":
        if (msg.id === 0) {
          const h = decodeExtHandshake(msg.payload);
          if (h.reqq !== undefined && h.reqq > 0) setPeerReqq(peer.queue, h.reqq);
          peer.utMetadata = h.m.get(UT_METADATA) ?? 0;
        } else if (msg.id === OUR_UT_METADATA_ID) {
          this.onMetadataMessage(peer, msg.payload);
        }
        return;
      case "piece":
        this.onBlock(peer, msg.index, msg.begin, msg.block);
        return;
    }
  }

  /** A peer asks for a piece of the info dictionary (BEP 9): send it, or reject for private torrents. */
  onMetadataMessage(peer: Peer, payload: Uint8Array): void {
    const m = decodeMetadataMessage(payload);
    if (m.type !== "request" || peer.utMetadata === 0) return;
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
    peer.conn.send({ type: "extended", id: peer.utMetadata, payload: reply });
  }

  updateInterest(peer: Peer): void {
    const want = this.completeAt === null && isInteresting(this.picker, peer.has);
    if (want !== peer.amInterested) {
      peer.amInterested = want;
      peer.conn.send({ type: want ? "interested" : "not-interested" });
    }
    // two seeds have nothing to say to each other
    if (!want && peer.has.complete && this.picker.have.complete) this.dropPeer(peer, "both seeding");
  }

  // ---- downloading -----------------------------------------------------------------------------------------------

  fillRequests(peer: Peer): void {
    if (peer.closed || !peer.amInterested || this.completeAt !== null) return;
    const choked = peer.peerChoking;
    if (choked && peer.allowedFast.size === 0) return;
    const now = this.now();
    let n = requestsWanted(peer.queue, now);
    // ask in batches: picking per block would cost more than the blocks (a few requests in flight suffice)
    if (n <= 0 || (n < REQUEST_BATCH && peer.queue.outstanding.size >= REQUEST_BATCH)) return;
    if (this.o.maxDownloadRate) {
      let allowed = 0;
      while (allowed < n && takeTokens(this.downBucket, BLOCK_BYTES, now) === 0) allowed++;
      n = allowed;
      if (n === 0) return;
    }
    const reqs = pickBlocks(
      this.picker,
      peer.has,
      n,
      now,
      (r) =>
        isOutstanding(peer.queue, r.index, r.begin) ||
        now - (peer.rejected.get(blockKey(r.index, r.begin)) ?? -Infinity) < REJECT_BACKOFF_MS ||
        (requestsOut(this.picker, r.index, r.begin) > 0 && !this.worthDuplicating(peer, r.index, r.begin)),
      choked ? peer.allowedFast : undefined,
      peer.queue.outstanding.size,
    );
    if (reqs.length === 0) {
      if (peer.queue.outstanding.size === 0) this.updateInterest(peer);
      return;
    }
    requestsSent(peer.queue, reqs, now);
    for (const r of reqs) peer.conn.send({ type: "request", index: r.index, begin: r.begin, length: r.length });
  }

  onBlock(peer: Peer, index: number, begin: number, data: Uint8Array): void {
    if (peer.closed) return;
    const now = this.now();
    const length = data.length;
    this.downloaded += length;
    peer.downloaded += length;
    this.share(peer).downloaded += length;
    addBytes(this.downRate, length, now);
    const asked = blockArrived(peer.queue, index, begin, length, now);
    peer.rejectsInARow = 0;
    if (!asked && ++peer.unasked > MAX_OUTSTANDING_REQUESTS) {
      throw new WireError("bad-payload", 0, `more than ${MAX_OUTSTANDING_REQUESTS} blocks we did not ask for`);
    }
    const r = receiveBlock(this.picker, index, begin, length);
    if (r !== "new") {
      this.wasted += length;
      this.fillRequests(peer);
      return;
    }
    let pb = this.buffers.get(index);
    if (!pb) {
      pb = this.newBuffer(index);
      this.buffers.set(index, pb);
    }
    pb.buf.set(data, begin);
    const b = begin / BLOCK_BYTES;
    pb.received[b] = 1;
    pb.from[b] = peer.id;
    if (requestsOut(this.picker, index, begin) > 0) this.cancelDuplicates(peer, index, begin);
    if (pieceComplete(this.picker, index)) {
      // the last block is in: hash and store it on the writer thread; the outcome comes back in onPieceOutcome
      this.buffers.delete(index);
      this.verifying.set(index, pb);
      this.writer.submit(index, pb.buf, this.meta.pieceHashes.subarray(index * 20, index * 20 + 20));
    }
    if (this.completeAt === null) this.fillRequests(peer);
  }

  /**
   * Endgame: whether to ask `asker` for a block another peer already has a request for. Not when the block is among
   * the first {@linkcode ENDGAME_COMMITTED_BYTES} of that peer's queue: it has most likely read it and queued it for
   * sending, so a cancel would come too late and both copies would arrive.
   */
  worthDuplicating(asker: Peer, index: number, begin: number): boolean {
    const key = blockKey(index, begin);
    for (const h of this.peers.values()) {
      if (h === asker || !h.queue.outstanding.has(key)) continue;
      let ahead = 0;
      for (const k of h.queue.outstanding.keys()) {
        if (k === key || ahead * BLOCK_BYTES >= ENDGAME_COMMITTED_BYTES) break;
        ahead++;
      }
      if (ahead * BLOCK_BYTES < ENDGAME_COMMITTED_BYTES) return false;
    }
    return true;
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

  newBuffer(index: number): PieceBuffer {
    const len = pieceLength(this.picker, index);
    let buf = this.spareBuffers.pop();
    if (!buf || buf.length < len) buf = new Uint8Array(new SharedArrayBuffer(this.meta.pieceLength));
    const blocks = Math.ceil(len / BLOCK_BYTES);
    return {
      buf: buf.subarray(0, len),
      received: new Uint8Array(blocks),
      from: new Int32Array(blocks),
    };
  }

  /** Keeps a piece buffer for the next piece (as many as may be started), so a download stops allocating. */
  recycle(buf: Uint8Array): void {
    if (!(buf.buffer instanceof SharedArrayBuffer)) return; // the writer thread takes shared buffers only
    const full = new Uint8Array(buf.buffer, buf.byteOffset, buf.buffer.byteLength - buf.byteOffset);
    if (this.spareBuffers.length < this.picker.maxPartial && full.length >= this.meta.pieceLength) {
      this.spareBuffers.push(full.subarray(0, this.meta.pieceLength));
    }
  }

  /** The writer thread hashed piece `index`: `ok` means it matched and is on disk. */
  onPieceOutcome(index: number, ok: boolean): void {
    const pb = this.verifying.get(index);
    if (!pb) return;
    this.verifying.delete(index);
    if (!ok) {
      this.onHashFail(index, pb);
      this.recycle(pb.buf);
      return;
    }
    pieceVerified(this.picker, index);
    this.lastProgressAt = this.now();
    this.smartBan(index, pb);
    // cancel endgame duplicates and tell everyone
    for (const p of this.peers.values()) {
      for (let b = 0; b < pb.received.length; b++) {
        const r = dropRequest(p.queue, index, b * BLOCK_BYTES);
        if (r) p.conn.send({ type: "cancel", index, begin: r.begin, length: r.length });
      }
      p.conn.send({ type: "have", index });
    }
    // keep the piece in the upload cache while some peer may want it; else reuse its buffer
    let wanted = false;
    for (const p of this.peers.values()) if (p.peerInterested && !p.has.has(index)) wanted = true;
    if (wanted) this.cachePut(index, pb.buf);
    else this.recycle(pb.buf);
    for (const s of pieceSpans(this.meta, index)) {
      if (this.fileRemaining[s.fileIndex] > 0 && --this.fileRemaining[s.fileIndex] === 0) {
        this.emit({
          event: "file-complete",
          index: this.displayIndex(s.fileIndex),
          path: this.meta.files[s.fileIndex].path.join("/"),
        });
      }
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
    this.hashFailures++;
    const len = pb.buf.length;
    this.wasted += len;
    pieceFailed(this.picker, index);
    const contributors = new Set(pb.from);
    const names: string[] = [];
    for (const id of contributors) {
      const p = this.peers.get(id);
      if (p) names.push(p.key);
    }
    this.emit({ event: "piece-failed", piece: index, peers: names });
    if (contributors.size === 1) {
      const p = this.peers.get(pb.from[0]);
      if (p && ++p.strikes >= BAN_STRIKES) this.dropPeer(p, "sent pieces that failed their hash", true);
    } else {
      // several senders: remember each block's fingerprint; when the piece passes, the liars are known
      const sums: string[] = [];
      for (let b = 0; b < pb.received.length; b++) {
        const s = b * BLOCK_BYTES;
        sums.push(createHash("sha1").update(pb.buf.subarray(s, Math.min(s + BLOCK_BYTES, len))).digest("hex"));
      }
      this.suspects.set(index, { from: pb.from.slice(), sums });
    }
  }

  smartBan(index: number, pb: PieceBuffer): void {
    const s = this.suspects.get(index);
    if (!s) return;
    this.suspects.delete(index);
    const len = pb.buf.length;
    for (let b = 0; b < s.sums.length; b++) {
      const at = b * BLOCK_BYTES;
      const good = createHash("sha1").update(pb.buf.subarray(at, Math.min(at + BLOCK_BYTES, len))).digest("hex");
      if (good === s.sums[b]) continue;
      const p = this.peers.get(s.from[b]);
      if (p) this.dropPeer(p, "sent a block that failed its hash", true);
    }
  }

  onComplete(): void {
    if (this.completeAt !== null) return;
    this.completeAt = this.now();
    this.store.ensureFiles();
    this.store.flush();
    saveResume(this.store, this.meta, this.picker.have);
    this.lastResumeSaveAt = this.now();
    this.emit({ event: "complete", verified: this.verifiedBytes(), elapsed_ms: Math.round(this.completeAt) });
    this.announcer?.completed();
    for (const p of this.peers.values()) {
      for (const r of dropAll(p.queue)) {
        p.conn.send({ type: "cancel", index: r.index, begin: r.begin, length: r.length });
      }
      this.updateInterest(p);
    }
    if (this.o.seed === undefined) {
      this.finish({});
      return;
    }
    this.seedStartedAt = this.now();
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
    if (peer.amChoking || !this.picker.have.has(index) || length > (this.o.maxServedBlock ?? BLOCK_BYTES)) {
      if (peer.fast) peer.conn.send({ type: "reject", index, begin, length });
      return;
    }
    if (peer.uploads.length >= MAX_PEER_QUEUED_REQUESTS) {
      throw new WireError("bad-payload", 0, `more than ${MAX_PEER_QUEUED_REQUESTS} requests queued`);
    }
    peer.uploads.push({ index, begin, length });
    this.serveUploads(peer);
  }

  serveUploads(peer: Peer): void {
    if (peer.closed) return;
    const now = this.now();
    while (peer.uploads.length > 0 && peer.conn.backlog < 256 * 1024) {
      const u = peer.uploads[0];
      if (this.o.maxUploadRate && takeTokens(this.upBucket, u.length, now) > 0) return; // the tick retries
      peer.uploads.shift();
      const piece = this.cacheGet(u.index);
      peer.conn.sendPiece(u.index, u.begin, piece.subarray(u.begin, u.begin + u.length));
      peer.uploaded += u.length;
      this.uploaded += u.length;
      this.share(peer).uploaded += u.length;
      addBytes(peer.upRate, u.length, now);
      addBytes(this.upRate, u.length, now);
    }
  }

  cacheGet(index: number): Uint8Array {
    const hit = this.cache.get(index);
    if (hit) {
      this.cache.delete(index);
      this.cache.set(index, hit);
      return hit;
    }
    const data = this.store.readPiece(index);
    if (!data) {
      throw new StorageError("read", this.store.outDir, `piece ${index} was verified but its data is gone from disk`);
    }
    this.cachePut(index, data);
    return data;
  }

  cachePut(index: number, data: Uint8Array): void {
    if (this.cache.has(index)) return;
    this.cache.set(index, data);
    this.cacheBytes += data.length;
    for (const [k, v] of this.cache) {
      if (this.cacheBytes <= CACHE_BYTES) break;
      this.cache.delete(k);
      this.cacheBytes -= v.length;
      this.recycle(v);
    }
  }

  // ---- housekeeping ----------------------------------------------------------------------------------------------

  tick(): void {
    if (this.finished) return;
    const now = this.now();
    const wall = performance.now();
    for (const p of [...this.peers.values()]) {
      if (p.closed) continue;
      const expired = expireRequests(p.queue, now);
      if (expired.length > 0) {
        for (const r of expired) releaseBlock(this.picker, r.index, r.begin);
        if (p.queue.timeouts >= MAX_TIMEOUTS || p.downloaded === 0) {
          this.dropPeer(p, "requests timed out");
          continue;
        }
      }
      if (wall - p.conn.lastReadAt > IDLE_TIMEOUT_MS) {
        this.dropPeer(p, "idle");
        continue;
      }
      if (wall - p.conn.lastWriteAt > KEEPALIVE_MS) p.conn.send({ type: "keep-alive" });
      this.fillRequests(p);
      if (p.uploads.length > 0) this.serveUploads(p);
    }
    this.choke(now);
    this.connectMore();
    if (this.peers.size < LOW_PEERS && this.completeAt === null) this.announcer?.needPeers();
    if (now - this.lastProgressEventAt >= PROGRESS_MS) {
      this.lastProgressEventAt = now;
      this.emitProgress(now);
    }
    if (this.completeAt === null && now - this.lastResumeSaveAt >= RESUME_SAVE_MS) {
      this.lastResumeSaveAt = now;
      this.store.flush();
      saveResume(this.store, this.meta, this.picker.have);
    }
    this.checkLimits(now);
  }

  emitProgress(now: number): void {
    const rate = rateOf(this.downRate, now);
    const left = this.bytesLeft();
    this.emit({
      event: "progress",
      verified: this.verifiedBytes(),
      total: this.wantedBytes(),
      downloaded: this.downloaded,
      uploaded: this.uploaded,
      download_rate: Math.round(rate),
      upload_rate: Math.round(rateOf(this.upRate, now)),
      peers: this.peers.size,
      eta_s: left === 0 ? 0 : rate > 1 ? Math.round(left / rate) : null,
    });
  }

  wantedBytes(): number {
    let n = 0;
    for (let i = 0; i < this.meta.pieceCount; i++) if (this.wanted.has(i)) n += pieceLength(this.picker, i);
    return n;
  }

  choke(now: number): void {
    const seeding = this.completeAt !== null;
    const stats = [...this.peers.values()].map((p) => ({
      id: p.id,
      interested: p.peerInterested,
      downloadRate: rateOf(p.queue.rate, now),
      uploadRate: rateOf(p.upRate, now),
      lastBlockAt: p.queue.lastBlockAt,
      amInterested: p.amInterested,
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
      const unchoke = next.unchoked.has(p.id);
      if (unchoke && p.amChoking) {
        p.amChoking = false;
        p.conn.send({ type: "unchoke" });
      } else if (!unchoke && !p.amChoking) {
        p.amChoking = true;
        p.conn.send({ type: "choke" });
        if (p.fast) {
          for (const u of p.uploads) {
            p.conn.send({ type: "reject", index: u.index, begin: u.begin, length: u.length });
          }
        }
        p.uploads.length = 0;
      }
    }
  }

  checkLimits(now: number): void {
    const o = this.o;
    if (this.completeAt === null) {
      if (o.timeoutMs !== undefined && now >= o.timeoutMs) {
        this.finish({ error: this.limitError("timeout", `Timed out after ${fmtMs(o.timeoutMs)}`) });
        return;
      }
      const stall = o.stallTimeoutMs ?? 5 * 60_000;
      if (now - this.lastProgressAt >= stall) {
        const why = this.peers.size === 0 && this.candidates.size === 0
          ? "no peers found"
          : `no piece verified for ${fmtMs(stall)} (${this.peers.size} peers connected)`;
        this.finish({ error: this.limitError("stalled", `Stalled: ${why}`) });
      }
      return;
    }
    const seed = o.seed;
    if (!seed || this.seedStartedAt === null) return;
    if (seed.timeMs !== undefined && now - this.seedStartedAt >= seed.timeMs) this.finish({});
    else if (seed.ratio !== undefined && this.uploaded >= seed.ratio * this.wantedBytes()) this.finish({});
  }

  limitError(code: "timeout" | "stalled", message: string): FetchError {
    if (this.hashFailures > 0 && this.banned > 0) {
      return new FetchError(
        "bad-data",
        `${message}; ${this.hashFailures} pieces failed their hash and ${this.banned} peers were banned`,
      );
    }
    if (this.peers.size === 0 && this.candidates.size === 0) {
      const t = this.announcer?.status.lastError;
      return new FetchError("no-peers", t ? `${message}; last tracker error: ${t.message}` : message);
    }
    return new FetchError(code, message);
  }
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

function isLocalHost(host: string): boolean {
  return host === "::1" || host === "localhost" || host.startsWith("127.");
}

function fmtMs(ms: number): string {
  return ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}
