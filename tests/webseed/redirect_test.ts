import { assertEquals, assertThrows } from "../_assert.ts";
import {
  followRedirect,
  hostScope,
  mayConnect,
  type RedirectChain,
  type RedirectVerdict,
  startChain,
} from "../../lib/webseed/redirect.ts";
import { WebSeedError } from "../../lib/webseed/error.ts";
import { WEBSEED_MAX_REDIRECTS, WEBSEED_MAX_URL_CHARS } from "../../lib/limits.ts";

/** Follows `locations` one after another from `start`; the verdict of the last. */
function walk(start: string, ...locations: string[]): RedirectVerdict {
  let chain: RedirectChain = startChain(start);
  let v: RedirectVerdict | null = null;
  for (const loc of locations) {
    v = followRedirect(chain, loc);
    if (v.kind !== "follow") return v;
    chain = v.chain;
  }
  if (v === null) throw new Error("no location");
  return v;
}

/** Short form: the URL followed to, or the refusal reason. */
function brief(v: RedirectVerdict): string {
  return v.kind === "follow" ? v.chain.url : `refused: ${v.reason}`;
}

const resolving: { name: string; from: string; location: string; want: string }[] = [
  { name: "absolute", from: "http://a.example/x/f", location: "http://b.example/g", want: "http://b.example/g" },
  { name: "absolute path", from: "http://a.example/x/f", location: "/y/g", want: "http://a.example/y/g" },
  { name: "relative path", from: "http://a.example/x/f", location: "g", want: "http://a.example/x/g" },
  { name: "dot segments", from: "http://a.example/x/y/f", location: "../g", want: "http://a.example/x/g" },
  { name: "scheme-relative", from: "https://a.example/f", location: "//b.example/g", want: "https://b.example/g" },
  { name: "query kept", from: "http://a.example/f", location: "/g?sig=1&e=2", want: "http://a.example/g?sig=1&e=2" },
  { name: "fragment dropped", from: "http://a.example/f", location: "/g#frag", want: "http://a.example/g" },
  {
    name: "upgrade to https",
    from: "http://a.example/f",
    location: "https://a.example/f",
    want: "https://a.example/f",
  },
  { name: "spaces encoded", from: "http://a.example/f", location: "/a b", want: "http://a.example/a%20b" },
  {
    name: "ftp refused",
    from: "http://a.example/f",
    location: "ftp://a.example/f",
    want: "refused: unsupported-scheme",
  },
  {
    name: "file refused",
    from: "http://a.example/f",
    location: "file:///etc/passwd",
    want: "refused: unsupported-scheme",
  },
  {
    name: "javascript refused",
    from: "http://a.example/f",
    location: "javascript:x",
    want: "refused: unsupported-scheme",
  },
  { name: "data refused", from: "http://a.example/f", location: "data:,x", want: "refused: unsupported-scheme" },
  { name: "unparsable refused", from: "http://a.example/f", location: "http://[::1", want: "refused: bad-location" },
  { name: "bad port refused", from: "http://a.example/f", location: "http://b:99999/", want: "refused: bad-location" },
  {
    name: "over the length limit refused",
    from: "http://a.example/f",
    location: `/${"x".repeat(WEBSEED_MAX_URL_CHARS)}`,
    want: "refused: too-long",
  },
  {
    name: "over the length limit once resolved refused",
    from: `http://a.example/${"d".repeat(WEBSEED_MAX_URL_CHARS - 100)}/f`,
    location: "x".repeat(200),
    want: "refused: too-long",
  },
];

Deno.test("followRedirect() resolves Location against the current URL; only http(s)", async (t) => {
  for (const c of resolving) await t.step(c.name, () => assertEquals(brief(walk(c.from, c.location)), c.want));
});

Deno.test("followRedirect() follows at most WEBSEED_MAX_REDIRECTS hops", async (t) => {
  const hops = Array.from({ length: WEBSEED_MAX_REDIRECTS + 1 }, (_, i) => `/hop${i}`);
  await t.step("the last allowed hop", () => {
    const v = walk("http://a.example/f", ...hops.slice(0, WEBSEED_MAX_REDIRECTS));
    assertEquals(v.kind === "follow" && v.chain.hops, WEBSEED_MAX_REDIRECTS);
  });
  await t.step("one more", () => assertEquals(brief(walk("http://a.example/f", ...hops)), "refused: too-many"));
  await t.step("a loop ends", () => {
    assertEquals(brief(walk("http://a.example/f", ...hops.map(() => "/f"))), "refused: too-many");
  });
});

const credentials: { name: string; start: string; locations: string[]; url: string; auth: boolean }[] = [
  {
    name: "same origin keeps userinfo and Authorization",
    start: "http://u:p@a.example/f",
    locations: ["/g"],
    url: "http://u:p@a.example/g",
    auth: true,
  },
  {
    name: "another host gets neither",
    start: "http://u:p@a.example/f",
    locations: ["http://b.example/g"],
    url: "http://b.example/g",
    auth: false,
  },
  {
    name: "another port is another origin",
    start: "http://u:p@a.example/f",
    locations: ["http://a.example:8080/g"],
    url: "http://a.example:8080/g",
    auth: false,
  },
  {
    name: "https to http on the same host is another origin",
    start: "https://u:p@a.example/f",
    locations: ["http://a.example/f"],
    url: "http://a.example/f",
    auth: false,
  },
  {
    name: "userinfo in a Location to another origin is dropped",
    start: "http://a.example/f",
    locations: ["http://x:y@b.example/g"],
    url: "http://b.example/g",
    auth: false,
  },
  {
    name: "back to the first origin: Authorization again, userinfo as the Location has it",
    start: "http://u:p@a.example/f",
    locations: ["http://b.example/g", "http://a.example/h"],
    url: "http://a.example/h",
    auth: true,
  },
  {
    name: "dropped userinfo is not restored by a relative hop",
    start: "http://u:p@a.example/f",
    locations: ["http://b.example/g", "/h"],
    url: "http://b.example/h",
    auth: false,
  },
];

Deno.test("followRedirect() sends credentials to the first origin only", async (t) => {
  for (const c of credentials) {
    await t.step(c.name, () => {
      const v = walk(c.start, ...c.locations);
      assertEquals(v.kind === "follow" ? [v.chain.url, v.sendAuthorization] : v, [c.url, c.auth]);
    });
  }
});

const toLocal = [
  "http://127.0.0.1/x",
  "http://127.1/x",
  "http://0x7f000001/x",
  "http://2130706433/x",
  "http://127.255.255.254/x",
  "http://[::1]/x",
  "http://[::ffff:127.0.0.1]/x",
  "http://[0:0:0:0:0:0:0:1]/x",
  "http://localhost/x",
  "http://LOCALHOST./x",
  "http://api.localhost/x",
  "http://10.1.2.3/x",
  "http://172.16.0.1/x",
  "http://172.31.255.255/x",
  "http://192.168.1.1/x",
  "http://169.254.169.254/latest/meta-data/",
  "http://[fc00::1]/x",
  "http://[fd12:3456::1]/x",
  "http://[fe80::1]/x",
  "http://[::ffff:192.168.0.1]/x",
];
const unusable = ["http://0.0.0.0/x", "http://0/x", "http://[::]/x", "http://224.0.0.1/x", "http://255.255.255.255/x"];
const publicTargets = [
  "http://8.8.8.8/x",
  "http://172.32.0.1/x",
  "http://172.15.255.255/x",
  "http://192.169.0.1/x",
  "http://[2001:db8::1]/x",
  "http://mirror.example/x",
  "http://localhost.example/x",
];

Deno.test("followRedirect() never lets a public host send us to a local address", async (t) => {
  for (const loc of toLocal) {
    await t.step(`${loc} refused`, () => assertEquals(brief(walk("http://pub.example/f", loc)), "refused: to-local"));
  }
  for (const loc of unusable) {
    await t.step(
      `${loc} refused`,
      () => assertEquals(brief(walk("http://pub.example/f", loc)), "refused: bad-address"),
    );
  }
  for (const loc of publicTargets) {
    await t.step(`${loc} followed`, () => assertEquals(walk("http://pub.example/f", loc).kind, "follow"));
  }
});

const scoped: { name: string; start: string; locations: string[]; want: "follow" | "to-local" | "bad-address" }[] = [
  {
    name: "loopback to loopback",
    start: "http://127.0.0.1:8000/f",
    locations: ["http://127.0.0.1:8001/g"],
    want: "follow",
  },
  {
    name: "localhost to 127.0.0.1",
    start: "http://localhost:8000/f",
    locations: ["http://127.0.0.1/g"],
    want: "follow",
  },
  { name: "loopback to private", start: "http://127.0.0.1/f", locations: ["http://10.0.0.1/g"], want: "follow" },
  { name: "loopback to public", start: "http://[::1]/f", locations: ["http://pub.example/g"], want: "follow" },
  { name: "private to private", start: "http://192.168.1.2/f", locations: ["http://192.168.1.3/g"], want: "follow" },
  { name: "private to loopback", start: "http://192.168.1.2/f", locations: ["http://127.0.0.1/g"], want: "to-local" },
  { name: "private to public", start: "http://10.0.0.2/f", locations: ["http://pub.example/g"], want: "follow" },
  {
    name: "loopback, public, then loopback again",
    start: "http://127.0.0.1/f",
    locations: ["http://pub.example/g", "http://127.0.0.1/h"],
    want: "to-local",
  },
  {
    name: "private, public, then private again",
    start: "http://10.0.0.2/f",
    locations: ["http://pub.example/g", "http://10.0.0.3/h"],
    want: "to-local",
  },
  {
    name: "loopback, private, then loopback again",
    start: "http://127.0.0.1/f",
    locations: ["http://10.0.0.1/g", "http://127.0.0.1/h"],
    want: "to-local",
  },
  {
    name: "public via a relative hop stays public",
    start: "http://pub.example/f",
    locations: ["/g", "http://127.0.0.1/h"],
    want: "to-local",
  },
  {
    name: "a user's 0.0.0.0 may redirect to loopback",
    start: "http://0.0.0.0:9/f",
    locations: ["http://127.0.0.1/g"],
    want: "follow",
  },
  { name: "loopback to 0.0.0.0", start: "http://127.0.0.1/f", locations: ["http://0.0.0.0/g"], want: "bad-address" },
];

Deno.test("followRedirect() lets a chain move to more public addresses only", async (t) => {
  for (const c of scoped) {
    await t.step(c.name, () => {
      const v = walk(c.start, ...c.locations);
      assertEquals(v.kind === "follow" ? "follow" : v.reason, c.want);
    });
  }
});

Deno.test("startChain() refuses what is not a web seed URL", async (t) => {
  for (const [url, code] of [["ftp://h/f", "unsupported-scheme"], ["/f", "bad-url"]] as const) {
    await t.step(url, () => assertEquals(assertThrows(() => startChain(url), WebSeedError).code, code));
  }
});

Deno.test("mayConnect() checks the address connected to against the chain's trust", async (t) => {
  const first = startChain("http://mirror.example/f");
  const v = followRedirect(first, "http://cdn.example/g");
  if (v.kind !== "follow") throw new Error("not followed");
  const rows: [string, RedirectChain, string, boolean][] = [
    ["the user's own URL may be anywhere", first, "127.0.0.1", true],
    ["the user's own URL may even be 0.0.0.0", first, "0.0.0.0", true],
    ["after a public redirect: public", v.chain, "203.0.113.7", true],
    ["after a public redirect: loopback refused", v.chain, "127.0.0.1", false],
    ["after a public redirect: private refused", v.chain, "192.168.0.10", false],
    ["after a public redirect: IPv6 loopback refused", v.chain, "::1", false],
    ["after a public redirect: unusable refused", v.chain, "0.0.0.0", false],
  ];
  for (const [name, chain, address, want] of rows) {
    await t.step(name, () => assertEquals(mayConnect(chain, address), want));
  }
});

Deno.test("hostScope() classifies host names and IP literals", async (t) => {
  const rows: [string, string][] = [
    ["127.0.0.1", "loopback"],
    ["[::1]", "loopback"],
    ["::1", "loopback"],
    ["localhost", "loopback"],
    ["a.b.localhost.", "loopback"],
    ["10.0.0.1", "private"],
    ["[fe80::1]", "private"],
    ["1.1.1.1", "public"],
    ["example.org", "public"],
    ["0.0.0.0", "unusable"],
    ["[ff02::1]", "unusable"],
  ];
  for (const [host, want] of rows) await t.step(host, () => assertEquals(hostScope(host), want));
});

Deno.test("followRedirect() judges the redirecting host by the address its answer came from, when known", () => {
  // the user's own seed named `vm` (127.0.0.1 in /etc/hosts) redirecting within itself: a loopback server choosing
  const chain = startChain("http://vm:8080/t/a");
  const byAddress = followRedirect(chain, "/files/a", "127.0.0.1");
  assertEquals(byAddress.kind === "follow" && byAddress.chain.trust, "loopback");
  assertEquals(byAddress.kind === "follow" && mayConnect(byAddress.chain, "127.0.0.1"), true);
  // by its name alone it counts as public, and the same hop may not reach 127.0.0.1
  const byName = followRedirect(chain, "/files/a");
  assertEquals(byName.kind === "follow" && mayConnect(byName.chain, "127.0.0.1"), false);
  // a public server's answer keeps a LAN hop out, whatever its name
  const lan = followRedirect(startChain("http://nas.lan/a"), "http://192.168.1.5/a", "203.0.113.9");
  assertEquals(lan.kind, "refused");
  // a LAN server may send us within the LAN
  const within = followRedirect(startChain("http://nas.lan/a"), "http://192.168.1.6/a", "192.168.1.5");
  assertEquals(within.kind, "follow");
});
