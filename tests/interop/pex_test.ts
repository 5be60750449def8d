/**
 * PEX (BEP 11, `ut_pex`) on the wire, on loopback: btfetch learns a seeder from a peer that has nothing (a fake peer
 * written here, then a real libtorrent session) and dials it itself; libtorrent learns a peer from btfetch's PEX;
 * a peer that floods ut_pex is dropped while a real seeder beside it serves the download; a message listing 10,000
 * peers is refused without a dial; with `--no-pex`, or for a private torrent, btfetch never dials what a peer tells.
 *
 * Proof of a dial comes from btfetch's own `--json` events (a `peer` `connected` event with `source: "pex"` and
 * `incoming: false` naming the seeder's listen address) and the bytes from `done.peers`: an incoming connection from
 * the seeder would prove nothing, as the teller may have told the seeder about btfetch.
 *
 * libtorrent 2.0 (src/ut_pex.cpp) sends its first ut_pex message, the full list of its peers, at the first
 * one-second tick after the extended handshake once it has two peers or more; only the later diffs wait a minute.
 * So the libtorrent teller here (a session with every file at priority 0, connected to the seeder) speaks within a
 * second of btfetch connecting, and the test needs no minute-long wait.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import type { PeerAddress } from "../../lib/address.ts";
import { OUR_UT_PEX_ID } from "../../lib/engine/pex.ts";
import { type Metainfo, parseMetainfo } from "../../lib/metainfo.ts";
import { UT_PEX } from "../../lib/wire/pex.ts";
import { FakePeer } from "../engine/_fake_peer.ts";
import {
  assertFetchOk,
  assertSameTree,
  type BtEvent,
  type BtfetchResult,
  describeRun,
  eventsOf,
  fetchFlags,
  runBtfetch,
} from "./_btfetch.ts";
import { ignoreUnless, MiB, requirePrograms, startLibtorrentSeeder, writeSingleFilePayload } from "./_peers.ts";
import { pexAdding, pexTeller, startLtPex, tellerLog } from "./_pex_peers.ts";
import { doneOf, makeBtTorrent, startBtGet, stopWithin } from "./_swarm.ts";

const ignore = ignoreUnless("libtorrent");
/** libtorrent's `peer_info` source bits other than pex: tracker, dht, lsd. */
const LT_OTHER_SOURCES = 0x01 | 0x02 | 0x08;

interface Fixture {
  readonly tmp: string;
  readonly torrent: string;
  readonly meta: Metainfo;
  readonly payloadPath: string;
  readonly dataDir: string;
  readonly size: number;
  readonly pieceLength: number;
}

async function fixture(prefix: string, size = 4 * MiB + 123, isPrivate = false): Promise<Fixture> {
  const tmp = await Deno.makeTempDir({ prefix });
  const p = await writeSingleFilePayload(`${tmp}/seed`, "pex.bin", size, 11);
  const t = await makeBtTorrent(p.path, `${tmp}/pex.torrent`, { pieceLength: 64 * 1024, private: isPrivate });
  const meta = parseMetainfo(await Deno.readFile(t.path));
  return { tmp, torrent: t.path, meta, payloadPath: p.path, dataDir: p.dir, size, pieceLength: t.pieceLength };
}

const loop = (port: number): PeerAddress => ({ host: "127.0.0.1", port });

/** `fetchFlags()` and the listening port they give btfetch. */
function flagsWithPort(): { flags: string[]; port: number } {
  const flags = fetchFlags();
  return { flags, port: Number(flags[flags.indexOf("--port") + 1]) };
}

function peerEvents(r: { events: BtEvent[] }, action: string): BtEvent[] {
  return eventsOf(r, "peer").filter((e) => e.action === action);
}

/** A run that fetched the payload byte for byte, all of it from `from`, which btfetch dialled as a PEX peer. */
async function assertFetchedFromPexPeer(r: BtfetchResult, f: Fixture, out: string, from: string): Promise<number> {
  assertFetchOk(r, f);
  await assertSameTree(f.payloadPath, `${out}/pex.bin`);
  const dialled = peerEvents(r, "connected").filter((e) => e.source === "pex");
  assert(
    dialled.some((e) => e.address === from && e.incoming === false),
    `no outgoing pex connection to ${from}\n${describeRun(r)}`,
  );
  for (const e of dialled) assertEquals(e.address, from, `btfetch dialled an unexpected pex peer\n${describeRun(r)}`);
  const done = doneOf(r);
  const fromB = done.peers.filter((p) => p.address === from).reduce((n, p) => n + p.downloaded, 0);
  assert(fromB >= f.size && fromB === done.downloaded, `${fromB} of ${done.downloaded} bytes came from ${from}`);
  assertEquals((done.sources as Record<string, number>).pex, 1, describeRun(r));
  return (dialled[0].t as number) ?? 0;
}

Deno.test({
  name: "interop: btfetch learns a libtorrent seeder from a fake peer's ut_pex, dials it itself and completes",
  ignore,
  async fn() {
    requirePrograms("libtorrent");
    const f = await fixture("btfetch-pex-fake-");
    const b = await startLibtorrentSeeder({ torrent: f.torrent, dataDir: f.dataDir });
    const log = tellerLog();
    const { flags, port: ourPort } = flagsWithPort();
    const ref = { port: 0 };
    // The teller lists the seeder, btfetch itself and the teller: only the seeder is worth a dial.
    const a = new FakePeer(pexTeller({
      meta: f.meta,
      listenPort: () => ref.port,
      payload: (n) => n === 0 ? pexAdding([loop(b.port), loop(ourPort), loop(ref.port)]) : null,
      everyMs: 1_000,
      log,
    }));
    ref.port = a.port;
    try {
      const out = `${f.tmp}/out`;
      const started = performance.now();
      const r = await runBtfetch(["get", f.torrent, "-o", out, ...flags, "--peer", a.address]);
      const ms = performance.now() - started;
      const bAddr = `127.0.0.1:${b.port}`;
      const dialledAt = await assertFetchedFromPexPeer(r, f, out, bAddr);
      assertEquals(log.extHandshakes[0]?.m.get(UT_PEX), OUR_UT_PEX_ID, "btfetch did not offer ut_pex");
      assertEquals(log.sent, 1);
      assertEquals(peerEvents(r, "connected").filter((e) => e.address === a.address).length, 1, describeRun(r));
      assert(!eventsOf(r, "peer").some((e) => e.address === `127.0.0.1:${ourPort}`), "btfetch dialled itself");
      console.log(`  pex dial of B at t=${dialledAt} ms; complete in ${Math.round(ms)} ms (process)`);
    } finally {
      await a.close();
      await b.close();
      await Deno.remove(f.tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: btfetch learns a seeder from a libtorrent peer with no data (its ut_pex), dials it and completes",
  ignore,
  async fn() {
    requirePrograms("libtorrent");
    const f = await fixture("btfetch-pex-lt-");
    const b = await startLibtorrentSeeder({ torrent: f.torrent, dataDir: f.dataDir });
    const bAddr = `127.0.0.1:${b.port}`;
    let a: Awaited<ReturnType<typeof startLtPex>> | undefined;
    try {
      // A: every file at priority 0, so it holds no piece and downloads none; it knows B because it dialled it.
      a = await startLtPex({ torrent: f.torrent, dataDir: `${f.tmp}/a`, mode: "idle", connect: [bAddr] });
      await a.waitForPeer((p) => p.port === b.port && !p.connecting && !p.in_handshake, 15_000, "A connected to B");
      const out = `${f.tmp}/out`;
      const started = performance.now();
      const r = await runBtfetch(["get", f.torrent, "-o", out, ...fetchFlags(), "--peer", `127.0.0.1:${a.port}`]);
      const ms = performance.now() - started;
      const dialledAt = await assertFetchedFromPexPeer(r, f, out, bAddr);
      const fromA = doneOf(r).peers.filter((p) => p.address === `127.0.0.1:${a?.port}`);
      assert(fromA.every((p) => p.downloaded === 0), `A sent bytes: ${JSON.stringify(fromA)}`);
      console.log(`  pex dial of B at t=${dialledAt} ms; complete in ${Math.round(ms)} ms (process)`);
    } finally {
      await a?.close();
      await b.close();
      await Deno.remove(f.tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: a libtorrent downloader connected only to btfetch learns btfetch's peer C by ut_pex and dials it",
  ignore,
  async fn() {
    requirePrograms("libtorrent");
    const f = await fixture("btfetch-pex-out-");
    // C serves slowly, so btfetch is still downloading from it (connected) when L arrives. C's ut_pex is off: it
    // cannot learn L from btfetch and dial it first.
    const c = await startLibtorrentSeeder({ torrent: f.torrent, dataDir: f.dataDir, uploadRate: 64 * 1024 });
    const mid = startBtGet(f.torrent, `${f.tmp}/mid`, ["--peer", `127.0.0.1:${c.port}`]);
    let l: Awaited<ReturnType<typeof startLtPex>> | undefined;
    try {
      const cAddr = `127.0.0.1:${c.port}`;
      await mid.handle.waitForEvent(
        (e) => e.event === "peer" && e.action === "connected" && e.address === cAddr,
        20_000,
      );
      const started = performance.now();
      l = await startLtPex({
        torrent: f.torrent,
        dataDir: `${f.tmp}/l`,
        mode: "leech",
        connect: [`127.0.0.1:${mid.port}`],
      });
      const row = await l.waitForPeer(
        (p) => p.port === c.port && !p.connecting && !p.in_handshake,
        20_000,
        "L connected to C",
      );
      const ms = performance.now() - started;
      assert(row.pex, `L knows C but not through ut_pex: ${JSON.stringify(row)}`);
      assertEquals(row.source & LT_OTHER_SOURCES, 0, JSON.stringify(row));
      assert(row.outgoing, `L did not dial C: ${JSON.stringify(row)}`);
      assert(
        peerEvents(mid.handle, "connected").some((e) => e.incoming === true),
        `L never connected to btfetch\n${mid.handle.stdout}`,
      );
      console.log(`  L started → connected to C (source pex) in ${Math.round(ms)} ms`);
    } finally {
      await l?.close();
      const s = await stopWithin(mid.handle);
      await c.close();
      await Deno.remove(f.tmp, { recursive: true });
      assert(!s.killed, describeRun(s.result));
    }
  },
});

Deno.test({
  name: "interop: a peer flooding ut_pex every second is dropped while a libtorrent seeder beside it completes",
  ignore,
  async fn() {
    requirePrograms("libtorrent");
    const f = await fixture("btfetch-pex-flood-");
    // About 4 s at 1 MiB/s: btfetch is still running when the second message comes, a second after the first.
    const s = await startLibtorrentSeeder({ torrent: f.torrent, dataDir: f.dataDir, uploadRate: MiB });
    const log = tellerLog();
    const ref = { port: 0 };
    let next = 40_000;
    const a = new FakePeer(pexTeller({
      meta: f.meta,
      listenPort: () => ref.port,
      payload: (n) => n < 30 ? pexAdding([loop(next++)]) : null, // a new (dead) peer each time
      everyMs: 1_000,
      log,
    }));
    ref.port = a.port;
    try {
      const out = `${f.tmp}/out`;
      const started = performance.now();
      const args = ["get", f.torrent, "-o", out, ...fetchFlags(), "--peer", a.address];
      const r = await runBtfetch([...args, "--peer", `127.0.0.1:${s.port}`]);
      const ms = performance.now() - started;
      assertFetchOk(r, f);
      await assertSameTree(f.payloadPath, `${out}/pex.bin`);
      const drops = peerEvents(r, "disconnected").filter((e) => e.address === a.address);
      assert(
        drops.some((e) => /ut_pex/.test(String(e.reason))),
        `the flooder was not dropped for ut_pex\n${describeRun(r)}`,
      );
      const connectedAt = peerEvents(r, "connected").find((e) => e.address === a.address)?.t as number;
      const drop = drops.find((e) => /ut_pex/.test(String(e.reason))) as BtEvent;
      assert(log.sent >= 2, `only ${log.sent} ut_pex messages sent`);
      console.log(
        `  flooder dropped ${(drop.t as number) - connectedAt} ms after connecting (${drop.reason}); ` +
          `complete in ${Math.round(ms)} ms (process)`,
      );
    } finally {
      await a.close();
      await s.close();
      await Deno.remove(f.tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: a ut_pex message listing 10,000 peers is refused and none is dialled (200, the limit, are taken)",
  async fn(t) {
    const f = await fixture("btfetch-pex-big-", 256 * 1024);
    try {
      for (const count of [200, 10_000]) {
        await t.step(`${count} peers`, async () => {
          const sentinel = new FakePeer(async (w) => {
            await w.waitClosed(20_000);
          });
          // The sentinel first, then other loopback addresses (127.x.y.z) at its port, where nothing listens.
          const peers = [loop(sentinel.port)];
          for (let i = 1; i < count; i++) {
            peers.push({ host: `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, port: sentinel.port });
          }
          const log = tellerLog();
          const ref = { port: 0 };
          const a = new FakePeer(pexTeller({
            meta: f.meta,
            listenPort: () => ref.port,
            payload: (n) => n === 0 ? pexAdding(peers) : null,
            everyMs: 1_000,
            log,
          }));
          ref.port = a.port;
          try {
            const args = ["get", f.torrent, "-o", `${f.tmp}/out`, ...fetchFlags(), "--peer", a.address];
            const started = performance.now();
            const r = await runBtfetch([...args, "--stall-timeout", "5s"], { timeoutMs: 60_000 });
            const ms = performance.now() - started;
            assertEquals(r.code, 4, describeRun(r));
            assert(log.sent >= 1, "the teller sent nothing");
            const pexDrops = peerEvents(r, "disconnected").filter((e) =>
              e.address === a.address && /ut_pex/.test(String(e.reason))
            );
            const learnt = (doneOf(r).sources as Record<string, number>).pex;
            if (count === 200) {
              assert(sentinel.accepted > 0, `btfetch never dialled the first of 200 peers\n${describeRun(r)}`);
              assertEquals(pexDrops.length, 0, describeRun(r));
              assert(learnt > 0, describeRun(r));
            } else {
              assertEquals(sentinel.accepted, 0, `btfetch dialled a peer of the refused message\n${describeRun(r)}`);
              assert(pexDrops.length > 0, `the teller was not dropped for its ut_pex\n${describeRun(r)}`);
              assertEquals(learnt, 0, describeRun(r));
              console.log(`    dropped: ${pexDrops[0].reason}`);
            }
            console.log(`    ${count} peers: exit ${r.code} in ${Math.round(ms)} ms; ${learnt} learnt`);
          } finally {
            await a.close();
            await sentinel.close();
          }
        });
      }
    } finally {
      await Deno.remove(f.tmp, { recursive: true });
    }
  },
});

const offCases = [
  { name: "--no-pex", extra: ["--no-pex"], private: false },
  { name: "a private torrent (BEP 27)", extra: [], private: true },
];

Deno.test({
  name: "interop: with --no-pex, or for a private torrent, btfetch offers no ut_pex and never dials what a peer tells",
  ignore,
  async fn(t) {
    requirePrograms("libtorrent");
    for (const c of offCases) {
      await t.step(`${c.name}: exit 4 at the stall time-out, the seeder never dialled`, async () => {
        const f = await fixture("btfetch-pex-off-", 4 * MiB + 123, c.private);
        const b = await startLibtorrentSeeder({ torrent: f.torrent, dataDir: f.dataDir });
        const log = tellerLog();
        const ref = { port: 0 };
        // Sent although btfetch offers no ut_pex, with the id btfetch uses when it does.
        const a = new FakePeer(pexTeller({
          meta: f.meta,
          listenPort: () => ref.port,
          payload: (n) => n === 0 ? pexAdding([loop(b.port)]) : null,
          everyMs: 1_000,
          unsolicitedId: OUR_UT_PEX_ID,
          log,
        }));
        ref.port = a.port;
        try {
          const args = ["get", f.torrent, "-o", `${f.tmp}/out`, ...fetchFlags(), "--peer", a.address, ...c.extra];
          const started = performance.now();
          const r = await runBtfetch([...args, "--stall-timeout", "5s"], { timeoutMs: 60_000 });
          const ms = performance.now() - started;
          assertEquals(r.code, 4, describeRun(r));
          assertEquals(log.sent, 1, "the teller did not get to send its ut_pex message");
          assertEquals(log.extHandshakes[0]?.m.get(UT_PEX) ?? 0, 0, "btfetch offered ut_pex");
          const bAddr = `127.0.0.1:${b.port}`;
          assert(!eventsOf(r, "peer").some((e) => e.address === bAddr), `btfetch dialled B\n${describeRun(r)}`);
          assertEquals(b.proc.lines.filter((l) => l.startsWith("PEER ")), [], "B saw a connection");
          assertEquals((doneOf(r).sources as Record<string, number>).pex, 0, describeRun(r));
          console.log(`    exit ${r.code} in ${Math.round(ms)} ms, B never dialled`);
        } finally {
          await a.close();
          await b.close();
          await Deno.remove(f.tmp, { recursive: true });
        }
      });
    }
  },
});
