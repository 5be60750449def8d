import { assertEquals, assertThrows } from "../_assert.ts";
import {
  type AnnounceParams,
  announceUrl,
  DEFAULT_ANNOUNCE_INTERVAL_S,
  parseAnnounceReply,
  percentEncodeBytes,
  scrapeUrl,
  TrackerError,
  trackerText,
} from "../../lib/tracker/announce.ts";
import { type BencodeInput, encodeBencode } from "../../lib/bencode.ts";
import {
  MAX_ANNOUNCE_INTERVAL_S,
  MAX_PEERS_PER_ANNOUNCE,
  MAX_TRACKER_TEXT_CHARS,
  MIN_ANNOUNCE_INTERVAL_S,
} from "../../lib/limits.ts";

const enc = (o: { readonly [k: string]: BencodeInput }): Uint8Array => encodeBencode(o);
const bin = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** An info-hash holding every awkward byte: space, +, %, NUL, 0xff, &, =, / and some unreserved characters. */
const HASH = new Uint8Array([
  0x20,
  0x2b,
  0x25,
  0x00,
  0xff,
  0x26,
  0x3d,
  0x2f,
  0x41,
  0x7e,
  0x2e,
  0x2d,
  0x5f,
  0x7a,
  0x30,
  0x80,
  0x3f,
  0x23,
  0x0a,
  0x7f,
]);
const HASH_ENC = "%20%2B%25%00%FF%26%3D%2FA~.-_z0%80%3F%23%0A%7F";

const params: AnnounceParams = {
  infoHash: HASH,
  peerId: bin("-BF0001-abcdefghijkl"),
  port: 6881,
  uploaded: 10,
  downloaded: 20,
  left: 30,
  key: 0xdead,
};

Deno.test("percentEncodeBytes() escapes every byte but the unreserved ones", async (t) => {
  const rows: [number[], string][] = [
    [[0x20], "%20"],
    [[0x2b], "%2B"],
    [[0x25], "%25"],
    [[0x00], "%00"],
    [[0xff], "%FF"],
    [[0x41, 0x7a, 0x30, 0x2e, 0x2d, 0x5f, 0x7e], "Az0.-_~"],
    [[0x2f, 0x3f, 0x26, 0x3d, 0x23], "%2F%3F%26%3D%23"],
    [[], ""],
  ];
  for (const [bytes, want] of rows) {
    await t.step(want || "(empty)", () => assertEquals(percentEncodeBytes(new Uint8Array(bytes)), want));
  }
});

Deno.test("announceUrl() builds the query with exact byte escapes", async (t) => {
  const rows: { name: string; base: string; p: Partial<AnnounceParams>; want: string }[] = [
    {
      name: "plain base",
      base: "http://t.example:6969/announce",
      p: {},
      want: `http://t.example:6969/announce?info_hash=${HASH_ENC}&peer_id=-BF0001-abcdefghijkl&port=6881` +
        "&uploaded=10&downloaded=20&left=30&key=0000DEAD&compact=1&no_peer_id=1",
    },
    {
      name: "existing query is kept",
      base: "https://t.example/a?passkey=x%20y",
      p: { event: "started" },
      want: `https://t.example/a?passkey=x%20y&info_hash=${HASH_ENC}&peer_id=-BF0001-abcdefghijkl&port=6881` +
        "&uploaded=10&downloaded=20&left=30&key=0000DEAD&compact=1&no_peer_id=1&event=started",
    },
    {
      name: "query ending in & and a fragment",
      base: "http://t/a?x=1&#frag",
      p: { numwant: 50, trackerId: "id 1", compact: false, event: "stopped", key: 0xffffffff },
      want: `http://t/a?x=1&info_hash=${HASH_ENC}&peer_id=-BF0001-abcdefghijkl&port=6881` +
        "&uploaded=10&downloaded=20&left=30&key=FFFFFFFF&no_peer_id=1&numwant=50&trackerid=id%201&event=stopped",
    },
    {
      name: "bare ? in base",
      base: "http://t/a?",
      p: { key: 0 },
      want: `http://t/a?info_hash=${HASH_ENC}&peer_id=-BF0001-abcdefghijkl&port=6881` +
        "&uploaded=10&downloaded=20&left=30&key=00000000&compact=1&no_peer_id=1",
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const u = announceUrl(r.base, { ...params, ...r.p });
      assertEquals(u, r.want);
      assertEquals(u.includes("+"), false);
    });
  }
});

Deno.test("announceUrl() refuses a bad info-hash, peer id, key or count", () => {
  assertThrows(() => announceUrl("http://t/a", { ...params, infoHash: new Uint8Array(19) }), RangeError);
  assertThrows(() => announceUrl("http://t/a", { ...params, peerId: new Uint8Array(21) }), RangeError);
  assertThrows(() => announceUrl("http://t/a", { ...params, key: 2 ** 32 }), RangeError);
  assertThrows(() => announceUrl("http://t/a", { ...params, left: -1 }), RangeError);
  assertThrows(() => announceUrl("http://t/a", { ...params, port: 70000 }), RangeError);
});

Deno.test("scrapeUrl() follows the BEP 48 convention", async (t) => {
  const rows: [string, string | null][] = [
    ["http://t.example/announce", "http://t.example/scrape"],
    ["http://t.example/x/announce.php?passkey=1", "http://t.example/x/scrape.php?passkey=1"],
    ["http://t.example/announce?a=/announce", "http://t.example/scrape?a=/announce"],
    ["http://t.example/a", null],
    ["http://t.example/x/announce/y", null],
  ];
  for (const [a, want] of rows) await t.step(a, () => assertEquals(scrapeUrl(a), want));
});

const compact4 = bin("\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50");
const compact6 = new Uint8Array([...new Uint8Array(15), 1, 0x1a, 0xe1]);

Deno.test("parseAnnounceReply() reads the reply forms trackers send", async (t) => {
  const rows: { name: string; body: Uint8Array; want: unknown }[] = [
    {
      name: "compact peers",
      body: enc({ interval: 900n, peers: compact4 }),
      want: { interval: 900, peers: [{ host: "127.0.0.1", port: 6881 }, { host: "10.0.0.2", port: 80 }] },
    },
    {
      name: "dictionary peers, peer id ignored, junk entries skipped",
      body: enc({
        interval: 60n,
        peers: [
          { ip: bin("192.168.1.5"), "peer id": bin("x".repeat(20)), port: 51413n },
          { ip: "::1", port: 6881n },
          { ip: "tracker.example", port: 1n },
          { ip: "1.2.3.4", port: 0n },
          { ip: "bad host!", port: 5n },
          { ip: new Uint8Array([10, 0, 0, 9]), port: 7n },
          { port: 5n },
          5n,
        ],
      }),
      want: {
        interval: 60,
        peers: [{ host: "192.168.1.5", port: 51413 }, { host: "::1", port: 6881 }, {
          host: "tracker.example",
          port: 1,
        }, { host: "10.0.0.9", port: 7 }],
      },
    },
    {
      name: "peers6 after peers",
      body: enc({ interval: 1800n, peers: compact4.subarray(0, 6), peers6: compact6 }),
      want: { interval: 1800, peers: [{ host: "127.0.0.1", port: 6881 }, { host: "::1", port: 6881 }] },
    },
    {
      name: "everything optional, unsorted keys, trailing newline",
      body: bin(
        "d8:intervali120e12:min intervali60e10:tracker id3:abc15:warning message4:slow8:completei5e10:incompletei7e" +
          "5:peers0:e\n",
      ),
      want: {
        interval: 120,
        minInterval: 60,
        trackerId: "abc",
        warning: "slow",
        complete: 5,
        incomplete: 7,
        peers: [],
      },
    },
    {
      name: "missing interval and peers get defaults",
      body: bin("de"),
      want: { interval: DEFAULT_ANNOUNCE_INTERVAL_S, peers: [] },
    },
    {
      name: "intervals are clamped",
      body: enc({ interval: 1n, "min interval": 10n ** 12n }),
      want: { interval: MIN_ANNOUNCE_INTERVAL_S, minInterval: MAX_ANNOUNCE_INTERVAL_S, peers: [] },
    },
    {
      name: "compact entries with port 0 are dropped",
      body: enc({ interval: 1800n, peers: new Uint8Array([1, 2, 3, 4, 0, 0]) }),
      want: { interval: 1800, peers: [] },
    },
  ];
  for (const r of rows) await t.step(r.name, () => assertEquals(parseAnnounceReply(r.body), r.want));
});

Deno.test("parseAnnounceReply() bounds the peer count by MAX_PEERS_PER_ANNOUNCE", () => {
  const n = MAX_PEERS_PER_ANNOUNCE + 10;
  const peers = new Uint8Array(6 * n);
  for (let i = 0; i < n; i++) peers.set([10, (i >> 8) & 0xff, i & 0xff, 1, 0, 1], 6 * i);
  const r = parseAnnounceReply(enc({ peers: peers, peers6: compact6 }));
  assertEquals(r.peers.length, MAX_PEERS_PER_ANNOUNCE);
});

Deno.test("parseAnnounceReply() turns a failure reason into TrackerError failure", () => {
  const e = assertThrows(
    () => parseAnnounceReply(bin("d14:failure reason17:torrent not founde"), "http://t/a"),
    TrackerError,
  );
  assertEquals([e.code, e.url, e.message.includes("torrent not found")], ["failure", "http://t/a", true]);
  const long = assertThrows(
    () => parseAnnounceReply(enc({ "failure reason": "x".repeat(5000) })),
    TrackerError,
  );
  assertEquals(long.message.length < MAX_TRACKER_TEXT_CHARS + 100, true);
});

Deno.test("trackerText() bounds tracker text and makes it safe to print", async (t) => {
  const utf8 = (x: string): Uint8Array => new TextEncoder().encode(x);
  const rows: { name: string; bytes: Uint8Array; want: string }[] = [
    {
      name: "plain UTF-8 is kept",
      bytes: utf8("Torrent not registered: \u00e9t\u00e9 \u{1f600}"),
      want: "Torrent not registered: \u00e9t\u00e9 \u{1f600}",
    },
    { name: "invalid UTF-8 is replaced", bytes: new Uint8Array([0x61, 0xff, 0x62]), want: "a\ufffdb" },
    {
      name: "a text at the limit is kept whole",
      bytes: utf8("x".repeat(MAX_TRACKER_TEXT_CHARS)),
      want: "x".repeat(MAX_TRACKER_TEXT_CHARS),
    },
    {
      name: "a longer text is cut at the limit",
      bytes: utf8("x".repeat(MAX_TRACKER_TEXT_CHARS + 1)),
      want: "x".repeat(MAX_TRACKER_TEXT_CHARS) + "\u2026",
    },
    {
      name: "a megabyte of 4-byte characters is cut too",
      bytes: utf8("\u{1f600}".repeat(1 << 18)),
      want: "\u{1f600}".repeat(MAX_TRACKER_TEXT_CHARS / 2) + "\u2026",
    },
    // a tracker must not drive the terminal: ESC sequences, bell, backspace, C1 controls, bidi overrides
    {
      name: "terminal escapes are neutralised",
      bytes: utf8("\x1b[2J\x1b]52;c;aGk=\x07ok\b\x9b1m"),
      want: "\ufffd[2J\ufffd]52;c;aGk=\ufffdok\ufffd\ufffd1m",
    },
    { name: "line breaks and tabs become spaces", bytes: utf8("a\r\nb\tc"), want: "a  b c" },
    {
      name: "bidi overrides are neutralised",
      bytes: utf8("abc\u202egpj.exe\u2066x\u2069"),
      want: "abc\ufffdgpj.exe\ufffdx\ufffd",
    },
  ];
  for (const r of rows) await t.step(r.name, () => assertEquals(trackerText(r.bytes), r.want));
});

Deno.test("parseAnnounceReply() passes tracker text through trackerText(), but echoes the tracker id as sent", () => {
  const e = assertThrows(() => parseAnnounceReply(enc({ "failure reason": "no\x1b[31m" })), TrackerError);
  assertEquals(e.message.includes("\x1b"), false);
  const r = parseAnnounceReply(enc({ "warning message": "slow\x1b[2J", "tracker id": "\x01id" }));
  assertEquals([r.warning, r.trackerId], ["slow\ufffd[2J", "\x01id"]);
  const long = parseAnnounceReply(enc({ "tracker id": "i".repeat(MAX_TRACKER_TEXT_CHARS + 5) }));
  assertEquals(long.trackerId, "i".repeat(MAX_TRACKER_TEXT_CHARS));
});

Deno.test("parseAnnounceReply() refuses malformed replies with TrackerError malformed", async (t) => {
  const rows: [string, Uint8Array][] = [
    ["empty body", new Uint8Array()],
    ["HTML", bin("<html><body>502 Bad Gateway</body></html>")],
    ["truncated", bin("d8:intervali900e5:peers12:\x7f\x00\x00\x01")],
    ["not a dictionary", bin("li1ee")],
    ["peers not a multiple of 6", enc({ peers: new Uint8Array(7) })],
    ["peers6 not a multiple of 18", enc({ peers6: new Uint8Array(6) })],
    ["interval is a string", enc({ interval: "1800" })],
    ["negative interval", enc({ interval: -5n })],
    ["peers is an integer", enc({ peers: 5n })],
    ["warning is a list", enc({ "warning message": [] })],
  ];
  for (const [name, body] of rows) {
    await t.step(name, () => {
      const e = assertThrows(() => parseAnnounceReply(body, "http://t/a"), TrackerError);
      assertEquals([e.code, e.url], ["malformed", "http://t/a"]);
    });
  }
});
