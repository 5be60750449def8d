/**
 * Assembling an info dictionary from ut_metadata pieces (BEP 9) sent by several peers, as a pure state machine:
 * events in (a peer offers metadata of some size, a piece arrives, a peer rejects or goes), actions out (ask a peer
 * for a piece, drop a peer, report a mismatch, deliver the checked bytes). `metadata_fetch.ts` does the IO.
 *
 * Memory. Peers may claim any size up to {@linkcode MAX_FETCH_METADATA_BYTES}, and each claim could cost that much.
 * So one claimed size, the candidate, is assembled at a time, into one buffer of that size, allocated when its first
 * piece arrives (a peer that claims a size and sends nothing costs nothing): metadata in memory never exceeds one
 * claimed size, however many peers claim sizes, besides one attempt from a single source set aside to go on with
 * later ({@linkcode MetadataAssembly.parked}); the checked bytes are that buffer itself (no copy to put them
 * together). Peers claiming another size wait their turn (below). Only pieces we asked for are kept; a peer that
 * sends a piece we did not ask for, or another total size than it claimed, is dropped.
 *
 * Slow peers. A peer that has pieces asked and has answered none for {@linkcode STALL_MS} is stalled: its pieces may
 * be asked of another peer of the size as well; and once nothing is left that nobody holds, an idle peer is asked for
 * pieces one other peer holds (the first answer is kept). While another size is on offer, a size has a turn
 * ({@linkcode turnLength}): a first one of {@linkcode TURN_MS}, then one long enough to finish at the rate it came at;
 * the next size is one not tried yet, else the one whose time given so far plus the time it would still take is
 * least. So a peer dripping pieces of a made-up size costs the true size about one turn of its own, not the fetch. A
 * size fetched from one peer at a time moves to its next peer when that peer's time is over. The runtime sends `tick`
 * events so that these rules run while nothing arrives.
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
/** A size's first turn while another size waits, and the least of any turn; a single source's first time. */
export const TURN_MS = 10_000;

/**
 * How long a size's turn lasts while another size waits: {@linkcode TURN_MS} until its rate is known, then twice the
 * time its whole length takes at the rate measured in its last turn (so a size that was progressing gets to finish).
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(turnLength(20_000, undefined), 10_000);
 * eq(turnLength(327_680, 4), 163_840); // 320 KiB at 4 KB/s: 82 s, and as long again
 * eq(turnLength(327_680, 0), 10_000);
 * ```
 */
export function turnLength(size: number, bytesPerMs: number | undefined): number {
  if (bytesPerMs === undefined || bytesPerMs <= 0) return TURN_MS;
  return Math.max(TURN_MS, (2 * size) / bytesPerMs);
}

/** A peer that offered metadata. */
export interface AssemblyPeer {
  /** The size it claims (`metadata_size`). */
  readonly size: number;
  /** Pieces asked of it and not answered yet, of this attempt or an earlier one, each with when it was asked. */
  readonly asked: ReadonlyMap<number, number>;
  /** When it last answered a piece, or null. */
  readonly answeredAt: number | null;
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
  /** Bytes it held when it became the candidate (a resumed attempt's). */
  readonly startBytes: number;
  /** When it became the candidate. */
  readonly startedAt: number;
  /** Since when a peer of another size has been on offer while it was the candidate, or null while none is. */
  readonly contestedAt: number | null;
}

/** A single-source attempt set aside: its source, size and what arrived (see {@linkcode AssemblyCandidate}). */
export type ParkedAttempt = Pick<AssemblyCandidate, "size" | "buffer" | "from" | "have" | "bytes"> & {
  readonly source: string;
};

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
  /** Attempts at each size let go unfinished because another size was waiting. */
  readonly turns: ReadonlyMap<number, number>;
  /** The rate (bytes per ms) each size came at in its last turn that was let go: how soon it would complete. */
  readonly rates: ReadonlyMap<number, number>;
  /** The time each size was given in the turns it lost (ms). */
  readonly granted: ReadonlyMap<number, number>;
  /** Sizes that have been the candidate. */
  readonly tried: ReadonlySet<number>;
  /** What each peer sent in its last time as a single source (bytes): the order of the next rounds' sources. */
  readonly sourceBytes: ReadonlyMap<string, number>;
  /**
   * The single-source attempt set aside with the most pieces, kept to go on from when its source's turn comes again
   * (every piece in it came from that one source, so blame stays exact), or null.
   */
  readonly parked: ParkedAttempt | null;
  /** For each size fetched from one peer at a time: the peers tried as its source in this round. */
  readonly sourcesTried: ReadonlyMap<number, ReadonlySet<string>>;
  /** For each such size: the rounds through all its peers done so far (each next one gives a source longer). */
  readonly rounds: ReadonlyMap<number, number>;
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
    turns: new Map(),
    rates: new Map(),
    granted: new Map(),
    tried: new Set(),
    sourceBytes: new Map(),
    parked: null,
    sourcesTried: new Map(),
    rounds: new Map(),
    done: false,
  };
}

/**
 * Bytes of memory the metadata being assembled holds (its buffer, once a piece arrived, and a parked attempt's): one
 * claimed size at most, and one more while an attempt from a single source is parked.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * eq(heldBytes(newAssembly(new Uint8Array(20))), 0);
 * ```
 */
export function heldBytes(s: MetadataAssembly): number {
  return (s.candidate?.buffer?.byteLength ?? 0) + (s.parked?.buffer?.byteLength ?? 0);
}

/** States already stepped (see {@linkcode AssemblyCandidate}). */
const stepped = new WeakSet<MetadataAssembly>();

/** The mutable copy a step works on. */
interface Draft {
  readonly infoHash: Uint8Array;
  peers: Map<string, AssemblyPeer>;
  candidate:
    | ({ -readonly [K in keyof AssemblyCandidate]: AssemblyCandidate[K] } & { from: (string | undefined)[] })
    | null;
  failures: Map<number, number>;
  singleSource: Set<number>;
  banned: Set<string>;
  turns: Map<number, number>;
  rates: Map<number, number>;
  granted: Map<number, number>;
  tried: Set<number>;
  sourceBytes: Map<string, number>;
  parked: ParkedAttempt | null;
  sourcesTried: Map<number, ReadonlySet<string>>;
  rounds: Map<number, number>;
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
    ...s,
    peers: new Map(s.peers),
    // buffer and from are shared and written in place (a state is stepped once): no copy per piece
    candidate: s.candidate && { ...s.candidate, from: s.candidate.from as (string | undefined)[] },
    failures: new Map(s.failures),
    singleSource: new Set(s.singleSource),
    banned: new Set(s.banned),
    turns: new Map(s.turns),
    rates: new Map(s.rates),
    granted: new Map(s.granted),
    tried: new Set(s.tried),
    sourceBytes: new Map(s.sourceBytes),
    sourcesTried: new Map(s.sourcesTried),
    rounds: new Map(s.rounds),
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
  const { now: _now, out, ...next } = d;
  return [next, out];
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
  if (known === undefined) d.peers.set(peer, { size, asked: new Map(), answeredAt: null });
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
  d.peers.set(peer, { ...p, asked, answeredAt: d.now });
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

/** Forgets a peer (and an attempt parked from it); a candidate that loses its single source, or its last peer, goes. */
function forget(d: Draft, peer: string): void {
  if (d.parked?.source === peer) d.parked = null;
  if (!d.peers.delete(peer)) return;
  const c = d.candidate;
  if (c === null) return;
  const left = [...d.peers.values()].some((p) => p.size === c.size);
  if (c.source === peer || !left) d.candidate = null;
}

/**
 * Whether `p` has pieces asked and has answered none for {@linkcode STALL_MS}: since its last answer, or since the
 * oldest piece it still has asked, whichever is later.
 */
function stalled(p: AssemblyPeer, now: number, since: number): boolean {
  if (p.asked.size === 0) return false;
  let oldest = Infinity;
  for (const at of p.asked.values()) oldest = Math.min(oldest, at);
  return now - Math.max(oldest, p.answeredAt ?? -Infinity, since) >= STALL_MS;
}

/**
 * Lets the candidate go unfinished, saying why. A `turn` lost to another size is counted against its size, with the
 * rate its bytes came at, which decides when it is tried again.
 */
function setAside(d: Draft, reason: string, turn: boolean): void {
  const c = d.candidate as NonNullable<Draft["candidate"]>;
  if (c.source !== null) {
    d.sourceBytes.set(c.source, c.bytes);
    // parked only if it sent something in this turn: one that holds back cannot keep the slot
    if (c.bytes > c.startBytes && (d.parked === null || c.bytes >= d.parked.bytes)) {
      const { source, size, buffer, from, have, bytes } = c;
      d.parked = { source, size, buffer, from, have, bytes };
    }
  }
  if (turn) {
    d.turns.set(c.size, (d.turns.get(c.size) ?? 0) + 1);
    d.granted.set(c.size, (d.granted.get(c.size) ?? 0) + (d.now - c.startedAt));
    d.rates.set(c.size, (c.bytes - c.startBytes) / Math.max(1, d.now - c.startedAt)); // this turn's bytes only
  }
  d.candidate = null;
  d.out.push({ type: "set-aside", size: c.size, reason });
}

/**
 * The next single source for `size`: in the first round, the peers of it in offer order; in later rounds, those that
 * sent the most in their last time as source first (a liar that sends junk fast completes and is banned; one that
 * holds back sent little). Each peer once a round.
 */
function nextSource(d: Draft, size: number): string | null {
  const tried = d.sourcesTried.get(size) ?? new Set<string>();
  const round = d.rounds.get(size) ?? 0;
  const order = (keys: string[]) =>
    round === 0 ? keys : keys.sort((a, b) => (d.sourceBytes.get(b) ?? 0) - (d.sourceBytes.get(a) ?? 0));
  const all = [...d.peers].filter(([, p]) => p.size === size).map(([key]) => key);
  if (all.length === 0) return null;
  const left = all.filter((key) => !tried.has(key));
  if (left.length > 0) {
    const key = order(left)[0];
    d.sourcesTried.set(size, new Set([...tried, key]));
    return key;
  }
  // every peer of the size had its turn: a new round, each source given longer, the best senders first
  d.rounds.set(size, round + 1);
  const key = all.sort((a, b) => (d.sourceBytes.get(b) ?? 0) - (d.sourceBytes.get(a) ?? 0))[0];
  d.sourcesTried.set(size, new Set([key]));
  return key;
}

/**
 * Sets aside a candidate whose turn is over (below), picks a candidate if there is none, then asks its peers for the
 * pieces nobody is asked for, or only a stalled peer; when no such piece is left, an idle peer is asked for pieces one
 * other peer holds as well (the first answer is kept).
 *
 * Turns. From one source: when its time ({@linkcode TURN_MS}, doubled for each round through the size's peers) is
 * over, the next peer of the size is tried. From several, while another size is on offer: when its
 * {@linkcode turnLength}, counted from when the other came, is over, it is set aside with the rate it came at. The
 * next size is one not tried yet (in offer order), else the one whose time given so far plus the time it would take
 * at its last rate is least (a size that came at no rate after the others, the fewest turns first), hash failures
 * breaking ties: a liar's made-up size, slow or silent, goes behind the true one, and true metadata slower than a
 * first turn gets a turn long enough to finish.
 */
function assign(d: Draft): void {
  const now = d.now;
  const c = d.candidate;
  if (c !== null) {
    const size = c.size;
    const contested = [...d.peers.values()].some((p) => p.size !== size);
    if (!contested) c.contestedAt = null;
    else if (c.contestedAt === null) c.contestedAt = now;
    const src = c.source === null ? undefined : d.peers.get(c.source);
    const answered = src !== undefined && (c.have > 0 || (src.answeredAt ?? -Infinity) >= c.startedAt);
    if (src !== undefined && answered && stalled(src, now, c.startedAt)) {
      // it answered in this attempt (or a parked one it goes on from), then nothing for STALL_MS: it holds back
      setAside(d, `${c.source}, its source now, stopped answering`, c.contestedAt !== null);
    } else if (c.source !== null && c.contestedAt === null) {
      const limit = TURN_MS * 2 ** (d.rounds.get(size) ?? 0);
      if (now - c.startedAt > limit) {
        setAside(d, `${c.source}, its source now, did not send it within ${Math.round(limit / 1000)} s`, false);
      }
    } else if (c.contestedAt !== null) {
      const limit = turnLength(size, d.rates.get(size));
      if (now - Math.max(c.startedAt, c.contestedAt) > limit) {
        setAside(d, `${size} bytes did not come within ${Math.round(limit / 1000)} s while another size waits`, true);
      }
    }
  }
  if (d.candidate === null) {
    // not tried yet first (in offer order), then by the time it was given already plus the time it would take at its
    // last rate (a size that came at no rate waits for the others: then the fewest turns), then the fewest failures
    const rank = (size: number): [number, number, number] => {
      if (!d.tried.has(size)) return [-1, 0, d.failures.get(size) ?? 0];
      const r = d.rates.get(size) ?? 0;
      const given = d.granted.get(size) ?? 0;
      return [r > 0 ? given + size / r : Infinity, d.turns.get(size) ?? 0, d.failures.get(size) ?? 0];
    };
    const before = (x: [number, number, number], y: [number, number, number]) =>
      x[0] !== y[0] ? x[0] < y[0] : x[1] !== y[1] ? x[1] < y[1] : x[2] < y[2];
    let best: number | null = null;
    for (const { size } of d.peers.values()) if (best === null || before(rank(size), rank(best))) best = size;
    if (best === null) return;
    d.tried.add(best);
    const n = metadataPieceCount(best);
    const source = d.singleSource.has(best) ? nextSource(d, best) : null;
    const resumed = d.parked !== null && d.parked.source === source && d.parked.size === best ? d.parked : null;
    if (resumed !== null) d.parked = null; // its source's turn again: go on from what it sent
    d.candidate = {
      size: best,
      buffer: resumed?.buffer ?? null,
      from: (resumed?.from as (string | undefined)[] | undefined) ?? new Array(n).fill(undefined),
      have: resumed?.have ?? 0,
      bytes: resumed?.bytes ?? 0,
      startBytes: resumed?.bytes ?? 0,
      source,
      startedAt: now,
      contestedAt: [...d.peers.values()].some((p) => p.size !== best) ? now : null,
    };
  }
  const cand = d.candidate as NonNullable<Draft["candidate"]>;
  const askers = [...d.peers].filter(([key, p]) =>
    p.size === cand.size && (cand.source === null || cand.source === key)
  );
  // the pieces a peer holds are taken, unless it stalled: then they may be asked of another peer as well
  const taken = new Map<number, number>(); // piece -> how many peers hold it
  for (const [, p] of askers) {
    if (stalled(p, now, cand.startedAt)) continue;
    for (const i of p.asked.keys()) taken.set(i, (taken.get(i) ?? 0) + 1);
  }
  const missing = (i: number) => cand.from[i] === undefined;
  let first = 0;
  const idle: [string, AssemblyPeer][] = [];
  for (const [key, p] of askers) {
    if (p.asked.size >= METADATA_REQUESTS_PER_PEER || stalled(p, now, cand.startedAt)) continue;
    while (first < cand.from.length && (!missing(first) || taken.has(first))) first++;
    const asked = ask(d, key, p, first, (i) => !taken.has(i));
    for (const i of asked) taken.set(i, 1);
    if (p.asked.size === 0 && asked.length === 0) idle.push([key, p]);
  }
  // the end: nothing is left that nobody holds, so an idle peer is asked for what one other holds (first answer kept)
  for (const [key, p] of idle) for (const i of ask(d, key, p, 0, (i) => taken.get(i) === 1)) taken.set(i, 2);
}

/**
 * Asks `p` (named `key`) for missing pieces from `start` on that `may` allows and it is not asked for yet, up to
 * {@linkcode METADATA_REQUESTS_PER_PEER} outstanding; returns the pieces asked (its record is copied only then).
 */
function ask(d: Draft, key: string, p: AssemblyPeer, start: number, may: (piece: number) => boolean): number[] {
  const c = d.candidate as NonNullable<Draft["candidate"]>;
  const out: number[] = [];
  for (let i = start; i < c.from.length && p.asked.size + out.length < METADATA_REQUESTS_PER_PEER; i++) {
    if (c.from[i] !== undefined || p.asked.has(i) || !may(i)) continue;
    out.push(i);
    d.out.push({ type: "request", peer: key, piece: i });
  }
  if (out.length > 0) {
    const asked = new Map(p.asked);
    for (const i of out) asked.set(i, d.now);
    d.peers.set(key, { ...p, asked });
  }
  return out;
}
