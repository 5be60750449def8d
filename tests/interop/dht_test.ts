/**
 * btfetch's DHT (BEP 5) against DHT nodes someone else wrote, all on 127.0.0.1: python3-libtorrent sessions
 * (`lt_dht.py`) and webtorrent's npm `bittorrent-dht` (`_npm_dht.ts`). The magnets carry `xt=` alone (no `tr=`, no
 * `x.pe=`), nobody is given a peer, and local discovery and PEX are off, so the DHT is the only way peers meet: a
 * broken lookup, announce, token or codec leaves the fetch without a peer and the test fails. btfetch is tested on both
 * sides: as a client (lookups, announces, the saved state of a warm start) and as a node others ask (tokens, the
 * store of announced peers).
 *
 * Never the public DHT: every btfetch run names `--dht-bootstrap 127.0.0.1:...` (so the default routers are never
 * used) and keeps `--dht-state` in the test's temp folder; libtorrent's bootstrap list is empty and the npm nodes run
 * with `bootstrap: false`; the nodes learn of each other only from the test.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import {
  assertFetchOk,
  assertSameTree,
  type BtEvent,
  type BtfetchResult,
  describeRun,
  eventsOf,
  REPO_ROOT,
  runBtfetch,
} from "./_btfetch.ts";
import { assertSeedOk, createWithBtfetch, startBtfetchSeeder } from "./_btfetch_seeder.ts";
import {
  freePort,
  ignoreUnless,
  LineProcess,
  makeTorrentWithLibtorrent,
  MiB,
  requirePrograms,
  SYSTEM_PYTHON,
  writeSingleFilePayload,
} from "./_peers.ts";

const LT_DHT = new URL("./lt_dht.py", import.meta.url).pathname;
const NPM_DHT = new URL("./_npm_dht.ts", import.meta.url).pathname;

/** A loopback DHT running in a child process: its nodes' ports and, for libtorrent, its seeder's or downloader's. */
interface LoopbackDht {
  readonly proc: LineProcess;
  /** The plain nodes' UDP ports. */
  readonly nodes: number[];
  /** The libtorrent seeder's port (TCP and DHT), if one was asked for. */
  readonly seeder?: number;
  /** The libtorrent downloader's port, if one was asked for. */
  readonly leecher?: number;
  close(): Promise<void>;
}

/** Waits for the helper's READY (bounded), then reads the ports it printed before it. */
async function readyDht(proc: LineProcess, timeoutMs: number): Promise<LoopbackDht> {
  try {
    await proc.waitForLine(/^(READY|ERROR .*)$/, timeoutMs).then((m) => {
      if (m[1] !== "READY") throw new Error(`${proc.name}: ${m[1]}`);
    });
  } catch (e) {
    await proc.close();
    throw new Error(`${e instanceof Error ? e.message : e}\n${proc.tail()}`);
  }
  const ports = (role: string) =>
    proc.lines.map((l) => l.match(new RegExp(`^${role} (\\d+)$`))).filter((m) => m !== null).map((m) => Number(m[1]));
  return {
    proc,
    nodes: ports("NODE"),
    seeder: ports("SEEDER")[0],
    leecher: ports("LEECHER")[0],
    close: async () => void await proc.close(),
  };
}

/**
 * Starts `lt_dht.py`: `nodes` plain libtorrent DHT nodes, plus a seeder and/or a downloader, every session told of
 * the others and of `addNodes` (UDP ports on 127.0.0.1). Resolves at READY.
 */
function startLibtorrentDht(opts: {
  nodes?: number;
  seed?: { torrent: string; dir: string };
  leech?: { magnet: string; dir: string };
  addNodes?: number[];
}): Promise<LoopbackDht> {
  const args = ["-u", LT_DHT, "--nodes", String(opts.nodes ?? 0), "--max-seconds", "120"];
  if (opts.seed) args.push("--seed", opts.seed.torrent, "--seed-dir", opts.seed.dir);
  if (opts.leech) args.push("--leech", opts.leech.magnet, "--leech-dir", opts.leech.dir);
  for (const p of opts.addNodes ?? []) args.push("--add-node", `127.0.0.1:${p}`);
  const name = opts.seed ? "lt-dht+seeder" : opts.leech ? "lt-dht-downloader" : "lt-dht";
  return readyDht(new LineProcess(name, SYSTEM_PYTHON, args), 30_000);
}

/**
 * Starts `_npm_dht.ts`: `nodes` npm `bittorrent-dht` nodes on 127.0.0.1 that know each other and `addNodes` (UDP ports
 * on 127.0.0.1). Resolves at READY, once every node has them all in its routing table.
 */
function startNpmDht(nodes: number, addNodes: number[] = []): Promise<LoopbackDht> {
  const args = ["run", "-A", `--config=${REPO_ROOT}/deno.json`, NPM_DHT, "--nodes", String(nodes)];
  for (const p of addNodes) args.push("--add-node", `127.0.0.1:${p}`);
  return readyDht(new LineProcess("npm-dht", Deno.execPath(), args), 30_000);
}

/** The DHT flags of a btfetch run: loopback bootstrap nodes only, and its state in the test's folder. */
function dhtFlags(stateFile: string, bootstrap: number[]): string[] {
  assert(bootstrap.length > 0, "a DHT test names its bootstrap nodes (never the public routers)");
  return [...bootstrap.flatMap((p) => ["--dht-bootstrap", `127.0.0.1:${p}`]), "--dht-state", stateFile];
}

/**
 * `btfetch get` flags for these tests: JSON events, bounded time (the metadata within `metadataTimeout`, so a DHT
 * that finds nobody fails well inside the test's minute), a port of its own, and the DHT flags.
 */
function getFlags(stateFile: string, bootstrap: number[], metadataTimeout = "30s"): string[] {
  return [
    "--json",
    "--timeout",
    "50s",
    "--metadata-timeout",
    metadataTimeout,
    "--stall-timeout",
    "30s",
    "--port",
    String(freePort()),
    ...dhtFlags(stateFile, bootstrap),
  ];
}

/** The line a helper prints when one of its nodes stored an announce of `infoHash` for 127.0.0.1:`port`. */
function announceLine(infoHash: string, port: number): RegExp {
  return new RegExp(`^ANNOUNCE-IN ${infoHash} 127\\.0\\.0\\.1:${port}$`);
}

/** Asserts btfetch connected out to 127.0.0.1:`port`, a peer it learnt from the DHT. */
function assertDhtPeer(r: BtfetchResult, port: number): void {
  const found = eventsOf(r, "peer").some((e) =>
    e.action === "connected" && e.address === `127.0.0.1:${port}` && e.source === "dht" && e.incoming === false
  );
  assert(found, `no outgoing connection to 127.0.0.1:${port} with source dht\n${describeRun(r)}`);
}

/** Prints the figures of a magnet -> complete run (wall time, and btfetch's own clock at metadata and done). */
function logTiming(what: string, wallMs: number, r: BtfetchResult, size: number): void {
  const at = (ev: BtEvent | undefined) => (typeof ev?.t === "number" ? `${ev.t} ms` : "?");
  console.log(
    `${what}: magnet -> complete ${(wallMs / 1000).toFixed(2)} s wall (process start to exit, ` +
      `${(size / MiB).toFixed(1)} MiB); btfetch's clock: metadata at ${at(eventsOf(r, "metadata")[0])}, ` +
      `complete at ${at(eventsOf(r, "complete")[0])}`,
  );
}

Deno.test({
  name: "interop dht: btfetch gets a magnet (xt= only) through a DHT of libtorrent nodes, from one bootstrap node, " +
    "then from its saved nodes alone",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-dht-lt-" });
    let dht: LoopbackDht | undefined;
    let dead: Deno.DatagramConn | undefined;
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "dht-lt.bin", 4 * MiB + 12_345, 81);
      const t = await makeTorrentWithLibtorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLength: 65536 });
      // 7 plain nodes and the seeder: 8 libtorrent DHT nodes
      dht = await startLibtorrentDht({ nodes: 7, seed: { torrent: t.path, dir: payload.dir } });
      const seeder = dht.seeder ?? 0;
      await dht.proc.waitForLine(announceLine(t.infoHash, seeder), 20_000); // findable before btfetch looks

      const state = `${tmp}/dht-get.json`;
      const started = performance.now();
      const r = await runBtfetch(
        ["get", `magnet:?xt=urn:btih:${t.infoHash}`, "-o", `${tmp}/out`, ...getFlags(state, [dht.nodes[0]])],
        { timeoutMs: 55_000 },
      );
      const wallMs = performance.now() - started;
      assertFetchOk(r, { size: payload.size, pieceLength: 65536 });
      await assertSameTree(payload.path, `${tmp}/out/${payload.name}`);
      assertDhtPeer(r, seeder);
      logTiming("dht interop, 8 libtorrent nodes", wallMs, r, payload.size);

      // a warm start: the node id and good nodes kept in --dht-state find the seeder again when the only bootstrap
      // node named is dead (a bound UDP socket that never answers)
      const saved = JSON.parse(await Deno.readTextFile(state));
      assert(Array.isArray(saved.nodes) && saved.nodes.length > 0, `${state} keeps no nodes: ${JSON.stringify(saved)}`);
      dead = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
      const deadPort = (dead.addr as Deno.NetAddr).port;
      const again = await runBtfetch(
        ["get", `magnet:?xt=urn:btih:${t.infoHash}`, "-o", `${tmp}/again`, ...getFlags(state, [deadPort])],
        { timeoutMs: 55_000 },
      );
      assertFetchOk(again, { size: payload.size, pieceLength: 65536 });
      await assertSameTree(payload.path, `${tmp}/again/${payload.name}`);
      assertDhtPeer(again, seeder);
      assertEquals(JSON.parse(await Deno.readTextFile(state)).id, saved.id, "the node id changed between runs");
    } finally {
      dead?.close();
      await dht?.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop dht: a libtorrent client given only the magnet finds btfetch seed through a libtorrent DHT",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-dht-seed-" });
    let dht: LoopbackDht | undefined;
    let leecher: LoopbackDht | undefined;
    let seeder: Awaited<ReturnType<typeof startBtfetchSeeder>> | undefined;
    try {
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "dht-seed.bin", 3 * MiB + 777, 82);
      const t = await createWithBtfetch({ path: payload.path, out: `${tmp}/t.torrent` });
      dht = await startLibtorrentDht({ nodes: 8 });
      seeder = await startBtfetchSeeder({
        torrent: t.path,
        dir: payload.dir,
        extraArgs: dhtFlags(`${tmp}/dht-seed.json`, [dht.nodes[0]]),
        lifetimeMs: 90_000,
      });
      // btfetch's announce_peer (with a token a libtorrent node issued) was stored by a libtorrent node
      await dht.proc.waitForLine(announceLine(t.infoHash, seeder.port), 20_000);

      const magnet = `magnet:?xt=urn:btih:${t.infoHash}`;
      leecher = await startLibtorrentDht({ leech: { magnet, dir: `${tmp}/lt` }, addNodes: dht.nodes });
      await leecher.proc.waitForLine(/^DONE$/, 40_000);
      seeder.assertAlive();
      await assertSameTree(payload.path, `${tmp}/lt/${payload.name}`);
      // libtorrent connected to btfetch's listening port: it learnt it from the DHT (an incoming connection from
      // btfetch would come from another port)
      assert(
        leecher.proc.lines.includes(`PEER 127.0.0.1:${seeder.port}`),
        `libtorrent never connected to btfetch seed at ${seeder.port}\n${leecher.proc.tail()}`,
      );
      const r = await seeder.stop();
      seeder = undefined;
      assertSeedOk(r, { size: payload.size, minUploaded: payload.size });
    } finally {
      await leecher?.close();
      if (seeder) await seeder.stop();
      await dht?.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("interop dht: btfetch get finds btfetch seed through npm bittorrent-dht nodes", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "btfetch-dht-npm-" });
  let dht: LoopbackDht | undefined;
  let seeder: Awaited<ReturnType<typeof startBtfetchSeeder>> | undefined;
  try {
    const payload = await writeSingleFilePayload(`${tmp}/seed`, "dht-npm.bin", 4 * MiB + 4321, 83);
    const t = await createWithBtfetch({ path: payload.path, out: `${tmp}/t.torrent` });
    dht = await startNpmDht(8);
    seeder = await startBtfetchSeeder({
      torrent: t.path,
      dir: payload.dir,
      extraArgs: dhtFlags(`${tmp}/dht-seed.json`, [dht.nodes[0]]),
      lifetimeMs: 90_000,
    });
    // an npm node checked btfetch's token and stored its announce; another npm node's lookup finds it
    await dht.proc.waitForLine(announceLine(t.infoHash, seeder.port), 20_000);
    await dht.proc.tell(`LOOKUP 5 ${t.infoHash}`);
    await dht.proc.waitForLine(new RegExp(`^PEER ${t.infoHash} 127\\.0\\.0\\.1:${seeder.port}$`), 10_000);

    const started = performance.now();
    const r = await runBtfetch(
      [
        "get",
        `magnet:?xt=urn:btih:${t.infoHash}`,
        "-o",
        `${tmp}/out`,
        ...getFlags(`${tmp}/dht-get.json`, [
          dht.nodes[7],
        ]),
      ],
      { timeoutMs: 55_000 },
    );
    const wallMs = performance.now() - started;
    assertFetchOk(r, { size: payload.size, pieceLength: t.pieceLength });
    await assertSameTree(payload.path, `${tmp}/out/${payload.name}`);
    assertDhtPeer(r, seeder.port);
    logTiming("dht interop, 8 npm bittorrent-dht nodes (btfetch seed -> btfetch get)", wallMs, r, payload.size);
    const s = await seeder.stop();
    seeder = undefined;
    assertSeedOk(s, { size: payload.size, minUploaded: payload.size });
  } finally {
    if (seeder) await seeder.stop();
    await dht?.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("interop dht: npm bittorrent-dht nodes announce to, and look up through, a btfetch node alone", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "btfetch-dht-npm-node-" });
  let dead: Deno.DatagramConn | undefined;
  let seeder: Awaited<ReturnType<typeof startBtfetchSeeder>> | undefined;
  let announcer: LoopbackDht | undefined;
  let looker: LoopbackDht | undefined;
  try {
    // btfetch's node (a seed of some torrent: its DHT runs while it seeds) knows nobody: its bootstrap node is dead
    const payload = await writeSingleFilePayload(`${tmp}/seed`, "node.bin", 100_000, 84);
    const t = await createWithBtfetch({ path: payload.path, out: `${tmp}/t.torrent` });
    dead = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    seeder = await startBtfetchSeeder({
      torrent: t.path,
      dir: payload.dir,
      extraArgs: dhtFlags(`${tmp}/dht-node.json`, [(dead.addr as Deno.NetAddr).port]),
      lifetimeMs: 60_000,
    });
    // an npm node that knows only btfetch's node (its UDP port is its TCP port) announces a peer for another hash:
    // get_peers gives it btfetch's token, announce_peer with it must be accepted (an error reply fails the announce)
    const hash = Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => b.toString(16).padStart(2, "0"))
      .join("");
    const fakePeer = 51413;
    announcer = await startNpmDht(1, [seeder.port]);
    await announcer.proc.tell(`ANNOUNCE 0 ${hash} ${fakePeer}`);
    const announced = await announcer.proc.waitForLine(
      new RegExp(`^(ANNOUNCED ${hash} ${fakePeer}|ERROR .*)$`),
      10_000,
    );
    assert(announced[1].startsWith("ANNOUNCED"), `the npm node's announce through btfetch failed: ${announced[1]}`);
    // another npm node that knows only btfetch's node looks the hash up: the peer can only come from btfetch's store
    looker = await startNpmDht(1, [seeder.port]);
    await looker.proc.tell(`LOOKUP 0 ${hash}`);
    await looker.proc.waitForLine(new RegExp(`^PEER ${hash} 127\\.0\\.0\\.1:${fakePeer}$`), 10_000);
    seeder.assertAlive();
  } finally {
    await looker?.close();
    await announcer?.close();
    if (seeder) await seeder.stop();
    dead?.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name: "interop dht: a magnet nobody has ends with exit 4 after --metadata-timeout, saying what the DHT tried",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-dht-none-" });
    let dht: LoopbackDht | undefined;
    try {
      dht = await startLibtorrentDht({ nodes: 4 });
      const hash = Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => b.toString(16).padStart(2, "0"))
        .join("");
      const started = performance.now();
      const r = await runBtfetch(
        [
          "get",
          `magnet:?xt=urn:btih:${hash}`,
          "-o",
          `${tmp}/out`,
          ...getFlags(`${tmp}/dht-get.json`, [dht.nodes[0]], "5s"),
        ],
        { timeoutMs: 40_000 },
      );
      const wallMs = performance.now() - started;
      assertEquals(r.code, 4, describeRun(r));
      assert(wallMs >= 5000 && wallMs < 20_000, `ended after ${wallMs} ms, not about 5 s\n${describeRun(r)}`);
      const errors = eventsOf(r, "error");
      assertEquals(errors.length, 1, describeRun(r));
      const msg = String(errors[0].message);
      assert(r.stderr.includes(msg), `stderr lacks the error line ${JSON.stringify(msg)}\n${describeRun(r)}`);
      // e.g. "Could not fetch the metadata in 5 s: no peers found; DHT: 1 lookup sent 4 queries (4 answered, 4 good
      // nodes known), 0 peers found; no trackers"
      // found; no trackers"
      const m = msg.match(
        /DHT: (\d+) lookups? sent (\d+) quer(?:y|ies) \((\d+) answered, \d+ good nodes? known\), (\d+) peers? found/,
      );
      assert(m !== null, `the error line does not say what the DHT tried: ${msg}`);
      const [lookups, asked, answered, peers] = m.slice(1).map(Number);
      assert(lookups >= 1, msg);
      // the DHT's 4 nodes were all asked, and answered
      assert(asked >= 4 && answered >= 4, `btfetch did not walk the 4-node DHT: ${msg}`);
      assertEquals(peers, 0, msg);
      assert(/no peers found/.test(msg) && /no trackers/.test(msg), `the error line omits peers or trackers: ${msg}`);
      console.log(`after ${(wallMs / 1000).toFixed(1)} s, exit 4: ${msg}`);
      assert(!(await exists(`${tmp}/out`)) || (await Array.fromAsync(Deno.readDir(`${tmp}/out`))).length === 0);
    } finally {
      await dht?.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop dht: when the only DHT node never answers, the metadata time-out line says it was asked",
  // Regression: the line once counted a lookup's queries only when the lookup ended (~10 s with silent nodes), so it
  // said "0 nodes asked" about an unreachable bootstrap node; it now counts the node's queries as they go out.
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-dht-silent-" });
    const silent = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      const hash = Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => b.toString(16).padStart(2, "0"))
        .join("");
      const r = await runBtfetch(
        [
          "get",
          `magnet:?xt=urn:btih:${hash}`,
          "-o",
          `${tmp}/out`,
          ...getFlags(`${tmp}/dht-get.json`, [(silent.addr as Deno.NetAddr).port], "5s"),
        ],
        { timeoutMs: 40_000 },
      );
      assertEquals(r.code, 4, describeRun(r));
      const msg = String(eventsOf(r, "error")[0]?.message);
      const m = msg.match(/DHT: (\d+) lookups? sent (\d+) quer(?:y|ies) \((\d+) answered/);
      assert(m !== null, `the error line does not say what the DHT tried: ${msg}`);
      const [asked, answered] = [Number(m[2]), Number(m[3])];
      assert(asked >= 1 && answered === 0, `the silent bootstrap node was asked, and never answered: ${msg}`);
    } finally {
      silent.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
