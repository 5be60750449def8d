import { assertEquals } from "../_assert.ts";
import {
  createPex,
  forgetPexPeer,
  OUR_UT_PEX_ID,
  PEX_MAX_SENT_ENTRIES,
  PEX_SEND_INTERVAL_MS,
  PEX_TEACHINGS_PER_HOST,
  type PexPeerView,
  pexReceived,
  type PexSend,
  pexTick,
  type PexVerdict,
} from "../../lib/engine/pex.ts";
import { OUR_UT_METADATA_ID } from "../../lib/engine/metadata_fetch.ts";
import { decodePex, encodePex, PexFlag, type PexMessage } from "../../lib/wire/pex.ts";
import { addressScope, mayShare, type PeerAddress } from "../../lib/address.ts";
import { PEX_MAX_LEARNT_PER_MESSAGE, PEX_MAX_RECEIVED_ENTRIES, PEX_MIN_RECEIVE_INTERVAL_MS } from "../../lib/limits.ts";

const EMPTY: PexMessage = { added: [], addedFlags: [], added6: [], added6Flags: [], dropped: [], dropped6: [] };
const msg = (m: Partial<PexMessage>): PexMessage => ({ ...EMPTY, ...m });
const addr = (text: string): PeerAddress => {
  const i = text.lastIndexOf(":");
  return { host: text.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(text.slice(i + 1)) };
};
const hosts = (list: readonly PeerAddress[]): string[] =>
  list.map((a) => a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
/** `n` distinct public IPv4 peers on port 6881, from 20.0.0.0 up. */
const publicPeers = (n: number, base = 0): PeerAddress[] =>
  Array.from({ length: n }, (_, i) => ({ host: `20.0.${(base + i) >> 8}.${(base + i) & 0xff}`, port: 6881 }));

const SENDER = addr("5.6.7.8:51413");
function arrive(pex: ReturnType<typeof createPex>, m: PexMessage, now: number, o: Partial<{
  peer: number;
  address: PeerAddress;
  listenPort: number;
}> = {}): PexVerdict {
  return pexReceived(pex, {
    peer: o.peer ?? 1,
    address: o.address ?? SENDER,
    listenPort: o.listenPort,
    payload: encodePex(m),
  }, now);
}
const learntKeys = (v: PexVerdict): string[] =>
  v.kind === "accept" ? hosts(v.learnt.map((l) => l.address)) : [`drop: ${v.reason}`];

Deno.test("OUR_UT_PEX_ID differs from our ut_metadata id", () => {
  assertEquals(new Set<number>([OUR_UT_PEX_ID, OUR_UT_METADATA_ID]).size, 2);
  assertEquals(OUR_UT_PEX_ID > 0 && OUR_UT_PEX_ID < 256, true);
});

Deno.test("addressScope() and mayShare() sort addresses by who may hear of them", async (t) => {
  const rows: [string, string][] = [
    ["8.8.8.8", "public"],
    ["2001:db8::1", "public"],
    ["100.64.0.1", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["::1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", "public"],
    ["172.15.0.1", "public"],
    ["192.168.0.1", "private"],
    ["192.169.0.1", "public"],
    ["169.254.1.1", "private"],
    ["fc00::1", "private"],
    ["fdff::1", "private"],
    ["fe80::1", "private"],
    ["febf::1", "private"],
    ["fec0::1", "public"],
    ["::ffff:192.168.1.1", "private"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:8.8.8.8", "public"],
    ["0.0.0.0", "unusable"],
    ["0.1.2.3", "unusable"],
    ["224.0.0.1", "unusable"],
    ["240.0.0.1", "unusable"],
    ["255.255.255.255", "unusable"],
    ["::", "unusable"],
    ["ff02::1", "unusable"],
    ["example.org", "unusable"],
  ];
  for (const [host, want] of rows) await t.step(host, () => assertEquals(addressScope(host), want));
  await t.step("mayShare() table", () => {
    const scopes = ["public", "private", "loopback", "unusable"] as const;
    const table = scopes.map((a) => scopes.map((p) => mayShare(a, p) ? 1 : 0));
    // rows: the address's scope; columns: the peer's scope (public, private, loopback, unusable)
    assertEquals(table, [[1, 1, 1, 1], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]);
  });
});

// ---- receiving -----------------------------------------------------------------------------------------------------

Deno.test("pexReceived() takes one message a peer per PEX_MIN_RECEIVE_INTERVAL_MS and drops a faster sender", async (t) => {
  const one = msg({ added: [addr("1.2.3.4:6881")] });
  await t.step("the first message at any time, the next at the minimum gap", () => {
    const pex = createPex({ self: new Set() });
    assertEquals(arrive(pex, one, 5).kind, "accept");
    assertEquals(arrive(pex, one, 5 + PEX_MIN_RECEIVE_INTERVAL_MS).kind, "accept");
    assertEquals(arrive(pex, one, 5 + PEX_MIN_RECEIVE_INTERVAL_MS + 60_000).kind, "accept");
  });
  await t.step("a message 1 ms early is a flood: drop", () => {
    const pex = createPex({ self: new Set() });
    assertEquals(arrive(pex, one, 1_000).kind, "accept");
    const v = arrive(pex, one, 1_000 + PEX_MIN_RECEIVE_INTERVAL_MS - 1);
    assertEquals(v.kind === "drop" && v.error === undefined, true);
  });
  await t.step("back-to-back messages: the second is dropped, even if empty", () => {
    const pex = createPex({ self: new Set() });
    assertEquals(arrive(pex, EMPTY, 0).kind, "accept");
    assertEquals(arrive(pex, EMPTY, 0).kind, "drop");
  });
  await t.step("each peer has its own clock", () => {
    const pex = createPex({ self: new Set() });
    assertEquals(arrive(pex, one, 0, { peer: 1 }).kind, "accept");
    assertEquals(arrive(pex, one, 1, { peer: 2 }).kind, "accept");
    assertEquals(arrive(pex, one, 2, { peer: 1 }).kind, "drop");
  });
  await t.step("a peer forgotten and reconnected starts afresh", () => {
    const pex = createPex({ self: new Set() });
    assertEquals(arrive(pex, one, 0).kind, "accept");
    forgetPexPeer(pex, 1);
    assertEquals(arrive(pex, one, 1).kind, "accept");
  });
  await t.step(`one host teaches at most ${PEX_TEACHINGS_PER_HOST} times a window, however often it reconnects`, () => {
    const pex = createPex({ self: new Set() });
    const learnt: number[] = [];
    for (let c = 0; c < 10; c++) {
      // a new connection each time, each from a new source port, each naming 100 new addresses
      const v = arrive(pex, msg({ added: publicPeers(100, 100 * c) }), c, {
        peer: 100 + c,
        address: { host: SENDER.host, port: 40_000 + c },
      });
      assertEquals(v.kind, "accept");
      learnt.push(v.kind === "accept" ? v.learnt.length : -1);
      forgetPexPeer(pex, 100 + c);
    }
    assertEquals(learnt, [100, 100, 100, 100, 0, 0, 0, 0, 0, 0]);
    // another host is not held back, and the window ends
    assertEquals(learntKeys(arrive(pex, one, 20, { peer: 200, address: addr("9.9.9.9:1") })), ["1.2.3.4:6881"]);
    assertEquals(learntKeys(arrive(pex, one, PEX_MIN_RECEIVE_INTERVAL_MS, { peer: 201 })), ["1.2.3.4:6881"]);
  });
});

Deno.test("pexReceived() drops a peer whose message is malformed or over the limits, with the codec's error", async (t) => {
  // the limit in IPv4 peers, and one IPv6 peer more (encodePex refuses to write it, so it is spliced in)
  const full = encodePex(msg({ added: publicPeers(PEX_MAX_RECEIVED_ENTRIES) }));
  const oneMore = new Uint8Array([...new TextEncoder().encode("6:added618:"), ...new Uint8Array(15), 1, 0, 1]);
  const rows: { name: string; payload: Uint8Array; code: string }[] = [
    {
      name: `${PEX_MAX_RECEIVED_ENTRIES + 1} added`,
      payload: new Uint8Array([...full.subarray(0, -1), ...oneMore, 0x65]),
      code: "too-long",
    },
    { name: "not bencode", payload: new TextEncoder().encode("hello"), code: "bad-payload" },
    { name: "added of 7 bytes", payload: new TextEncoder().encode("d5:added7:abcdefge"), code: "bad-length" },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const pex = createPex({ self: new Set() });
      const v = pexReceived(pex, { peer: 1, address: SENDER, payload: r.payload }, 0);
      assertEquals(v.kind === "drop" ? v.error?.code : v.kind, r.code);
    });
  }
});

Deno.test("pexReceived() returns the peers worth a dial, deduplicated and bounded", async (t) => {
  const self = new Set(["9.9.9.9:6881"]);
  const rows: { name: string; m: PexMessage; from?: string; listenPort?: number; want: string[] }[] = [
    {
      name: "IPv4 then IPv6, in order",
      m: msg({ added: [addr("1.1.1.1:1"), addr("2.2.2.2:2")], added6: [addr("[2001:db8::1]:3")] }),
      want: ["1.1.1.1:1", "2.2.2.2:2", "[2001:db8::1]:3"],
    },
    {
      name: "never our own address",
      m: msg({ added: [addr("9.9.9.9:6881"), addr("9.9.9.9:6882")] }),
      want: ["9.9.9.9:6882"],
    },
    {
      name: "never the sender, by its socket address or its listen port",
      m: msg({ added: [addr("5.6.7.8:51413"), addr("5.6.7.8:6881"), addr("5.6.7.8:7000")] }),
      listenPort: 6881,
      want: ["5.6.7.8:7000"],
    },
    {
      name: "an address once, even when added twice",
      m: msg({
        added: [addr("1.1.1.1:1"), addr("1.1.1.1:1")],
        added6: [addr("[2001:db8::1]:3"), addr("[2001:db8::1]:3")],
      }),
      want: ["1.1.1.1:1", "[2001:db8::1]:3"],
    },
    {
      name: "a public IP once, whatever its ports (BEP 11)",
      m: msg({ added: [addr("1.1.1.1:1"), addr("1.1.1.1:2"), addr("1.1.1.2:2")] }),
      want: ["1.1.1.1:1", "1.1.1.2:2"],
    },
    {
      name: "unusable addresses never",
      m: msg({
        added: [addr("0.0.0.0:1"), addr("224.0.0.1:1"), addr("255.255.255.255:1")],
        added6: [addr("[::]:1"), addr("[ff02::1]:1")],
      }),
      want: [],
    },
    {
      name: "a public sender: no private, link-local or loopback addresses",
      m: msg({
        added: [
          addr("10.0.0.1:1"),
          addr("192.168.1.1:1"),
          addr("169.254.0.1:1"),
          addr("127.0.0.1:1"),
          addr("8.8.8.8:1"),
        ],
        added6: [addr("[fd00::1]:1"), addr("[fe80::1]:1"), addr("[::1]:1"), addr("[::ffff:10.0.0.1]:1")],
      }),
      want: ["8.8.8.8:1"],
    },
    {
      name: "a private sender: private and public addresses, no loopback",
      from: "192.168.1.20:51413",
      m: msg({
        added: [addr("10.0.0.1:1"), addr("127.0.0.1:1"), addr("8.8.8.8:1")],
        added6: [addr("[fd00::1]:1"), addr("[::1]:2")],
      }),
      want: ["10.0.0.1:1", "8.8.8.8:1", "[fd00::1]:1"],
    },
    {
      name: "a loopback sender: everything, and several ports of one local IP (test swarms)",
      from: "127.0.0.1:40000",
      m: msg({ added: [addr("127.0.0.1:6001"), addr("127.0.0.1:6002"), addr("10.0.0.1:1"), addr("8.8.8.8:1")] }),
      want: ["127.0.0.1:6001", "127.0.0.1:6002", "10.0.0.1:1", "8.8.8.8:1"],
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const pex = createPex({ self });
      const v = arrive(pex, r.m, 0, { address: r.from ? addr(r.from) : SENDER, listenPort: r.listenPort });
      assertEquals(learntKeys(v), r.want);
    });
  }
  await t.step(`at most PEX_MAX_LEARNT_PER_MESSAGE (${PEX_MAX_LEARNT_PER_MESSAGE}), the first ones`, () => {
    const pex = createPex({ self });
    const v = arrive(pex, msg({ added: publicPeers(PEX_MAX_RECEIVED_ENTRIES) }), 0);
    assertEquals(learntKeys(v), hosts(publicPeers(PEX_MAX_LEARNT_PER_MESSAGE)));
  });
  await t.step("our address added to self later is refused from then on", () => {
    const mine = new Set<string>();
    const pex = createPex({ self: mine });
    mine.add("1.1.1.1:1");
    assertEquals(learntKeys(arrive(pex, msg({ added: [addr("1.1.1.1:1")] }), 0)), []);
  });
});

Deno.test("pexReceived() passes flags along when the sender gave them, and the dropped peers", () => {
  const pex = createPex({ self: new Set() });
  const v = arrive(
    pex,
    msg({
      added: [addr("1.1.1.1:1"), addr("2.2.2.2:2")],
      addedFlags: [PexFlag.seed, PexFlag.reachable | PexFlag.utp],
      added6: [addr("[2001:db8::1]:3")],
      dropped: [addr("3.3.3.3:3"), addr("3.3.3.3:3")],
      dropped6: [addr("[2001:db8::2]:4")],
    }),
    0,
  );
  assertEquals(v, {
    kind: "accept",
    learnt: [
      { address: addr("1.1.1.1:1"), flags: 0x02 },
      { address: addr("2.2.2.2:2"), flags: 0x14 },
      { address: addr("[2001:db8::1]:3") },
    ],
    dropped: [addr("3.3.3.3:3"), addr("[2001:db8::2]:4")],
  });
});

// ---- sending -------------------------------------------------------------------------------------------------------

/** A connected peer we dialled that speaks ut_pex (id 7) unless told otherwise. */
function peer(id: number, address: string, o: Partial<PexPeerView> = {}): PexPeerView {
  return { id, address: addr(address), incoming: false, utPexId: 7, seed: false, ...o };
}
/** What each recipient was told, as text: `id: +added -dropped`. */
function told(out: readonly PexSend[]): string[] {
  return out.map((s) => {
    const m = s.message;
    const add = hosts([...m.added, ...m.added6]).map((k) => `+${k}`);
    const drop = hosts([...m.dropped, ...m.dropped6]).map((k) => `-${k}`);
    return `${s.peer}: ${[...add, ...drop].join(" ")}`;
  });
}

Deno.test("pexTick() sends each peer what changed since its last message, once a minute at most", () => {
  const pex = createPex({ self: new Set() });
  const a = peer(1, "1.1.1.1:1");
  const b = peer(2, "2.2.2.2:2", { utPexId: undefined });
  const c = peer(3, "3.3.3.3:3", { utPexId: 0 });
  // t=0: A speaks ut_pex and hears of B and C; B and C do not speak it
  assertEquals(told(pexTick(pex, 0, [a, b, c])), ["1: +2.2.2.2:2 +3.3.3.3:3"]);
  // t=30 s: D connects, B goes: A hears nothing yet
  const d = peer(4, "4.4.4.4:4", { utPexId: undefined });
  assertEquals(told(pexTick(pex, 30_000, [a, c, d])), []);
  // t=60 s: A hears of both changes at once
  assertEquals(told(pexTick(pex, PEX_SEND_INTERVAL_MS, [a, c, d])), ["1: +4.4.4.4:4 -2.2.2.2:2"]);
  // t=70 s to 80 s: E comes and goes between two messages: never mentioned; nothing else changed: no message
  const e = peer(5, "5.5.5.5:5", { utPexId: undefined });
  assertEquals(told(pexTick(pex, 70_000, [a, c, d, e])), []);
  assertEquals(told(pexTick(pex, 2 * PEX_SEND_INTERVAL_MS, [a, c, d])), []);
  // C disconnects and reconnects (a new id) between messages: nothing to say about it
  const c2 = peer(6, "3.3.3.3:3", { utPexId: undefined });
  assertEquals(told(pexTick(pex, 3 * PEX_SEND_INTERVAL_MS, [a, d, c2])), []);
  // with nothing said for a while, the next change goes out at the next tick
  assertEquals(told(pexTick(pex, 3 * PEX_SEND_INTERVAL_MS + 1_000, [a, c2])), ["1: -4.4.4.4:4"]);
  assertEquals(told(pexTick(pex, 3 * PEX_SEND_INTERVAL_MS + 2_000, [a])), []); // a minute has not passed
  assertEquals(told(pexTick(pex, 4 * PEX_SEND_INTERVAL_MS + 1_000, [a])), ["1: -3.3.3.3:3"]);
});

Deno.test("pexTick() sends a peer's first message as soon as there is something to say", () => {
  const pex = createPex({ self: new Set() });
  const a = peer(1, "1.1.1.1:1");
  assertEquals(told(pexTick(pex, 5_000, [a])), []); // alone: nothing to say
  assertEquals(told(pexTick(pex, 6_000, [a, peer(2, "2.2.2.2:2")])), ["1: +2.2.2.2:2", "2: +1.1.1.1:1"]);
  // a peer whose ut_pex id arrives later (its extended handshake) gets its first message then
  const pex2 = createPex({ self: new Set() });
  const b = peer(2, "2.2.2.2:2", { utPexId: undefined });
  assertEquals(told(pexTick(pex2, 0, [a, b])), ["1: +2.2.2.2:2"]);
  assertEquals(told(pexTick(pex2, 1_000, [a, { ...b, utPexId: 9 }])), ["2: +1.1.1.1:1"]);
});

Deno.test("pexTick() writes messages with the recipient's id, flags, both families, and payloads that decode", () => {
  const pex = createPex({ self: new Set() });
  const peers = [
    peer(1, "1.1.1.1:1", { utPexId: 42 }),
    peer(2, "2.2.2.2:2", { seed: true }),
    peer(3, "[2001:db8::3]:3"),
    peer(4, "4.4.4.4:40000", { incoming: true, listenPort: 4444, seed: true }),
  ];
  const out = pexTick(pex, 0, peers);
  const toA = out.find((s) => s.peer === 1);
  assertEquals(toA?.extId, 42);
  assertEquals(toA?.message, {
    added: [addr("2.2.2.2:2"), addr("4.4.4.4:4444")],
    addedFlags: [PexFlag.seed | PexFlag.reachable, PexFlag.seed],
    added6: [addr("[2001:db8::3]:3")],
    added6Flags: [PexFlag.reachable],
    dropped: [],
    dropped6: [],
  });
  for (const s of out) assertEquals(decodePex(s.payload), s.message);
});

Deno.test("pexTick() advertises incoming peers by their listen port, and not at all without one", () => {
  const pex = createPex({ self: new Set() });
  const a = peer(1, "1.1.1.1:1");
  const withPort = peer(2, "2.2.2.2:50123", { incoming: true, listenPort: 6881, utPexId: undefined });
  const without = peer(3, "3.3.3.3:50124", { incoming: true, utPexId: undefined });
  assertEquals(told(pexTick(pex, 0, [a, withPort, without])), ["1: +2.2.2.2:6881"]);
  // two connections that lead to one listener (we dialled it, and it dialled us): one entry
  const pex2 = createPex({ self: new Set() });
  const dialled = peer(4, "2.2.2.2:6881", { utPexId: undefined });
  assertEquals(told(pexTick(pex2, 0, [a, dialled, withPort])), ["1: +2.2.2.2:6881"]);
  // once the incoming one goes, the listener is still connected: nothing is dropped
  assertEquals(told(pexTick(pex2, PEX_SEND_INTERVAL_MS, [a, dialled])), []);
});

Deno.test("pexTick() never tells a peer about itself", () => {
  const pex = createPex({ self: new Set() });
  // B connected to us (source port 50000) and told us it listens on 6881; we also dialled it there
  const b = peer(2, "2.2.2.2:50000", { incoming: true, listenPort: 6881 });
  const bDialled = peer(3, "2.2.2.2:6881", { utPexId: undefined });
  const c = peer(4, "3.3.3.3:3", { utPexId: undefined });
  assertEquals(told(pexTick(pex, 0, [bDialled, b, c])), ["2: +3.3.3.3:3"]); // the dialled one is listed first
});

Deno.test("pexTick() never sends loopback or private addresses to peers that are not local themselves", async (t) => {
  const others = [
    peer(10, "8.8.8.8:1", { utPexId: undefined }),
    peer(11, "192.168.1.5:1", { utPexId: undefined }),
    peer(12, "10.0.0.5:1", { utPexId: undefined }),
    peer(13, "127.0.0.1:6001", { utPexId: undefined }),
    peer(14, "[fd00::5]:1", { utPexId: undefined }),
    peer(15, "[::1]:6002", { utPexId: undefined }),
    peer(16, "[2001:db8::5]:1", { utPexId: undefined }),
    peer(17, "example.org:1", { utPexId: undefined }), // a --peer given by name: not an address PEX can carry
  ];
  const rows: [string, string, string][] = [
    ["a public peer hears of public peers only", "9.9.9.9:1", "+8.8.8.8:1 +[2001:db8::5]:1"],
    [
      "a private peer hears of private and public peers, no loopback",
      "192.168.1.9:1",
      "+8.8.8.8:1 +192.168.1.5:1 +10.0.0.5:1 +[fd00::5]:1 +[2001:db8::5]:1",
    ],
    [
      "a loopback peer hears of everyone",
      "127.0.0.1:7000",
      "+8.8.8.8:1 +192.168.1.5:1 +10.0.0.5:1 +127.0.0.1:6001 +[fd00::5]:1 +[::1]:6002 +[2001:db8::5]:1",
    ],
  ];
  for (const [name, recipient, want] of rows) {
    await t.step(name, () => {
      const pex = createPex({ self: new Set() });
      assertEquals(told(pexTick(pex, 0, [peer(1, recipient), ...others])), [`1: ${want}`]);
    });
  }
});

Deno.test(`pexTick() adds and drops at most PEX_MAX_SENT_ENTRIES (${PEX_MAX_SENT_ENTRIES}) a message, the rest later`, () => {
  const pex = createPex({ self: new Set() });
  const a = peer(1, "1.1.1.1:1");
  const v4 = publicPeers(100).map((p, i) => peer(100 + i, `${p.host}:${p.port}`, { utPexId: undefined }));
  const v6 = Array.from({ length: 20 }, (_, i) => peer(300 + i, `[2001:db8::${i + 1}]:1`, { utPexId: undefined }));
  const all = [a, ...v4, ...v6];
  const count = (out: readonly PexSend[]): [number, number] => {
    const m = out[0]?.message ?? EMPTY;
    return [m.added.length + m.added6.length, m.dropped.length + m.dropped6.length];
  };
  let t = 0;
  const rounds: [number, number][] = [];
  for (let i = 0; i < 3; i++, t += PEX_SEND_INTERVAL_MS) rounds.push(count(pexTick(pex, t, all)));
  assertEquals(rounds, [[50, 0], [50, 0], [20, 0]]);
  // the first message names the oldest connections first
  const pex2 = createPex({ self: new Set() });
  assertEquals(hosts(pexTick(pex2, 0, all)[0].message.added), hosts(publicPeers(50)));
  // everybody leaves while 10 new peers come: drops 50 a message, adds the newcomers at once
  const fresh = publicPeers(10, 1000).map((p, i) => peer(500 + i, `${p.host}:${p.port}`, { utPexId: undefined }));
  const after: [number, number][] = [];
  for (let i = 0; i < 4; i++, t += PEX_SEND_INTERVAL_MS) after.push(count(pexTick(pex, t, [a, ...fresh])));
  assertEquals(after, [[10, 50], [0, 50], [0, 20], [0, 0]]);
  assertEquals(pex.peers.get(1)?.told.size, 10);
});

Deno.test("pexTick() forgets peers that left, and a returning id starts afresh", () => {
  const pex = createPex({ self: new Set() });
  const a = peer(1, "1.1.1.1:1");
  const b = peer(2, "2.2.2.2:2");
  assertEquals(told(pexTick(pex, 0, [a, b])), ["1: +2.2.2.2:2", "2: +1.1.1.1:1"]);
  assertEquals([...pex.peers.keys()], [1, 2]);
  assertEquals(told(pexTick(pex, 1_000, [a])), []);
  assertEquals([...pex.peers.keys()], [1]);
});
