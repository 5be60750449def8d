/**
 * Rate limits hold: a `btfetch seed --max-upload-rate 2M` serving one leecher, and a `btfetch get
 * --max-download-rate 2M` fetching from an unlimited seeder, each move about 2 MiB/s for 10+ s. This is about a limit
 * holding (with tolerance), not about speed: the rate is measured from the leecher's own events, after a 2 s
 * start-up, to completion.
 * @module
 */
import { assertFetchOk, assertSameTree, type BtEvent, type BtfetchHandle, describeRun } from "./_btfetch.ts";
import { MiB, writeSingleFilePayload } from "./_peers.ts";
import { killAll, makeBtTorrent, startBtGet, startBtSeed, stopWithin } from "./_swarm.ts";

const LIMIT = 2 * MiB;
const SIZE = 24 * MiB;
/** Measurement starts at the first progress event at or after this many ms of the leecher's session. */
const SKIP_MS = 2_000;

/** Average download rate from the first progress event past `SKIP_MS` to the `complete` event. */
function measuredRate(events: readonly BtEvent[]): { rate: number; from: BtEvent; to: BtEvent } {
  const from = events.find((e) => e.event === "progress" && (e.t ?? 0) >= SKIP_MS);
  const to = events.find((e) => e.event === "complete");
  const done = events.find((e) => e.event === "done");
  if (!from || !to || !done) throw new Error("missing progress, complete or done event");
  const bytes = (done.downloaded as number) - (from.downloaded as number);
  const ms = (to.t as number) - (from.t as number);
  if (ms < 5_000) throw new Error(`transfer after start-up took only ${ms} ms: the limit did not hold`);
  return { rate: (bytes * 1000) / ms, from, to };
}

function assertNearLimit(what: string, events: readonly BtEvent[]): void {
  const { rate, from, to } = measuredRate(events);
  const lo = LIMIT * 0.85;
  const hi = LIMIT * 1.10;
  if (rate < lo || rate > hi) {
    throw new Error(
      `${what}: measured ${(rate / MiB).toFixed(3)} MiB/s, expected ${(lo / MiB).toFixed(2)}..${
        (hi / MiB).toFixed(2)
      } MiB/s (from ${JSON.stringify(from)} to ${JSON.stringify(to)})`,
    );
  }
}

async function rateRun(prefix: string, seedExtra: string[], getExtra: string[], what: string): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix });
  const children: BtfetchHandle[] = [];
  try {
    const payload = await writeSingleFilePayload(`${tmp}/seed`, "rate.bin", SIZE, 401);
    const t = await makeBtTorrent(payload.path, `${tmp}/rate.torrent`, { pieceLength: 256 * 1024 });
    const seeder = await startBtSeed(t.path, payload.dir, seedExtra);
    children.push(seeder.handle);
    const leecher = startBtGet(t.path, `${tmp}/out`, ["--peer", `127.0.0.1:${seeder.port}`, ...getExtra]);
    children.push(leecher.handle);
    const r = await leecher.handle.wait();
    assertFetchOk(r, { size: payload.size, pieceLength: t.pieceLength });
    await assertSameTree(payload.path, `${tmp}/out/${payload.name}`);
    try {
      assertNearLimit(what, r.events);
    } catch (e) {
      throw new Error(`${e instanceof Error ? e.message : e}\n${describeRun(r)}`);
    }
    await stopWithin(seeder.handle);
  } finally {
    await killAll(children);
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("rate: seed --max-upload-rate 2M holds one leecher near 2 MiB/s", async () => {
  await rateRun("btfetch-rate-up-", ["--max-upload-rate", "2M"], [], "upload limit");
});

Deno.test("rate: get --max-download-rate 2M holds near 2 MiB/s from an unlimited seeder", async () => {
  await rateRun("btfetch-rate-down-", [], ["--max-download-rate", "2M"], "download limit");
});
