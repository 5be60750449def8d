import { assertEquals } from "../_assert.ts";
import { Announcer, type AnnouncerOptions } from "../../lib/tracker/announcer.ts";
import type { TrackerError } from "../../lib/tracker/announce.ts";
import { formatAddress, type PeerAddress } from "../../lib/address.ts";
import { encodeBencode } from "../../lib/bencode.ts";

/** A loopback HTTP tracker: records each announce's `event`, can hang on some events until closed. */
function tracker(opts: { hangOn?: (event: string) => boolean } = {}) {
  const events: string[] = [];
  let release!: () => void;
  const hang = new Promise<void>((res) => release = res);
  const reply = new Uint8Array(encodeBencode({ interval: 1800n, peers: new Uint8Array([10, 0, 0, 1, 0, 80]) }));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const event = new URL(req.url).searchParams.get("event") ?? "";
    events.push(event);
    if (opts.hangOn?.(event)) await hang;
    return new Response(reply);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/announce`,
    events,
    async close() {
      release();
      await server.shutdown();
    },
  };
}

function deadUrl(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return `http://127.0.0.1:${port}/announce`;
}

function announcer(tiers: string[][], extra: Partial<AnnouncerOptions> = {}) {
  const peers: string[] = [];
  const errors: string[] = [];
  const warnings: string[] = [];
  let gotPeers!: () => void;
  const firstPeers = new Promise<void>((res) => gotPeers = res);
  const an = new Announcer({
    tiers,
    infoHash: new Uint8Array(20).fill(1),
    peerId: new Uint8Array(20).fill(2),
    port: 6881,
    stats: () => ({ uploaded: 0, downloaded: 0, left: 100 }),
    onPeers: (ps: readonly PeerAddress[], from: string) => {
      peers.push(...ps.map((p) => `${formatAddress(p)} from ${from}`));
      gotPeers();
    },
    onError: (url: string, e: TrackerError) => errors.push(`${url} ${e.code}`),
    onWarning: (url: string, m: string) => warnings.push(`${url}: ${m}`),
    random: () => 0.999, // keeps every tier in the given order
    timeoutMs: 2000,
    ...extra,
  });
  return { an, peers, errors, warnings, firstPeers };
}

async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => timer = setTimeout(() => rej(new Error(`not done within ${ms} ms`)), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("Announcer falls through a dead tracker to a working one, then stops it", async () => {
  const tr = tracker();
  const dead = deadUrl();
  const x = announcer([["ftp://old.example/announce"], [dead, tr.url]]);
  try {
    assertEquals(x.warnings.length, 1);
    x.an.start();
    await within(5000, x.firstPeers);
    assertEquals(x.peers, [`10.0.0.1:80 from ${tr.url}`]);
    assertEquals(x.errors, [`${dead} network`]);
    assertEquals([x.an.status.attempts, x.an.status.successes, x.an.status.lastError?.code], [2, 1, "network"]);
    await within(5000, x.an.stop());
    assertEquals(tr.events, ["started", "stopped"]);
    await x.an.stop(); // again: same result, nothing sent
    assertEquals(tr.events, ["started", "stopped"]);
  } finally {
    await tr.close();
  }
});

Deno.test("Announcer sends completed once after started", async () => {
  const tr = tracker();
  const x = announcer([[tr.url]]);
  try {
    x.an.start();
    await within(5000, x.firstPeers);
    x.an.completed();
    x.an.completed();
    for (let i = 0; i < 100 && tr.events.length < 2; i++) await new Promise((res) => setTimeout(res, 10));
    assertEquals(tr.events, ["started", "completed"]);
    await x.an.stop();
    assertEquals(tr.events, ["started", "completed", "stopped"]);
  } finally {
    await tr.close();
  }
});

Deno.test("Announcer.stop() is bounded when the tracker does not answer stopped", async () => {
  const tr = tracker({ hangOn: (e) => e === "stopped" });
  const x = announcer([[tr.url]]);
  try {
    x.an.start();
    await within(5000, x.firstPeers);
    const t0 = performance.now();
    await within(3000, x.an.stop(300));
    assertEquals(performance.now() - t0 < 2000, true);
    assertEquals(tr.events, ["started", "stopped"]);
  } finally {
    await tr.close();
  }
});

Deno.test("Announcer.stop() cancels an announce in flight and sends stopped to it", async () => {
  const tr = tracker({ hangOn: (e) => e === "started" });
  const x = announcer([[tr.url]]);
  try {
    x.an.start();
    for (let i = 0; i < 100 && tr.events.length < 1; i++) await new Promise((res) => setTimeout(res, 10));
    await within(3000, x.an.stop(500));
    assertEquals(tr.events, ["started", "stopped"]);
    assertEquals(x.errors, []); // a cancelled announce is not reported
  } finally {
    await tr.close();
  }
});

Deno.test("Announcer with no usable tracker does nothing and stops at once", async () => {
  const x = announcer([["wss://t.example/announce"]]);
  x.an.start();
  x.an.needPeers();
  await within(1000, x.an.stop());
  assertEquals([x.an.status.attempts, x.warnings.length], [0, 1]);
});
