/**
 * Assembling an info dictionary from ut_metadata pieces (BEP 9) sent by several peers, as a pure state machine:
 * events in (a peer offers metadata of some size, a piece arrives, a peer rejects or goes), actions out (ask a peer
 * for a piece, drop a peer, report a mismatch, deliver the checked bytes). `metadata_fetch.ts` does the IO.
 *
 * Memory. Peers may claim any size up to {@linkcode MAX_FETCH_METADATA_BYTES}, and each claim could cost that much.
 * So one claimed size, the candidate, is assembled at a time, into one buffer of that size, allocated when its first
 * piece arrives (a peer that claims a size and sends nothing costs nothing): metadata in memory never exceeds one
 * claimed size, however many peers claim sizes, and the checked bytes are that buffer itself (no copy to put them
 * together). Peers claiming another size wait until
 * the candidate fails (or loses its last peer). Only pieces we asked for are kept; a peer that sends a piece we did
 * not ask for, or another total size than it claimed, is dropped.
 *
 * Slow peers. A peer that has pieces asked and has answered none for {@linkcode STALL_MS} is stalled: its pieces are
 * asked of the other peers of the size as well (the first answer is kept), and a single source that stalls is set
 * aside for another. A size being assembled while another size waits gets {@linkcode candidateDeadline} to complete,
 * and no longer once all its peers stall; then it goes behind the other (counted as a failure), so one peer dripping pieces of a size it made up cannot keep the true
 * size's peers waiting. The runtime sends `tick` events so that these rules run while nothing arrives.
 *
 * Failures. Assembled bytes that do not hash to the info-hash prove that one of their senders lied, not which. If a
 * single peer sent them all, that peer is banned. If several did, the size is tried again from one peer at a time,
 * so that the next failure names its sender. A size that failed goes behind every size not yet tried. Sizes are not
 * banned outright: one liar claiming the true size would then lose the true metadata for good.
 * @module
 */
import { sha1 } from "../sha1.ts";
import { MAX_FETCH_METADATA_BYTES } from "../limits.ts";
import { METADATA_PIECE_BYTES, metadataPieceCount } from "../wire/metadata.ts";
import { equalBytes } from "../bytes.ts";

/** Requests outstanding to one peer at once: 16 pieces (256 KiB) keep a fast peer busy without flooding a slow one. */
export const METADATA_REQUESTS_PER_PEER = 16;
/** A peer with pieces asked that answers none for this long is stalled (16 KiB in 5 s: 3.2 KB/s). */
export const STALL_MS = 5_000;
/** The least time a size is given to complete while another size waits ({@linkcode candidateDeadline}). */
export const CANDIDATE_MIN_MS = 10_000;
/** The slowest rate at which a size keeps its turn while another size waits: 1 MiB/s. */
export const CANDIDATE_MIN_BYTES_PER_S = 1024 * 1024;

/**
 * How long a size may take to complete while another size waits: {@linkcode CANDIDATE_MIN_MS}, or its length at
 * {@linkcode CANDIDATE_MIN_BYTES_PER_S} if longer.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(candidateDeadline(20_000), 10_000);
 * eq(candidateDeadline(30 * 1024 * 1024), 30_000);
 * ```
 */
export function candidateDeadline(size: number): number {
  return Math.max(CANDIDATE_MIN_MS, (size / CANDIDATE_MIN_BYTES_PER_S) * 1000);
}

/** A peer that offered metadata. */
export interface AssemblyPeer {
  /** The size it claims (`metadata_size`). */
  readonly size: number;
  /** Pieces asked of it and not answered yet, of this attempt or an earlier one, each with when it was asked. */
  readonly asked: ReadonlyMap<number, number>;
  /** When it last answered a piece, or null. */
  readonly answeredAt: number | null;
  /** Pieces it answered, and their total time from the ask (ms): its speed, to choose a single source. */
  readonly answered: number;
  readonly answerMs: number;
}

/**
 * The size being assembled and what arrived of it. Its `buffer` and `from` are written in place by the steps that
 * follow: an assembly state is stepped once, and its successor replaces it ({@linkcode stepAssembly} throws on a
 * second step).
 */
export interface AssemblyCandidate {
  readonly size: number;
  /**
   * The metadata as it arrives, `size` bytes, or null until the first piece does; a piece's bytes count only once
   * `from` names its sender.
   */
  readonly buffer: Uint8Array | null;
  /** Who sent each piece that arrived; `undefined` while missing. */
  readonly from: readonly (string | undefined)[];
  /** How many pieces arrived. */
  readonly have: number;
  /** Bytes of the pieces that arrived. */
  readonly bytes: number;
  /** When set, every piece is asked of this one peer (the size failed before with several senders). */
  readonly source: string | null;
  /** When it became the candidate. */
  readonly startedAt: number;
}

/** The whole state; peers are named by the runtime (e.g. by address). */
export interface MetadataAssembly {
  readonly infoHash: Uint8Array;
  /** Peers that offered metadata, in the order they offered it. */
  readonly peers: ReadonlyMap<string, AssemblyPeer>;
  readonly candidate: AssemblyCandidate | null;
  /** Failed attempts per size. */
  readonly failures: ReadonlyMap<number, number>;
  /** Sizes to be fetched from one peer at a time. */
  readonly singleSource: ReadonlySet<number>;
  /** Peers caught sending metadata that fails the info-hash, or misbehaving; their offers are refused. */
  readonly banned: ReadonlySet<string>;
  /** Peers that stalled as a single source: chosen as one again only after every other peer of their size. */
  readonly slow: ReadonlySet<string>;
  /** Whether the checked metadata was delivered. */
  readonly done: boolean;
}

/** What happened. `data` is a view valid only during the step (the piece is copied if kept). */
export type AssemblyEvent =
  | { readonly type: "offer"; readonly peer: string; readonly size: number }
  | {
    readonly type: "data";
    readonly peer: string;
    readonly piece: number;
    readonly totalSize: number;
    readonly data: Uint8Array;
  }
  | { readonly type: "reject"; readonly peer: string; readonly piece: number }
  | { readonly type: "gone"; readonly peer: string }
  /** Time passed: the stall and deadline rules run. */
  | { readonly type: "tick" };

/** What the runtime should do. After `drop` or `done`, events about that peer (or at all) change nothing. */
export type AssemblyAction =
  | { readonly type: "request"; readonly peer: string; readonly piece: number }
  | { readonly type: "drop"; readonly peer: string; readonly reason: string }
  | { readonly type: "mismatch"; readonly size: number; readonly senders: readonly string[] }
  /** The size being assembled was let go unfinished (`reason` says why, for people); another is tried. */
  | { readonly type: "set-aside"; readonly size: number; readonly reason: string }
  | { readonly type: "done"; readonly info: Uint8Array };

/**
 * A new assembly for the metadata whose SHA-1 is `infoHash`.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(newAssembly(new Uint8Array(20)).candidate, null);
 * ```
 */
export function newAssembly(infoHash: Uint8Array): MetadataAssembly {
  return {
    infoHash: infoHash.slice(),
    peers: new Map(),
    candidate: null,
    failures: new Map(),
    singleSource: new Set(),
    banned: new Set(),
    slow: new Set(),
    done: false,
  };
}

/**
 * Bytes of memory the metadata being assembled holds (its buffer, once a piece arrived): never more than one claimed
 * size.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(heldBytes(newAssembly(new Uint8Array(20))), 0);
 * ```
 */
export function heldBytes(s: MetadataAssembly): number {
  return s.candidate?.buffer?.byteLength ?? 0;
}

/** States already stepped (see {@linkcode AssemblyCandidate}). */
const stepped = new WeakSet<MetadataAssembly>();

/** The mutable copy a step works on. */
interface Draft {
  readonly infoHash: Uint8Array;
  peers: Map<string, AssemblyPeer>;
  candidate: {
    size: number;
    buffer: Uint8Array | null;
    from: (string | undefined)[];
    have: number;
    bytes: number;
    source: string | null;
    startedAt: number;
  } | null;
  failures: Map<number, number>;
  singleSource: Set<number>;
  banned: Set<string>;
  slow: Set<string>;
  done: boolean;
  readonly now: number;
  readonly out: AssemblyAction[];
}

/**
 * Advances the assembly by one event at `now` (ms, any origin; the runtime's clock).
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * import { createHash } from "node:crypto";
 * const info = new TextEncoder().encode("d4:name1:xe");
 * const hash = new Uint8Array(createHash("sha1").update(info).digest());
 * const [s1, a1] = stepAssembly(newAssembly(hash), { type: "offer", peer: "p", size: info.length });
 * eq(a1, [{ type: "request", peer: "p", piece: 0 }]);
 * const [s2, a2] = stepAssembly(s1, { type: "data", peer: "p", piece: 0, totalSize: info.length, data: info });
 * eq([s2.done, a2], [true, [{ type: "done", info }]]);
 * ```
 */
export function stepAssembly(
  s: MetadataAssembly,
  ev: AssemblyEvent,
  now = 0,
): [MetadataAssembly, AssemblyAction[]] {
  if (s.done) return [s, []];
  // the candidate's buffer and senders are shared with the next state: stepping this one again would corrupt them
  if (stepped.has(s)) throw new Error("A metadata assembly state was stepped twice: step its successor");
  stepped.add(s);
  const d: Draft = {
    infoHash: s.infoHash,
    peers: new Map(s.peers),
    // buffer and from are shared and written in place (a state is stepped once): no copy per piece
    candidate: s.candidate && { ...s.candidate, from: s.candidate.from as (string | undefined)[] },
    failures: new Map(s.failures),
    singleSource: new Set(s.singleSource),
    banned: new Set(s.banned),
    slow: new Set(s.slow),
    done: false,
    now,
    out: [],
  };
  switch (ev.type) {
    case "offer":
      onOffer(d, ev.peer, ev.size);
      break;
    case "data":
      onData(d, ev.peer, ev.piece, ev.totalSize, ev.data);
      break;
    case "reject":
      if (d.peers.has(ev.peer)) drop(d, ev.peer, `rejected metadata piece ${ev.piece}`);
      break;
    case "gone":
      forget(d, ev.peer);
      break;
    case "tick":
      break;
  }
  if (!d.done) assign(d);
  const next: MetadataAssembly = {
    infoHash: s.infoHash,
    peers: d.peers,
    candidate: d.candidate,
    failures: d.failures,
    singleSource: d.singleSource,
    banned: d.banned,
    slow: d.slow,
    done: d.done,
  };
  return [next, d.out];
}

function onOffer(d: Draft, peer: string, size: number): void {
  if (d.banned.has(peer)) {
    d.out.push({ type: "drop", peer, reason: "sent metadata that failed the info-hash before" });
    return;
  }
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_FETCH_METADATA_BYTES) {
    drop(d, peer, `claims ${size} bytes of metadata; the limit is ${MAX_FETCH_METADATA_BYTES}`);
    return;
  }
  const known = d.peers.get(peer);
  if (known === undefined) d.peers.set(peer, { size, asked: new Map(), answeredAt: null, answered: 0, answerMs: 0 });
  else if (known.size !== size) drop(d, peer, `claimed ${known.size} bytes of metadata, then ${size}`);
}

function onData(d: Draft, peer: string, piece: number, totalSize: number, data: Uint8Array): void {
  const p = d.peers.get(peer);
  if (p === undefined) {
    d.out.push({ type: "drop", peer, reason: "sent metadata it did not offer" });
    return;
  }
  if (totalSize !== p.size) return drop(d, peer, `claimed ${p.size} bytes of metadata, then sent ${totalSize}`);
  if (!p.asked.has(piece)) return drop(d, peer, `sent metadata piece ${piece}, which was not asked for`);
  const want = Math.min(METADATA_PIECE_BYTES, p.size - piece * METADATA_PIECE_BYTES);
  if (data.length !== want) return drop(d, peer, `sent ${data.length} bytes for metadata piece ${piece}, not ${want}`);
  const asked = new Map(p.asked);
  asked.delete(piece);
  const took = Math.max(0, d.now - (p.asked.get(piece) as number));
  d.peers.set(peer, { ...p, asked, answeredAt: d.now, answered: p.answered + 1, answerMs: p.answerMs + took });
  const c = d.candidate;
  // an answer to an earlier attempt, or from a peer that is not the single source now: not needed, not kept
  if (c === null || c.size !== p.size || c.from[piece] !== undefined) return;
  if (c.source !== null && c.source !== peer) return;
  c.buffer ??= new Uint8Array(c.size);
  c.buffer.set(data, piece * METADATA_PIECE_BYTES);
  c.from[piece] = peer;
  c.have++;
  c.bytes += data.length;
  if (c.have === c.from.length) finishCandidate(d, c);
}

function finishCandidate(d: Draft, c: NonNullable<Draft["candidate"]>): void {
  const info = c.buffer as Uint8Array; // every piece arrived
  d.candidate = null; // whatever the outcome, the candidate is let go (its buffer becomes the metadata if it checks)
  if (equalBytes(sha1(info), d.infoHash)) {
    d.done = true;
    d.out.push({ type: "done", info });
    return;
  }
  const senders = [...new Set(c.from.filter((x): x is string => x !== undefined))];
  d.failures.set(c.size, (d.failures.get(c.size) ?? 0) + 1);
  d.out.push({ type: "mismatch", size: c.size, senders });
  if (senders.length === 1) {
    d.banned.add(senders[0]);
    drop(d, senders[0], "sent metadata that fails the info-hash");
  } else {
    d.singleSource.add(c.size);
  }
}

/** Drops a peer: forgets it and tells the runtime to close it. */
function drop(d: Draft, peer: string, reason: string): void {
  forget(d, peer);
  d.out.push({ type: "drop", peer, reason });
}

/** Forgets a peer; a candidate that loses its single source, or its last peer, is let go. */
function forget(d: Draft, peer: string): void {
  if (!d.peers.delete(peer)) return;
  const c = d.candidate;
  if (c === null) return;
  const left = [...d.peers.values()].some((p) => p.size === c.size);
  if (c.source === peer || !left) d.candidate = null;
  d.slow.delete(peer);
}

/**
 * Whether `p` has pieces asked and has answered none for {@linkcode STALL_MS}: since its last answer, or since the
 * oldest piece it still has asked, whichever is later.
 */
function stalled(p: AssemblyPeer, now: number): boolean {
  if (p.asked.size === 0) return false;
  let oldest = Infinity;
  for (const at of p.asked.values()) oldest = Math.min(oldest, at);
  return now - Math.max(oldest, p.answeredAt ?? -Infinity) >= STALL_MS;
}

/** Lets the candidate go unfinished, saying why; with `failed`, its size counts a failure (it goes behind others). */
function setAside(d: Draft, reason: string, failed: boolean): void {
  const c = d.candidate as NonNullable<Draft["candidate"]>;
  if (failed) d.failures.set(c.size, (d.failures.get(c.size) ?? 0) + 1);
  d.candidate = null;
  d.out.push({ type: "set-aside", size: c.size, reason });
}

/** The single source for `size`: the fastest peer that answered, else the first to offer; stalled ones last. */
function pickSource(d: Draft, size: number): string | null {
  let best: string | null = null;
  let bestRank = Infinity;
  for (const [key, p] of d.peers) {
    if (p.size !== size) continue;
    const mean = p.answered > 0 ? p.answerMs / p.answered : STALL_MS;
    const rank = (d.slow.has(key) ? 2 * STALL_MS : 0) + mean;
    if (rank < bestRank) {
      best = key;
      bestRank = rank;
    }
  }
  return best;
}

/**
 * Sets aside a candidate that takes too long while another size waits, or whose single source stalled; picks a
 * candidate if there is none; then asks its peers for the pieces nobody is asked for, or only a stalled peer.
 */
function assign(d: Draft): void {
  const now = d.now;
  let c = d.candidate;
  if (c !== null) {
    const size = c.size;
    const waiting = [...d.peers.values()].some((p) => p.size !== size);
    const own = [...d.peers.values()].filter((p) => p.size === size);
    if (waiting && now - c.startedAt > candidateDeadline(size)) {
      setAside(d, `${size} bytes did not come within ${Math.round(candidateDeadline(size) / 1000)} s`, true);
    } else if (waiting && own.length > 0 && own.every((p) => stalled(p, now))) {
      setAside(d, `every peer claiming ${size} bytes stalled`, true);
    } else if (c.source !== null && stalled(d.peers.get(c.source) as AssemblyPeer, now)) {
      d.slow.add(c.source);
      setAside(d, `${c.source}, its only source now, stalled`, false);
    }
  }
  if (d.candidate === null) {
    let best: number | null = null;
    for (const { size } of d.peers.values()) {
      if (best === null || (d.failures.get(size) ?? 0) < (d.failures.get(best) ?? 0)) best = size;
    }
    if (best === null) return;
    const n = metadataPieceCount(best);
    d.candidate = {
      size: best,
      buffer: null,
      from: new Array(n).fill(undefined),
      have: 0,
      bytes: 0,
      source: d.singleSource.has(best) ? pickSource(d, best) : null,
      startedAt: now,
    };
  }
  c = d.candidate as NonNullable<Draft["candidate"]>;
  const cand = c;
  const askers = [...d.peers].filter(([key, p]) =>
    p.size === cand.size && (cand.source === null || cand.source === key)
  );
  // pieces asked of a peer that answers: not to be asked again; those of a stalled peer may go to another as well
  const taken = new Set<number>();
  for (const [, p] of askers) if (!stalled(p, now)) { for (const i of p.asked.keys()) taken.add(i); }
  let first = 0;
  for (const [key, p] of askers) {
    if (p.asked.size >= METADATA_REQUESTS_PER_PEER || stalled(p, now)) continue;
    while (first < cand.from.length && (cand.from[first] !== undefined || taken.has(first))) first++;
    if (first >= cand.from.length) break;
    const asked = new Map(p.asked);
    for (let i = first; i < cand.from.length && asked.size < METADATA_REQUESTS_PER_PEER; i++) {
      if (cand.from[i] !== undefined || taken.has(i) || asked.has(i)) continue;
      asked.set(i, now);
      taken.add(i);
      d.out.push({ type: "request", peer: key, piece: i });
    }
    d.peers.set(key, { ...p, asked });
  }
}
