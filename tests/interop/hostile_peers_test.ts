/**
 * Peers of the real Internet, on loopback: malicious or broken peers written here, next to a real libtorrent seeder
 * or downloader. A peer that never sends its handshake, drips it, drips unrequested blocks, answers one block every
 * 4 s, or never answers must neither crash btfetch nor hold its download hostage; a flood of silent and garbage
 * connections must not keep `btfetch seed` from serving a real downloader.
 * @module
 */
import { assert } from "../_assert.ts";
import { Bitfield } from "../../lib/bitfield.ts";
import { parseMetainfo } from "../../lib/metainfo.ts";
import { encodeHandshake, reservedBits } from "../../lib/wire/handshake.ts";
import { encodeMessage } from "../../lib/wire/messages.ts";
import { blockOf, FakePeer, type Wire } from "../engine/_fake_peer.ts";
import { assertSameTree, describeRun, eventsOf, fetchFlags, runBtfetch } from "./_btfetch.ts";
import {
  ignoreUnless,
  MiB,
  sleep,
  startAria2Seeder,
  startLibtorrentLeecher,
  startLibtorrentSeeder,
  writeSingleFilePayload,
} from "./_peers.ts";
import { killAll, makeBtTorrent, startBtSeed, stopWithin } from "./_swarm.ts";

const ignore = ignoreUnless("libtorrent");
/** The slack over the seeder-alone time that a hostile peer beside it may cost (the target is about a second). */
const SLACK_MS = 3_000;

/** A TCP listener whose connections get `handler`; closes everything on `close()`. */
class RawPeer {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #conns = new Set<Deno.Conn>();
  readonly #loop: Promise<void>;
  constructor(handler: (c: Deno.Conn) => Promise<void>) {
    this.#loop = (async () => {
      for (;;) {
        let c: Deno.Conn;
        try {
          c = await this.#listener.accept();
        } catch {
          return;
        }
        this.#conns.add(c);
        handler(c).catch(() => {});
      }
    })();
  }
  get address(): string {
    return `127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }
  async close(): Promise<void> {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await this.#loop;
  }
}

interface Fixture {
  tmp: string;
  torrent: string;
  meta: ReturnType<typeof parseMetainfo>;
  payload: Uint8Array;
  payloadPath: string;
  dataDir: string;
}

async function fixture(prefix: string, size: number, pieceLength: number): Promise<Fixture> {
  const tmp = await Deno.makeTempDir({ prefix });
  const p = await writeSingleFilePayload(`${tmp}/seed`, "hostile.bin", size, 77);
  const t = await makeBtTorrent(p.path, `${tmp}/hostile.torrent`, { pieceLength });
  const meta = parseMetainfo(await Deno.readFile(t.path));
  return { tmp, torrent: t.path, meta, payload: await Deno.readFile(p.path), payloadPath: p.path, dataDir: p.dir };
}

/** The handshake and full bitfield of a peer that has everything; then `rest` runs on the connection. */
function hostileSeeder(f: Fixture, rest: (w: Wire) => Promise<void>): (w: Wire) => Promise<void> {
  return async (w) => {
    if (!await w.handshake(5000)) return;
    const peerId = new TextEncoder().encode("-XX0001-hostilepeer!");
    await w.sendRaw(encodeHandshake({ reserved: reservedBits({}), infoHash: f.meta.infoHash, peerId }));
    await w.send({ type: "bitfield", bits: Bitfield.full(f.meta.pieceCount).bytes });
    await rest(w);
  };
}

/** Unchokes on interest and collects requests in `queue`, forever (until the connection ends). */
async function takeRequests(w: Wire, queue: { index: number; begin: number; length: number }[]): Promise<void> {
  for (;;) {
    const m = await w.next(60_000);
    if (m === null || m === "timeout") return;
    if (m.type === "interested") await w.send({ type: "unchoke" });
    else if (m.type === "request") queue.push({ index: m.index, begin: m.begin, length: m.length });
    else if (m.type === "cancel") {
      const i = queue.findIndex((r) => r.index === m.index && r.begin === m.begin);
      if (i >= 0) queue.splice(i, 1);
    }
  }
}

const dripCases: { name: string; peer: (f: Fixture) => FakePeer }[] = [
  {
    name: "a peer that drips one unrequested 14-byte piece message every 5 s",
    peer: (f) =>
      new FakePeer(hostileSeeder(f, async (w) => {
        const queue: { index: number; begin: number; length: number }[] = [];
        const drip = (async () => {
          while (!w.closed) {
            await w.send({ type: "piece", index: 0, begin: 0, block: new Uint8Array(1) });
            await sleep(5_000);
          }
        })();
        await takeRequests(w, queue);
        await drip;
      })),
  },
  {
    name: "a slow honest peer that answers one requested block every 4 s",
    peer: (f) =>
      new FakePeer(hostileSeeder(f, async (w) => {
        const queue: { index: number; begin: number; length: number }[] = [];
        const serve = (async () => {
          while (!w.closed) {
            await sleep(4_000);
            const r = queue.shift();
            if (r) await w.send({ type: "piece", index: r.index, begin: r.begin, block: blockOf(f, r) });
          }
        })();
        await takeRequests(w, queue);
        await serve;
      })),
  },
  {
    name: "a peer that unchokes, takes requests and never answers",
    peer: (f) => new FakePeer(hostileSeeder(f, (w) => takeRequests(w, []))),
  },
];

const seeders = [
  {
    name: "libtorrent",
    ignore: ignoreUnless("libtorrent"),
    start: (f: Fixture) => startLibtorrentSeeder({ torrent: f.torrent, dataDir: f.dataDir }),
  },
  {
    name: "aria2c",
    ignore: ignoreUnless("aria2c"),
    start: (f: Fixture) => startAria2Seeder({ torrent: f.torrent, dataDir: f.dataDir }),
  },
];

for (const sd of seeders) {
  Deno.test({
    name:
      `interop: beside a ${sd.name} seeder, a dripping, slow or mute peer costs 64 MiB about a second, not the download`,
    ignore: sd.ignore,
    async fn(t) {
      const f = await fixture(`btfetch-hostile-drip-${sd.name}-`, 64 * MiB, 256 * 1024);
      const seeder = await sd.start(f);
      try {
        const fetch = async (out: string, peers: string[]) => {
          const args = ["get", f.torrent, "-o", out, ...fetchFlags()];
          for (const p of peers) args.push("--peer", p);
          const started = performance.now();
          const r = await runBtfetch(args, { timeoutMs: 120_000 });
          const ms = performance.now() - started;
          if (r.code !== 0) throw new Error(`btfetch failed\n${describeRun(r)}`);
          await assertSameTree(f.payloadPath, `${out}/hostile.bin`);
          await Deno.remove(out, { recursive: true });
          return ms;
        };
        const alone = await fetch(`${f.tmp}/alone`, [`127.0.0.1:${seeder.port}`]);
        console.log(`  ${sd.name} seeder alone: ${Math.round(alone)} ms`);
        for (const c of dripCases) {
          await t.step(c.name, async () => {
            const bad = c.peer(f);
            try {
              const ms = await fetch(`${f.tmp}/with`, [bad.address, `127.0.0.1:${seeder.port}`]);
              console.log(`    with it: ${Math.round(ms)} ms`);
              assert(ms <= alone + SLACK_MS, `${Math.round(ms)} ms against ${Math.round(alone)} ms alone`);
              assert(bad.accepted > 0, "btfetch never connected to the hostile peer");
            } finally {
              await bad.close();
            }
          });
        }
      } finally {
        await seeder.close();
        await Deno.remove(f.tmp, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "interop: a peer that never sends its handshake, or drips it a byte a second, crashes nothing",
  ignore,
  async fn(t) {
    const f = await fixture("btfetch-hostile-hs-", 4 * MiB + 1234, 64 * 1024);
    const hs = encodeHandshake({
      reserved: reservedBits({}),
      infoHash: f.meta.infoHash,
      peerId: new TextEncoder().encode("-XX0001-slowhandshak"),
    });
    const kinds = [
      { name: "silent after accept", handler: () => sleep(60_000) },
      {
        name: "a handshake at one byte a second",
        handler: async (c: Deno.Conn) => {
          for (const b of hs) {
            await c.write(Uint8Array.of(b));
            await sleep(1_000);
          }
        },
      },
    ];
    try {
      for (const k of kinds) {
        await t.step(`${k.name}, alone: exit 4 at the stall time-out, not exit 1`, async () => {
          const bad = new RawPeer(k.handler);
          try {
            const args = ["get", f.torrent, "-o", `${f.tmp}/alone`, ...fetchFlags(), "--peer", bad.address];
            args.push("--stall-timeout", "12s");
            const r = await runBtfetch(args, { timeoutMs: 60_000 });
            assert(r.code === 4, `want exit 4\n${describeRun(r)}`);
            assert(!/Uncaught|BadResource/.test(r.stderr), r.stderr);
            assert(eventsOf(r, "internal-error").length === 0, describeRun(r));
          } finally {
            await bad.close();
          }
        });
        await t.step(`${k.name}, beside a libtorrent seeder: completes`, async () => {
          const bad = new RawPeer(k.handler);
          const seeder = await startLibtorrentSeeder({ torrent: f.torrent, dataDir: f.dataDir });
          try {
            const out = `${f.tmp}/with`;
            const args = ["get", f.torrent, "-o", out, ...fetchFlags(), "--peer", bad.address];
            args.push("--peer", `127.0.0.1:${seeder.port}`);
            const r = await runBtfetch(args, { timeoutMs: 60_000 });
            assert(r.code === 0, describeRun(r));
            await assertSameTree(f.payloadPath, `${out}/hostile.bin`);
            await Deno.remove(out, { recursive: true });
          } finally {
            await seeder.close();
            await bad.close();
          }
        });
      }
    } finally {
      await Deno.remove(f.tmp, { recursive: true });
    }
  },
});

/** Opens `n` connections to `port` that each do `what`, and keeps them open until `close()`. */
async function flood(port: number, n: number, what: (c: Deno.Conn) => Promise<void>): Promise<() => void> {
  const conns: Deno.Conn[] = [];
  await Promise.all(Array.from({ length: n }, async () => {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(c);
      await what(c).catch(() => {});
    } catch { /* refused: fine, a flood may be cut short */ }
  }));
  return () => {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  };
}

Deno.test({
  name:
    "interop: btfetch seed under a flood of silent, garbage and handshake-then-silent connections serves libtorrent",
  ignore,
  async fn() {
    const f = await fixture("btfetch-hostile-flood-", 16 * MiB + 321, 256 * 1024);
    const seed = await startBtSeed(f.torrent, f.dataDir, ["--no-dht"]);
    const stops: (() => void)[] = [];
    try {
      const hs = (n: number) =>
        encodeHandshake({
          reserved: reservedBits({ fast: true, extended: true }),
          infoHash: f.meta.infoHash,
          peerId: new TextEncoder().encode(`-XX0001-flood${String(n).padStart(7, "0")}`),
        });
      let k = 0;
      stops.push(
        await flood(seed.port, 100, async (c) => {
          await c.write(hs(k++)); // then silence
        }),
      );
      stops.push(await flood(seed.port, 100, () => Promise.resolve())); // silent from the start
      stops.push(
        await flood(seed.port, 50, async (c) => {
          await c.write(crypto.getRandomValues(new Uint8Array(300))); // garbage
        }),
      );
      // handshake, then an endless run of keep-alives: alive, but useless
      stops.push(
        await flood(seed.port, 20, async (c) => {
          await c.write(hs(k++));
          await c.write(encodeMessage({ type: "keep-alive" }));
        }),
      );
      const leecher = await startLibtorrentLeecher({
        torrent: f.torrent,
        dataDir: `${f.tmp}/lt`,
        connect: [`127.0.0.1:${seed.port}`],
      });
      try {
        await leecher.waitDone(60_000);
      } finally {
        await leecher.close();
      }
      await assertSameTree(f.payloadPath, `${f.tmp}/lt/hostile.bin`);
      for (const stop of stops.splice(0)) stop();
      const s = await stopWithin(seed.handle);
      assert(!s.killed, describeRun(s.result));
      assert(eventsOf(s.result, "internal-error").length === 0, describeRun(s.result));
    } finally {
      for (const stop of stops) stop();
      await killAll([seed.handle]);
      await Deno.remove(f.tmp, { recursive: true });
    }
  },
});
