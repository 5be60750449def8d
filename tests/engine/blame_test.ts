import { assertEquals } from "../_assert.ts";
import {
  BAN_STRIKES,
  createBlame,
  DIGEST_BYTES,
  forgetPeer,
  MAX_SUSPECT_PIECES,
  pieceFailed,
  piecePassed,
  wantsDigests,
} from "../../lib/engine/blame.ts";

/** Block digests: one 20-byte digest per entry, each filled with its byte value. */
function digests(...fill: number[]): Uint8Array {
  const out = new Uint8Array(fill.length * DIGEST_BYTES);
  fill.forEach((v, k) => out.fill(v, k * DIGEST_BYTES, (k + 1) * DIGEST_BYTES));
  return out;
}

type Step =
  | { readonly fail: number; readonly from: number[]; readonly digests?: number[]; readonly bans: number[] }
  | { readonly pass: number; readonly digests?: number[]; readonly bans: number[] }
  | { readonly forget: number };

const rows: { name: string; steps: Step[]; strikes?: [number, number][]; suspects?: number[] }[] = [
  {
    name: "one failure by a lone sender is a strike, not a ban",
    steps: [{ fail: 0, from: [7, 7, 7], bans: [] }],
    strikes: [[7, 1]],
    suspects: [],
  },
  {
    name: `${BAN_STRIKES} failures by one lone sender ban it`,
    steps: [{ fail: 0, from: [7, 7], bans: [] }, { fail: 1, from: [7, 7], bans: [7] }],
    strikes: [[7, 2]],
  },
  {
    name: "strikes are counted per peer",
    steps: [{ fail: 0, from: [7, 7], bans: [] }, { fail: 1, from: [8, 8], bans: [] }, {
      fail: 2,
      from: [8],
      bans: [8],
    }],
    strikes: [[7, 1], [8, 2]],
  },
  {
    name: "blocks of no sender (0) do not count as a second sender",
    steps: [{ fail: 0, from: [0, 7, 0], bans: [] }, { fail: 1, from: [7, 0], bans: [7] }],
    strikes: [[7, 2]],
    suspects: [],
  },
  {
    name: "a failure with several senders strikes nobody and keeps the piece as a suspect",
    steps: [{ fail: 3, from: [4, 5], digests: [1, 2], bans: [] }, { fail: 4, from: [4, 5], bans: [] }],
    strikes: [],
    suspects: [3, 4],
  },
  {
    name: "smart ban: when the suspect piece passes, the sender of the block that differs is banned",
    steps: [{ fail: 3, from: [4, 5, 6], digests: [0, 9, 0], bans: [] }, { pass: 3, digests: [0, 0, 0], bans: [5] }],
    suspects: [],
  },
  {
    name: "smart ban: every sender of a differing block is banned, each once",
    steps: [
      { fail: 3, from: [4, 5, 4, 6], digests: [9, 0, 9, 9], bans: [] },
      { pass: 3, digests: [0, 0, 0, 0], bans: [4, 6] },
    ],
  },
  {
    name: "smart ban: a pass with the very digests of the failure bans nobody",
    steps: [{ fail: 3, from: [4, 5], digests: [0, 0], bans: [] }, { pass: 3, digests: [0, 0], bans: [] }],
  },
  {
    name: "smart ban: a differing block of no sender bans nobody",
    steps: [{ fail: 3, from: [0, 5], digests: [9, 0], bans: [] }, { pass: 3, digests: [0, 0], bans: [] }],
  },
  {
    name: "a pass without digests forgets the suspect and bans nobody",
    steps: [{ fail: 3, from: [4, 5], digests: [9, 9], bans: [] }, { pass: 3, bans: [] }],
    suspects: [],
  },
  {
    name: "a pass of a piece that never failed bans nobody",
    steps: [{ pass: 1, digests: [1], bans: [] }],
    suspects: [],
  },
  {
    name: "forgetPeer() ends a peer's strikes",
    steps: [{ fail: 0, from: [7], bans: [] }, { forget: 7 }, { fail: 1, from: [7], bans: [] }],
    strikes: [[7, 1]],
  },
  {
    name: "forgetPeer() of another peer keeps this one's strikes",
    steps: [{ fail: 0, from: [7], bans: [] }, { forget: 8 }, { fail: 1, from: [7], bans: [7] }],
  },
];

Deno.test("pieceFailed(), piecePassed() and forgetPeer() strike, smart-ban and forget", async (t) => {
  for (const r of rows) {
    await t.step(r.name, () => {
      const b = createBlame();
      for (const [k, s] of r.steps.entries()) {
        if ("fail" in s) {
          const d = digests(...(s.digests ?? s.from.map(() => 0)));
          assertEquals(pieceFailed(b, s.fail, Int32Array.from(s.from), d), s.bans, `step ${k}`);
        } else if ("pass" in s) {
          const d = s.digests && digests(...s.digests);
          assertEquals(piecePassed(b, s.pass, d), s.bans, `step ${k}`);
        } else forgetPeer(b, s.forget);
      }
      if (r.strikes) assertEquals([...b.strikes].sort((x, y) => x[0] - y[0]), r.strikes);
      if (r.suspects) assertEquals([...b.suspects.keys()], r.suspects);
    });
  }
});

Deno.test("piecePassed() compares every byte of each block's digest", async (t) => {
  for (const at of [0, 7, DIGEST_BYTES - 1]) {
    await t.step(`a difference at byte ${at} of the second block`, () => {
      const b = createBlame();
      const bad = new Uint8Array(2 * DIGEST_BYTES);
      bad[DIGEST_BYTES + at] = 1;
      pieceFailed(b, 0, Int32Array.of(4, 5), bad);
      assertEquals(piecePassed(b, 0, new Uint8Array(2 * DIGEST_BYTES)), [5]);
    });
  }
});

Deno.test("pieceFailed() keeps copies of its inputs, so the caller may reuse its buffers", () => {
  const b = createBlame();
  const from = Int32Array.of(4, 5);
  const d = digests(1, 2);
  pieceFailed(b, 0, from, d);
  from.fill(9);
  d.fill(0);
  assertEquals(piecePassed(b, 0, digests(1, 0)), [5]);
});

Deno.test("wantsDigests() asks for digests only for suspect pieces", async (t) => {
  const b = createBlame();
  pieceFailed(b, 1, Int32Array.of(7, 7), digests(0, 0)); // lone sender: no suspect
  pieceFailed(b, 2, Int32Array.of(7, 8), digests(0, 0));
  const rows = [
    { name: "a piece that never failed", index: 0, want: false },
    { name: "a piece that failed by a lone sender", index: 1, want: false },
    { name: "a piece that failed with several senders", index: 2, want: true },
  ];
  for (const r of rows) await t.step(r.name, () => assertEquals(wantsDigests(b, r.index), r.want));
  await t.step("not after the suspect passed", () => {
    piecePassed(b, 2, digests(0, 0));
    assertEquals(wantsDigests(b, 2), false);
  });
});

Deno.test(`pieceFailed() keeps at most MAX_SUSPECT_PIECES (${MAX_SUSPECT_PIECES}) suspects, forgetting the oldest`, async (t) => {
  const b = createBlame();
  for (let i = 0; i < MAX_SUSPECT_PIECES; i++) pieceFailed(b, i, Int32Array.of(1, 2), digests(0, 0));
  await t.step("at the bound, all are kept", () => {
    assertEquals(b.suspects.size, MAX_SUSPECT_PIECES);
    assertEquals(wantsDigests(b, 0), true);
  });
  await t.step("failing a suspect again does not push another out", () => {
    pieceFailed(b, 5, Int32Array.of(1, 2), digests(0, 0));
    assertEquals(b.suspects.size, MAX_SUSPECT_PIECES);
    assertEquals(wantsDigests(b, 0), true);
  });
  await t.step("one more piece forgets the oldest", () => {
    pieceFailed(b, 10_000, Int32Array.of(1, 2), digests(0, 0));
    assertEquals(b.suspects.size, MAX_SUSPECT_PIECES);
    assertEquals([wantsDigests(b, 0), wantsDigests(b, 1), wantsDigests(b, 10_000)], [false, true, true]);
    assertEquals(piecePassed(b, 0, digests(9, 9)), []); // forgotten: nobody is banned
  });
});
