import { assert, assertEquals, assertNotEquals } from "../_assert.ts";
import { seeded } from "../_gen.ts";
import {
  CHOKE_ROUND_MS,
  type ChokePeer,
  type ChokerState,
  decideChokes,
  INITIAL_CHOKER,
  OPTIMISTIC_ROUND_MS,
  SNUB_MS,
} from "../../lib/engine/choker.ts";

function peer(id: number, o: Partial<ChokePeer> = {}): ChokePeer {
  return { id, interested: true, downloadRate: 0, uploadRate: 0, lastBlockAt: 0, amInterested: false, ...o };
}

function ids(s: ChokerState): number[] {
  return [...s.unchoked].sort((a, b) => a - b);
}

Deno.test("decideChokes() gives regular slots to the fastest uploaders to us while leeching", () => {
  const peers = [10, 50, 40, 30, 20, 60].map((r, k) => peer(k + 1, { downloadRate: r * 1000, uploadRate: 1e9 - r }));
  // 4 slots: 3 regular (ids 6, 2, 3 by download rate) and an optimistic one among the rest
  const s = decideChokes(INITIAL_CHOKER, peers, { slots: 4, seeding: false, now: 0, random: () => 0 });
  assertEquals(s.unchoked.size, 4);
  for (const id of [6, 2, 3]) assert(s.unchoked.has(id), `regular ${id} in ${ids(s)}`);
  assert(s.optimistic !== null && ![6, 2, 3].includes(s.optimistic), `optimistic ${s.optimistic}`);
  assert(s.unchoked.has(s.optimistic));
});

Deno.test("decideChokes() gives regular slots to the fastest downloaders from us while seeding", () => {
  const peers = [10, 50, 40, 30, 20, 60].map((r, k) => peer(k + 1, { uploadRate: r * 1000, downloadRate: 1e9 - r }));
  const s = decideChokes(INITIAL_CHOKER, peers, { slots: 3, seeding: true, now: 0, random: () => 0.5 });
  for (const id of [6, 2]) assert(s.unchoked.has(id), `regular ${id} in ${ids(s)}`);
  assertEquals(s.unchoked.size, 3);
});

Deno.test("decideChokes() re-decides only every CHOKE_ROUND_MS, unless forced", () => {
  const o = { slots: 2, seeding: false, random: () => 0 };
  const a = [peer(1, { downloadRate: 10 }), peer(2, { downloadRate: 20 }), peer(3, { downloadRate: 5 })];
  const s0 = decideChokes(INITIAL_CHOKER, a, { ...o, now: 1000 });
  assertEquals(s0.roundAt, 1000);
  assert(s0.unchoked.has(2));
  // peer 1 becomes the fastest, but the round is not due
  const b = [peer(1, { downloadRate: 100 }), peer(2, { downloadRate: 20 }), peer(3, { downloadRate: 5 })];
  assertEquals(decideChokes(s0, b, { ...o, now: 1000 + CHOKE_ROUND_MS - 1 }) === s0, true);
  const forced = decideChokes(s0, b, { ...o, now: 2000, force: true });
  assertEquals(forced.roundAt, 2000);
  assert(forced.unchoked.has(1));
  const due = decideChokes(s0, b, { ...o, now: 1000 + CHOKE_ROUND_MS });
  assertEquals(due.roundAt, 1000 + CHOKE_ROUND_MS);
  assert(due.unchoked.has(1));
});

Deno.test("decideChokes() moves the optimistic unchoke every OPTIMISTIC_ROUND_MS, and not before", () => {
  // one regular slot (peer 1, fastest) and one optimistic slot among five slow peers
  const peers = [peer(1, { downloadRate: 1000 }), ...[2, 3, 4, 5, 6].map((id) => peer(id, { downloadRate: id }))];
  const random = seeded(99);
  const o = { slots: 2, seeding: false, random };
  let s = decideChokes(INITIAL_CHOKER, peers, { ...o, now: 0 });
  const first = s.optimistic;
  assert(first !== null && first !== 1);
  assertEquals(s.optimisticAt, 0);
  for (const now of [CHOKE_ROUND_MS, 2 * CHOKE_ROUND_MS, OPTIMISTIC_ROUND_MS - 1]) {
    s = decideChokes(s, peers, { ...o, now, force: true });
    assertEquals(s.optimistic, first, `at ${now}`);
    assertEquals(ids(s), [1, first].sort((a, b) => a - b));
  }
  const seen = new Set<number | null>([first]);
  for (let k = 1; k <= 6; k++) {
    const prev = s.optimistic;
    s = decideChokes(s, peers, { ...o, now: k * OPTIMISTIC_ROUND_MS, force: true });
    assertNotEquals(s.optimistic, prev, `round ${k}`);
    assertEquals(s.optimisticAt, k * OPTIMISTIC_ROUND_MS);
    assert(s.optimistic !== 1);
    seen.add(s.optimistic);
  }
  assert(seen.size >= 3, `optimistic went to ${[...seen]}`);
});

Deno.test("decideChokes() on the normal round clock moves the optimistic slot at the first round after 30 s", () => {
  const peers = [peer(1, { downloadRate: 1000 }), ...[2, 3, 4, 5].map((id) => peer(id, { downloadRate: id }))];
  const o = { slots: 2, seeding: false, random: seeded(5) };
  let s = decideChokes(INITIAL_CHOKER, peers, { ...o, now: 0 });
  const first = s.optimistic;
  for (let now = CHOKE_ROUND_MS; now < OPTIMISTIC_ROUND_MS; now += CHOKE_ROUND_MS) {
    s = decideChokes(s, peers, { ...o, now });
    assertEquals([s.roundAt, s.optimistic], [now, first]);
  }
  s = decideChokes(s, peers, { ...o, now: OPTIMISTIC_ROUND_MS });
  assertEquals(s.roundAt, OPTIMISTIC_ROUND_MS);
  assertNotEquals(s.optimistic, first);
});

Deno.test("decideChokes() moves the optimistic slot at once when its peer loses interest or leaves", () => {
  const peers = [peer(1, { downloadRate: 1000 }), peer(2), peer(3)];
  const o = { slots: 2, seeding: false, random: () => 0 };
  const s = decideChokes(INITIAL_CHOKER, peers, { ...o, now: 0 });
  const opt = s.optimistic;
  assert(opt === 2 || opt === 3);
  const other = opt === 2 ? 3 : 2;
  const lost = decideChokes(s, peers.map((p) => (p.id === opt ? { ...p, interested: false } : p)), {
    ...o,
    now: 1,
    force: true,
  });
  assertEquals(lost.optimistic, other);
  const left = decideChokes(s, peers.filter((p) => p.id !== opt), { ...o, now: 1, force: true });
  assertEquals(left.optimistic, other);
});

Deno.test("decideChokes() takes regular slots from peers snubbing us while leeching, not while seeding", () => {
  const now = 100_000;
  const snubber = peer(1, { downloadRate: 1e6, uploadRate: 1e6, amInterested: true, lastBlockAt: now - SNUB_MS });
  const others = [
    peer(2, { downloadRate: 50, uploadRate: 50, amInterested: true, lastBlockAt: now - 1 }),
    peer(3, { downloadRate: 40, uploadRate: 40, amInterested: true, lastBlockAt: now - 1 }),
    peer(4, { downloadRate: 30, uploadRate: 30, amInterested: true, lastBlockAt: now - 1 }),
  ];
  // 3 slots: regular 2, 3; the optimistic pool is [1, 4] and random() = 0.99 takes 4
  const leech = decideChokes(INITIAL_CHOKER, [snubber, ...others], {
    slots: 3,
    seeding: false,
    now,
    random: () => 0.99,
  });
  assertEquals(ids(leech), [2, 3, 4]);
  // just under SNUB_MS it is not snubbing yet
  const fresh = { ...snubber, lastBlockAt: now - SNUB_MS + 1 };
  const ok = decideChokes(INITIAL_CHOKER, [fresh, ...others], { slots: 3, seeding: false, now, random: () => 0.99 });
  assert(ok.unchoked.has(1), `${ids(ok)}`);
  // a peer we do not want data from is not snubbing us
  const notWanted = { ...snubber, amInterested: false };
  const nw = decideChokes(INITIAL_CHOKER, [notWanted, ...others], {
    slots: 3,
    seeding: false,
    now,
    random: () => 0.99,
  });
  assert(nw.unchoked.has(1), `${ids(nw)}`);
  // seeding ranks by upload rate and ignores snubbing
  const seed = decideChokes(INITIAL_CHOKER, [snubber, ...others], { slots: 3, seeding: true, now, random: () => 0.99 });
  assert(seed.unchoked.has(1), `${ids(seed)}`);
});

Deno.test("decideChokes() never unchokes uninterested peers", () => {
  const peers = [
    peer(1, { interested: false, downloadRate: 1e9, uploadRate: 1e9 }),
    peer(2, { downloadRate: 1 }),
    peer(3, { interested: false, downloadRate: 1e8, uploadRate: 1e8 }),
    peer(4, { downloadRate: 2 }),
  ];
  for (const seeding of [false, true]) {
    const s = decideChokes(INITIAL_CHOKER, peers, { slots: 4, seeding, now: 0, random: () => 0.3 });
    assertEquals(ids(s), [2, 4]);
  }
  const none = decideChokes(INITIAL_CHOKER, [peer(1, { interested: false })], {
    slots: 4,
    seeding: false,
    now: 0,
    random: () => 0,
  });
  assertEquals([ids(none), none.optimistic], [[], null]);
});

Deno.test("decideChokes() fills slots left empty, even with snubbing peers, up to the slot count", () => {
  const now = 200_000;
  const snub = (id: number) => peer(id, { amInterested: true, lastBlockAt: 0, downloadRate: 0 });
  // one good peer and two snubbing: no regular candidate but peer 3; the rest fill empty slots
  const s = decideChokes(INITIAL_CHOKER, [snub(1), snub(2), peer(3, { downloadRate: 5 })], {
    slots: 4,
    seeding: false,
    now,
    random: () => 0,
  });
  assertEquals(ids(s), [1, 2, 3]);
  // more interested peers than slots: exactly `slots` unchoked
  const many = Array.from({ length: 10 }, (_, k) => peer(k + 1, { downloadRate: k }));
  const t = decideChokes(INITIAL_CHOKER, many, { slots: 4, seeding: false, now, random: () => 0.5 });
  assertEquals(t.unchoked.size, 4);
  for (const id of [10, 9, 8]) assert(t.unchoked.has(id));
  // one slot only: it is the optimistic one
  const one = decideChokes(INITIAL_CHOKER, many, { slots: 1, seeding: false, now, random: () => 0 });
  assertEquals([one.unchoked.size, one.optimistic !== null && one.unchoked.has(one.optimistic)], [1, true]);
});
