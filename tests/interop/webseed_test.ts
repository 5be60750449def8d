/**
 * Web seeds (BEP 19) on the wire: btfetch fetches from Debian's nginx and from HTTP servers written here (each with
 * one fault: 503 and Retry-After, redirects, a server that ignores Range, closes mid-body, is slow, lies, or lacks a
 * file), alone or beside a libtorrent seeder; and libtorrent fetching the same torrents from the same nginx agrees
 * with btfetch's result. All on loopback, no DHT; every process is killed in `finally`.
 * @module
 */
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
import {
  ignoreUnless,
  MiB,
  MULTI_FILES,
  requirePrograms,
  writeMultiFilePayload,
  writeSingleFilePayload,
} from "./_peers.ts";
import { doneOf, type Share } from "./_swarm.ts";
import { type Nginx, type NginxHit, startNginx } from "./_webseed_nginx.ts";
import {
  btfetchCreateWs,
  libtorrentFetch,
  libtorrentPaddedWs,
  mktorrentWs,
  type WsTorrent,
} from "./_webseed_torrents.ts";

const NEEDS = ["/usr/sbin/nginx", "libtorrent", "mktorrent"];

/** Runs `btfetch get TORRENT -o OUT --json --no-dht ...extra` and times it. */
async function fetchWs(torrent: string, out: string, extra: string[] = []): Promise<{ r: BtfetchResult; ms: number }> {
  const t0 = performance.now();
  const r = await runBtfetch(["get", torrent, "-o", out, ...fetchFlags(), ...extra], { timeoutMs: 90_000 });
  return { r, ms: performance.now() - t0 };
}

/** Bytes `done.peers` credits to sources whose address starts with `prefix` (a web seed's URL, or an origin). */
function sharesOf(done: { peers: Share[] }, prefix: string): number {
  return done.peers.filter((p) => p.address.startsWith(prefix)).reduce((n, p) => n + p.downloaded, 0);
}

function fail(msg: string, r: BtfetchResult): never {
  throw new Error(`${msg}\n${describeRun(r)}`);
}

/** The `peer` events about web seeds. */
function webSeedEvents(r: BtfetchResult): BtEvent[] {
  return eventsOf(r, "peer").filter((e) => e.source === "webseed");
}

function time(label: string, ms: number): void {
  console.log(`    ${label}: ${(ms / 1000).toFixed(2)} s`);
}

/** A web-seeded torrent over data under the nginx root, and the data it describes. */
interface Case {
  readonly label: string;
  readonly torrent: WsTorrent;
  /** The original file or folder. */
  readonly data: string;
  /** Request paths (as nginx logs them) that belong to this torrent. */
  readonly urlPrefix: string;
}

const PADDED_FILES: Array<[string, number]> = [
  ["a-100000.bin", 100_000],
  ["b-5.bin", 5],
  ["empty.txt", 0],
  ["sub/c-70001.bin", 70_001],
  ["d-1MiB+3.bin", MiB + 3],
];

/** Names that must be percent-encoded in a URL (space, `&`, `+`, `#`, `%`, non-ASCII), and an empty file. */
const NAMED_FILES: Array<[string, number]> = [
  ["with space & plus+.bin", 40_000],
  ["ünï cödé.bin", 33_333],
  ["hash#1.bin", 20_001],
  ["deep/pct%41.bin", 1_234],
  ["empty", 0],
  ["z-600001.bin", 600_001],
];

/**
 * Writes the payloads under `www` (nginx's root) and makes one torrent of each kind whose web seed is `origin`:
 * single- and multi-file by mktorrent, multi-file with padding files by libtorrent, multi- and single-file by
 * `btfetch create` (a base URL without its `/`, and a folder URL to which the name is added).
 */
async function makeCases(www: string, origin: string, tmp: string): Promise<Case[]> {
  const single = await writeSingleFilePayload(www, "single.bin", 5 * MiB + 777, 3);
  const multi = await writeMultiFilePayload(www, "multi", MULTI_FILES, 21);
  const padded = await writeMultiFilePayload(www, "padded", PADDED_FILES, 31);
  const named = await writeMultiFilePayload(www, "named", NAMED_FILES, 41);
  const single2 = await writeSingleFilePayload(`${www}/dir`, "single2.bin", 3 * MiB - 1, 51);
  return [
    {
      label: "single-file, mktorrent, the file's URL",
      torrent: await mktorrentWs({
        path: single.path,
        out: `${tmp}/single.torrent`,
        pieceLengthLog2: 16,
        webSeeds: [`${origin}/single.bin`],
      }),
      data: single.path,
      urlPrefix: "/single.bin",
    },
    {
      label: "multi-file (empty file, odd sizes), mktorrent, base URL with /",
      torrent: await mktorrentWs({
        path: multi.path,
        out: `${tmp}/multi.torrent`,
        pieceLengthLog2: 15,
        webSeeds: [`${origin}/`],
      }),
      data: multi.path,
      urlPrefix: "/multi/",
    },
    {
      label: "multi-file with BEP 47 padding files (tail padded), libtorrent",
      torrent: await libtorrentPaddedWs({
        path: padded.path,
        out: `${tmp}/padded.torrent`,
        pieceLength: 32 * 1024,
        webSeeds: [`${origin}/`],
      }),
      data: padded.path,
      urlPrefix: "/padded/",
    },
    {
      label: "multi-file with names to percent-encode, btfetch create, base URL without /",
      torrent: await btfetchCreateWs({
        path: named.path,
        out: `${tmp}/named.torrent`,
        pieceSize: "16K",
        webSeeds: [origin],
      }),
      data: named.path,
      urlPrefix: "/named/",
    },
    {
      label: "single-file, btfetch create, a folder URL (name appended)",
      torrent: await btfetchCreateWs({
        path: single2.path,
        out: `${tmp}/single2.torrent`,
        pieceSize: "32K",
        webSeeds: [`${origin}/dir/`],
      }),
      data: single2.path,
      urlPrefix: "/dir/single2.bin",
    },
  ];
}

Deno.test({
  name:
    "interop webseed: nginx alone serves single- and multi-file torrents (mktorrent, libtorrent pads, btfetch create)",
  ignore: ignoreUnless(...NEEDS),
  async fn(t) {
    requirePrograms(...NEEDS);
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-ws-nginx-" });
    let nginx: Nginx | undefined;
    try {
      await Deno.mkdir(`${tmp}/www`);
      nginx = await startNginx(`${tmp}/www`);
      const ng = nginx;
      const cases = await makeCases(`${tmp}/www`, ng.origin, tmp);
      if (cases[2].torrent.padFiles.length < 2) {
        throw new Error(`libtorrent made no padding: ${JSON.stringify(cases[2])}`);
      }
      for (const [i, c] of cases.entries()) {
        await t.step(c.label, async () => {
          const out = `${tmp}/out${i}`;
          const before = (await ng.hits()).length;
          const { r, ms } = await fetchWs(c.torrent.path, out);
          time(c.label, ms);
          const done = assertFetchOk(r, { size: c.torrent.totalLength, pieceLength: c.torrent.pieceLength });
          await assertSameTree(c.data, `${out}/${c.torrent.name}`);
          // bytes per web seed: all of them from nginx, none from a peer
          const d = doneOf(r);
          const fromNginx = sharesOf(d, ng.origin);
          if (fromNginx < c.torrent.dataBytes) fail(`done.peers credits nginx with ${fromNginx} bytes`, r);
          if (d.peers.some((p) => !p.address.startsWith(ng.origin) && p.downloaded > 0)) fail("bytes from a peer?", r);
          if (!webSeedEvents(r).some((e) => e.action === "connected" && String(e.address).startsWith(ng.origin))) {
            fail("no peer event for the web seed", r);
          }
          void done;
          // what nginx was asked: ranged GETs of this torrent's files only, never a padding file or an empty file
          const hits: NginxHit[] = (await ng.hits()).slice(before);
          const bad = hits.filter((h) =>
            h.method !== "GET" || h.status !== 206 || !/^bytes=\d+-\d+$/.test(h.range) ||
            !h.path.startsWith(c.urlPrefix)
          );
          if (hits.length === 0 || bad.length > 0) {
            throw new Error(`unexpected requests to nginx: ${JSON.stringify(bad.slice(0, 5))} of ${hits.length}`);
          }
          const served = hits.reduce((n, h) => n + h.bytes, 0);
          if (served > c.torrent.dataBytes * 1.25 + c.torrent.pieceLength) {
            throw new Error(`nginx sent ${served} bytes for a ${c.torrent.dataBytes}-byte payload`);
          }
          console.log(`    ${hits.length} requests, ${served} bytes served`);
        });
      }
    } finally {
      await nginx?.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop webseed: libtorrent fetching the same torrents from the same nginx agrees with btfetch",
  ignore: ignoreUnless(...NEEDS),
  async fn(t) {
    requirePrograms(...NEEDS);
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-ws-lt-" });
    let nginx: Nginx | undefined;
    try {
      await Deno.mkdir(`${tmp}/www`);
      nginx = await startNginx(`${tmp}/www`);
      const ng = nginx;
      for (const [i, c] of (await makeCases(`${tmp}/www`, ng.origin, tmp)).entries()) {
        await t.step(c.label, async () => {
          const h0 = (await ng.hits()).length;
          const { r, ms } = await fetchWs(c.torrent.path, `${tmp}/bt${i}`);
          assertFetchOk(r, { size: c.torrent.totalLength, pieceLength: c.torrent.pieceLength });
          const h1 = (await ng.hits()).length;
          const ltMs = await libtorrentFetch(c.torrent.path, `${tmp}/lt${i}`, 60_000);
          const h2 = (await ng.hits()).length;
          console.log(
            `    btfetch ${(ms / 1000).toFixed(2)} s (${h1 - h0} requests), ` +
              `libtorrent ${(ltMs / 1000).toFixed(2)} s (${h2 - h1} requests)`,
          );
          await assertSameTree(c.data, `${tmp}/lt${i}/${c.torrent.name}`);
          await assertSameTree(c.data, `${tmp}/bt${i}/${c.torrent.name}`);
          await assertSameTree(`${tmp}/lt${i}/${c.torrent.name}`, `${tmp}/bt${i}/${c.torrent.name}`);
        });
      }
    } finally {
      await nginx?.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
