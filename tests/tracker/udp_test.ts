import { assertEquals, assertRejects } from "../_assert.ts";
import { clearUdpConnectionCache, udpAnnounce } from "../../lib/tracker/udp.ts";
import { type AnnounceParams, TrackerError } from "../../lib/tracker/announce.ts";
import { UDP_PROTOCOL_ID } from "../../lib/tracker/udp_codec.ts";
import { encodeCompactPeers, type PeerAddress } from "../../lib/address.ts";

const params: AnnounceParams = {
  infoHash: new Uint8Array(20).fill(0x20),
  peerId: new TextEncoder().encode("-BF0001-000000000000"),
  port: 6881,
  uploaded: 1,
  downloaded: 2,
  left: 3,
  key: 9,
  event: "started",
};

interface Request {
  readonly action: number;
  readonly txid: number;
  readonly connectionId: bigint;
  readonly bytes: Uint8Array;
}
type Reply = (req: Request, n: number) => Uint8Array[];

const CONN_ID = 0x1122334455667788n;

function packet(action: number, txid: number, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(8 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, action);
  v.setUint32(4, txid);
  out.set(body, 8);
  return out;
}
function connectReply(txid: number, id = CONN_ID): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, id);
  return packet(0, txid, b);
}
function announceReply(txid: number, peers: readonly PeerAddress[], family: 4 | 6 = 4): Uint8Array {
  const c = encodeCompactPeers(peers, family);
  const b = new Uint8Array(12 + c.length);
  new DataView(b.buffer).setUint32(0, 1800);
  b.set(c, 12);
  return packet(1, txid, b);
}
function errorReply(txid: number, msg: string): Uint8Array {
  return packet(3, txid, new TextEncoder().encode(msg));
}

/** A loopback BEP 15 tracker whose answers `reply` scripts; `n` counts requests so far (0-based). */
function udpTracker(reply: Reply, hostname = "127.0.0.1") {
  const conn = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
  const requests: Request[] = [];
  const loop = (async () => {
    for (;;) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await conn.receive();
      } catch {
        return;
      }
      const [bytes, from] = got;
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      const req = { connectionId: v.getBigUint64(0), action: v.getUint32(8), txid: v.getUint32(12), bytes };
      requests.push(req);
      for (const out of reply(req, requests.length - 1)) await conn.send(out as Uint8Array<ArrayBuffer>, from);
    }
  })();
  const port = (conn.addr as Deno.NetAddr).port;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `udp://${host}:${port}/announce`,
    conn,
    requests,
    async close() {
      conn.close();
      await loop;
    },
  };
}

/** The usual tracker: connect gives CONN_ID, announce checks it and returns one peer. */
const normal: Reply = (req) => {
  if (req.action === 0 && req.connectionId === UDP_PROTOCOL_ID) return [connectReply(req.txid)];
  if (req.action === 1 && req.connectionId === CONN_ID) {
    return [announceReply(req.txid, [{ host: "10.0.0.1", port: 80 }])];
  }
  return [errorReply(req.txid, "bad request")];
};

const opts = { timeoutMs: 3000, baseDelayMs: 200 };

Deno.test("udpAnnounce() connects, announces and reads peers", async () => {
  clearUdpConnectionCache();
  const tr = udpTracker(normal);
  try {
    const r = await udpAnnounce(tr.url, params, opts);
    assertEquals(r, { interval: 1800, incomplete: 0, complete: 0, peers: [{ host: "10.0.0.1", port: 80 }] });
    assertEquals(tr.requests.map((q) => q.action), [0, 1]);
    const a = tr.requests[1].bytes;
    const v = new DataView(a.buffer, a.byteOffset, a.length);
    assertEquals([a.length, v.getUint32(80), v.getUint16(96)], [98, 2, 6881]);
    assertEquals(a.subarray(16, 36), params.infoHash);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() reuses a connection id within its lifetime", async () => {
  clearUdpConnectionCache();
  const tr = udpTracker(normal);
  try {
    await udpAnnounce(tr.url, params, opts);
    await udpAnnounce(tr.url, { ...params, event: undefined }, opts);
    assertEquals(tr.requests.map((q) => q.action), [0, 1, 1]);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() retransmits when the first packet is dropped", async () => {
  clearUdpConnectionCache();
  const tr = udpTracker((req, n) => (n === 0 ? [] : normal(req, n)));
  try {
    const t0 = performance.now();
    const r = await udpAnnounce(tr.url, params, opts);
    assertEquals(r.peers.length, 1);
    assertEquals(tr.requests.map((q) => q.action), [0, 0, 1]);
    assertEquals(tr.requests[0].txid, tr.requests[1].txid); // a retransmission, same transaction
    assertEquals(performance.now() - t0 >= 150, true);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() ignores a reply with the wrong transaction id and short junk", async () => {
  clearUdpConnectionCache();
  const tr = udpTracker((req, n) => {
    const good = normal(req, n);
    return [connectReply(req.txid ^ 1), new Uint8Array(3), announceReply(req.txid + 1, []), ...good];
  });
  try {
    const r = await udpAnnounce(tr.url, params, opts);
    assertEquals(r.peers, [{ host: "10.0.0.1", port: 80 }]);
    assertEquals(tr.requests.map((q) => q.action), [0, 1]);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() ignores a forged reply from another port", async () => {
  clearUdpConnectionCache();
  const forger = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const tr = udpTracker(normal);
  // the forger answers the connect first, from the wrong port, with another connection id
  const inner = tr.conn;
  const orig = inner.send.bind(inner);
  inner.send = async (data, addr) => {
    const v = new DataView(data.buffer, data.byteOffset, data.length);
    if (v.getUint32(0) === 0) await forger.send(connectReply(v.getUint32(4), 666n) as Uint8Array<ArrayBuffer>, addr);
    return orig(data, addr);
  };
  try {
    const r = await udpAnnounce(tr.url, params, opts);
    assertEquals(r.peers.length, 1);
    assertEquals(tr.requests[1].connectionId, CONN_ID);
  } finally {
    forger.close();
    await tr.close();
  }
});

Deno.test("udpAnnounce() turns an error action into TrackerError failure", async () => {
  clearUdpConnectionCache();
  const tr = udpTracker((req) =>
    req.action === 0 ? [connectReply(req.txid)] : [errorReply(req.txid, "torrent not registered")]
  );
  try {
    const e = await assertRejects(() => udpAnnounce(tr.url, params, opts), TrackerError);
    assertEquals([e.code, e.url, e.message.includes("torrent not registered")], ["failure", tr.url, true]);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() reconnects once when the tracker refuses a cached connection id", async () => {
  clearUdpConnectionCache();
  let id = CONN_ID;
  const tr = udpTracker((req) => {
    if (req.action === 0) return [connectReply(req.txid, id)];
    return req.connectionId === id ? [announceReply(req.txid, [])] : [errorReply(req.txid, "Connection ID missmatch.")];
  });
  try {
    await udpAnnounce(tr.url, params, opts);
    id = 42n; // the tracker forgot us
    const r = await udpAnnounce(tr.url, params, opts);
    assertEquals(r.peers, []);
    assertEquals(tr.requests.map((q) => q.action), [0, 1, 1, 0, 1]);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() gives up within timeoutMs when nobody answers", async () => {
  clearUdpConnectionCache();
  const tr = udpTracker(() => []);
  try {
    const t0 = performance.now();
    const e = await assertRejects(
      () => udpAnnounce(tr.url, params, { timeoutMs: 500, baseDelayMs: 100 }),
      TrackerError,
    );
    const took = performance.now() - t0;
    assertEquals(e.code, "timeout");
    assertEquals(took >= 450 && took < 1500, true, `took ${took} ms`);
    assertEquals(tr.requests.length, 3); // sends at 0, 100, 300 ms; the next (700 ms) is past the deadline
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() stops at once when the signal aborts", async () => {
  clearUdpConnectionCache();
  const tr = udpTracker(() => []);
  try {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    const e = await assertRejects(
      () => udpAnnounce(tr.url, params, { timeoutMs: 5000, signal: ctl.signal }),
      TrackerError,
    );
    assertEquals(e.code, "network");
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() refuses a URL without a port", async () => {
  const e = await assertRejects(() => udpAnnounce("udp://tracker.example/announce", params, opts), TrackerError);
  assertEquals(e.code, "unsupported-scheme");
});

Deno.test("udpAnnounce() reads 18-byte peers from an IPv6 tracker", async (t) => {
  let tr;
  try {
    tr = udpTracker(
      (req) =>
        req.action === 0
          ? [connectReply(req.txid)]
          : [announceReply(req.txid, [{ host: "2001:db8::1", port: 6881 }], 6)],
      "::1",
    );
  } catch (e) {
    await t.step({ name: `IPv6 loopback unavailable: ${e}`, ignore: true, fn: () => {} });
    return;
  }
  clearUdpConnectionCache();
  try {
    const r = await udpAnnounce(tr.url, params, opts);
    assertEquals(r.peers, [{ host: "2001:db8::1", port: 6881 }]);
  } finally {
    await tr.close();
  }
});
