import { assertEquals, assertThrows } from "../_assert.ts";
import {
  decodeUdpResponse,
  encodeAnnounceRequest,
  encodeConnectRequest,
  readUdpHeader,
  UDP_ANNOUNCE_BYTES,
  UDP_PROTOCOL_ID,
} from "../../lib/tracker/udp_codec.ts";
import { type AnnounceParams, TrackerError } from "../../lib/tracker/announce.ts";
import { encodeCompactPeers } from "../../lib/address.ts";
import { MAX_PEERS_PER_ANNOUNCE, MAX_TRACKER_TEXT_CHARS, MIN_ANNOUNCE_INTERVAL_S } from "../../lib/limits.ts";

/** Builds a response: action, txid, then u32 fields, then raw bytes. */
export function udpPacket(
  action: number,
  txid: number,
  fields: number[],
  rest: Uint8Array = new Uint8Array(),
): Uint8Array {
  const out = new Uint8Array(8 + 4 * fields.length + rest.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, action);
  v.setUint32(4, txid);
  fields.forEach((f, i) => v.setUint32(8 + 4 * i, f));
  out.set(rest, 8 + 4 * fields.length);
  return out;
}

const params: AnnounceParams = {
  infoHash: new Uint8Array(20).fill(0x20),
  peerId: new Uint8Array(20).fill(0x42),
  port: 51413,
  uploaded: 2 ** 40,
  downloaded: 12345,
  left: 0,
  key: 0xcafebabe,
};

Deno.test("encodeConnectRequest() writes the protocol id, action 0 and the txid", () => {
  const b = encodeConnectRequest(0xfedcba98);
  const v = new DataView(b.buffer);
  assertEquals([b.length, v.getBigUint64(0), v.getUint32(8), v.getUint32(12)], [16, UDP_PROTOCOL_ID, 0, 0xfedcba98]);
});

Deno.test("encodeAnnounceRequest() lays out the BEP 15 fields", async (t) => {
  const rows: { name: string; p: Partial<AnnounceParams>; event: number; numwant: number }[] = [
    { name: "no event, default numwant", p: {}, event: 0, numwant: -1 },
    { name: "completed", p: { event: "completed", numwant: 80 }, event: 1, numwant: 80 },
    { name: "started", p: { event: "started" }, event: 2, numwant: -1 },
    { name: "stopped", p: { event: "stopped", numwant: 0 }, event: 3, numwant: 0 },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const b = encodeAnnounceRequest(0x0123456789abcdefn, 77, { ...params, ...r.p });
      const v = new DataView(b.buffer);
      assertEquals(b.length, UDP_ANNOUNCE_BYTES);
      assertEquals(v.getBigUint64(0), 0x0123456789abcdefn);
      assertEquals([v.getUint32(8), v.getUint32(12)], [1, 77]);
      assertEquals(b.subarray(16, 36), params.infoHash);
      assertEquals(b.subarray(36, 56), params.peerId);
      assertEquals([v.getBigUint64(56), v.getBigUint64(64), v.getBigUint64(72)], [12345n, 0n, 2n ** 40n]);
      assertEquals([v.getUint32(80), v.getUint32(84), v.getUint32(88)], [r.event, 0, 0xcafebabe]);
      assertEquals([v.getInt32(92), v.getUint16(96)], [r.numwant, 51413]);
    });
  }
});

Deno.test("encodeAnnounceRequest() refuses a short info-hash", () => {
  assertThrows(() => encodeAnnounceRequest(1n, 1, { ...params, infoHash: new Uint8Array(3) }), RangeError);
});

Deno.test("readUdpHeader() needs 8 bytes", () => {
  assertEquals(readUdpHeader(udpPacket(1, 0xffffffff, [])), { action: 1, txid: 0xffffffff });
  assertEquals(readUdpHeader(new Uint8Array(7)), null);
});

Deno.test("decodeUdpResponse() reads connect, announce and error responses", async (t) => {
  const peers4 = encodeCompactPeers([{ host: "127.0.0.1", port: 6881 }, { host: "10.1.2.3", port: 1 }], 4);
  const peers6 = encodeCompactPeers([{ host: "::1", port: 6881 }], 6);
  const rows: { name: string; b: Uint8Array; expect: "connect" | "announce"; family: 4 | 6; want: unknown }[] = [
    {
      name: "connect",
      b: udpPacket(0, 5, [0x01020304, 0x05060708]),
      expect: "connect",
      family: 4,
      want: { type: "connect", txid: 5, connectionId: 0x0102030405060708n },
    },
    {
      name: "announce with IPv4 peers",
      b: udpPacket(1, 6, [1800, 3, 4], peers4),
      expect: "announce",
      family: 4,
      want: {
        type: "announce",
        txid: 6,
        reply: {
          interval: 1800,
          incomplete: 3,
          complete: 4,
          peers: [{ host: "127.0.0.1", port: 6881 }, { host: "10.1.2.3", port: 1 }],
        },
      },
    },
    {
      name: "announce with IPv6 peers, interval clamped",
      b: udpPacket(1, 6, [1, 0, 0], peers6),
      expect: "announce",
      family: 6,
      want: {
        type: "announce",
        txid: 6,
        reply: { interval: MIN_ANNOUNCE_INTERVAL_S, incomplete: 0, complete: 0, peers: [{ host: "::1", port: 6881 }] },
      },
    },
    {
      name: "error to a connect",
      b: udpPacket(3, 7, [], new TextEncoder().encode("go away")),
      expect: "connect",
      family: 4,
      want: { type: "error", txid: 7, message: "go away" },
    },
    {
      name: "error to an announce",
      b: udpPacket(3, 7, []),
      expect: "announce",
      family: 4,
      want: { type: "error", txid: 7, message: "" },
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => assertEquals(decodeUdpResponse(r.b, { expect: r.expect, family: r.family }), r.want));
  }
});

Deno.test("decodeUdpResponse() reads a header-only announce response as a refusal (opentracker)", () => {
  const e = assertThrows(() => decodeUdpResponse(udpPacket(1, 1, []), { expect: "announce", family: 4 }), TrackerError);
  assertEquals(e.code, "failure");
});

Deno.test("decodeUdpResponse() bounds peers by MAX_PEERS_PER_ANNOUNCE", () => {
  const b = udpPacket(1, 1, [1800, 0, 0], new Uint8Array(6 * (MAX_PEERS_PER_ANNOUNCE + 5)).fill(1));
  const r = decodeUdpResponse(b, { expect: "announce", family: 4 });
  assertEquals(r.type === "announce" && r.reply.peers.length, MAX_PEERS_PER_ANNOUNCE);
});

Deno.test("decodeUdpResponse() bounds an error message and makes it safe to print", () => {
  const text = new TextEncoder().encode("\x1b[2J" + "x".repeat(2 * MAX_TRACKER_TEXT_CHARS));
  const r = decodeUdpResponse(udpPacket(3, 1, [], text), { expect: "announce", family: 4 });
  assertEquals(r, { type: "error", txid: 1, message: "\ufffd[2J" + "x".repeat(MAX_TRACKER_TEXT_CHARS - 4) + "\u2026" });
});

Deno.test("decodeUdpResponse() refuses malformed packets with TrackerError malformed", async (t) => {
  const rows: [string, Uint8Array, "connect" | "announce", 4 | 6][] = [
    ["shorter than a header", new Uint8Array(5), "connect", 4],
    ["short connect", udpPacket(0, 1, [1]), "connect", 4],
    ["short announce", udpPacket(1, 1, [1800, 0]), "announce", 4],
    ["IPv4 peers not a multiple of 6", udpPacket(1, 1, [1800, 0, 0], new Uint8Array(7)), "announce", 4],
    ["IPv6 peers not a multiple of 18", udpPacket(1, 1, [1800, 0, 0], new Uint8Array(12)), "announce", 6],
    ["announce action to a connect", udpPacket(1, 1, [1800, 0, 0]), "connect", 4],
    ["connect action to an announce", udpPacket(0, 1, [0, 0, 0]), "announce", 4],
    ["unknown action", udpPacket(9, 1, [0, 0, 0]), "announce", 4],
  ];
  for (const [name, b, expect, family] of rows) {
    await t.step(name, () => {
      const e = assertThrows(() => decodeUdpResponse(b, { expect, family, url: "udp://t:1" }), TrackerError);
      assertEquals([e.code, e.url], ["malformed", "udp://t:1"]);
    });
  }
});
