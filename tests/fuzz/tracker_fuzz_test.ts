import { assert } from "../_assert.ts";
import { fuzzIterations, fuzzSeed, type Rand, randomBytes, seeded } from "../_gen.ts";
import { parseAnnounceReply, TrackerError } from "../../lib/tracker/announce.ts";
import { decodeUdpResponse } from "../../lib/tracker/udp_codec.ts";
import { encodeBencode } from "../../lib/bencode.ts";
import { encodeCompactPeers } from "../../lib/address.ts";
import {
  MAX_ANNOUNCE_INTERVAL_S,
  MAX_PEERS_PER_ANNOUNCE,
  MAX_TRACKER_TEXT_CHARS,
  MIN_ANNOUNCE_INTERVAL_S,
} from "../../lib/limits.ts";

const peers4 = encodeCompactPeers([{ host: "127.0.0.1", port: 6881 }, { host: "10.0.0.1", port: 80 }], 4);
const peers6 = encodeCompactPeers([{ host: "::1", port: 6881 }], 6);

const httpSeeds: Uint8Array[] = [
  encodeBencode({ interval: 1800n, "min interval": 60n, peers: peers4, peers6, complete: 3n, incomplete: 1n }),
  encodeBencode({
    interval: 900n,
    "tracker id": "xyz",
    "warning message": "hi",
    peers: [{ ip: "1.2.3.4", "peer id": "a".repeat(20), port: 1n }, { ip: "::2", port: 2n }],
  }),
  encodeBencode({ "failure reason": "nope" }),
  new TextEncoder().encode("d8:intervali5e5:peers0:e"),
];

function udpSeed(action: number, rest: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + rest.length);
  new DataView(out.buffer).setUint32(0, action);
  new DataView(out.buffer).setUint32(4, 77);
  out.set(rest, 8);
  return out;
}
const udpSeeds: Uint8Array[] = [
  udpSeed(0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])),
  udpSeed(1, new Uint8Array([0, 0, 7, 8, 0, 0, 0, 1, 0, 0, 0, 2, ...peers4])),
  udpSeed(1, new Uint8Array([0, 0, 7, 8, 0, 0, 0, 1, 0, 0, 0, 2, ...peers6])),
  udpSeed(3, new TextEncoder().encode("error text")),
];

/** One random mutation: truncate, flip bits, overwrite, insert, inflate a digit run, or duplicate a slice. */
function mutate(r: Rand, src: Uint8Array): Uint8Array {
  let b = src.slice();
  const rounds = 1 + r.int(4);
  for (let k = 0; k < rounds; k++) {
    const at = r.int(b.length + 1);
    switch (r.int(6)) {
      case 0:
        b = b.slice(0, at);
        break;
      case 1:
        if (b.length) b[r.int(b.length)] ^= 1 << r.int(8);
        break;
      case 2:
        if (b.length) b[r.int(b.length)] = r.int(256);
        break;
      case 3:
        b = new Uint8Array([...b.subarray(0, at), ...randomBytes(r, 1 + r.int(8)), ...b.subarray(at)]);
        break;
      case 4: {
        // make a length or integer huge: find a digit and insert more digits after it
        const i = b.findIndex((x, j) => j >= at && x >= 0x30 && x <= 0x39);
        if (i >= 0) {
          b = new Uint8Array([...b.subarray(0, i), ...new TextEncoder().encode("99999999"), ...b.subarray(i)]);
        }
        break;
      }
      case 5: {
        const end = Math.min(b.length, at + r.int(16));
        b = new Uint8Array([...b.subarray(0, end), ...b.subarray(at, end), ...b.subarray(end)]);
        break;
      }
    }
  }
  return b;
}

/** Tracker text we pass on: at most the limit (plus an ellipsis), and nothing that drives a terminal. */
function printable(s: string | undefined): boolean {
  return s === undefined || (s.length <= MAX_TRACKER_TEXT_CHARS + 1 && !/[\p{Cc}\u202a-\u202e\u2066-\u2069]/u.test(s));
}

function inRange(seconds: number | undefined): boolean {
  return seconds === undefined || (seconds >= MIN_ANNOUNCE_INTERVAL_S && seconds <= MAX_ANNOUNCE_INTERVAL_S);
}

function onlyTrackerErrors(what: string, seed: number, i: number, input: Uint8Array, fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof TrackerError && !/[\p{Cc}\u202a-\u202e\u2066-\u2069]/u.test(e.message)) return;
    throw new Error(`${what}: seed ${seed} #${i}: ${e} on input ${Array.from(input).join(",")}`, { cause: e });
  }
}

Deno.test("parseAnnounceReply() lets only TrackerError out of mutated replies", () => {
  const seed = fuzzSeed(1);
  const r = seeded(seed);
  for (let i = 0; i < fuzzIterations(5000); i++) {
    const input = mutate(r, httpSeeds[r.int(httpSeeds.length)]);
    onlyTrackerErrors("parseAnnounceReply", seed, i, input, () => {
      const reply = parseAnnounceReply(input);
      assert(reply.peers.length <= MAX_PEERS_PER_ANNOUNCE);
      assert(Number.isFinite(reply.interval) && reply.interval > 0);
      assert(inRange(reply.interval) && inRange(reply.minInterval) && printable(reply.warning));
      assert((reply.trackerId?.length ?? 0) <= MAX_TRACKER_TEXT_CHARS);
    });
  }
});

Deno.test("decodeUdpResponse() lets only TrackerError out of mutated packets", () => {
  const seed = fuzzSeed(2);
  const r = seeded(seed);
  for (let i = 0; i < fuzzIterations(5000); i++) {
    const input = mutate(r, udpSeeds[r.int(udpSeeds.length)]);
    const expect = r.int(2) === 0 ? "connect" : "announce";
    const family = r.int(2) === 0 ? 4 : 6;
    onlyTrackerErrors("decodeUdpResponse", seed, i, input, () => {
      const r = decodeUdpResponse(input, { expect, family });
      if (r.type === "announce") assert(r.reply.peers.length <= MAX_PEERS_PER_ANNOUNCE && inRange(r.reply.interval));
      if (r.type === "error") assert(printable(r.message));
    });
  }
});

Deno.test("parseAnnounceReply() and decodeUdpResponse() let only TrackerError out of random bytes", () => {
  const seed = fuzzSeed(3);
  const r = seeded(seed);
  for (let i = 0; i < fuzzIterations(3000); i++) {
    const input = randomBytes(r, r.int(64));
    onlyTrackerErrors("parseAnnounceReply", seed, i, input, () => parseAnnounceReply(input));
    onlyTrackerErrors(
      "decodeUdpResponse",
      seed,
      i,
      input,
      () => decodeUdpResponse(input, { expect: "announce", family: 4 }),
    );
  }
});
