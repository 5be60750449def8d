import { assertEquals, assertRejects } from "../_assert.ts";
import { guard, settled, VirtualClock } from "./_clock.ts";
import { httpAnnounce } from "../../lib/tracker/http.ts";
import { type AnnounceParams, TrackerError } from "../../lib/tracker/announce.ts";
import { type BencodeInput, encodeBencode } from "../../lib/bencode.ts";

const enc = (v: BencodeInput): Uint8Array<ArrayBuffer> => new Uint8Array(encodeBencode(v));
import { MAX_TRACKER_RESPONSE_BYTES } from "../../lib/limits.ts";

const params: AnnounceParams = {
  infoHash: new Uint8Array([0x20, 0x2b, 0x25, 0x00, 0xff, ...new Uint8Array(15).fill(0x61)]),
  peerId: new TextEncoder().encode("-BF0001-000000000000"),
  port: 6881,
  uploaded: 0,
  downloaded: 0,
  left: 1000,
  key: 1,
  event: "started",
};

/** A loopback HTTP tracker with canned replies by path; records each raw request target. */
function cannedTracker() {
  const seen: string[] = [];
  const arrived: (() => void)[] = [];
  let release!: () => void;
  const hang = new Promise<void>((res) => release = res);
  const ok = enc({ interval: 900n, peers: new Uint8Array([127, 0, 0, 1, 0x1a, 0xe1]) });
  const routes: Record<string, () => Response | Promise<Response>> = {
    "/ok": () => new Response(ok),
    "/moved": () => new Response(null, { status: 302, headers: { location: "/ok?via=moved" } }),
    "/loop": () => new Response(null, { status: 307, headers: { location: "/loop" } }),
    "/ftp": () => new Response(null, { status: 301, headers: { location: "ftp://127.0.0.1/announce" } }),
    "/failure": () => new Response(enc({ "failure reason": "unregistered torrent" })),
    "/e500": () => new Response("Internal Server Error", { status: 500 }),
    "/e400": () => new Response(enc({ "failure reason": "bad passkey" }), { status: 400 }),
    "/garbage": () => new Response("<html>oops</html>"),
    "/big": () => new Response(new Uint8Array(MAX_TRACKER_RESPONSE_BYTES + 1).fill(0x20)),
    "/endless": () => {
      const chunk = new Uint8Array(64 * 1024).fill(0x20);
      return new Response(new ReadableStream({ pull: (c) => c.enqueue(chunk) }));
    },
    "/limit": () => {
      const pad = MAX_TRACKER_RESPONSE_BYTES - ok.length;
      const body = new Uint8Array(MAX_TRACKER_RESPONSE_BYTES);
      body.set(ok);
      body.fill(0x0a, ok.length, ok.length + pad); // trailing newlines are tolerated
      return new Response(body);
    },
    "/slow": async () => {
      await hang;
      return new Response(ok);
    },
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const u = new URL(req.url);
    seen.push(req.url.slice(req.url.indexOf(u.pathname)));
    for (const f of arrived.splice(0)) f();
    return (routes[u.pathname] ?? (() => new Response("not found", { status: 404 })))();
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    seen,
    /** Resolves once the tracker has `n` requests in all. */
    received(n: number): Promise<void> {
      const p = new Promise<void>((res) => {
        const check = (): void => {
          if (seen.length >= n) res();
          else arrived.push(check);
        };
        check();
      });
      return guard(p, `request #${n}`);
    },
    async close() {
      release();
      await server.shutdown();
    },
  };
}

Deno.test("httpAnnounce() against a loopback tracker", async (t) => {
  const tr = cannedTracker();
  try {
    await t.step("sends info_hash byte-exact (%20, never +) and reads compact peers", async () => {
      const r = await httpAnnounce(`${tr.base}/ok?passkey=a%20b`, params, { timeoutMs: 5000 });
      assertEquals(r, { interval: 900, peers: [{ host: "127.0.0.1", port: 6881 }] });
      const q = tr.seen.at(-1) ?? "";
      assertEquals(
        q.startsWith("/ok?passkey=a%20b&info_hash=%20%2B%25%00%FFaaaaaaaaaaaaaaa&peer_id=-BF0001-"),
        true,
        q,
      );
      assertEquals(q.includes("+"), false);
      assertEquals(q.includes("&compact=1&"), true);
      assertEquals(q.endsWith("&event=started"), true);
    });
    await t.step("failure reason on 200: failure", async () => {
      const e = await assertRejects(
        () => httpAnnounce(`${tr.base}/failure`, params, { timeoutMs: 5000 }),
        TrackerError,
      );
      assertEquals([e.code, e.message.includes("unregistered torrent")], ["failure", true]);
    });
    await t.step("HTTP 500: http-status", async () => {
      const e = await assertRejects(() => httpAnnounce(`${tr.base}/e500`, params, { timeoutMs: 5000 }), TrackerError);
      assertEquals([e.code, e.message.includes("500")], ["http-status", true]);
    });
    await t.step("HTTP 400 with a failure reason: http-status, reason kept", async () => {
      const e = await assertRejects(() => httpAnnounce(`${tr.base}/e400`, params, { timeoutMs: 5000 }), TrackerError);
      assertEquals([e.code, e.message.includes("bad passkey")], ["http-status", true]);
    });
    await t.step("HTML body: malformed", async () => {
      const e = await assertRejects(
        () => httpAnnounce(`${tr.base}/garbage`, params, { timeoutMs: 5000 }),
        TrackerError,
      );
      assertEquals(e.code, "malformed");
    });
    await t.step("a body one byte over the limit: too-large", async () => {
      const e = await assertRejects(() => httpAnnounce(`${tr.base}/big`, params, { timeoutMs: 5000 }), TrackerError);
      assertEquals(e.code, "too-large");
    });
    await t.step("an endless chunked body: too-large, reading stops", async () => {
      const e = await assertRejects(
        () => httpAnnounce(`${tr.base}/endless`, params, { timeoutMs: 5000 }),
        TrackerError,
      );
      assertEquals(e.code, "too-large");
    });
    await t.step("a body exactly at the limit is read", async () => {
      const r = await httpAnnounce(`${tr.base}/limit`, params, { timeoutMs: 5000 });
      assertEquals(r.peers.length, 1);
    });
    await t.step("no answer in time: timeout", async () => {
      const clock = new VirtualClock();
      const call = httpAnnounce(`${tr.base}/slow`, params, { timeoutMs: 15_000, clock });
      await tr.received(tr.seen.length + 1);
      await clock.advanceTo(14_999);
      assertEquals(await settled(call), false);
      await clock.advanceTo(15_000); // a real 15 s wait would trip the guard
      const e = await assertRejects(() => guard(call), TrackerError);
      assertEquals(e.code, "timeout");
    });
    await t.step("caller's abort: network", async () => {
      const clock = new VirtualClock();
      const ctl = new AbortController();
      const call = httpAnnounce(`${tr.base}/slow`, params, { timeoutMs: 5000, signal: ctl.signal, clock });
      await tr.received(tr.seen.length + 1);
      ctl.abort(); // no time passes: the abort alone ends the call
      const e = await assertRejects(() => guard(call), TrackerError);
      assertEquals(e.code, "network");
    });
  } finally {
    await tr.close();
  }
});

Deno.test("httpAnnounce() reports a refused connection as network", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  const e = await assertRejects(
    () => httpAnnounce(`http://127.0.0.1:${port}/announce`, params, { timeoutMs: 5000 }),
    TrackerError,
  );
  assertEquals([e.code, e.url], ["network", `http://127.0.0.1:${port}/announce`]);
});

Deno.test("httpAnnounce() refuses other schemes and URLs fetch cannot use", async (t) => {
  for (const url of ["ftp://t/announce", "http://[zz/announce", "http://127.0.0.1:99999/announce"]) {
    await t.step(url, async () => {
      const e = await assertRejects(() => httpAnnounce(url, params, { timeoutMs: 100 }), TrackerError);
      assertEquals([e.code, e.url], ["unsupported-scheme", url]);
    });
  }
});

Deno.test("httpAnnounce() passes a bug of ours through unchanged, not as a TrackerError", async () => {
  // a 19-byte info-hash is the caller's mistake: announceUrl throws RangeError before anything is sent
  const e = await assertRejects(
    () => httpAnnounce("http://127.0.0.1:1/announce", { ...params, infoHash: new Uint8Array(19) }, { timeoutMs: 100 }),
    RangeError,
  );
  assertEquals(e instanceof TrackerError, false);
});

Deno.test("httpAnnounce() follows a loopback tracker's redirects within loopback, and stops a loop or another scheme", async (t) => {
  const tr = cannedTracker();
  try {
    await t.step("302 to another path: followed, the query kept by the Location", async () => {
      const r = await httpAnnounce(`${tr.base}/moved`, params, { timeoutMs: 5000 });
      assertEquals(r.peers, [{ host: "127.0.0.1", port: 6881 }]);
      assertEquals(tr.seen.at(-1)?.startsWith("/ok?via=moved"), true);
    });
    await t.step("a redirect loop ends after five hops", async () => {
      const before = tr.seen.length;
      const e = await assertRejects(() => httpAnnounce(`${tr.base}/loop`, params, { timeoutMs: 5000 }), TrackerError);
      assertEquals([e.code, /too many redirects/.test(e.message)], ["redirect", true]);
      assertEquals(tr.seen.length - before, 6);
    });
    await t.step("a redirect to ftp: is not followed", async () => {
      const e = await assertRejects(() => httpAnnounce(`${tr.base}/ftp`, params, { timeoutMs: 5000 }), TrackerError);
      assertEquals([e.code, /not http or https/.test(e.message)], ["redirect", true]);
    });
  } finally {
    await tr.close();
  }
});

Deno.test("httpAnnounce(): a public tracker cannot redirect announces to this host or the LAN", async (t) => {
  const ok = enc({ interval: 900n, peers: new Uint8Array([198, 51, 100, 7, 0x1a, 0xe1]) });
  /** A stand-in for fetch: what each URL answers, and every URL asked. */
  const web = (answers: Record<string, string>) => {
    const asked: string[] = [];
    const f = (input: Request | URL | string): Promise<Response> => {
      const at = input instanceof Request ? input.url : String(input);
      asked.push(at);
      const key = Object.keys(answers).find((k) => at.startsWith(k));
      if (key === undefined) return Promise.reject(new TypeError(`nothing at ${at}`));
      const to = answers[key];
      return Promise.resolve(
        to === "ok" ? new Response(ok) : new Response(null, { status: 302, headers: { location: to } }),
      );
    };
    return { asked, fetch: f as typeof fetch };
  };
  const names: Record<string, string[]> = {
    "cdn.example": ["203.0.113.5"],
    "rebind.example": ["203.0.113.6", "192.168.1.1"],
    "gone.example": [],
  };
  const resolve = (host: string) => Promise.resolve(names[host] ?? []);
  const announce = (w: ReturnType<typeof web>) =>
    httpAnnounce("http://tracker.example/announce", params, { timeoutMs: 5000, fetch: w.fetch, resolve });
  for (
    const [name, location, why] of [
      ["to 127.0.0.1", "http://127.0.0.1:8080/admin", /local or private address/],
      ["to localhost", "http://localhost/announce", /local or private address/],
      ["to the LAN", "http://192.168.1.1/setup", /local or private address/],
      ["to a name that resolves to the LAN as well", "http://rebind.example/a", /name resolves to a local/],
      ["to a name that does not resolve", "http://gone.example/a", /does not resolve here/],
      ["to 0.0.0.0", "http://0.0.0.0:80/", /reaches nothing/],
    ] as const
  ) {
    await t.step(`${name}: refused, nothing sent there`, async () => {
      const w = web({ "http://tracker.example/": location });
      const e = await assertRejects(() => announce(w), TrackerError);
      assertEquals(e.code, "redirect");
      assertEquals(why.test(e.message), true, e.message);
      assertEquals(w.asked.length, 1);
    });
  }
  await t.step("to a public mirror: followed", async () => {
    const w = web({ "http://tracker.example/": "http://cdn.example/announce?x=1", "http://cdn.example/": "ok" });
    const r = await announce(w);
    assertEquals(r.peers, [{ host: "198.51.100.7", port: 6881 }]);
    assertEquals(w.asked, [
      "http://tracker.example/announce?" + w.asked[0].split("?")[1],
      "http://cdn.example/announce?x=1",
    ]);
  });
});
