import { assertEquals, assertThrows } from "../_assert.ts";
import { decodePex, encodePex, PexFlag, type PexMessage } from "../../lib/wire/pex.ts";
import { WireError } from "../../lib/wire/frame.ts";
import { PEX_MAX_RECEIVED_ENTRIES } from "../../lib/limits.ts";

/** Bytes from text where each character is one byte (so `\x..` escapes are raw bytes). */
const raw = (s: string): Uint8Array => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
/** A bencoded string of raw bytes. */
const str = (bytes: number[]): string => `${bytes.length}:${String.fromCharCode(...bytes)}`;
const v4 = (a: number, b: number, c: number, d: number, port: number): number[] => [a, b, c, d, port >> 8, port & 0xff];
const v6 = (groups: number[], port: number): number[] => [
  ...groups.flatMap((g) => [g >> 8, g & 0xff]),
  port >> 8,
  port & 0xff,
];

const EMPTY: PexMessage = { added: [], addedFlags: [], added6: [], added6Flags: [], dropped: [], dropped6: [] };
const msg = (m: Partial<PexMessage>): PexMessage => ({ ...EMPTY, ...m });
/** `n` distinct IPv4 peers. */
const many = (n: number, base = 1): { host: string; port: number }[] =>
  Array.from(
    { length: n },
    (_, i) => ({ host: `10.${(base + i) >> 16 & 0xff}.${(base + i) >> 8 & 0xff}.${(base + i) & 0xff}`, port: 6881 }),
  );

Deno.test("encodePex() writes canonical bytes and decodePex() reads them back", async (t) => {
  const rows: { name: string; m: PexMessage; want: string }[] = [
    { name: "an empty update", m: EMPTY, want: "de" },
    {
      name: "IPv4 added without flags",
      m: msg({ added: [{ host: "1.2.3.4", port: 6881 }] }),
      want: `d5:added${str(v4(1, 2, 3, 4, 6881))}e`,
    },
    {
      name: "IPv4 added with flags, and dropped",
      m: msg({
        added: [{ host: "1.2.3.4", port: 6881 }, { host: "5.6.7.8", port: 1 }],
        addedFlags: [PexFlag.seed | PexFlag.reachable, 0],
        dropped: [{ host: "9.9.9.9", port: 65535 }],
      }),
      want: `d5:added${str([...v4(1, 2, 3, 4, 6881), ...v4(5, 6, 7, 8, 1)])}7:added.f${str([0x12, 0])}` +
        `7:dropped${str(v4(9, 9, 9, 9, 65535))}e`,
    },
    {
      name: "IPv6 added with flags, and dropped",
      m: msg({
        added6: [{ host: "2001:db8::1", port: 51413 }],
        added6Flags: [PexFlag.encryption | PexFlag.utp | PexFlag.holepunch],
        dropped6: [{ host: "::1", port: 80 }],
      }),
      want: `d6:added6${str(v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 51413))}8:added6.f${str([0x0d])}` +
        `8:dropped6${str(v6([0, 0, 0, 0, 0, 0, 0, 1], 80))}e`,
    },
    {
      name: "every list at once, keys in byte order",
      m: msg({
        added: [{ host: "1.2.3.4", port: 1 }],
        addedFlags: [0xff],
        added6: [{ host: "fe80::2", port: 2 }],
        added6Flags: [PexFlag.seed],
        dropped: [{ host: "4.3.2.1", port: 3 }],
        dropped6: [{ host: "fc00::3", port: 4 }],
      }),
      want: `d5:added${str(v4(1, 2, 3, 4, 1))}7:added.f${str([0xff])}` +
        `6:added6${str(v6([0xfe80, 0, 0, 0, 0, 0, 0, 2], 2))}8:added6.f${str([2])}` +
        `7:dropped${str(v4(4, 3, 2, 1, 3))}8:dropped6${str(v6([0xfc00, 0, 0, 0, 0, 0, 0, 3], 4))}e`,
    },
    {
      name: "the limit of added and of dropped",
      m: msg({
        added: many(PEX_MAX_RECEIVED_ENTRIES - 1),
        added6: [{ host: "2001:db8::9", port: 9 }],
        dropped: many(PEX_MAX_RECEIVED_ENTRIES, 5000),
      }),
      want: "",
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const b = encodePex(r.m);
      if (r.want !== "") assertEquals(b, raw(r.want));
      assertEquals(decodePex(b), r.m);
      assertEquals(encodePex(decodePex(b)), b);
    });
  }
});

Deno.test("decodePex() tolerates what real clients send", async (t) => {
  const a = v4(1, 2, 3, 4, 6881);
  const b = v4(5, 6, 7, 8, 6882);
  const one = [{ host: "1.2.3.4", port: 6881 }];
  const rows: { name: string; payload: string; want: PexMessage }[] = [
    {
      name: "empty lists as libtorrent writes them",
      payload: "d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped0:8:dropped60:e",
      want: EMPTY,
    },
    { name: "unknown keys", payload: `d5:added${str(a)}1:xi1e4:zzzzd1:ai1eee`, want: msg({ added: one }) },
    {
      name: "unsorted keys",
      payload: `d7:dropped${str(b)}5:added${str(a)}e`,
      want: msg({ added: one, dropped: [{ host: "5.6.7.8", port: 6882 }] }),
    },
    {
      name: "a duplicate key: the first wins",
      payload: `d5:added${str(a)}5:added${str(b)}e`,
      want: msg({ added: one }),
    },
    {
      name: "flags one byte short are ignored",
      payload: `d5:added${str([...a, ...b])}7:added.f${str([2])}e`,
      want: msg({ added: [...one, { host: "5.6.7.8", port: 6882 }] }),
    },
    {
      name: "flags one byte long are ignored",
      payload: `d5:added${str(a)}7:added.f${str([2, 2])}e`,
      want: msg({ added: one }),
    },
    {
      name: "flags that are not a string are ignored",
      payload: `d5:added${str(a)}7:added.fi2ee`,
      want: msg({ added: one }),
    },
    { name: "flags without peers are ignored", payload: `d7:added.f${str([2])}e`, want: EMPTY },
    {
      name: "an entry with port 0 is skipped with its flags byte",
      payload: `d5:added${str([...v4(9, 9, 9, 9, 0), ...a])}7:added.f${str([2, 0x10])}e`,
      want: msg({ added: one, addedFlags: [0x10] }),
    },
    {
      name: "an IPv6 entry with port 0 is skipped",
      payload: `d6:added6${str(v6([1, 2, 3, 4, 5, 6, 7, 8], 0))}8:dropped6${str(v6([1, 2, 3, 4, 5, 6, 7, 8], 0))}e`,
      want: EMPTY,
    },
    {
      name: "flag bits BEP 11 reserves are kept",
      payload: `d6:added6${str(v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 5], 5))}8:added6.f${str([0xe0])}e`,
      want: msg({ added6: [{ host: "2001:db8::5", port: 5 }], added6Flags: [0xe0] }),
    },
  ];
  for (const r of rows) await t.step(r.name, () => assertEquals(decodePex(raw(r.payload)), r.want));
});

Deno.test("decodePex() refuses malformed payloads with a WireError, its code and offset", async (t) => {
  const a = v4(1, 2, 3, 4, 6881);
  const over = String.fromCharCode(
    ...many(PEX_MAX_RECEIVED_ENTRIES + 1).flatMap((p) => [10, 0, 0, 1, 0, p.port & 0xff]),
  );
  const rows: { name: string; payload: string; code: string; offset: number }[] = [
    { name: "not bencode", payload: "hello", code: "bad-payload", offset: 0 },
    { name: "truncated", payload: `d5:added${str(a)}`, code: "bad-payload", offset: 16 },
    { name: "a list, not a dictionary", payload: "le", code: "bad-payload", offset: 0 },
    { name: "an integer", payload: "i1e", code: "bad-payload", offset: 0 },
    { name: "trailing bytes", payload: "dex", code: "bad-payload", offset: 2 },
    { name: "added is an integer", payload: "d5:addedi1ee", code: "bad-payload", offset: 8 },
    { name: "dropped6 is a list", payload: "d8:dropped6lee", code: "bad-payload", offset: 11 },
    { name: "added of 5 bytes", payload: `d5:added${str(a.slice(0, 5))}e`, code: "bad-length", offset: 8 },
    { name: "added of 7 bytes", payload: `d5:added${str([...a, 1])}e`, code: "bad-length", offset: 8 },
    { name: "added6 of 6 bytes", payload: `d6:added6${str(a)}e`, code: "bad-length", offset: 9 },
    { name: "dropped of 12 bytes + 1", payload: `d7:dropped${str([...a, ...a, 0])}e`, code: "bad-length", offset: 10 },
    {
      name: "dropped6 of 17 bytes",
      payload: `d8:dropped6${str(v6([1, 1, 1, 1, 1, 1, 1, 1], 1).slice(1))}e`,
      code: "bad-length",
      offset: 11,
    },
    {
      name: `${PEX_MAX_RECEIVED_ENTRIES + 1} added`,
      payload: `d5:added${over.length}:${over}e`,
      code: "too-long",
      offset: 8,
    },
    {
      name: `${PEX_MAX_RECEIVED_ENTRIES} added and 1 added6`,
      payload: `d5:added${over.length - 6}:${over.slice(6)}6:added6${str(v6([1, 1, 1, 1, 1, 1, 1, 1], 1))}e`,
      code: "too-long",
      offset: 8 + String(over.length - 6).length + 1 + over.length - 6 + 8,
    },
    {
      name: `${PEX_MAX_RECEIVED_ENTRIES + 1} dropped`,
      payload: `d7:dropped${over.length}:${over}e`,
      code: "too-long",
      offset: 10,
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const e = assertThrows(() => decodePex(raw(r.payload)), WireError);
      assertEquals([e.code, e.offset], [r.code, r.offset]);
    });
  }
});

Deno.test("encodePex() refuses what no peer should receive", async (t) => {
  const rows: [string, PexMessage][] = [
    ["an IPv6 address in added", msg({ added: [{ host: "::1", port: 1 }] })],
    ["an IPv4 address in added6", msg({ added6: [{ host: "1.2.3.4", port: 1 }] })],
    ["a host name in dropped", msg({ dropped: [{ host: "example.org", port: 1 }] })],
    ["port 0", msg({ added: [{ host: "1.2.3.4", port: 0 }] })],
    ["port 65536", msg({ dropped6: [{ host: "::2", port: 65536 }] })],
    ["fewer flags than peers", msg({ added: many(2), addedFlags: [1] })],
    ["flags for no peers", msg({ added6Flags: [1] })],
    ["a flag over 255", msg({ added: many(1), addedFlags: [256] })],
    ["a fractional flag", msg({ added: many(1), addedFlags: [1.5] })],
    [
      `${PEX_MAX_RECEIVED_ENTRIES + 1} added`,
      msg({ added: many(PEX_MAX_RECEIVED_ENTRIES), added6: [{ host: "::3", port: 3 }] }),
    ],
    [`${PEX_MAX_RECEIVED_ENTRIES + 1} dropped`, msg({ dropped: many(PEX_MAX_RECEIVED_ENTRIES + 1) })],
  ];
  for (const [name, m] of rows) await t.step(name, () => void assertThrows(() => encodePex(m), RangeError));
});
