/**
 * Fetching a torrent's info dictionary from peers (BEP 9) for a magnet link or a bare info-hash. Peers come from the
 * magnet's trackers, `x.pe` and `--peer`; a few are connected at once, and the pieces are asked of them and put
 * together by one {@linkcode stepAssembly} state machine (`metadata_assembly.ts`), which keeps one claimed size in
 * memory at a time and delivers the bytes only once their SHA-1 is the info-hash. This module does the IO: it turns
 * the machine's actions into messages and closed connections, and peers' messages into its events.
 * @module
 */
import { formatAddress, type PeerAddress } from "../address.ts";
import { Announcer } from "../tracker/announcer.ts";
import { decodeExtHandshake, encodeExtHandshake } from "../wire/extension.ts";
import { type Handshake, reservedBits, supportsExtended, supportsFast } from "../wire/handshake.ts";
import type { Message } from "../wire/messages.ts";
import { decodeMetadataMessage, encodeMetadataMessage, UT_METADATA } from "../wire/metadata.ts";
import type { PeerFinder } from "./discovery.ts";
import { FetchError } from "./errors.ts";
import { isPeerFault } from "./listener.ts";
import {
  type AssemblyAction,
  type AssemblyEvent,
  type MetadataAssembly,
  newAssembly,
  stepAssembly,
} from "./metadata_assembly.ts";
import { connectTcp, KEEPALIVE_MS, PeerConn, type PeerConnHandler, readHandshake } from "./peer_conn.ts";
import { equalBytes } from "../bytes.ts";
import { MAX_PIECES } from "../limits.ts";
import { clearTimer, setRepeat, setTimer, sleep } from "../timers.ts";

/** The extended-message id we ask peers to use for ut_metadata messages sent to us. */
export const OUR_UT_METADATA_ID = 2;
/** Peers connected for metadata at once. */
const PARALLEL = 8;
/**
 * How long a peer may go without offering metadata (after connecting) or without sending a piece while it has
 * pieces asked of it. A peer waiting because it claims another size than the one being assembled is kept.
 */
const PEER_TIMEOUT_MS = 20_000;
/** Addresses waiting to be dialled, at most (a hostile DHT node or tracker may name thousands a minute). */
const MAX_QUEUED_PEERS = 1_000;
/** Between DHT lookups while the metadata has not come. */
export const DHT_RETRY_MS = 15_000;
/** How often the peers' time-outs are checked. */
const CHECK_EVERY_MS = 1_000;
/**
 * A peer's messages kept for the download while its connection waits to be handed over, at most (and
 * {@linkcode MAX_LOGGED_BYTES} of their payloads): one that sends more is closed at the hand-over and dialled afresh.
 * `have`s are not among them: they are kept as a set of pieces (at most {@linkcode MAX_PIECES}, a bit each) and
 * replayed after the other messages, so a leecher announcing its pieces while the download checks the data on disk
 * cannot fill the log.
 */
const MAX_LOGGED_MESSAGES = 1024;
const MAX_LOGGED_BYTES = 1024 * 1024;

/**
 * The peer that sent the metadata, handed to the download with its connection open instead of closed and dialled
 * again (a round trip and a handshake saved, and no second connection that a peer may refuse so soon). The receiver
 * owns the connection: it takes it ({@linkcode MetadataPeer.take}) or closes it. Until then the fetch keeps what the
 * peer sends (bounded: a peer that sends more is closed) and a keep-alive going.
 */
export interface MetadataPeer {
  readonly pc: PeerConn;
  readonly address: PeerAddress;
  /** Where its address came from: the DHT, a tracker, or the magnet's `x.pe` and `--peer` (`manual`). */
  readonly source: "dht" | "tracker" | "manual";
  readonly theirs: Handshake;
  /**
   * Takes the connection over, once: `handler` gets its messages from the next one on. Returns what it sent before
   * (copies, oldest first; ut_metadata messages and blocks left out), to replay at once: its bitfield or have-all, its
   * extended handshakes, chokes, then its haves, one per piece, made as the replay reads them (up to MAX_PIECES of
   * them: a peer that named two million pieces is dropped at the first one past the torrent, not held in memory). It had from us our handshake, `have-none` if it speaks the fast extension, and
   * an extended handshake offering ut_metadata. `running` is its read loop, which settles when the connection ends.
   */
  take(handler: PeerConnHandler): { readonly messages: Iterable<Message>; readonly running: Promise<void> };
}

/** How often a handed-over connection not yet taken is checked for a keep-alive ({@linkcode KEEPALIVE_MS}). */
const HANDED_KEEPALIVE_CHECK_MS = 10_000;

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
  /** The DHT (or any peer finder), asked for peers at once and every {@linkcode DHT_RETRY_MS} until done. */
  readonly dht?: PeerFinder;
  /** Peers found on the way (DHT, trackers), for the download that follows to start from. */
  readonly onPeers?: (peers: readonly PeerAddress[], source: "dht" | "tracker") => void;
  /**
   * Takes the connection of a peer that sent the metadata (the one that sent a piece last), called before the fetch
   * resolves; without it every connection is closed.
   */
  readonly onHandOver?: (peer: MetadataPeer) => void;
}

/** One connected peer, as the runtime sees it. */
interface Link {
  readonly pc: PeerConn;
  readonly address: PeerAddress;
  readonly theirs: Handshake;
  /** Its messages for a hand-over, `have`s aside; null once there were too many. */
  log: Message[] | null;
  logBytes: number;
  /** The pieces its `have`s named, a bit each (grown as needed, at most MAX_PIECES bits); null before the first. */
  haves: Uint8Array | null;
  running: Promise<void> | null;
  handedOver: boolean;
  /** The id the peer wants for ut_metadata messages it receives (0 until its extended handshake). */
  theirId: number;
  /** When it connected or last sent a metadata piece (`performance.now()`). */
  since: number;
}

/**
 * Fetches and checks the info dictionary; resolves with its raw bytes.
 * @throws {FetchError} `timeout` or `no-peers` when no peer delivers within `timeoutMs`; the signal's reason on abort;
 *   anything that is not a peer's or the network's fault (a bug).
 */
export function fetchMetadata(o: MetadataFetchOptions): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const tried = new Set<string>();
    const queue: PeerAddress[] = [];
    /** Peers taken from the queue and dialled. */
    let dialled = 0;
    const links = new Map<string, Link>();
    let asm: MetadataAssembly = newAssembly(o.infoHash);
    let active = 0;
    let done = false;
    let announcer: Announcer | null = null;
    /** Aborted when the fetch ends: its waits between DHT lookups end with it. */
    const stopped = new AbortController();
    const finish = (err: unknown, bytes?: Uint8Array) => {
      if (done) return;
      done = true;
      stopped.abort();
      clearTimer(timer);
      clearTimer(checker);
      o.signal?.removeEventListener("abort", onAbort);
      if (bytes && o.onHandOver) handOver(o.onHandOver);
      asm = newAssembly(o.infoHash); // what it held is delivered or useless; a handed-over link keeps this closure
      for (const l of links.values()) if (!l.handedOver) l.pc.close();
      const stopping = announcer ? announcer.stop(1000) : Promise.resolve();
      stopping.then(() => (bytes ? resolve(bytes) : reject(err)));
    };
    /** Where each address came from, for a hand-over. */
    const sources = new Map<string, MetadataPeer["source"]>();
    const handOver = (to: (peer: MetadataPeer) => void) => {
      let best: Link | null = null;
      for (const l of links.values()) {
        if (l.theirId === 0 || l.pc.closed || l.log === null || l.running === null) continue;
        if (best === null || l.since > best.since) best = l;
      }
      if (best === null || best.running === null) return;
      const link = best;
      const running = best.running;
      link.handedOver = true;
      // a long check of data already on disk may come before the download takes it: the peer must not time us out
      const keepAlive = setRepeat(() => {
        if (link.pc.closed || link.log === null) clearTimer(keepAlive);
        else if (performance.now() - link.pc.lastWriteAt >= KEEPALIVE_MS && link.pc.backlog === 0) {
          link.pc.send({ type: "keep-alive" });
        }
      }, HANDED_KEEPALIVE_CHECK_MS);
      const stop = () => clearTimer(keepAlive);
      running.then(stop, stop); // the connection ended
      let taken = false;
      to({
        pc: link.pc,
        address: link.address,
        source: sources.get(formatAddress(link.address)) ?? "manual",
        theirs: link.theirs,
        take: (handler) => {
          if (taken) throw new Error("a metadata peer can be taken once");
          taken = true;
          clearTimer(keepAlive);
          const messages = link.log === null ? [] : replayOf(link.log, link.haves);
          link.log = null; // the download has them now
          link.haves = null;
          link.pc.handOver(handler);
          return { messages, running };
        },
      });
    };
    const onAbort = () => finish(o.signal?.reason);
    o.signal?.addEventListener("abort", onAbort, { once: true });
    // what was tried, for the one line that says why the metadata never came
    const tracker = { peers: 0, errors: new Map<string, string>() };
    const dhtTried = { lookups: 0, peers: 0 };
    const timer = setTimer(() => {
      const parts = [
        tried.size === 0
          ? "no peers found"
          : `no peer sent all of it (${plural(tried.size, "peer")} found, ${dialled} dialled)`,
      ];
      if (o.dht) {
        // counted from the node itself, so lookups still under way (nodes that never answer take 10 s) count too
        const st = o.dht.stats(); // since the DHT started (its bootstrap included)
        const asked = st.queriesOut;
        const answered = st.answers;
        parts.push(
          `DHT: ${plural(dhtTried.lookups, "lookup")} sent ${plural(asked, "query", "queries")} ` +
            `(${answered} answered, ${plural(st.good, "good node")} known), ${plural(dhtTried.peers, "peer")} found`,
        );
      } else parts.push("DHT off");
      if (o.tiers.length > 0) {
        const errs = [...tracker.errors].map(([url, m]) => `${url}: ${m}`);
        parts.push(`trackers gave ${plural(tracker.peers, "peer")}${errs.length > 0 ? ` (${errs.join("; ")})` : ""}`);
      } else parts.push("no trackers");
      finish(
        new FetchError(
          tried.size === 0 ? "no-peers" : "timeout",
          `Could not fetch the metadata in ${Math.round(o.timeoutMs / 1000)} s: ${parts.join("; ")}`,
        ),
      );
    }, o.timeoutMs);
    const checker = setRepeat(() => {
      const now = performance.now();
      for (const [key, l] of links) {
        const p = asm.peers.get(key);
        if (p !== undefined && p.asked.size === 0) l.since = now; // waiting: it claims a size not assembled now
        else if (now - l.since > PEER_TIMEOUT_MS) l.pc.close();
      }
      apply({ type: "tick" }); // a stalled peer's pieces go to others; a size whose turn is over gives way
    }, CHECK_EVERY_MS);

    /** Steps the assembly and performs its actions. */
    const apply = (ev: AssemblyEvent) => {
      if (done) return;
      try {
        const [next, actions] = stepAssembly(asm, ev, performance.now());
        asm = next;
        for (const a of actions) act(a);
      } catch (e) {
        // a bug of ours: the fetch ends with it (exit 1), not the process on an uncaught throw in a timer, nor a later
        // step's complaint that the state it left was stepped twice
        finish(e);
      }
    };
    const act = (a: AssemblyAction) => {
      switch (a.type) {
        case "request": {
          const l = links.get(a.peer);
          const payload = encodeMetadataMessage({ type: "request", piece: a.piece });
          if (l && l.theirId !== 0) l.pc.send({ type: "extended", id: l.theirId, payload });
          return;
        }
        case "drop":
          o.onNote?.(`dropping ${a.peer}: it ${a.reason}`);
          links.get(a.peer)?.pc.close();
          return;
        case "mismatch":
          o.onNote?.(`${a.size} bytes of metadata from ${a.senders.join(", ")} do not match the info-hash`);
          return;
        case "set-aside":
          o.onNote?.(`metadata of ${a.size} bytes set aside for now: ${a.reason}`);
          return;
        case "done":
          finish(null, a.info);
          return;
      }
    };

    const add = (a: PeerAddress, source: MetadataPeer["source"]) => {
      const key = formatAddress(a);
      if (tried.has(key) || done) return;
      // a bounded queue: an address past it is not remembered, so it may be queued when it is named again
      if (queue.length >= MAX_QUEUED_PEERS) return;
      tried.add(key);
      sources.set(key, source);
      queue.push(a);
      pump();
    };
    const pump = () => {
      while (!done && active < PARALLEL && queue.length > 0) {
        const a = queue.shift() as PeerAddress;
        active++;
        dialled++;
        askPeer(a).catch((e) => {
          if (!isPeerFault(e)) finish(e); // a bug: let it out rather than pass it off as a bad peer
        }).finally(() => {
          active--;
          pump();
        });
      }
    };

    const askPeer = async (a: PeerAddress): Promise<void> => {
      const key = formatAddress(a);
      const conn = await connectTcp(a, 5_000);
      let theirs;
      let leftover;
      try {
        ({ theirs, leftover } = await readHandshake(conn, 5_000, {
          reserved: reservedBits({ fast: true, extended: true }),
          infoHash: o.infoHash,
          peerId: o.peerId,
        }));
      } catch (e) {
        try {
          conn.close();
        } catch { /* closed on time-out */ }
        throw e;
      }
      if (done || !supportsExtended(theirs.reserved) || !equalBytes(theirs.infoHash, o.infoHash)) {
        conn.close();
        return;
      }
      const pc = new PeerConn(conn, a);
      const link: Link = {
        pc,
        address: a,
        theirs,
        log: [],
        logBytes: 0,
        haves: null,
        running: null,
        handedOver: false,
        theirId: 0,
        since: performance.now(),
      };
      links.set(key, link);
      o.onNote?.(`asking ${key} for the metadata`);
      // we have no piece (BEP 6 wants this first), so the connection can go on into the download as it is
      if (supportsFast(theirs.reserved)) pc.send({ type: "have-none" });
      pc.send({
        type: "extended",
        id: 0,
        payload: encodeExtHandshake({ m: new Map([[UT_METADATA, OUR_UT_METADATA_ID]]), v: o.clientName }),
      });
      const onMessage = (m: Message) => {
        if (m.type !== "extended" || m.id !== OUR_UT_METADATA_ID) keep(link, m);
        if (m.type !== "extended" || done) return; // after the fetch, only kept for the download
        if (m.id === 0) {
          const h = decodeExtHandshake(m.payload);
          const theirId = h.m.get(UT_METADATA);
          if (link.theirId !== 0) {
            // a later handshake says only what changed (BEP 10): ut_metadata moved, was turned off, or is not named
            if (theirId === 0) pc.close();
            else if (theirId !== undefined) link.theirId = theirId;
            return;
          }
          if (!theirId || h.metadataSize === undefined) {
            pc.close(); // cannot give us metadata
            return;
          }
          link.theirId = theirId;
          apply({ type: "offer", peer: key, size: h.metadataSize });
          return;
        }
        if (m.id !== OUR_UT_METADATA_ID) return;
        const msg = decodeMetadataMessage(m.payload);
        if (msg.type === "request") {
          // we have no metadata to give yet (BEP 9: answer with a reject)
          if (link.theirId !== 0) {
            const payload = encodeMetadataMessage({ type: "reject", piece: msg.piece });
            pc.send({ type: "extended", id: link.theirId, payload });
          }
        } else if (msg.type === "data") {
          link.since = performance.now();
          apply({ type: "data", peer: key, piece: msg.piece, totalSize: msg.totalSize, data: msg.data });
        } else {
          apply({ type: "reject", peer: key, piece: msg.piece });
        }
      };
      try {
        link.running = pc.run({ onMessage, onDrain: () => {} }, leftover);
        await link.running;
      } finally {
        links.delete(key);
        if (!link.handedOver) {
          pc.close();
          apply({ type: "gone", peer: key });
        }
      }
    };

    for (const a of o.peers) add(a, "manual");
    if (o.tiers.length > 0) {
      announcer = new Announcer({
        tiers: o.tiers,
        infoHash: o.infoHash,
        peerId: o.peerId,
        port: o.port,
        stats: () => ({ uploaded: 0, downloaded: 0, left: 1 }),
        onPeers: (peers) => {
          tracker.peers += peers.length;
          o.onPeers?.(peers, "tracker");
          for (const p of peers) add(p, "tracker");
        },
        onError: (url, err) => {
          tracker.errors.set(url, err.message);
          o.onNote?.(`tracker ${url}: ${err.message}`);
        },
        onBug: (err) => finish(err), // a bug of ours, not the tracker's: the fetch ends with it (exit 1)
      });
      announcer.start();
    }
    if (o.dht) {
      const dht = o.dht;
      (async () => {
        while (!done) {
          dhtTried.lookups++;
          const r = await dht.findPeers(o.infoHash, {
            onPeers: (peers) => {
              dhtTried.peers += peers.length;
              o.onPeers?.(peers, "dht");
              for (const p of peers) add(p, "dht");
            },
          });
          if (!done) o.onNote?.(`DHT lookup: ${r.peers} peers from ${r.answered} of ${r.queries} nodes asked`);
          await sleep(DHT_RETRY_MS, stopped.signal);
        }
      })().catch((e) => finish(e));
    }
    if (o.peers.length === 0 && o.tiers.length === 0 && !o.dht) {
      finish(
        new FetchError(
          "no-peers",
          "Could not fetch the metadata: the magnet names no tracker and no peer, and the DHT is off",
        ),
      );
    }
  });
}

/** Keeps a copy of message `m` in `link`'s log for a hand-over, within the bounds (past them the log is dropped). */
function keep(link: Link, m: Message): void {
  if (link.log === null || m.type === "piece" || m.type === "keep-alive") return;
  if (m.type === "have" && m.index < MAX_PIECES) {
    // a set, not a list: the same piece twice costs nothing, and every piece of the largest torrent fits
    const at = m.index >>> 3;
    if (link.haves === null || at >= link.haves.length) {
      const grown = new Uint8Array(Math.min(MAX_PIECES / 8, Math.max(64, 2 * (link.haves?.length ?? 0), at + 1)));
      if (link.haves !== null) grown.set(link.haves);
      link.haves = grown;
    }
    link.haves[at] |= 0x80 >>> (m.index & 7);
    return;
  }
  const bytes = m.type === "bitfield"
    ? m.bits.length
    : m.type === "extended" || m.type === "unknown"
    ? m.payload.length
    : 0;
  link.logBytes += bytes;
  if (link.log.length >= MAX_LOGGED_MESSAGES || link.logBytes > MAX_LOGGED_BYTES) {
    link.log = null;
    link.haves = null;
    // handed over and not yet taken (taking clears the log first): what it sends from now on would be lost, so it
    // is closed, and the download dials it afresh
    if (link.handedOver) link.pc.close();
    return;
  }
  // payloads are views of the read buffer, valid only during the call
  link.log.push(
    m.type === "bitfield"
      ? { type: "bitfield", bits: m.bits.slice() }
      : m.type === "extended" || m.type === "unknown"
      ? { ...m, payload: m.payload.slice() }
      : m,
  );
}

/** The kept messages, then one `have` for each piece set in `bits`, lowest first, made as they are read. */
function* replayOf(log: readonly Message[], bits: Uint8Array | null): Generator<Message> {
  yield* log;
  if (bits === null) return;
  for (let i = 0; i < bits.length; i++) {
    if (bits[i] === 0) continue;
    for (let b = 0; b < 8; b++) if (bits[i] & (0x80 >>> b)) yield { type: "have", index: i * 8 + b };
  }
}

/** "1 peer", "3 peers". */
function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
