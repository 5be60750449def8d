import { assertEquals, assertThrows } from "../_assert.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import { BLOCK_BYTES } from "../../lib/limits.ts";
import { encodeExtHandshake } from "../../lib/wire/extension.ts";
import { WireError } from "../../lib/wire/frame.ts";
import type { Message } from "../../lib/wire/messages.ts";
import { blockKey } from "../../lib/engine/requests.ts";
import {
  applyMessage,
  createPeerState,
  MAX_ALLOWED_FAST,
  MAX_REJECTED_REMEMBERED,
  MAX_REJECTS_IN_A_ROW,
  mayRequest,
  type PeerEffect,
  type PeerState,
  recentlyRejected,
  REJECT_BACKOFF_MS,
} from "../../lib/engine/peer_state.ts";

/** Ten pieces: a bitfield of two bytes, the last six bits spare. */
const N = 10;
const NOW = 1_000;
const B = BLOCK_BYTES;
const enc = new TextEncoder();

function bits(indexes: Iterable<number>): Bitfield {
  const b = new Bitfield(N);
  for (const i of indexes) b.set(i);
  return b;
}

function ext(h: Parameters<typeof encodeExtHandshake>[0]): Message {
  return { type: "extended", id: 0, payload: encodeExtHandshake(h) };
}

/** The state as plain data, to compare whole states before and after a message. */
function snap(s: PeerState) {
  return {
    has: [...s.has.indexes()],
    hasCounted: s.hasCounted,
    amChoking: s.amChoking,
    amInterested: s.amInterested,
    peerChoking: s.peerChoking,
    peerInterested: s.peerInterested,
    allowedFast: [...s.allowedFast],
    rejected: [...s.rejected],
    rejectsInARow: s.rejectsInARow,
    extensions: [...s.extensions],
    reqq: s.reqq,
    lastMessageAt: s.lastMessageAt,
  };
}

/** An effect as plain data (a bitfield as its indexes). */
function plain(e: PeerEffect): unknown {
  return e.kind === "pieces" ? { kind: "pieces", previous: e.previous && [...e.previous.indexes()] } : e;
}

interface Row {
  readonly name: string;
  /** The peer supports the Fast extension (default true). */
  readonly fast?: boolean;
  readonly setup?: (s: PeerState) => void;
  readonly msg: Message;
  readonly effect: unknown;
  /** What the message changes in the state, besides `lastMessageAt`. */
  readonly changes?: Partial<ReturnType<typeof snap>>;
}

const unchoked = (s: PeerState) => void (s.peerChoking = false);

const rows: Row[] = [
  { name: "keep-alive: nothing but the time", msg: { type: "keep-alive" }, effect: { kind: "none" } },
  { name: "port: nothing (no DHT here)", msg: { type: "port", port: 6881 }, effect: { kind: "none" } },
  { name: "suggest: ignored", msg: { type: "suggest", index: 3 }, effect: { kind: "none" } },
  {
    name: "unknown id: ignored",
    msg: { type: "unknown", id: 99, payload: new Uint8Array(3) },
    effect: { kind: "none" },
  },
  {
    name: "choke after an unchoke",
    setup: unchoked,
    msg: { type: "choke" },
    effect: { kind: "choked" },
    changes: { peerChoking: true },
  },
  { name: "choke while choked: nothing", msg: { type: "choke" }, effect: { kind: "none" } },
  {
    name: "unchoke: requests may go, and its old rejects are forgotten",
    setup: (s) => s.rejected.set(blockKey(1, 0), NOW - 1),
    msg: { type: "unchoke" },
    effect: { kind: "unchoked" },
    changes: { peerChoking: false, rejected: [] },
  },
  {
    name: "unchoke while unchoked: nothing, rejects kept",
    setup: (s) => {
      unchoked(s);
      s.rejected.set(blockKey(1, 0), NOW - 1);
    },
    msg: { type: "unchoke" },
    effect: { kind: "none" },
  },
  {
    name: "interested",
    msg: { type: "interested" },
    effect: { kind: "interested" },
    changes: { peerInterested: true },
  },
  {
    name: "interested twice: nothing",
    setup: (s) => void (s.peerInterested = true),
    msg: { type: "interested" },
    effect: { kind: "none" },
  },
  {
    name: "not-interested after interested",
    setup: (s) => void (s.peerInterested = true),
    msg: { type: "not-interested" },
    effect: { kind: "not-interested" },
    changes: { peerInterested: false },
  },
  { name: "not-interested while not interested: nothing", msg: { type: "not-interested" }, effect: { kind: "none" } },
  {
    name: "have: a new piece",
    msg: { type: "have", index: 9 },
    effect: { kind: "have", index: 9 },
    changes: { has: [9] },
  },
  {
    name: "have: a piece already known",
    setup: (s) => void s.has.set(4),
    msg: { type: "have", index: 4 },
    effect: { kind: "none" },
  },
  {
    name: "bitfield: replaces the set; nothing counted yet",
    msg: { type: "bitfield", bits: bits([0, 9]).bytes },
    effect: { kind: "pieces", previous: null },
    changes: { has: [0, 9] },
  },
  {
    name: "bitfield mid-connection (aria2c): the counted set is handed back to leave the availability",
    setup: (s) => {
      s.has = bits([1, 2]);
      s.hasCounted = true;
    },
    msg: { type: "bitfield", bits: bits([1, 2, 3]).bytes },
    effect: { kind: "pieces", previous: [1, 2] },
    changes: { has: [1, 2, 3] },
  },
  {
    name: "have-all (Fast)",
    msg: { type: "have-all" },
    effect: { kind: "pieces", previous: null },
    changes: { has: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
  },
  {
    name: "have-none (Fast) after a counted have",
    setup: (s) => {
      s.has.set(3);
      s.hasCounted = true;
    },
    msg: { type: "have-none" },
    effect: { kind: "pieces", previous: [3] },
    changes: { has: [] },
  },
  {
    name: "request: passed through to the upload queue",
    msg: { type: "request", index: 2, begin: B, length: B },
    effect: { kind: "request", index: 2, begin: B, length: B },
  },
  {
    name: "cancel: passed through",
    msg: { type: "cancel", index: 2, begin: B, length: B },
    effect: { kind: "cancel", index: 2, begin: B },
  },
  {
    name: "piece: passed through as a block",
    msg: { type: "piece", index: 2, begin: B, block: new Uint8Array([1, 2, 3]) },
    effect: { kind: "block", index: 2, begin: B, data: new Uint8Array([1, 2, 3]) },
  },
  {
    name: "reject while unchoked: remembered and counted",
    setup: unchoked,
    msg: { type: "reject", index: 2, begin: B, length: B },
    effect: { kind: "rejected", index: 2, begin: B, tooMany: false },
    changes: { rejected: [[blockKey(2, B), NOW]], rejectsInARow: 1 },
  },
  {
    name: "reject while choked: remembered, not counted against the peer",
    msg: { type: "reject", index: 2, begin: B, length: B },
    effect: { kind: "rejected", index: 2, begin: B, tooMany: false },
    changes: { rejected: [[blockKey(2, B), NOW]] },
  },
  {
    name: `reject number ${MAX_REJECTS_IN_A_ROW} in a row while unchoked: too many`,
    setup: (s) => {
      unchoked(s);
      s.rejectsInARow = MAX_REJECTS_IN_A_ROW - 1;
    },
    msg: { type: "reject", index: 0, begin: 0, length: B },
    effect: { kind: "rejected", index: 0, begin: 0, tooMany: true },
    changes: { rejected: [[blockKey(0, 0), NOW]], rejectsInARow: MAX_REJECTS_IN_A_ROW },
  },
  {
    name: `reject number ${MAX_REJECTS_IN_A_ROW - 1} in a row: not yet`,
    setup: (s) => {
      unchoked(s);
      s.rejectsInARow = MAX_REJECTS_IN_A_ROW - 2;
    },
    msg: { type: "reject", index: 0, begin: 0, length: B },
    effect: { kind: "rejected", index: 0, begin: 0, tooMany: false },
    changes: { rejected: [[blockKey(0, 0), NOW]], rejectsInARow: MAX_REJECTS_IN_A_ROW - 1 },
  },
  {
    name: "allowed-fast: a piece we may ask for while choked",
    msg: { type: "allowed-fast", index: 7 },
    effect: { kind: "allowed-fast", index: 7 },
    changes: { allowedFast: [7] },
  },
  {
    name: "allowed-fast past the last piece: ignored",
    msg: { type: "allowed-fast", index: N },
    effect: { kind: "none" },
  },
  {
    name: `allowed-fast past MAX_ALLOWED_FAST (${MAX_ALLOWED_FAST}): ignored`,
    setup: (s) => {
      for (let i = 0; i < MAX_ALLOWED_FAST; i++) s.allowedFast.add(1000 + i); // stand-ins: only the count matters
    },
    msg: { type: "allowed-fast", index: 1 },
    effect: { kind: "none" },
  },
  {
    name: "extension handshake: ids and reqq recorded",
    msg: ext({ m: new Map([["ut_metadata", 3], ["ut_pex", 1]]), reqq: 500 }),
    effect: { kind: "ext-handshake", handshake: { m: new Map([["ut_metadata", 3], ["ut_pex", 1]]), reqq: 500 } },
    changes: { extensions: [["ut_metadata", 3], ["ut_pex", 1]], reqq: 500 },
  },
  {
    name: "a later extension handshake updates ids, disables with id 0, keeps what it does not mention",
    setup: (s) => {
      s.extensions.set("ut_metadata", 3).set("ut_pex", 1).set("lt_donthave", 7);
      s.reqq = 250;
    },
    msg: ext({ m: new Map([["ut_metadata", 4], ["ut_pex", 0]]) }),
    effect: { kind: "ext-handshake", handshake: { m: new Map([["ut_metadata", 4], ["ut_pex", 0]]) } },
    changes: { extensions: [["ut_metadata", 4], ["lt_donthave", 7]] },
  },
  {
    name: "extension handshake with reqq 0: reqq left alone",
    setup: (s) => void (s.reqq = 100),
    msg: { type: "extended", id: 0, payload: enc.encode("d1:mde4:reqqi0ee") },
    effect: { kind: "ext-handshake", handshake: { m: new Map() } },
  },
  {
    name: "an extension message: passed through",
    msg: { type: "extended", id: 3, payload: new Uint8Array([1]) },
    effect: { kind: "ext-message", id: 3, payload: new Uint8Array([1]) },
  },
];

Deno.test("applyMessage() maps each message to its effect and state change", async (t) => {
  for (const r of rows) {
    await t.step(r.name, () => {
      const s = createPeerState(N, r.fast ?? true, true);
      s.lastMessageAt = 0;
      r.setup?.(s);
      const before = snap(s);
      const e = applyMessage(s, r.msg, NOW);
      assertEquals(plain(e), r.effect);
      assertEquals(snap(s), { ...before, ...r.changes, lastMessageAt: NOW });
    });
  }
});

Deno.test("createPeerState() starts choked both ways, uninterested, knowing nothing", () => {
  const s = createPeerState(N, false, true);
  assertEquals(snap(s), {
    has: [],
    hasCounted: false,
    amChoking: true,
    amInterested: false,
    peerChoking: true,
    peerInterested: false,
    allowedFast: [],
    rejected: [],
    rejectsInARow: 0,
    extensions: [],
    reqq: undefined,
    lastMessageAt: null,
  });
  assertEquals([s.pieceCount, s.fast, s.extended], [N, false, true]);
});

const faults: { name: string; fast: boolean; msg: Message }[] = [
  { name: "have past the last piece", fast: true, msg: { type: "have", index: N } },
  { name: "have far past the last piece", fast: true, msg: { type: "have", index: 0xffff_ffff } },
  { name: "have-all without Fast", fast: false, msg: { type: "have-all" } },
  { name: "have-none without Fast", fast: false, msg: { type: "have-none" } },
  { name: "reject without Fast", fast: false, msg: { type: "reject", index: 0, begin: 0, length: B } },
  { name: "bitfield one byte short", fast: true, msg: { type: "bitfield", bits: new Uint8Array(1) } },
  { name: "bitfield one byte long", fast: true, msg: { type: "bitfield", bits: new Uint8Array(3) } },
  { name: "bitfield empty", fast: true, msg: { type: "bitfield", bits: new Uint8Array(0) } },
  {
    name: "bitfield with the first spare bit set",
    fast: true,
    msg: { type: "bitfield", bits: Uint8Array.of(0, 0x20) },
  },
  {
    name: "bitfield with the last spare bit set",
    fast: true,
    msg: { type: "bitfield", bits: Uint8Array.of(0xff, 0x01) },
  },
  {
    name: "extension handshake that is not bencode",
    fast: true,
    msg: { type: "extended", id: 0, payload: enc.encode("x") },
  },
  {
    name: "extension handshake that is a list",
    fast: true,
    msg: { type: "extended", id: 0, payload: enc.encode("le") },
  },
];

Deno.test("applyMessage() throws WireError bad-payload on a protocol fault, leaving the pieces alone", async (t) => {
  for (const r of faults) {
    await t.step(r.name, () => {
      const s = createPeerState(N, r.fast, true);
      s.has.set(5);
      const err = assertThrows(() => applyMessage(s, r.msg, NOW), WireError);
      assertEquals(err.code, "bad-payload");
      assertEquals([...s.has.indexes()], [5]);
      assertEquals(s.rejected.size, 0);
    });
  }
});

Deno.test("applyMessage() counts rejects in a row until too many, only while unchoked", async (t) => {
  await t.step(`the ${MAX_REJECTS_IN_A_ROW}th reject in a row is too many, and every one after it`, () => {
    const s = createPeerState(N, true, false);
    applyMessage(s, { type: "unchoke" }, 0);
    const tooMany: boolean[] = [];
    for (let k = 0; k < MAX_REJECTS_IN_A_ROW + 2; k++) {
      const e = applyMessage(s, { type: "reject", index: k % N, begin: Math.floor(k / N) * B, length: B }, k);
      if (e.kind !== "rejected") throw new Error(`unexpected ${e.kind}`);
      tooMany.push(e.tooMany);
    }
    assertEquals(tooMany.indexOf(true), MAX_REJECTS_IN_A_ROW - 1);
    assertEquals(tooMany.slice(MAX_REJECTS_IN_A_ROW - 1), [true, true, true]);
  });
  await t.step("a block in between starts the count again (the runtime resets rejectsInARow)", () => {
    const s = createPeerState(N, true, false);
    applyMessage(s, { type: "unchoke" }, 0);
    for (let k = 0; k < 3 * MAX_REJECTS_IN_A_ROW; k++) {
      const e = applyMessage(s, { type: "reject", index: 0, begin: 0, length: B }, k);
      assertEquals(e.kind === "rejected" && e.tooMany, false, `reject ${k}`);
      if (k % (MAX_REJECTS_IN_A_ROW - 1) === MAX_REJECTS_IN_A_ROW - 2) s.rejectsInARow = 0;
    }
  });
  await t.step("rejects while choked are never too many", () => {
    const s = createPeerState(N, true, false);
    for (let k = 0; k < 2 * MAX_REJECTS_IN_A_ROW; k++) {
      const e = applyMessage(s, { type: "reject", index: 0, begin: 0, length: B }, k);
      assertEquals(e.kind === "rejected" && e.tooMany, false, `reject ${k}`);
    }
    assertEquals(s.rejectsInARow, 0);
  });
});

Deno.test(`applyMessage() remembers at most MAX_REJECTED_REMEMBERED (${MAX_REJECTED_REMEMBERED}) rejects, oldest out`, () => {
  const big = 1_000;
  const s = createPeerState(big, true, false);
  const keyOf = (k: number) => blockKey(k % big, Math.floor(k / big) * B);
  for (let k = 0; k < MAX_REJECTED_REMEMBERED + 10; k++) {
    applyMessage(s, { type: "reject", index: k % big, begin: Math.floor(k / big) * B, length: B }, k);
    assertEquals(s.rejected.size, Math.min(k + 1, MAX_REJECTED_REMEMBERED), `reject ${k}`);
  }
  for (let k = 0; k < 10; k++) assertEquals(s.rejected.has(keyOf(k)), false, `oldest ${k}`);
  assertEquals(s.rejected.has(keyOf(10)), true);
  assertEquals(s.rejected.has(keyOf(MAX_REJECTED_REMEMBERED + 9)), true);
});

Deno.test("applyMessage() records when the peer last sent anything, even a message that breaks the protocol", () => {
  const s = createPeerState(N, false, false);
  assertEquals(s.lastMessageAt, null);
  applyMessage(s, { type: "keep-alive" }, 5);
  assertEquals(s.lastMessageAt, 5);
  assertThrows(() => applyMessage(s, { type: "have-all" }, 9), WireError);
  assertEquals(s.lastMessageAt, 9);
});

Deno.test("mayRequest() allows unchoked peers and allowed-fast pieces", async (t) => {
  const rows = [
    { name: "choked, not allowed-fast", choked: true, index: 1, want: false },
    { name: "choked, allowed-fast", choked: true, index: 7, want: true },
    { name: "unchoked", choked: false, index: 1, want: true },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const s = createPeerState(N, true, false);
      applyMessage(s, { type: "allowed-fast", index: 7 }, 0);
      if (!r.choked) applyMessage(s, { type: "unchoke" }, 0);
      assertEquals(mayRequest(s, r.index), r.want);
    });
  }
});

Deno.test("recentlyRejected() holds a rejected block back for REJECT_BACKOFF_MS", async (t) => {
  const s = createPeerState(N, true, false);
  applyMessage(s, { type: "reject", index: 3, begin: B, length: B }, NOW);
  const rows = [
    { name: "at once", key: blockKey(3, B), now: NOW, want: true },
    { name: "just before the back-off ends", key: blockKey(3, B), now: NOW + REJECT_BACKOFF_MS - 1, want: true },
    { name: "when it ends", key: blockKey(3, B), now: NOW + REJECT_BACKOFF_MS, want: false },
    { name: "another block", key: blockKey(3, 0), now: NOW, want: false },
  ];
  for (const r of rows) await t.step(r.name, () => assertEquals(recentlyRejected(s, r.key, r.now), r.want));
  await t.step("an unchoke forgets it", () => {
    applyMessage(s, { type: "unchoke" }, NOW);
    assertEquals(recentlyRejected(s, blockKey(3, B), NOW), false);
  });
});

// Regression (was a bug, fixed): applyMessage() adds every extension name of every extension handshake to `extensions` and never removes one
// unless its id is 0, so a peer that keeps sending handshakes (each up to MAX_EXTENDED_MESSAGE_BYTES, 64 KiB, some
// 5,000 names) with fresh names grows that map without bound for as long as the connection lives (DESIGN.md §2: no
// peer may grow our memory without bound). Expected: a named bound on the names kept (or only the names we use).
Deno.test({
  name: "applyMessage() keeps a bounded number of extension names, however many handshakes come",
  fn: () => {
    const s = createPeerState(N, true, true);
    const perHandshake = 1_000;
    for (let k = 0; k < 50; k++) {
      const m = new Map<string, number>();
      for (let i = 0; i < perHandshake; i++) m.set(`x_${k}_${i}`, 1 + (i % 200));
      applyMessage(s, ext({ m }), k);
    }
    assertEquals(s.extensions.size <= perHandshake, true, `${s.extensions.size} extension names kept`);
  },
});
