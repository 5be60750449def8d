/**
 * A torrent session, the runtime of one torrent: it owns the sockets (the listener's routes, dials, one
 * {@linkcode PeerConn} per peer), the timer, the piece store and the writer thread, and the tracker announcer. Every
 * choice — whom to dial or evict, what to request, whom to unchoke, when to stop — is made by the pure swarm state
 * machine (`swarm.ts` and the modules it composes); the session feeds it events with the time and performs what it
 * asks through {@linkcode SwarmIO}.
 *
 * Failures are sorted where they happen: a fault of a peer or of the network drops that peer; a disk failure ends
 * the session (exit 5); a bug of ours in one connection is reported as an `internal-error` event and costs that
 * connection only; a bug anywhere else ends the session (exit 1).
 * @module
 */
import { formatAddress, type PeerAddress } from "../address.ts";
import { Bitfield } from "../bitfield.ts";
import { equalBytes } from "../bytes.ts";
import type { Metainfo } from "../metainfo.ts";
import { PieceStore, StorageError } from "../storage/disk.ts";
import { PieceWriter } from "../storage/piece_writer.ts";
import { piecesForFiles } from "../storage/layout.ts";
import { loadOrVerify, saveResume } from "../storage/resume.ts";
import { Announcer } from "../tracker/announcer.ts";
import { encodeHandshake, type Handshake, reservedBits, supportsExtended, supportsFast } from "../wire/handshake.ts";
import type { Message } from "../wire/messages.ts";
import { FetchError } from "./errors.ts";
import type { PeerShare, SessionEvent, TimedEvent } from "./events.ts";
import { type Listener, type ListenerError, openListener } from "./listener.ts";
import type { MetadataPeer } from "./metadata_fetch.ts";
import {
  connectTcp,
  type HandshakeExchange,
  isPeerFault,
  KEEPALIVE_MS,
  PeerConn,
  type PeerConnHandler,
  readHandshake,
} from "./peer_conn.ts";
import { addCandidate, addSelf, ban, type Candidate, dialFailed, type PeerSource, takeDials } from "./peer_pool.ts";
import { type DiscoverySchedule, nextLookup, type PeerFinder } from "./discovery.ts";
import { isDone } from "./picker.ts";
import {
  addPeer,
  addWebSeeds,
  admit,
  complete,
  createSwarm,
  dropPeerById,
  eventFiles,
  filesCompleteAtStart,
  greet,
  MIN_PIECE_MEMORY_BYTES,
  MissingPieceError,
  peerMessage,
  peerShares,
  pieceOutcome,
  progressEvent,
  serveUploads,
  type Swarm,
  type SwarmIO,
  tick,
  wantsBlockDigests,
  wantsPeers,
  webSeedBlock,
  webSeedRunEnded,
} from "./swarm.ts";
import { fetchRun } from "./webseed_conn.ts";
import { RangeClient } from "./webseed_http.ts";
import type { Segment } from "../webseed/plan.ts";
import type { SeedLimits } from "./torrent_state.ts";
import { clearTimer, setRepeat, setTimer, type TimerHandle } from "../timers.ts";

export { CLIENT_NAME } from "./swarm.ts";
const PEER_ID_PREFIX = "-bF0100-";

/** The housekeeping tick: time-outs, new connections, rate limits, progress. */
const TICK_MS = 100;
/** How long a TCP connect may take. */
const CONNECT_TIMEOUT_MS = 5_000;
/** How long the peer's handshake may take once connected. */
const HANDSHAKE_TIMEOUT_MS = 5_000;
/** How often progress events are emitted. */
const PROGRESS_MS = 1_000;
/** How often the resume record is saved while a download runs. */
export const RESUME_SAVE_MS = 30_000;
/** How long storing and flushing may take at exit before the record is saved; past it, no record is saved. */
const SHUTDOWN_FLUSH_MS = 30_000;
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
  /** Peers found before the session (e.g. while fetching a magnet's metadata), with where they came from. */
  readonly discovered?: readonly { readonly address: PeerAddress; readonly source: PeerSource }[];
  /**
   * The peer whose connection fetched a magnet's metadata, taken over as it is instead of dialled again; the session
   * closes it if it cannot use it.
   */
  readonly adopt?: MetadataPeer;
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
  /**
   * The DHT (or any peer finder): looked up at start and then on a schedule, and told our port; never used for a
   * private torrent (BEP 27).
   */
  readonly dht?: PeerFinder;
  /** Exchange peers with peers (BEP 11 ut_pex; default true); never for a private torrent. */
  readonly pex?: boolean;
  /** Web seeds (BEP 19) besides the torrent's `url-list`. */
  readonly webSeeds?: readonly string[];
  /**
   * The verified pieces, once when they are first known and again after every piece that verifies (and is on disk):
   * what a stream of the data in order (`--stdout`) follows.
   */
  readonly onVerified?: (have: { has(index: number): boolean }) => void;
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
  /**
   * Called at the end when verified data is left without a resume record that names it (the disk did not finish
   * writing in time, or the record could not be written), so the next run checks the data on disk instead.
   */
  readonly onRecordLost?: () => void;
  /** Aborting ends the session cleanly (state saved, `stopped` announced). */
  readonly signal?: AbortSignal;
  /** Randomness (default Math.random). */
  readonly random?: () => number;
  /** Upload slots (default 4). */
  readonly uploadSlots?: number;
  /** Refuse to start unless the data on disk is already complete (`seed`): FetchError `incomplete`. */
  readonly requireComplete?: boolean;
  /**
   * The caller removes the resume record once the download is complete (`get` without seeding): the session then
   * saves none at completion or at its end, so the data is not flushed to the device for a record about to go (on a
   * disk, `fdatasync` of a fresh GiB takes most of a second). Records saved while the download ran stay as they are.
   */
  readonly dropRecordWhenComplete?: boolean;
  /** How often the resume record is saved while the download runs (default {@linkcode RESUME_SAVE_MS}; tests). */
  readonly resumeSaveMs?: number;
  /**
   * The largest block we serve (default {@linkcode BLOCK_BYTES}, 16 KiB): larger requests up to
   * `MAX_BLOCK_BYTES` are rejected, beyond it the peer is dropped.
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

class Session implements SwarmIO {
  readonly o: SessionOptions;
  readonly meta: Metainfo;
  readonly random: () => number;
  readonly peerId: Uint8Array;
  readonly t0 = performance.now();
  /** The latest session time handed out ({@linkcode Session.now}), so that the swarm's clock never goes back. */
  #clock = 0;
  readonly store: PieceStore;
  readonly writer: PieceWriter;
  sw: Swarm | null = null;
  /** The open connection of each peer, by the swarm's peer id. */
  readonly conns = new Map<number, PeerConn>();
  /** Web seed runs under way, by `seed/run`. */
  readonly runs = new Map<string, AbortController>();
  /** The web seeds' range requests: kept-alive connections of ours for plain http, else fetch(). */
  readonly rangeClient = new RangeClient();
  listener: Listener | null = null;
  ownListener = false;
  port = 0;
  announcer: Announcer | null = null;
  lastProgressEventAt = 0;
  lastResumeSaveAt = 0;
  /** A periodic resume save under way (its data flush runs off the main thread); awaited before the store closes. */
  checkpoint: Promise<void> | null = null;
  /** Bumped when a newer record is saved at once (completion): a checkpoint still flushing then writes nothing. */
  recordGeneration = 0;
  lastListenerWarningAt = -Infinity;
  discovery: DiscoverySchedule = { lastLookupAt: null, lastAnnounceAt: null, running: false };
  tickTimer: TimerHandle | undefined;
  finish: (r: { error?: unknown }) => void = () => {};
  finished = false;

  constructor(o: SessionOptions) {
    this.o = o;
    this.meta = o.meta;
    this.random = o.random ?? Math.random;
    this.peerId = o.peerId ?? makePeerId(this.random);
    this.store = PieceStore.open(o.meta, o.outDir, {
      selected: o.selected,
      readOnly: o.requireComplete, // seeding complete data writes nothing: it works on a read-only mount
      onWarning: (e, code) => this.emit({ event: "warning", message: e.message, ...(code ? { code } : {}) }),
    });
    this.writer = new PieceWriter(
      this.store,
      (index, ok, digests, data) => this.safely(() => this.onPieceOutcome(index, ok, digests, data)),
      (e) => this.finish({ error: e }),
    );
  }

  now(): number {
    return this.#at(performance.now());
  }

  /** The session time of `wall` (a `performance.now()` reading), never earlier than a time handed out before. */
  #at(wall: number): number {
    const t = wall - this.t0;
    if (t > this.#clock) this.#clock = t;
    return this.#clock;
  }

  // ---- SwarmIO: what the swarm asks of the runtime -----------------------------------------------------------------

  send(peer: number, m: Message): void {
    this.conns.get(peer)?.send(m);
  }

  sendBlock(peer: number, index: number, begin: number, block: Uint8Array): void {
    this.conns.get(peer)?.sendPiece(index, begin, block);
  }

  backlog(peer: number): number {
    return this.conns.get(peer)?.backlog ?? 0;
  }

  close(peer: number): void {
    this.conns.get(peer)?.close();
    this.conns.delete(peer);
  }

  submit(index: number, buf: Uint8Array): void {
    const expected = this.meta.pieceHashes.subarray(index * 20, index * 20 + 20);
    // block digests come back for failed pieces, and for passing ones when blame needs them: the writer hashes them
    this.writer.submit(index, buf, expected, { blockDigests: this.sw !== null && wantsBlockDigests(this.sw, index) });
  }

  readPiece(index: number, into: Uint8Array): Uint8Array | null {
    return this.store.readPiece(index, into);
  }

  emit(e: SessionEvent): void {
    this.o.onEvent?.({ ...e, t: Math.round(this.now()) } as TimedEvent);
  }

  fetchRun(seed: number, run: number, segments: readonly Segment[]): void {
    const sw = this.sw;
    if (!sw) return;
    const ac = new AbortController();
    this.runs.set(`${seed}/${run}`, ac);
    fetchRun(
      this.meta,
      segments,
      (piece, begin, data) => {
        if (!this.finished) this.safely(() => webSeedBlock(sw, seed, piece, begin, data, this.now(), this));
      },
      ac.signal,
      this.rangeClient,
    ).then((end) => {
      this.runs.delete(`${seed}/${run}`);
      if (this.finished) return;
      const kind = end.kind;
      this.safely(() =>
        webSeedRunEnded(
          sw,
          seed,
          run,
          kind === "missing"
            ? { kind, fileIndex: end.fileIndex, reason: end.reason }
            : kind === "retry"
            ? { kind, afterMs: end.afterMs }
            : { kind },
          this.now(),
          this,
        )
      );
    }, (e) => this.finish({ error: e }));
  }

  abortRun(seed: number, run: number): void {
    this.runs.get(`${seed}/${run}`)?.abort();
  }

  completed(): void {
    // seeding complete data opens nothing for writing: ensureFiles would cut a file longer than the torrent says
    if (!this.o.requireComplete) this.store.ensureFiles();
    this.recordGeneration++; // a checkpoint under way holds fewer pieces than what completion saves
    if (this.sw && !this.o.dropRecordWhenComplete) this.saveCheckpoint(this.sw);
    this.lastResumeSaveAt = this.now();
    this.announcer?.completed();
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
      files: eventFiles(m, selected),
    });
    let error: unknown = null;
    try {
      let lastCheckEvent = -Infinity; // the first one at once: a check has begun
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
      if (this.o.signal?.aborted) throw this.o.signal.reason;
      this.store.noteHave(have); // its files are never made again or extended with zeros
      this.openListener();
      const sw = this.sw = createSwarm({
        ...this.o,
        have,
        wanted,
        port: this.port,
        random: this.random,
        now: this.now(),
      });
      // the first pieces' buffers, their memory mapped in by the writer thread while the swarm gets its peers (what a
      // download starts with, MIN_PIECE_MEMORY_BYTES, and no more than the pieces missing)
      const missing = sw.picker.remaining;
      if (!this.o.requireComplete && missing > 0) {
        const count = Math.min(Math.floor(MIN_PIECE_MEMORY_BYTES / m.pieceLength), missing);
        this.writer.prepare(m.pieceLength, count, (buf) => sw.bufferPool.give(buf));
      }
      this.emit({
        event: "resume",
        source,
        verified: sw.ts.verifiedBytes,
        pieces: have.count,
        missing: sw.picker.remaining,
      });
      for (const e of filesCompleteAtStart(sw)) this.emit(e);
      this.o.onVerified?.(sw.picker.have);
      if (this.o.requireComplete && !isDone(sw.picker)) {
        throw new FetchError(
          "incomplete",
          `${sw.picker.remaining} of ${wanted.count} pieces are missing or damaged in ${this.store.outDir}`,
        );
      }
      await this.runSwarm(sw);
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

  /** Runs the swarm until done; resolves or rejects through `finish`. */
  runSwarm(sw: Swarm): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.finish = (r) => {
        if (this.finished) return;
        this.finished = true;
        sw.stopped = true;
        if (r.error !== undefined) reject(r.error);
        else resolve();
      };
      this.o.signal?.addEventListener("abort", () => this.finish({ error: this.o.signal?.reason }), { once: true });
      if (isDone(sw.picker)) {
        complete(sw, this.now(), this);
        if (sw.stopped) return this.finish({});
      }
      addWebSeeds(sw, this.o.webSeeds ?? [], this.now(), this);
      this.startNetwork(sw);
      this.tickTimer = setRepeat(() => this.safely(() => this.tick(sw)), TICK_MS);
    });
  }

  /** Runs `fn` for one peer: a fault of the peer drops it; a disk failure ends the session; a bug costs the peer. */
  forPeer(id: number, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.onPeerFault(id, e);
    }
  }

  onPeerFault(id: number, e: unknown): void {
    const sw = this.sw;
    if (!sw) return;
    if (isPeerFault(e)) {
      dropPeerById(sw, id, e instanceof Error ? e.message : String(e), this.now(), this);
    } else if (e instanceof StorageError) {
      this.finish({ error: e });
    } else if (e instanceof MissingPieceError) {
      this.finish({ error: new StorageError("read", this.store.outDir, e.message) });
    } else {
      this.reportBug("handling a peer", e, sw.peers.get(id)?.key);
      dropPeerById(sw, id, "internal error", this.now(), this);
    }
  }

  safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.finish({ error: e });
    }
  }

  openListener(): void {
    if (this.o.listener) {
      this.listener = this.o.listener;
      this.listener.onError = (e) => this.onListenerError(e);
    } else if (this.o.port !== null) {
      this.listener = openListener(this.o.port, { onError: (e) => this.onListenerError(e) });
      this.ownListener = true;
    }
    if (this.listener) this.port = this.listener.port;
  }

  /** The listener's accept failures (e.g. out of descriptors) are warnings, at most one per 10 s; bugs are bugs. */
  onListenerError(e: ListenerError): void {
    if (e.code === "bug") {
      this.reportBug("listener", e);
      return;
    }
    const now = this.now();
    if (now - this.lastListenerWarningAt < 10_000) return;
    this.lastListenerWarningAt = now;
    this.emit({ event: "warning", message: `Cannot accept incoming peers: ${e.message}` });
  }

  startNetwork(sw: Swarm): void {
    const m = this.meta;
    if (this.listener) {
      for (const host of ["127.0.0.1", "::1", "localhost"]) addSelf(sw.pool, { host, port: this.port });
      this.listener.register(m.infoHashHex, (conn, theirs, leftover, from) => {
        try {
          return this.acceptIncoming(sw, conn, theirs, leftover, from);
        } catch (e) {
          this.reportBug("accepting a peer", e, formatAddress(from));
          return false;
        }
      });
      this.emit({ event: "listening", port: this.port });
    }
    for (const a of this.o.peers ?? []) addCandidate(sw.pool, a, "manual");
    for (const d of this.o.discovered ?? []) addCandidate(sw.pool, d.address, d.source);
    if (this.o.adopt) this.adoptPeer(sw, this.o.adopt);
    const tiers: string[][] = this.o.useTorrentTrackers === false ? [] : m.announce.map((t) => [...t]);
    for (const url of this.o.trackers ?? []) tiers.push([url]);
    if (tiers.length > 0) {
      this.announcer = new Announcer({
        tiers,
        infoHash: m.infoHash,
        peerId: this.peerId,
        port: this.port || 6881,
        random: this.random,
        stats: () => ({
          uploaded: sw.ts.uploaded,
          downloaded: sw.ts.downloaded,
          left: sw.ts.wantedBytes - sw.ts.verifiedBytes,
        }),
        onPeers: (peers, url) => {
          this.emit({ event: "tracker", url, peers: peers.length });
          for (const p of peers) addCandidate(sw.pool, p, "tracker");
          this.connectMore(sw);
        },
        onError: (url, err) => this.emit({ event: "tracker", url, error: err.message }),
        onWarning: (url, message) => this.emit({ event: "tracker", url, warning: message }),
        onBug: (err) => this.finish({ error: err }), // a bug of ours, not the tracker's: exit 1
      });
      this.announcer.start();
    }
    this.connectMore(sw);
  }

  async shutdown(): Promise<void> {
    clearTimer(this.tickTimer);
    for (const ac of this.runs.values()) ac.abort();
    this.rangeClient.close();
    if (this.listener) {
      this.listener.unregister(this.meta.infoHashHex);
      if (this.ownListener) await this.listener.close();
    }
    const sw = this.sw;
    if (sw) { for (const id of [...sw.peers.keys()]) dropPeerById(sw, id, "shutting down", this.now(), this); }
    const stopping = this.announcer?.stop(3000);
    // a device that hangs must not hold the exit (nor a signal): the pieces still being stored, the checkpoint under
    // way and the last flush share one bound, past which no record is saved and the next run hashes the data
    const deadline = performance.now() + SHUTDOWN_FLUSH_MS;
    await this.writer.drain(10_000); // pieces already received are verified and stored before the state is saved
    const settled = await settlesBy(this.checkpoint ?? Promise.resolve(), deadline); // a failure already ended it
    try {
      const dropped = this.o.dropRecordWhenComplete && sw?.ts.completeAt !== null;
      if (sw && sw.picker.have.count > 0 && !dropped) {
        // the record claims only data on the device: the writer thread flushes what it wrote first
        if (settled && await settlesBy(this.writer.flush(), deadline)) {
          // a record that cannot be saved is a warning with the code (once per message: an earlier checkpoint's may
          // have said it already), and the caller is told
          if (!saveResume(this.store, this.meta, sw.picker.have, { flushed: true, code: "no-resume-record" })) {
            this.o.onRecordLost?.();
          }
        } else {
          this.o.onRecordLost?.();
          this.emit({
            event: "warning",
            code: "no-resume-record",
            message: `The disk did not finish writing within ${SHUTDOWN_FLUSH_MS / 1000} s: no resume record saved, ` +
              "the next run checks the data instead",
          });
        }
      }
    } finally {
      this.writer.close();
      this.store.close();
      await stopping;
    }
  }

  result(): SessionResult {
    const sw = this.sw;
    const peers: PeerShare[] = sw ? peerShares(sw) : [];
    const r: SessionResult = {
      complete: sw !== null && isDone(sw.picker),
      downloaded: sw?.ts.downloaded ?? 0,
      uploaded: sw?.ts.uploaded ?? 0,
      wasted: sw?.ts.wasted ?? 0,
      verified: sw?.ts.verifiedBytes ?? 0,
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
      path: [this.store.outDir, this.meta.name].join("/"),
      peers,
      sources: sw ? { ...sw.pool.found } : {},
    });
    return r;
  }

  // ---- peers: dialling and accepting -----------------------------------------------------------------------------

  connectMore(sw: Swarm): void {
    if (this.finished || !wantsPeers(sw)) return;
    // seeds dial out too: a peer that will not accept our connections (Transmission on loopback) is reached that way
    for (const c of takeDials(sw.pool, this.now())) {
      this.dial(sw, c).catch((e) => this.reportBug("dialling", e, c.key));
    }
  }

  ourHandshake(): Handshake {
    return {
      reserved: reservedBits({ fast: true, extended: true }),
      infoHash: this.meta.infoHash,
      peerId: this.peerId,
    };
  }

  /** Dials one candidate; every outcome is reported to the pool exactly once. */
  async dial(sw: Swarm, c: Candidate): Promise<void> {
    let conn: Deno.TcpConn | null = null;
    let exchange: HandshakeExchange;
    try {
      conn = await connectTcp(c.address, CONNECT_TIMEOUT_MS);
      exchange = await readHandshake(conn, HANDSHAKE_TIMEOUT_MS, this.ourHandshake());
    } catch (e) {
      closeQuietly(conn);
      dialFailed(sw.pool, c.key, this.now());
      if (!isPeerFault(e)) this.reportBug("dialling", e, c.key);
      return;
    }
    const { theirs, leftover } = exchange;
    if (this.finished || !equalBytes(theirs.infoHash, this.meta.infoHash) || equalBytes(theirs.peerId, this.peerId)) {
      closeQuietly(conn);
      dialFailed(sw.pool, c.key, this.now());
      if (equalBytes(theirs.peerId, this.peerId)) ban(sw.pool, c.address); // ourselves, listed by a tracker
      return;
    }
    this.startPeer(sw, conn, c.address, c.source, theirs, leftover);
  }

  acceptIncoming(
    sw: Swarm,
    conn: Deno.TcpConn,
    theirs: Handshake,
    leftover: Uint8Array,
    from: PeerAddress,
  ): boolean {
    if (this.finished || equalBytes(theirs.peerId, this.peerId)) return false;
    if (!admit(sw, from, this.now(), this)) return false;
    this.startPeer(sw, conn, from, "incoming", theirs, leftover, this.ourHandshake());
    return true;
  }

  /** Starts a peer whose handshake completed: the swarm takes it, then its connection's read loop runs. */
  startPeer(
    sw: Swarm,
    conn: Deno.TcpConn,
    address: PeerAddress,
    source: PeerSource,
    theirs: Handshake,
    leftover: Uint8Array,
    /** Our handshake, still to send (incoming connections); undefined when it went out before theirs came in. */
    ours?: Handshake,
  ): void {
    const pc = new PeerConn(conn, address);
    // our handshake (incoming) goes out before anything else, then the opening messages the swarm sends in addPeer
    if (ours) pc.sendRaw(encodeHandshake(ours));
    this.attachPeer(sw, pc, address, source, theirs, ours !== undefined, false, (h) => ({
      replay: [],
      running: pc.run(h, leftover),
    }));
  }

  /**
   * Takes over the connection of the peer that sent a magnet's metadata: the swarm adds it, replays what it sent
   * meanwhile (its bitfield, extended handshake, …) and reads on from where the fetch stopped. It already had our
   * handshake, `have-none` and an extended handshake from the fetch, so only what changed is said again. One the
   * swarm cannot take (closed meanwhile, or found through the DHT for a torrent that turned out private) is closed,
   * and its address stays a candidate to dial like any other (a private torrent's only from a tracker or by hand).
   */
  adoptPeer(sw: Swarm, m: MetadataPeer): void {
    const privateDht = this.meta.private && m.source === "dht"; // BEP 27: no DHT peers for a private torrent
    if (!equalBytes(m.theirs.infoHash, this.meta.infoHash) || privateDht) {
      m.pc.close();
      return;
    }
    addCandidate(sw.pool, m.address, m.source);
    this.attachPeer(sw, m.pc, m.address, m.source, m.theirs, false, true, (h) => {
      const t = m.take(h);
      return { replay: t.messages, running: t.running };
    });
  }

  /**
   * The swarm takes peer `pc`: `addPeer`, our opening messages (`greet`; `opened` when the peer had one from us
   * already), then `start` runs its read loop with this session's handler, or hands it the loop of a connection that
   * was running already, with the messages that came before (`replay`, handled first). A peer the swarm refuses is
   * closed.
   */
  attachPeer(
    sw: Swarm,
    pc: PeerConn,
    address: PeerAddress,
    source: PeerSource,
    theirs: Handshake,
    incoming: boolean,
    opened: boolean,
    start: (handler: PeerConnHandler) => { readonly replay: Iterable<Message>; readonly running: Promise<void> },
  ): void {
    let id: number | null = null;
    try {
      if (this.finished || pc.closed) {
        pc.close();
        return;
      }
      id = addPeer(
        sw,
        {
          address,
          source,
          incoming,
          client: clientName(theirs.peerId),
          fast: supportsFast(theirs.reserved),
          extended: supportsExtended(theirs.reserved),
        },
        this.now(),
        this,
      );
      if (id === null) {
        pc.close(); // our dial and its connection to us crossed: keep the first
        return;
      }
      this.conns.set(id, pc);
      greet(sw, id, this, opened);
    } catch (e) {
      this.reportBug("starting a peer", e, formatAddress(address));
      pc.close();
      if (id !== null) dropPeerById(sw, id, "internal error", this.now(), this);
      return;
    }
    const peerId = id;
    const handler: PeerConnHandler = {
      // a message's time is its read's (one clock reading per read, not per message: thousands of blocks a second)
      onMessage: (msg) => {
        try {
          peerMessage(sw, peerId, msg, this.#at(pc.lastReadAt), this);
        } catch (e) {
          this.onPeerFault(peerId, e);
        }
      },
      onDrain: () => this.forPeer(peerId, () => serveUploads(sw, peerId, this.now(), this)),
    };
    const { replay, running } = start(handler);
    for (const msg of replay) {
      if (!sw.peers.has(peerId)) break; // what it sent already broke the protocol
      handler.onMessage(msg);
    }
    running.then(
      () => dropPeerById(sw, peerId, "connection closed", this.now(), this),
      (e) => {
        if (!isPeerFault(e)) this.reportBug("reading from a peer", e, formatAddress(address));
        dropPeerById(sw, peerId, e instanceof Error ? e.message : String(e), this.now(), this);
      },
    );
  }

  // ---- the writer thread and the clock -----------------------------------------------------------------------------

  /** The writer thread hashed piece `index`: `ok` means it matched and is on disk; `data` is its buffer, handed back. */
  onPieceOutcome(index: number, ok: boolean, digests: Uint8Array | undefined, data: Uint8Array): void {
    const sw = this.sw;
    if (!sw) return;
    if (ok) this.store.noteVerified(index); // before completion's checks of the files
    pieceOutcome(sw, index, ok, digests, data, this.now(), this);
    if (ok) this.o.onVerified?.(sw.picker.have);
    if (sw.stopped) this.finish({});
  }

  /**
   * Saves the resume record of the pieces verified now, once the writer thread has flushed their data: on a disk the
   * flush of what was written since the last save can take a second, and peers, timers and the writer thread's replies
   * must not wait for it on the main thread. A flush that fails ends the session (that is the data, not the record).
   * A newer save (completion's) makes one still flushing write nothing.
   */
  saveCheckpoint(sw: Swarm): void {
    const have = sw.picker.have.clone();
    const generation = this.recordGeneration;
    const saving: Promise<void> = this.writer.flush()
      .then(() => {
        if (generation === this.recordGeneration) saveResume(this.store, this.meta, have, { flushed: true });
      })
      .catch((e) => this.finish({ error: e }))
      .finally(() => {
        if (this.checkpoint === saving) this.checkpoint = null;
      });
    this.checkpoint = saving;
  }

  tick(sw: Swarm): void {
    if (this.finished) return;
    const now = this.now();
    const wall = performance.now();
    // a keep-alive after 90 s without a write; none while bytes still wait to be written (a write that hangs)
    for (const pc of this.conns.values()) {
      if (wall - pc.lastWriteAt > KEEPALIVE_MS && pc.backlog === 0) pc.send({ type: "keep-alive" });
    }
    const d = tick(sw, now, this, (p, e) => this.onPeerFault(p.id, e));
    this.connectMore(sw);
    if (sw.peers.size < LOW_PEERS && sw.ts.completeAt === null) this.announcer?.needPeers();
    this.discover(sw, now);
    if (now - this.lastProgressEventAt >= PROGRESS_MS) {
      this.lastProgressEventAt = now;
      this.emit(progressEvent(sw, now));
    }
    if (
      sw.ts.completeAt === null && now - this.lastResumeSaveAt >= (this.o.resumeSaveMs ?? RESUME_SAVE_MS) &&
      this.checkpoint === null
    ) {
      this.lastResumeSaveAt = now;
      this.saveCheckpoint(sw);
    }
    switch (d.kind) {
      case "continue":
        return;
      case "stop":
        this.finish({});
        return;
      case "timeout":
        this.finish({ error: this.limitError(sw, "timeout", `Timed out after ${fmtMs(d.afterMs)}`) });
        return;
      case "stalled": {
        const why = sw.peers.size === 0 && sw.pool.candidates.size === 0
          ? "no peers found"
          : `no piece verified for ${fmtMs(d.afterMs)} (${sw.peers.size} peers connected)`;
        this.finish({ error: this.limitError(sw, "stalled", `Stalled: ${why}`) });
        return;
      }
    }
  }

  /** Runs a DHT lookup when the schedule says so (never for a private torrent); its peers join the pool. */
  discover(sw: Swarm, now: number): void {
    const dht = this.o.dht;
    if (!dht || this.meta.private || this.finished || !wantsPeers(sw)) return;
    const next = nextLookup(this.discovery, now, {
      peers: sw.peers.size,
      downloading: sw.ts.completeAt === null,
      canAnnounce: this.port > 0,
    });
    if (!next) return;
    this.discovery = {
      ...this.discovery,
      running: true,
      lastAnnounceAt: next.announce ? now : this.discovery.lastAnnounceAt,
    };
    dht.findPeers(this.meta.infoHash, {
      announcePort: next.announce ? this.port : null,
      onPeers: (peers) => {
        if (this.finished) return;
        for (const p of peers) addCandidate(sw.pool, p, "dht");
        this.connectMore(sw);
      },
    }).then((r) => {
      this.discovery = { ...this.discovery, running: false, lastLookupAt: this.now() };
      if (this.finished) return;
      const st = dht.stats();
      this.emit({
        event: "dht",
        nodes: st.nodes,
        good: st.good,
        peers: r.peers,
        queries: r.queries,
        answered: r.answered,
        announced: next.announce,
      });
    }, (e) => this.finish({ error: e }));
  }

  limitError(sw: Swarm, code: "timeout" | "stalled", message: string): FetchError {
    if (sw.ts.hashFailures > 0 && sw.pool.bans > 0) {
      return new FetchError(
        "bad-data",
        `${message}; ${sw.ts.hashFailures} pieces failed their hash and ${sw.pool.bans} peers were banned`,
      );
    }
    if (sw.peers.size === 0 && sw.pool.candidates.size === 0) {
      const t = this.announcer?.status.lastError;
      return new FetchError("no-peers", t ? `${message}; last tracker error: ${t.message}` : message);
    }
    return new FetchError(code, message);
  }
}

function closeQuietly(conn: Deno.Conn | null): void {
  try {
    conn?.close();
  } catch { /* already closed, e.g. by a time-out */ }
}

function fmtMs(ms: number): string {
  return ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}

/**
 * Whether `work` settled before `deadline` (a `performance.now()` time).
 * @throws what `work` rejects with, when it does in time.
 */
async function settlesBy(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: TimerHandle | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimer(() => resolve(false), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    clearTimer(timer);
  }
}
