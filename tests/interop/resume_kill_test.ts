/**
 * Kill and resume: btfetch fetching from a rate-limited python3-libtorrent seeder is killed (SIGKILL mid-way, SIGKILL
 * right after `metadata`, SIGTERM mid-way), then run again with the same command. The rerun must finish with the
 * same bytes and fetch only what was missing (what the first run had verified is not fetched again).
 * @module
 */
import {
  assertSameTree,
  type BtEvent,
  type BtfetchResult,
  describeRun,
  eventsOf,
  runBtfetch,
  spawnBtfetch,
} from "./_btfetch.ts";
import {
  freePort,
  ignoreUnless,
  type MadeTorrent,
  makeTorrentWithLibtorrent,
  MiB,
  type Payload,
  type RealPeer,
  requirePrograms,
  startLibtorrentSeeder,
  writeSingleFilePayload,
} from "./_peers.ts";
import { exitWithin } from "../cli/_cli.ts";

const PIECE = 32 * 1024;
const SIZE = 8 * MiB;
/** Slack for the rerun's downloaded bytes: pieces in flight, duplicates, end game. */
const MARGIN = 8 * PIECE;

interface Setup {
  tmp: string;
  payload: Payload;
  torrent: MadeTorrent;
  seeder: RealPeer;
  out: string;
}

async function withSeeder(prefix: string, seed: number, fn: (s: Setup) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix });
  try {
    const payload = await writeSingleFilePayload(`${tmp}/seed`, "resume.bin", SIZE, seed);
    const torrent = await makeTorrentWithLibtorrent({
      path: payload.path,
      out: `${tmp}/t.torrent`,
      pieceLength: PIECE,
    });
    const seeder = await startLibtorrentSeeder({ torrent: torrent.path, dataDir: payload.dir, uploadRate: 2 * MiB });
    try {
      await fn({ tmp, payload, torrent, seeder, out: `${tmp}/out` });
    } finally {
      await seeder.close();
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

function args(s: Setup): string[] {
  return [
    "get",
    s.torrent.path,
    "-o",
    s.out,
    "--json",
    "--no-dht",
    "--port",
    String(freePort()),
    "--peer",
    `127.0.0.1:${s.seeder.port}`,
    "--timeout",
    "60s",
    "--stall-timeout",
    "30s",
  ];
}

function fail(msg: string, r: BtfetchResult): never {
  throw new Error(`${msg}\n${describeRun(r)}`);
}

/** The last `progress` event so far, if any. */
function lastProgress(events: BtEvent[]): BtEvent | undefined {
  return events.findLast((e) => e.event === "progress");
}

/**
 * Starts btfetch, waits for `when`, sends `signal`, and returns the first run's result with the verified byte count
 * it last reported before the signal.
 */
async function firstRun(
  s: Setup,
  when: (ev: BtEvent) => boolean,
  signal: Deno.Signal,
): Promise<{ r: BtfetchResult; verifiedAtKill: number; late: boolean }> {
  const h = spawnBtfetch(args(s), { timeoutMs: 90_000 });
  let verifiedAtKill = 0;
  try {
    await h.waitForEvent(when, 45_000);
    verifiedAtKill = (lastProgress(h.events)?.verified as number | undefined) ?? 0;
  } finally {
    h.kill(signal);
  }
  const { result, killed } = await exitWithin(h, 15_000);
  return { r: result, verifiedAtKill, late: killed };
}

/** Runs the same command again and checks it completes with the same bytes, fetching only what was missing. */
async function rerun(s: Setup, verifiedBefore: number): Promise<{ r: BtfetchResult; resume: BtEvent }> {
  const r = await runBtfetch(args(s), { timeoutMs: 90_000 });
  if (r.code !== 0) fail(`rerun exited ${r.code}, expected 0`, r);
  if (eventsOf(r, "error").length > 0) fail("rerun reported an error", r);
  const resume = eventsOf(r, "resume")[0];
  if (!resume) fail("rerun has no resume event", r);
  if ((resume.verified as number) < verifiedBefore) {
    fail(`rerun found ${resume.verified} bytes verified on disk, the first run had reported ${verifiedBefore}`, r);
  }
  const done = eventsOf(r, "done");
  if (done.length !== 1) fail(`expected one done event, got ${done.length}`, r);
  const d = done[0];
  if (d.complete !== true) fail("done.complete is not true", r);
  if (d.verified !== SIZE) fail(`done.verified ${d.verified} != ${SIZE}`, r);
  const budget = SIZE - verifiedBefore + MARGIN;
  if ((d.downloaded as number) > budget) {
    fail(
      `rerun downloaded ${d.downloaded} bytes; at most ${budget} (payload ${SIZE} - ${verifiedBefore} verified ` +
        `before + ${MARGIN}) expected`,
      r,
    );
  }
  const need = SIZE - (resume.verified as number);
  if ((d.downloaded as number) < need) fail(`rerun downloaded ${d.downloaded} bytes, less than the ${need} missing`, r);
  await assertSameTree(s.payload.path, `${s.out}/${s.payload.name}`);
  return { r, resume };
}

Deno.test({
  name: "interop: SIGKILL half-way, then the same command resumes: same bytes, only the missing part fetched",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    await withSeeder("btfetch-kill-mid-", 301, async (s) => {
      const first = await firstRun(
        s,
        (e) => e.event === "progress" && (e.verified as number) >= SIZE / 2 && (e.verified as number) < SIZE,
        "SIGKILL",
      );
      if (first.late) fail("btfetch outlived SIGKILL", first.r);
      if (first.r.signal !== "SIGKILL") fail("the first run was not ended by SIGKILL", first.r);
      if (first.verifiedAtKill < SIZE / 2) fail(`verified at kill ${first.verifiedAtKill}`, first.r);
      if (eventsOf(first.r, "done").length > 0) fail("the first run finished before it was killed", first.r);
      await rerun(s, first.verifiedAtKill);
    });
  },
});

Deno.test({
  name: "interop: SIGKILL right after metadata, then the same command completes with the same bytes",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    await withSeeder("btfetch-kill-early-", 302, async (s) => {
      const first = await firstRun(s, (e) => e.event === "metadata", "SIGKILL");
      if (first.late) fail("btfetch outlived SIGKILL", first.r);
      if (first.r.signal !== "SIGKILL") fail("the first run was not ended by SIGKILL", first.r);
      await rerun(s, 0);
    });
  },
});

Deno.test({
  name: "interop: SIGTERM half-way exits 130 with a resume record; the rerun trusts it and completes",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    await withSeeder("btfetch-term-mid-", 303, async (s) => {
      const first = await firstRun(
        s,
        (e) => e.event === "progress" && (e.verified as number) >= SIZE / 2 && (e.verified as number) < SIZE,
        "SIGTERM",
      );
      if (first.late) fail("btfetch did not exit within 15 s of SIGTERM", first.r);
      if (first.r.code !== 130) fail(`SIGTERM: exit ${first.r.code}, expected 130`, first.r);
      const errors = eventsOf(first.r, "error");
      if (errors.length !== 1 || errors[0].code !== 130) {
        fail("SIGTERM: expected one error event with code 130", first.r);
      }
      const rec = JSON.parse(await Deno.readTextFile(`${s.out}/.btfetch/${s.torrent.infoHash}/resume.json`));
      if (rec.infoHash !== s.torrent.infoHash) fail(`resume record names ${rec.infoHash}`, first.r);
      const { r, resume } = await rerun(s, first.verifiedAtKill);
      if (resume.source !== "resume") fail(`rerun did not use the resume record (source ${resume.source})`, r);
    });
  },
});
