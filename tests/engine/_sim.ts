/**
 * A virtual-clock harness for the swarm state machine (lib/engine/swarm.ts): a fake {@linkcode SwarmIO} that records
 * every action, a tiny network (one-way latency per peer, an upload rate or a fixed time per block), simulated remote
 * peers that answer requests from the torrent's payload, and a writer that hashes submitted pieces with SHA-1 and
 * reports the outcome through `pieceOutcome`. The runtime side mirrors what lib/engine/session.ts does with each
 * message, drain, piece outcome and tick. No sockets, no timers, nothing sleeps: events run in time order from a
 * queue.
 * @module
 */
import type { Segment } from "../../lib/webseed/plan.ts";
import { createHash } from "node:crypto";
import { formatAddress, type PeerAddress } from "../../lib/address.ts";
import { Bitfield, BitfieldError } from "../../lib/bitfield.ts";
import { BLOCK_BYTES } from "../../lib/limits.ts";
import type { Metainfo } from "../../lib/metainfo.ts";
import { WireError } from "../../lib/wire/frame.ts";
import type { Message } from "../../lib/wire/messages.ts";
import type { SessionEvent } from "../../lib/engine/events.ts";
import type { LimitDecision } from "../../lib/engine/torrent_state.ts";
import {
  addPeer,
  admit,
  complete,
  createSwarm,
  dropPeerById,
  greet,
  peerMessage,
  pieceOutcome,
  serveUploads,
  type Swarm,
  type SwarmIO,
  type SwarmOptions,
  tick,
  wantsBlockDigests,
} from "../../lib/engine/swarm.ts";
import { isDone } from "../../lib/engine/picker.ts";
import { seeded } from "../_gen.ts";

/** The runtime's housekeeping tick (session.ts `TICK_MS`). */
export const TICK_MS = 100;
/** How long the simulated writer takes to hash and store a piece. */
export const HASH_MS = 0.5;

/** How a simulated remote peer behaves. */
export interface Behaviour {
  readonly label: string;
  /** One-way latency, ms: what either side sends arrives this long later. */
  readonly oneWayMs: number;
  /** Its upload rate, bytes per second (each requested block takes length / rate). */
  readonly rate?: number;
  /** A fixed time to send each requested block, ms (a slow peer); wins over `rate`. */
  readonly serveMs?: number;
  /** It never answers a request (neither `rate` nor `serveMs` matters then). */
  readonly mute?: boolean;
  /** The pieces it announces: every one (have-all or a full bitfield), none, or these. */
  readonly has?: "all" | "none" | readonly number[];
  /** It unchokes us right after the handshake (default true). */
  readonly unchoke?: boolean;
  /** It says it is interested in us right after the handshake. */
  readonly interested?: boolean;
  /** It sends no message at all, not even its pieces. */
  readonly silent?: boolean;
  /** Supports the Fast extension (default true). */
  readonly fast?: boolean;
  /** Supports the extension protocol (default true). */
  readonly extended?: boolean;
  /** Sends a 1-byte `piece` for block (0, 0) that nobody asked for 1 ms after connecting, then every this many ms. */
  readonly dripEveryMs?: number;
  /**
   * Pushes whole blocks of junk (every byte of the payload flipped) that nobody asked of it, block after block
   * through the torrent, one every this many ms from 1 ms after connecting.
   */
  readonly pushEveryMs?: number;
  /** Which blocks it sends with wrong bytes (every byte flipped). */
  readonly corrupt?: (index: number, begin: number) => boolean;
  /** After answering this many requests it chokes us and answers no more. */
  readonly chokeAfter?: number;
  /** After answering this many requests it closes the connection (the runtime sees it after the last block). */
  readonly closeAfter?: number;
}

/** What the simulation knows of one remote peer. */
export interface Remote {
  readonly b: Behaviour;
  readonly address: PeerAddress;
  readonly key: string;
  /** The swarm's id for it (0 until it connected). */
  id: number;
  /** Messages of ours that reached it, with when. */
  readonly received: { at: number; m: Message }[];
  /** Requests that reached it and that it has not begun to answer. */
  readonly inbox: { index: number; begin: number; length: number }[];
  busy: boolean;
  closed: boolean;
  /** Blocks it answered (requested ones, not drips). */
  served: number;
  /** 1-byte drips and pushed blocks that reached us while it was connected. */
  drips: number;
  /** Bytes of those. */
  dripBytes: number;
  choking: boolean;
}

/** One `sendBlock` of the swarm. */
export interface SentBlock {
  readonly at: number;
  readonly peer: number;
  readonly index: number;
  readonly begin: number;
  /** A copy: the swarm's view is only valid during the call. */
  readonly bytes: Uint8Array;
}

/** One piece the writer hashed. */
export interface Outcome {
  readonly at: number;
  readonly index: number;
  readonly ok: boolean;
  /** Whether block digests were passed along. */
  readonly digests: boolean;
}

/** How the run ended, as session.ts would decide. */
export interface Finish {
  readonly at: number;
  readonly kind: "stop" | "timeout" | "stalled";
  /** Set for timeout and stalled. */
  readonly afterMs?: number;
}

/** Options of {@linkcode Sim}. */
export interface SimOptions {
  readonly meta: Metainfo;
  readonly payload: Uint8Array;
  /** Pieces verified at the start (none by default). */
  readonly have?: readonly number[] | "all";
  /** Swarm options besides meta, have, wanted, port, random and now. */
  readonly swarm?: Partial<Omit<SwarmOptions, "meta" | "have" | "wanted" | "port" | "random" | "now">>;
  /** Run the housekeeping tick every {@linkcode TICK_MS} (default true). */
  readonly ticks?: boolean;
  readonly seed?: number;
}

interface Timed {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** SHA-1 of each 16 KiB block of a piece, concatenated (what the session's writer hands to blame). */
export function blockDigests(buf: Uint8Array): Uint8Array {
  const n = Math.ceil(buf.length / BLOCK_BYTES);
  const out = new Uint8Array(n * 20);
  for (let b = 0; b < n; b++) {
    const at = b * BLOCK_BYTES;
    out.set(createHash("sha1").update(buf.subarray(at, Math.min(at + BLOCK_BYTES, buf.length))).digest(), b * 20);
  }
  return out;
}

function sha1(buf: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha1").update(buf).digest());
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A swarm on a virtual clock with simulated peers. It is the swarm's {@linkcode SwarmIO}: every call is recorded,
 * and anything that would call back into the swarm (a message reaching a peer, a piece hashed) is scheduled, never
 * done inside the call.
 */
export class Sim implements SwarmIO {
  readonly meta: Metainfo;
  readonly payload: Uint8Array;
  readonly sw: Swarm;
  now = 0;
  #seq = 0;
  readonly #queue: Timed[] = [];
  readonly remotes: Remote[] = [];
  readonly #byId = new Map<number, Remote>();
  // what the swarm asked of the runtime
  readonly sent: { at: number; peer: number; m: Message }[] = [];
  readonly blocks: SentBlock[] = [];
  readonly closed: { at: number; peer: number }[] = [];
  readonly submits: { at: number; index: number; intact: boolean }[] = [];
  readonly outcomes: Outcome[] = [];
  readonly events: { at: number; e: SessionEvent }[] = [];
  readonly readPieces: number[] = [];
  readonly decisions: { at: number; d: LimitDecision }[] = [];
  /** Peer faults the runtime dropped a peer for (WireError, BitfieldError), with the peer's key. */
  readonly faults: { at: number; key: string; error: Error }[] = [];
  completedCalls = 0;
  /** Each peer's unsent bytes, as `backlog` reports them (set by tests; 0 when absent). */
  readonly backlogs = new Map<number, number>();
  /** Pieces `readPiece` pretends are gone from disk. */
  readonly lostPieces = new Set<number>();
  finished: Finish | null = null;

  constructor(o: SimOptions) {
    this.meta = o.meta;
    this.payload = o.payload;
    const n = o.meta.pieceCount;
    const have = o.have === "all" ? Bitfield.full(n) : new Bitfield(n);
    if (Array.isArray(o.have)) { for (const i of o.have) have.set(i); }
    this.sw = createSwarm({
      ...o.swarm,
      meta: o.meta,
      have,
      wanted: Bitfield.full(n),
      port: 6881,
      random: seeded(o.seed ?? 7),
      now: 0,
    });
    // as session.ts runSwarm: a torrent complete at the start completes at once
    if (isDone(this.sw.picker)) {
      complete(this.sw, 0, this);
      if (this.sw.stopped) this.finished = { at: 0, kind: "stop" };
    }
    if (o.ticks !== false) this.at(TICK_MS, () => this.#tick());
  }

  // ---- the clock -------------------------------------------------------------------------------------------------

  /** Runs `fn` at virtual time `at` (not before now). */
  at(at: number, fn: () => void): void {
    const q = this.#queue;
    q.push({ at: Math.max(at, this.now), seq: this.#seq++, fn });
    for (let i = q.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!before(q[i], q[p])) break;
      [q[i], q[p]] = [q[p], q[i]];
      i = p;
    }
  }

  #pop(): Timed | undefined {
    const q = this.#queue;
    const top = q[0];
    const last = q.pop();
    if (top === undefined || last === undefined) return undefined;
    if (q.length > 0) {
      q[0] = last;
      for (let i = 0;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < q.length && before(q[l], q[m])) m = l;
        if (r < q.length && before(q[r], q[m])) m = r;
        if (m === i) break;
        [q[i], q[m]] = [q[m], q[i]];
        i = m;
      }
    }
    return top;
  }

  /** Runs events up to and including `until` ms, or until the run finishes; the clock ends at `until` if reached. */
  runUntil(until: number): void {
    while (this.finished === null) {
      const next = this.#queue[0];
      if (next === undefined || next.at > until) break;
      const ev = this.#pop();
      if (ev === undefined) break;
      this.now = ev.at;
      ev.fn();
    }
    if (this.finished === null) this.now = Math.max(this.now, until);
  }

  /** Runs until the run finishes; throws when it has not by `limitMs`. */
  runToEnd(limitMs: number): Finish {
    this.runUntil(limitMs);
    if (this.finished === null) {
      throw new Error(
        `not finished after ${this.now} ms: ${this.sw.picker.have.count} of ${this.meta.pieceCount} pieces; peers ` +
          [...this.sw.peers.values()].map((p) => `${p.client} (${p.queue.outstanding.size} out)`).join(", "),
      );
    }
    return this.finished;
  }

  // ---- the runtime, as session.ts ------------------------------------------------------------------------------

  #finish(f: Finish): void {
    if (this.finished !== null) return;
    this.finished = f;
    this.sw.stopped = true;
  }

  /** Runs `fn` for one peer; a peer fault drops it (session.ts forPeer); anything else is a bug and is thrown. */
  forPeer(id: number, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#onPeerFault(id, e);
    }
  }

  #onPeerFault(id: number, e: unknown): void {
    if (e instanceof WireError || e instanceof BitfieldError) {
      this.faults.push({ at: this.now, key: this.sw.peers.get(id)?.key ?? "?", error: e });
      dropPeerById(this.sw, id, e.message, this.now, this);
      return;
    }
    throw e;
  }

  #tick(): void {
    if (this.finished !== null) return;
    const d = tick(this.sw, this.now, this, (p, e) => this.#onPeerFault(p.id, e));
    if (d.kind !== "continue") {
      this.decisions.push({ at: this.now, d });
      this.#finish(
        d.kind === "stop" ? { at: this.now, kind: "stop" } : { at: this.now, kind: d.kind, afterMs: d.afterMs },
      );
      return;
    }
    this.at(this.now + TICK_MS, () => this.#tick());
  }

  /** A message from peer `id` reaches the swarm now. */
  deliver(id: number, m: Message): void {
    if (this.finished !== null) return;
    this.forPeer(id, () => peerMessage(this.sw, id, m, this.now, this));
  }

  /** Peer `id`'s socket drained: its backlog is empty and queued uploads may go. */
  drain(id: number): void {
    this.backlogs.delete(id);
    this.forPeer(id, () => serveUploads(this.sw, id, this.now, this));
  }

  /**
   * A remote peer completes its handshake at `at` (incoming peers must be admitted first; a refused one ends
   * closed with id 0). It is bound to the swarm's id, greeted, and then sends its opening messages, which arrive one
   * latency later. Each remote gets an address of its own unless `o.address` is given.
   */
  connect(b: Behaviour, at = this.now, o: { incoming?: boolean; address?: PeerAddress } = {}): Remote {
    const n = this.remotes.length + 1;
    const address = o.address ?? { host: `10.0.${n >> 8}.${n & 0xff}`, port: 6881 };
    const r: Remote = {
      b,
      address,
      key: formatAddress(address),
      id: 0,
      received: [],
      inbox: [],
      busy: false,
      closed: false,
      served: 0,
      drips: 0,
      dripBytes: 0,
      choking: !(b.unchoke ?? true),
    };
    this.remotes.push(r);
    this.at(at, () => {
      if (this.finished !== null) return;
      if (o.incoming && !admit(this.sw, address, this.now, this)) {
        r.closed = true;
        return;
      }
      // null (an address already connected) in newer swarm.ts: the runtime closes the second connection
      const id: number | null = addPeer(
        this.sw,
        {
          address,
          source: o.incoming ? "incoming" : "manual",
          incoming: o.incoming ?? false,
          client: b.label,
          fast: b.fast ?? true,
          extended: b.extended ?? true,
        },
        this.now,
        this,
      );
      if (id === null) {
        r.closed = true;
        return;
      }
      r.id = id;
      this.#byId.set(id, r);
      greet(this.sw, r.id, this);
      if (b.silent) return;
      for (const m of this.#opening(b)) this.#toUs(r, m, this.now + b.oneWayMs);
      const every = b.dripEveryMs;
      if (every !== undefined) {
        const drip = () => {
          if (r.closed || this.finished !== null) return;
          const block = Uint8Array.of(this.payload[0] ^ 0xff);
          this.#toUs(r, { type: "piece", index: 0, begin: 0, block }, this.now + b.oneWayMs, () => {
            r.drips++;
            r.dripBytes++;
          });
          this.at(this.now + every, drip);
        };
        this.at(this.now + 1, drip);
      }
      const pushEvery = b.pushEveryMs;
      if (pushEvery !== undefined) {
        let k = 0;
        const push = () => {
          if (r.closed || this.finished !== null) return;
          const start = k * BLOCK_BYTES;
          k = start + BLOCK_BYTES >= this.payload.length ? 0 : k + 1;
          const index = Math.floor(start / this.meta.pieceLength);
          const block = this.payload.slice(start, start + BLOCK_BYTES).map((v) => v ^ 0xff);
          const m: Message = { type: "piece", index, begin: start - index * this.meta.pieceLength, block };
          this.#toUs(r, m, this.now + b.oneWayMs, () => {
            r.drips++;
            r.dripBytes += block.length;
          });
          this.at(this.now + pushEvery, push);
        };
        this.at(this.now + 1, push);
      }
    });
    return r;
  }

  #opening(b: Behaviour): Message[] {
    const out: Message[] = [];
    const n = this.meta.pieceCount;
    const has = b.has ?? "all";
    const fast = b.fast ?? true;
    if (has === "all") out.push(fast ? { type: "have-all" } : { type: "bitfield", bits: Bitfield.full(n).bytes });
    else if (has === "none") { if (fast) out.push({ type: "have-none" }); }
    else {
      const bits = new Bitfield(n);
      for (const i of has) bits.set(i);
      out.push({ type: "bitfield", bits: bits.bytes });
    }
    if (!(b.unchoke === false)) out.push({ type: "unchoke" });
    if (b.interested) out.push({ type: "interested" });
    return out;
  }

  /** A message from remote `r` reaches us at `at`, unless it or we closed the connection meanwhile. */
  #toUs(r: Remote, m: Message, at: number, onArrival?: () => void): void {
    this.at(at, () => {
      if (r.closed) return;
      onArrival?.();
      this.deliver(r.id, m);
    });
  }

  // -- the remote end

  #atRemote(r: Remote, m: Message): void {
    r.received.push({ at: this.now, m });
    if (r.closed) return;
    if (m.type === "request") {
      r.inbox.push({ index: m.index, begin: m.begin, length: m.length });
      this.#pump(r);
    } else if (m.type === "cancel") {
      const i = r.inbox.findIndex((q) => q.index === m.index && q.begin === m.begin);
      if (i >= 0) r.inbox.splice(i, 1);
    }
  }

  /** The remote sends its requested blocks one at a time, in request order. */
  #pump(r: Remote): void {
    const b = r.b;
    const head = r.inbox[0];
    if (b.mute || r.busy || r.closed || r.choking || head === undefined) return;
    r.inbox.shift();
    r.busy = true;
    const ms = b.serveMs ?? (head.length * 1000) / (b.rate ?? 50e6);
    this.at(this.now + ms, () => {
      r.busy = false;
      if (r.closed) return;
      const block = this.payload.slice(
        head.index * this.meta.pieceLength + head.begin,
        head.index * this.meta.pieceLength + head.begin + head.length,
      );
      if (b.corrupt?.(head.index, head.begin)) { for (let i = 0; i < block.length; i++) block[i] ^= 0xff; }
      r.served++;
      this.#toUs(r, { type: "piece", index: head.index, begin: head.begin, block }, this.now + b.oneWayMs);
      if (b.closeAfter !== undefined && r.served >= b.closeAfter) {
        r.inbox.length = 0;
        this.at(this.now + b.oneWayMs, () => this.hangUp(r));
        return;
      }
      if (b.chokeAfter !== undefined && r.served >= b.chokeAfter) {
        r.choking = true;
        r.inbox.length = 0;
        this.#toUs(r, { type: "choke" }, this.now + b.oneWayMs);
        return;
      }
      this.#pump(r);
    });
  }

  /** Remote `r` closes its connection now: the runtime's read loop ends and the swarm drops the peer. */
  hangUp(r: Remote): void {
    if (r.closed || this.finished !== null) return;
    r.closed = true;
    dropPeerById(this.sw, r.id, "connection closed", this.now, this);
  }

  /** The remote peer with the swarm's id `id`. */
  remote(id: number): Remote | undefined {
    return this.#byId.get(id);
  }

  // ---- SwarmIO ---------------------------------------------------------------------------------------------------

  send(peer: number, m: Message): void {
    this.sent.push({ at: this.now, peer, m });
    const r = this.#byId.get(peer);
    if (r && !r.closed) this.at(this.now + r.b.oneWayMs, () => this.#atRemote(r, m));
  }

  sendBlock(peer: number, index: number, begin: number, block: Uint8Array): void {
    this.blocks.push({ at: this.now, peer, index, begin, bytes: block.slice() });
  }

  backlog(peer: number): number {
    return this.backlogs.get(peer) ?? 0;
  }

  close(peer: number): void {
    this.closed.push({ at: this.now, peer });
    const r = this.#byId.get(peer);
    if (r) r.closed = true;
  }

  submit(index: number, buf: Uint8Array): void {
    const start = index * this.meta.pieceLength;
    const intact = sameBytes(buf, this.payload.subarray(start, start + buf.length));
    this.submits.push({ at: this.now, index, intact });
    // as the writer thread does, take the buffer away (the swarm's view is detached) and hand it back with the outcome
    const [offset, length] = [buf.byteOffset, buf.length];
    const moved = new Uint8Array((buf.buffer as ArrayBuffer).transfer(), offset, length);
    this.at(this.now + HASH_MS, () => {
      if (this.finished !== null) return;
      const ok = sameBytes(sha1(moved), this.meta.pieceHashes.subarray(index * 20, index * 20 + 20));
      const digests = !ok || wantsBlockDigests(this.sw, index) ? blockDigests(moved) : undefined;
      this.outcomes.push({ at: this.now, index, ok, digests: digests !== undefined });
      pieceOutcome(this.sw, index, ok, digests, moved, this.now, this);
      if (this.sw.stopped) this.#finish({ at: this.now, kind: "stop" });
    });
  }

  readPiece(index: number, into: Uint8Array): Uint8Array | null {
    this.readPieces.push(index);
    if (this.lostPieces.has(index)) return null;
    const start = index * this.meta.pieceLength;
    const piece = this.payload.subarray(start, Math.min(start + this.meta.pieceLength, this.payload.length));
    const out = into.subarray(0, piece.length);
    out.set(piece);
    return out;
  }

  emit(e: SessionEvent): void {
    this.events.push({ at: this.now, e });
  }

  completed(): void {
    this.completedCalls++;
  }

  /** Web seed runs the swarm asked for (none unless the swarm was given web seeds). */
  readonly runs: { seed: number; run: number; segments: readonly Segment[] }[] = [];
  /** Runs the swarm asked to stop. */
  readonly abortedRuns: { seed: number; run: number }[] = [];

  fetchRun(seed: number, run: number, segments: readonly Segment[]): void {
    this.runs.push({ seed, run, segments });
  }

  abortRun(seed: number, run: number): void {
    this.abortedRuns.push({ seed, run });
  }

  // ---- queries ---------------------------------------------------------------------------------------------------

  /** The events of one kind, in order. */
  eventsOf<K extends SessionEvent["event"]>(kind: K): Extract<SessionEvent, { event: K }>[] {
    return this.events.map((x) => x.e).filter((e): e is Extract<SessionEvent, { event: K }> => e.event === kind);
  }

  /** What the swarm sent to peer `id`, in order. */
  sentTo(id: number): Message[] {
    return this.sent.filter((s) => s.peer === id).map((s) => s.m);
  }
}

function before(a: Timed, b: Timed): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
