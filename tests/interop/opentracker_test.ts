import { assertEquals } from "../_assert.ts";
import { opentrackerTest, startOpentracker } from "./_opentracker.ts";
import { httpAnnounce } from "../../lib/tracker/http.ts";
import { clearUdpConnectionCache, udpAnnounce } from "../../lib/tracker/udp.ts";
import type { AnnounceParams, AnnounceReply } from "../../lib/tracker/announce.ts";
import { formatAddress, type PeerAddress } from "../../lib/address.ts";
import { Announcer } from "../../lib/tracker/announcer.ts";

/** Holds 0x20 (space), 0x2b (+), 0x25 (%), 0x00 and 0xff: every byte a sloppy URL encoder gets wrong. */
const HASH_HEX = "20deadbeef2b2500ff20" + "0123456789abcdef0123";
const HASH2_HEX = "ab".repeat(20);
const hex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));

function peer(n: number, port: number, infoHash = hex(HASH_HEX)): AnnounceParams {
  return {
    infoHash,
    peerId: new TextEncoder().encode(`-BF0001-${String(n).padStart(12, "0")}`),
    port,
    uploaded: 0,
    downloaded: 0,
    left: 1000,
    key: n,
    numwant: 50,
  };
}
const addrs = (r: AnnounceReply): string[] => r.peers.map(formatAddress).sort();
const udpOpts = { timeoutMs: 5000, baseDelayMs: 500 };
const httpOpts = { timeoutMs: 5000 };

opentrackerTest("opentracker: an HTTP peer and a UDP peer find each other, stopped removes them", async (t) => {
  assertEquals(hex(HASH_HEX).length, 20);
  const ot = await startOpentracker([HASH_HEX, HASH2_HEX]);
  clearUdpConnectionCache();
  try {
    const a = peer(1, 40001);
    const b = peer(2, 40002);
    await t.step("A starts over HTTP", async () => {
      const r = await httpAnnounce(ot.httpUrl, { ...a, event: "started" }, httpOpts);
      assertEquals(r.interval > 0, true);
      assertEquals(addrs(r).includes("127.0.0.1:40002"), false);
    });
    await t.step("B starts over UDP and sees A", async () => {
      const r = await udpAnnounce(ot.udpUrl, { ...b, event: "started" }, udpOpts);
      assertEquals(addrs(r).includes("127.0.0.1:40001"), true, addrs(r).join(" "));
    });
    await t.step("A re-announces over HTTP and sees B", async () => {
      const r = await httpAnnounce(ot.httpUrl, a, httpOpts);
      assertEquals(addrs(r).includes("127.0.0.1:40002"), true, addrs(r).join(" "));
    });
    await t.step("B stops over UDP; A no longer sees it", async () => {
      await udpAnnounce(ot.udpUrl, { ...b, event: "stopped", numwant: 0 }, udpOpts);
      const r = await httpAnnounce(ot.httpUrl, a, httpOpts);
      assertEquals(addrs(r).includes("127.0.0.1:40002"), false, addrs(r).join(" "));
    });
    await t.step("A stops over HTTP; a third peer over UDP sees neither", async () => {
      await httpAnnounce(ot.httpUrl, { ...a, event: "stopped", numwant: 0 }, httpOpts);
      const r = await udpAnnounce(ot.udpUrl, { ...peer(3, 40003), event: "started" }, udpOpts);
      assertEquals(addrs(r).filter((x) => x !== "127.0.0.1:40003"), []);
    });
  } finally {
    await ot.close();
  }
});

opentrackerTest("opentracker: two peers over the same transport, and a refused info-hash", async (t) => {
  const ot = await startOpentracker([HASH2_HEX]);
  clearUdpConnectionCache();
  try {
    for (const via of ["http", "udp"] as const) {
      await t.step(`two peers over ${via}`, async () => {
        const base = via === "http" ? 41000 : 42000;
        const go = (p: AnnounceParams): Promise<AnnounceReply> =>
          via === "http" ? httpAnnounce(ot.httpUrl, p, httpOpts) : udpAnnounce(ot.udpUrl, p, udpOpts);
        const a = peer(10, base + 1, hex(HASH2_HEX));
        const b = peer(11, base + 2, hex(HASH2_HEX));
        await go({ ...a, event: "started" });
        assertEquals(addrs(await go({ ...b, event: "started" })).includes(`127.0.0.1:${base + 1}`), true);
        assertEquals(addrs(await go(a)).includes(`127.0.0.1:${base + 2}`), true);
        await go({ ...b, event: "stopped" });
        assertEquals(addrs(await go(a)).includes(`127.0.0.1:${base + 2}`), false);
        await go({ ...a, event: "stopped" });
      });
    }
    await t.step("an info-hash off the whitelist is refused over HTTP", async () => {
      const err = await httpAnnounce(ot.httpUrl, peer(20, 43000), httpOpts).then(() => null, (e) => e);
      assertEquals(err?.code, "failure");
    });
    await t.step("an info-hash off the whitelist is refused over UDP", async () => {
      const err = await udpAnnounce(ot.udpUrl, peer(21, 43001), udpOpts).then(() => null, (e) => e);
      assertEquals(err?.code, "failure");
    });
  } finally {
    await ot.close();
  }
});

opentrackerTest("opentracker: the Announcer starts, hands over peers and stops", async () => {
  const ot = await startOpentracker([HASH_HEX]);
  clearUdpConnectionCache();
  try {
    // another peer already in the swarm
    await httpAnnounce(ot.httpUrl, { ...peer(30, 44001), event: "started" }, httpOpts);
    for (const url of [ot.udpUrl, ot.httpUrl]) {
      const got: PeerAddress[] = [];
      let resolve!: () => void;
      const first = new Promise<void>((res) => resolve = res);
      const errors: string[] = [];
      const an = new Announcer({
        tiers: [["wss://ignored.example/announce", url]],
        infoHash: hex(HASH_HEX),
        peerId: peer(31, 44002).peerId,
        port: 44002,
        stats: () => ({ uploaded: 0, downloaded: 0, left: 1000 }),
        onPeers: (peers) => {
          got.push(...peers);
          resolve();
        },
        onError: (_u, e) => errors.push(e.message),
        timeoutMs: 5000,
        udpBaseDelayMs: 500,
      });
      an.start();
      const timer = setTimeout(resolve, 6000);
      await first;
      clearTimeout(timer);
      assertEquals(errors, []);
      assertEquals(got.map(formatAddress).includes("127.0.0.1:44001"), true, `${url}: ${got.map(formatAddress)}`);
      assertEquals([an.status.attempts, an.status.successes], [1, 1]);
      await an.stop(3000);
      const r = await httpAnnounce(ot.httpUrl, peer(30, 44001), httpOpts);
      assertEquals(addrs(r).includes("127.0.0.1:44002"), false, `${url}: stopped not seen`);
    }
  } finally {
    await ot.close();
  }
});
