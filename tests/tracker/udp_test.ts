import { lookup } from "node:dns/promises";
import { assertEquals, assertRejects } from "../_assert.ts";
import { guard, settled, VirtualClock } from "./_clock.ts";
import { clearUdpConnectionCache, UDP_CONNECTION_ID_TTL_MS, udpAnnounce } from "../../lib/tracker/udp.ts";
import { type AnnounceParams, TrackerError } from "../../lib/tracker/announce.ts";
import { UDP_PROTOCOL_ID } from "../../lib/tracker/udp_codec.ts";
import { BEP15_BASE_DELAY_MS } from "../../lib/tracker/udp_exchange.ts";
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
  /** The virtual time it arrived at. */
  readonly at: number;
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

/** A one-byte datagram {@linkcode udpTracker}'s `flush` sends: not a request, so not recorded. */
const SENTINEL = 0xff;

/**
 * A loopback BEP 15 tracker whose answers `reply` scripts; `n` counts requests so far (0-based). Each request is
 * stamped with `clock`'s time when it arrives, so a test sees when (in virtual time) the client sent it.
 */
function udpTracker(reply: Reply, clock: VirtualClock, hostname = "127.0.0.1") {
  const conn = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
  const requests: Request[] = [];
  let sentinels = 0;
  let waiters: { ready: () => boolean; res: () => void }[] = [];
  const wake = (): void => {
    const ready = waiters.filter((w) => w.ready());
    waiters = waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.res();
  };
  const until = (ready: () => boolean, what: string): Promise<void> =>
    guard(
      new Promise((res) => {
        waiters.push({ ready, res });
        wake();
      }),
      what,
    );
  const loop = (async () => {
    for (;;) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await conn.receive();
      } catch {
        return;
      }
      const [bytes, from] = got;
      if (bytes.length === 1 && bytes[0] === SENTINEL) {
        sentinels++;
        wake();
        continue;
      }
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      const at = clock.now();
      const req = { connectionId: v.getBigUint64(0), action: v.getUint32(8), txid: v.getUint32(12), bytes, at };
      requests.push(req);
      wake();
      for (const out of reply(req, requests.length - 1)) await conn.send(out as Uint8Array<ArrayBuffer>, from);
    }
  })();
  const port = (conn.addr as Deno.NetAddr).port;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `udp://${host}:${port}/announce`,
    conn,
    requests,
    /** Resolves once `n` requests have arrived. */
    received: (n: number): Promise<void> => until(() => requests.length >= n, `request #${n}`),
    /** Resolves once every datagram sent to the tracker before the call was read (loopback keeps their order). */
    async flush(): Promise<void> {
      const want = sentinels + 1;
      const s = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
      try {
        await s.send(new Uint8Array([SENTINEL]), { transport: "udp", hostname, port });
        await until(() => sentinels >= want, "the sentinel");
      } finally {
        s.close();
      }
    },
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

/**
 * The options of most calls: BEP 15's own delays (first retransmission after 15 s) within a minute, on a virtual
 * clock that only the test moves, so they cost no time; a transport that slept for real would trip `guard`.
 */
function options(clock: VirtualClock) {
  return { timeoutMs: 60_000, clock };
}

Deno.test("udpAnnounce() connects, announces and reads peers", async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  const tr = udpTracker(normal, clock);
  try {
    const r = await guard(udpAnnounce(tr.url, params, options(clock)));
    assertEquals(r, { interval: 1800, incomplete: 0, complete: 0, peers: [{ host: "10.0.0.1", port: 80 }] });
    assertEquals(tr.requests.map((q) => q.action), [0, 1]);
    const a = tr.requests[1].bytes;
    const v = new DataView(a.buffer, a.byteOffset, a.length);
    assertEquals([a.length, v.getUint32(80), v.getUint16(96)], [98, 2, 6881]);
    assertEquals(a.subarray(16, 36), params.infoHash);
    assertEquals(clock.pending, []); // no timer left behind
  } finally {
    await tr.close();
  }
});

/** Whether `localhost` names 127.0.0.1 first here (the fake tracker listens there). */
const localhostIsV4 = (await lookup("localhost")).address === "127.0.0.1";

Deno.test({
  name: "udpAnnounce() resolves a tracker's host name (localhost) and announces to the address it names",
  ignore: !localhostIsV4,
}, async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  const tr = udpTracker(normal, clock);
  try {
    const url = tr.url.replace("127.0.0.1", "localhost");
    const r = await guard(udpAnnounce(url, params, options(clock)));
    assertEquals(r.peers, [{ host: "10.0.0.1", port: 80 }]);
    assertEquals(tr.requests.map((q) => q.action), [0, 1]);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() reuses a connection id within its lifetime, and connects again after it", async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  const tr = udpTracker(normal, clock);
  try {
    await guard(udpAnnounce(tr.url, params, options(clock)));
    await clock.advance(UDP_CONNECTION_ID_TTL_MS - 1);
    await guard(udpAnnounce(tr.url, { ...params, event: undefined }, options(clock)));
    assertEquals(tr.requests.map((q) => q.action), [0, 1, 1]);
    await clock.advance(1); // the id, got at 0, expires at UDP_CONNECTION_ID_TTL_MS
    await guard(udpAnnounce(tr.url, { ...params, event: undefined }, options(clock)));
    assertEquals(tr.requests.map((q) => q.action), [0, 1, 1, 0, 1]);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() retransmits when the first packet is dropped", async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  const tr = udpTracker((req, n) => (n === 0 ? [] : normal(req, n)), clock);
  try {
    const call = udpAnnounce(tr.url, params, options(clock));
    await tr.received(1);
    await clock.advanceTo(BEP15_BASE_DELAY_MS - 1);
    await tr.flush();
    assertEquals(tr.requests.length, 1); // nothing resent before the first delay is over
    await clock.advanceTo(BEP15_BASE_DELAY_MS);
    const r = await guard(call);
    assertEquals(r.peers.length, 1);
    assertEquals(tr.requests.map((q) => q.action), [0, 0, 1]);
    assertEquals(tr.requests[0].txid, tr.requests[1].txid); // a retransmission, same transaction
    assertEquals(tr.requests.map((q) => q.at), [0, 15_000, 15_000]); // resent after 15 s of (virtual) time
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() ignores a reply with the wrong transaction id and short junk", async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  const tr = udpTracker((req, n) => {
    const good = normal(req, n);
    return [connectReply(req.txid ^ 1), new Uint8Array(3), announceReply(req.txid + 1, []), ...good];
  }, clock);
  try {
    const r = await guard(udpAnnounce(tr.url, params, options(clock)));
    assertEquals(r.peers, [{ host: "10.0.0.1", port: 80 }]);
    assertEquals(tr.requests.map((q) => q.action), [0, 1]);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() ignores a forged reply from another port", async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  const forger = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const tr = udpTracker(normal, clock);
  // the forger answers the connect first, from the wrong port, with another connection id
  const inner = tr.conn;
  const orig = inner.send.bind(inner);
  inner.send = async (data, addr) => {
    const v = new DataView(data.buffer, data.byteOffset, data.length);
    if (v.getUint32(0) === 0) await forger.send(connectReply(v.getUint32(4), 666n) as Uint8Array<ArrayBuffer>, addr);
    return orig(data, addr);
  };
  try {
    const r = await guard(udpAnnounce(tr.url, params, options(clock)));
    assertEquals(r.peers.length, 1);
    assertEquals(tr.requests[1].connectionId, CONN_ID);
  } finally {
    forger.close();
    await tr.close();
  }
});

Deno.test("udpAnnounce() turns an error action into TrackerError failure", async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  const tr = udpTracker(
    (req) => req.action === 0 ? [connectReply(req.txid)] : [errorReply(req.txid, "torrent not registered")],
    clock,
  );
  try {
    const e = await assertRejects(() => guard(udpAnnounce(tr.url, params, options(clock))), TrackerError);
    assertEquals([e.code, e.url, e.message.includes("torrent not registered")], ["failure", tr.url, true]);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() reconnects once when the tracker refuses a cached connection id", async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  let id = CONN_ID;
  const tr = udpTracker((req) => {
    if (req.action === 0) return [connectReply(req.txid, id)];
    return req.connectionId === id ? [announceReply(req.txid, [])] : [errorReply(req.txid, "Connection ID missmatch.")];
  }, clock);
  try {
    await guard(udpAnnounce(tr.url, params, options(clock)));
    id = 42n; // the tracker forgot us
    const r = await guard(udpAnnounce(tr.url, params, options(clock)));
    assertEquals(r.peers, []);
    assertEquals(tr.requests.map((q) => q.action), [0, 1, 1, 0, 1]);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() gives up within timeoutMs when nobody answers", async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  const tr = udpTracker(() => [], clock);
  try {
    const call = udpAnnounce(tr.url, params, options(clock));
    // sends at 0, 15 and 45 s; the next (105 s) would be past the deadline at 60 s
    for (const [n, at] of [[1, 15_000], [2, 45_000], [3, 59_999]]) {
      await tr.received(n);
      await clock.advanceTo(at);
    }
    assertEquals(await settled(call), false); // still waiting 1 ms before the deadline
    await clock.advanceTo(60_000);
    const e = await assertRejects(() => guard(call), TrackerError);
    assertEquals(e.code, "timeout");
    await tr.flush();
    assertEquals(tr.requests.map((q) => q.at), [0, 15_000, 45_000]);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() stops at once when the signal aborts", async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  const tr = udpTracker(() => [], clock);
  try {
    const ctl = new AbortController();
    const call = udpAnnounce(tr.url, params, { ...options(clock), signal: ctl.signal });
    await tr.received(1);
    ctl.abort(); // no time passes: the abort alone ends the call
    const e = await assertRejects(() => guard(call), TrackerError);
    assertEquals(e.code, "network");
    assertEquals(clock.now(), 0);
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() refuses a URL without a port", async () => {
  const clock = new VirtualClock();
  const e = await assertRejects(
    () => udpAnnounce("udp://tracker.example/announce", params, options(clock)),
    TrackerError,
  );
  assertEquals(e.code, "unsupported-scheme");
});

Deno.test("udpAnnounce() passes a bug of ours through unchanged, not as a TrackerError", async () => {
  clearUdpConnectionCache();
  const clock = new VirtualClock();
  const tr = udpTracker(normal, clock);
  try {
    // a 19-byte info-hash is the caller's mistake: encodeAnnounceRequest throws RangeError after the connect
    const bad = { ...params, infoHash: new Uint8Array(19) };
    const e = await assertRejects(() => guard(udpAnnounce(tr.url, bad, options(clock))), RangeError);
    assertEquals(e instanceof TrackerError, false);
    assertEquals(tr.requests.map((q) => q.action), [0]);
    await guard(udpAnnounce(tr.url, params, options(clock)));
    assertEquals(tr.requests.map((q) => q.action), [0, 0, 1]); // the connection id was forgotten with the bug
  } finally {
    await tr.close();
  }
});

Deno.test("udpAnnounce() reads 18-byte peers from an IPv6 tracker", async (t) => {
  const clock = new VirtualClock();
  let tr;
  try {
    tr = udpTracker(
      (req) =>
        req.action === 0
          ? [connectReply(req.txid)]
          : [announceReply(req.txid, [{ host: "2001:db8::1", port: 6881 }], 6)],
      clock,
      "::1",
    );
  } catch (e) {
    await t.step({ name: `IPv6 loopback unavailable: ${e}`, ignore: true, fn: () => {} });
    return;
  }
  clearUdpConnectionCache();
  try {
    const r = await guard(udpAnnounce(tr.url, params, options(clock)));
    assertEquals(r.peers, [{ host: "2001:db8::1", port: 6881 }]);
  } finally {
    await tr.close();
  }
});
