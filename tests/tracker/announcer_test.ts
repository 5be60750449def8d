import { assertEquals } from "../_assert.ts";
import { guard, settled, VirtualClock } from "./_clock.ts";
import { Announcer, type AnnouncerOptions, type AnnounceTransport } from "../../lib/tracker/announcer.ts";
import { type AnnounceReply, parseAnnounceReply, type TrackerError } from "../../lib/tracker/announce.ts";
import { ANNOUNCE_RETRY_BASE_MS, ANNOUNCE_RETRY_MAX_MS } from "../../lib/tracker/schedule.ts";
import { formatAddress, type PeerAddress } from "../../lib/address.ts";
import { encodeBencode } from "../../lib/bencode.ts";

const GOOD = new Uint8Array(encodeBencode({ interval: 1800n, peers: new Uint8Array([10, 0, 0, 1, 0, 80]) }));
const GARBAGE = new TextEncoder().encode("<html><body>502 Bad Gateway</body></html>");

/**
 * A loopback HTTP tracker: records each announce's `event`, answers `body`, can hang on some events until closed;
 * `received(n)` waits for the n-th announce.
 */
function tracker(opts: { hangOn?: (event: string) => boolean; body?: Uint8Array } = {}) {
  const events: string[] = [];
  const arrived: (() => void)[] = [];
  let release!: () => void;
  const hang = new Promise<void>((res) => release = res);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const event = new URL(req.url).searchParams.get("event") ?? "";
    events.push(event);
    for (const f of arrived.splice(0)) f();
    if (opts.hangOn?.(event)) await hang;
    return new Response(new Uint8Array(opts.body ?? GOOD));
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/announce`,
    events,
    received(n: number): Promise<void> {
      const p = new Promise<void>((res) => {
        const check = (): void => {
          if (events.length >= n) res();
          else arrived.push(check);
        };
        check();
      });
      return guard(p, `announce #${n}`);
    },
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

/** An Announcer on a virtual clock, recording what it reports; `bugs` collects what reaches `onBug`. */
function announcer(tiers: string[][], extra: Partial<AnnouncerOptions> = {}) {
  const peers: string[] = [];
  const errors: string[] = [];
  const warnings: string[] = [];
  const bugs: unknown[] = [];
  const clock = new VirtualClock();
  let gotPeers!: () => void;
  const firstPeers = new Promise<void>((res) => gotPeers = res);
  let gotError!: () => void;
  const firstError = new Promise<void>((res) => gotError = res);
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
    onError: (url: string, e: TrackerError) => {
      errors.push(`${url} ${e.code}`);
      gotError();
    },
    onWarning: (url: string, m: string) => warnings.push(`${url}: ${m}`),
    onBug: (e: unknown) => bugs.push(e),
    random: () => 0.999, // keeps every tier in the given order
    timeoutMs: 15_000,
    clock,
    ...extra,
  });
  return {
    an,
    clock,
    peers,
    errors,
    warnings,
    bugs,
    firstPeers: () => guard(firstPeers, "peers"),
    firstError: () => guard(firstError, "a tracker error"),
  };
}

/** A transport that records each call's URL and event and answers with `answer` (a reply, or a throw). */
function scripted(answer: (url: string, n: number) => AnnounceReply) {
  const calls: string[] = [];
  const transport: AnnounceTransport = (url, p) => {
    calls.push(`${url} ${p.event ?? ""}`.trim());
    return Promise.resolve().then(() => answer(url, calls.length - 1));
  };
  return { calls, transport };
}

Deno.test("Announcer falls through a dead tracker to a working one, then stops it", async () => {
  const tr = tracker();
  const dead = deadUrl();
  const x = announcer([["ftp://old.example/announce"], [dead, tr.url]]);
  try {
    assertEquals(x.warnings.length, 1);
    x.an.start();
    await x.firstPeers();
    assertEquals(x.peers, [`10.0.0.1:80 from ${tr.url}`]);
    assertEquals(x.errors, [`${dead} network`]);
    assertEquals([x.an.status.attempts, x.an.status.successes, x.an.status.lastError?.code], [2, 1, "network"]);
    assertEquals(x.clock.pending, [1_800_000]); // the next announce, after the tracker's interval
    await guard(x.an.stop());
    assertEquals(tr.events, ["started", "stopped"]);
    await x.an.stop(); // again: same result, nothing sent
    assertEquals(tr.events, ["started", "stopped"]);
    assertEquals([x.clock.now(), x.bugs], [0, []]); // all of it without time passing
  } finally {
    await tr.close();
  }
});

Deno.test("Announcer sends completed once after started", async () => {
  const tr = tracker();
  const x = announcer([[tr.url]]);
  try {
    x.an.start();
    await x.firstPeers();
    x.an.completed();
    x.an.completed();
    await tr.received(2);
    assertEquals(tr.events, ["started", "completed"]);
    await guard(x.an.stop());
    assertEquals(tr.events, ["started", "completed", "stopped"]);
  } finally {
    await tr.close();
  }
});

Deno.test("Announcer re-announces when the interval is over", async () => {
  const tr = tracker();
  const x = announcer([[tr.url]]);
  try {
    x.an.start();
    await x.firstPeers();
    await x.clock.advanceTo(1_800_000 - 1);
    assertEquals(tr.events, ["started"]);
    await x.clock.advanceTo(1_800_000);
    await tr.received(2);
    assertEquals(tr.events, ["started", ""]); // a regular announce carries no event
    await guard(x.an.stop());
  } finally {
    await tr.close();
  }
});

Deno.test("Announcer.stop() is bounded when the tracker does not answer stopped", async () => {
  const tr = tracker({ hangOn: (e) => e === "stopped" });
  const x = announcer([[tr.url]]);
  try {
    x.an.start();
    await x.firstPeers();
    const stopping = x.an.stop(); // bounded by 3 s by default: a real wait that long would trip the guard
    await tr.received(2);
    await x.clock.advance(2999);
    assertEquals(await settled(stopping), false);
    await x.clock.advance(1);
    await guard(stopping, "stop() after 3 s");
    assertEquals(tr.events, ["started", "stopped"]);
    assertEquals(x.bugs, []);
  } finally {
    await tr.close();
  }
});

Deno.test("Announcer.stop() cancels an announce in flight and sends stopped to it", async () => {
  const tr = tracker({ hangOn: (e) => e === "started" });
  const x = announcer([[tr.url]]);
  try {
    x.an.start();
    await tr.received(1);
    await guard(x.an.stop(500)); // without time passing: the cancel, not a time-out, ends the first announce
    assertEquals(tr.events, ["started", "stopped"]);
    assertEquals(x.errors, []); // a cancelled announce is not reported
    assertEquals([x.clock.now(), x.bugs], [0, []]);
  } finally {
    await tr.close();
  }
});

Deno.test("Announcer with no usable tracker does nothing and stops at once", async () => {
  const x = announcer([["wss://t.example/announce"]]);
  x.an.start();
  x.an.needPeers();
  await guard(x.an.stop());
  assertEquals([x.an.status.attempts, x.warnings.length], [0, 1]);
});

Deno.test("Announcer reports an unreadable reply as a tracker error and retries on schedule", async (t) => {
  await t.step("from a transport that returns garbage", async () => {
    const tr = scripted((url, n) => parseAnnounceReply(n === 0 ? GARBAGE : GOOD, url));
    const x = announcer([["http://t.example/announce"]], { transport: tr.transport });
    x.an.start();
    await x.clock.advance(0);
    assertEquals([x.errors, x.bugs, x.an.status.lastError?.code], [
      ["http://t.example/announce malformed"],
      [],
      "malformed",
    ]);
    assertEquals(x.clock.pending, [ANNOUNCE_RETRY_BASE_MS]);
    await x.clock.advanceTo(ANNOUNCE_RETRY_BASE_MS - 1);
    assertEquals(tr.calls.length, 1);
    await x.clock.advanceTo(ANNOUNCE_RETRY_BASE_MS);
    assertEquals(tr.calls, ["http://t.example/announce started", "http://t.example/announce started"]);
    assertEquals([x.peers, x.an.status.successes], [["10.0.0.1:80 from http://t.example/announce"], 1]);
    await guard(x.an.stop());
    assertEquals(tr.calls.at(-1), "http://t.example/announce stopped");
    assertEquals(x.bugs, []);
  });
  await t.step("over HTTP from a loopback tracker", async () => {
    const tr = tracker({ body: GARBAGE });
    const x = announcer([[tr.url]]);
    try {
      x.an.start();
      await tr.received(1);
      await x.firstError();
      assertEquals([x.errors, x.bugs], [[`${tr.url} malformed`], []]);
      await x.clock.advanceTo(ANNOUNCE_RETRY_BASE_MS);
      await tr.received(2);
      assertEquals(tr.events, ["started", "started"]);
      await guard(x.an.stop());
    } finally {
      await tr.close();
    }
  });
});

Deno.test("Announcer reports a bug to onBug, not as a tracker error, and stops announcing", async (t) => {
  const rows: { name: string; transport: AnnounceTransport }[] = [
    {
      name: "a transport that rejects with a TypeError",
      transport: () => Promise.reject(new TypeError("Cannot read properties of undefined (reading 'length')")),
    },
    {
      name: "a transport that throws a TypeError before returning a promise",
      transport: () => {
        throw new TypeError("Cannot read properties of undefined (reading 'length')");
      },
    },
  ];
  for (const r of rows) {
    await t.step(r.name, async () => {
      let calls = 0;
      const x = announcer([["http://a.example/announce", "http://b.example/announce"]], {
        transport: (url, p, o) => (calls++, r.transport(url, p, o)),
      });
      x.an.start();
      await x.clock.advance(0);
      assertEquals(x.bugs.length, 1);
      assertEquals([x.bugs[0] instanceof TypeError, x.errors, x.an.status.lastError], [true, [], undefined]);
      await x.clock.advance(2 * ANNOUNCE_RETRY_MAX_MS);
      assertEquals([calls, x.clock.pending], [1, []]); // no other tracker tried, no retry scheduled
      await guard(x.an.stop());
      assertEquals(x.errors, []);
    });
  }
  await t.step("a callback of the announcer's owner that throws", async () => {
    const tr = scripted((url) => parseAnnounceReply(GOOD, url));
    const boom = new TypeError("x is not a function");
    const x = announcer([["http://a.example/announce"]], {
      transport: tr.transport,
      onPeers: () => {
        throw boom;
      },
    });
    x.an.start();
    await x.clock.advance(0);
    assertEquals([x.bugs, x.errors], [[boom], []]);
    await guard(x.an.stop());
  });
  await t.step("a transport's bug while sending stopped", async () => {
    const boom = new RangeError("Invalid array length");
    const tr = scripted((url, n) => {
      if (n > 0) throw boom;
      return parseAnnounceReply(GOOD, url);
    });
    const x = announcer([["http://a.example/announce"]], { transport: tr.transport });
    x.an.start();
    await x.clock.advance(0);
    await guard(x.an.stop());
    assertEquals(tr.calls, ["http://a.example/announce started", "http://a.example/announce stopped"]);
    assertEquals([x.bugs, x.errors], [[boom], []]);
  });
});
