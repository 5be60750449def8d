/**
 * Mutation fuzz of parseMagnet: valid links damaged as text (truncated, characters and magnet tokens spliced in or
 * deleted, digit runs inflated, slices repeated up to the length limit, case flipped). Only MagnetError may escape;
 * what parses must keep every bound and survive formatMagnet, and no input may take long. Seeded by FUZZ_SEED, sized
 * by FUZZ_ITERATIONS (the default runs in about a second).
 */
import { assert, assertEquals } from "../_assert.ts";
import { fuzzIterations, fuzzSeed, type Rand, seeded } from "../_gen.ts";
import { formatMagnet, type Magnet, MagnetError, magnetLeftOut, parseMagnet } from "../../lib/magnet.ts";
import {
  MAX_FILES,
  MAX_MAGNET_LENGTH,
  MAX_MAGNET_PEERS,
  MAX_MAGNET_TRACKERS,
  MAX_MAGNET_WEB_SEEDS,
} from "../../lib/limits.ts";

const seed = fuzzSeed();
const HEX = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

/**
 * The slowest parse allowed, in ms. Far above what any input under MAX_MAGNET_LENGTH needs (a few ms), far below
 * what a quadratic path costs: 5,000 `so=` parameters used to take about 17 minutes.
 */
const SLOW_MS = 2000;

const corpus: string[] = [
  `magnet:?xt=urn:btih:${HEX}`,
  `magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&dn=My+File%20%C3%9C&tr=udp%3A%2F%2Ft%3A1&tr.1=http://b/a`,
  `magnet:?xt=urn:btih:${HEX}&so=0,2,4-6&so=10-20&x.pe=127.0.0.1:6881&x.pe=%5B%3A%3A1%5D%3A51413`,
  `magnet:?xt=urn:btmh:1220${"ab".repeat(32)}&xt=urn:btih:${HEX}&ws=http%3A%2F%2Fw%2Ff&ws=http://w/g#frag`,
  `MAGNET:?XT=URN:BTIH:${HEX.toUpperCase()}&xt.1=urn:btih:${HEX}&kt=a+b&&x&so=0-${MAX_FILES - 1}`,
];

/** Text that means something to the parser, for splicing in. */
const TOKENS = [
  "&",
  "=",
  "%",
  "%2",
  "%FF",
  "%E0%A4%A",
  "%C3%9C",
  "+",
  "#",
  ",",
  "-",
  "?",
  ":",
  "[",
  "]",
  "so=",
  "so=0-999999",
  "tr=",
  "tr.7=",
  "ws=",
  "x.pe=",
  "x.pe=[::1]:1",
  "dn=",
  "xt=",
  "xt.2=",
  "urn:btih:",
  "urn:btmh:",
  HEX,
  "0",
  "9",
  "999999",
  "1000000",
  "\u00fc",
  "\u202e",
  "\ud800",
  "\udc00",
  "\u0000",
];

/** One to four text mutations of a magnet link. */
function mutate(r: Rand, src: string): string {
  let s = src;
  for (let rounds = 1 + r.int(4); rounds > 0; rounds--) {
    const at = r.int(s.length + 1);
    switch (r.int(8)) {
      case 0: // truncate
        s = s.slice(0, at);
        break;
      case 1: // splice in a token
        s = s.slice(0, at) + TOKENS[r.int(TOKENS.length)] + s.slice(at);
        break;
      case 2: // splice in random characters, mostly ASCII
        s = s.slice(0, at) +
          Array.from(
            { length: 1 + r.int(6) },
            () => String.fromCharCode(r.int(4) ? 0x20 + r.int(0x5f) : r.int(0x10000)),
          )
            .join("") +
          s.slice(at);
        break;
      case 3: // delete
        s = s.slice(0, at) + s.slice(at + 1 + r.int(8));
        break;
      case 4: { // inflate or shrink a digit run
        const runs = [...s.matchAll(/\d+/g)];
        if (runs.length === 0) break;
        const m = runs[r.int(runs.length)];
        const n = Number(m[0]);
        const next = String([n + 1, Math.max(0, n - 1), n * 10, MAX_FILES - 1, MAX_FILES, 2 ** 53][r.int(6)]);
        s = s.slice(0, m.index) + next + s.slice((m.index ?? 0) + m[0].length);
        break;
      }
      case 5: { // repeat a slice (a parameter, with luck) many times, up to about the length limit
        const end = Math.min(s.length, at + 1 + r.int(24));
        const piece = s.slice(at, end);
        if (piece === "") break;
        const times = [2, 10, 100, 1000, Math.ceil(MAX_MAGNET_LENGTH / piece.length)][r.int(5)];
        s = s.slice(0, end) + piece.repeat(times) + s.slice(end);
        break;
      }
      case 6: // many parameters of one kind
        s += ["&so=1-2", "&tr=http://t/", "&ws=w", "&x.pe=1.2.3.4:5", "&a=b", "&so=0"][r.int(6)].repeat(
          1 + r.int(3000),
        );
        break;
      default: // flip the case of one character
        if (s.length > 0) {
          const k = r.int(s.length);
          const c = s[k];
          s = s.slice(0, k) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + s.slice(k + 1);
        }
    }
  }
  return s;
}

/** Checks every bound and invariant of a parsed link, and that parseMagnet reads back what formatMagnet writes. */
function checkParsed(m: Magnet, where: string): void {
  assertEquals(m.infoHash.length, 20, `${where}: info-hash bytes`);
  assertEquals(m.infoHashHex, [...m.infoHash].map((b) => b.toString(16).padStart(2, "0")).join(""), where);
  assert(m.trackers.length <= MAX_MAGNET_TRACKERS, `${where}: ${m.trackers.length} trackers`);
  assert(m.webSeeds.length <= MAX_MAGNET_WEB_SEEDS, `${where}: ${m.webSeeds.length} web seeds`);
  assert(m.peers.length <= MAX_MAGNET_PEERS, `${where}: ${m.peers.length} peers`);
  for (const list of [m.trackers, m.webSeeds]) {
    assert(list.every((u) => u !== "") && new Set(list).size === list.length, `${where}: empty or repeated URL`);
  }
  for (const p of m.peers) assert(p.port >= 1 && p.port <= 65535 && p.host !== "", `${where}: peer ${p.host}`);
  if (m.select !== undefined) {
    const s = m.select;
    assert(s.length > 0 && s.length <= MAX_FILES, `${where}: ${s.length} selected`);
    assert(s.every((x, k) => Number.isInteger(x) && x >= 0 && x < MAX_FILES && (k === 0 || x > s[k - 1])), where);
  }
  // formatMagnet writes a link parseMagnet reads: all of it, or (when percent-encoding grew it past the limit) the
  // trackers and web seeds that fit, in order, as magnetLeftOut counts
  const text = formatMagnet(m);
  assert(text.length <= MAX_MAGNET_LENGTH, `${where}: formatMagnet wrote ${text.length} characters`);
  const again = parseMagnet(text);
  const left = magnetLeftOut(m);
  assertEquals(
    [again.infoHashHex, again.name],
    [m.infoHashHex, left.name ? undefined : m.name],
    `${where}: formatMagnet round trip`,
  );
  const subsequence = (part: readonly string[], whole: readonly string[]) => {
    let k = 0;
    for (const x of whole) if (k < part.length && part[k] === x) k++;
    return k === part.length;
  };
  assertEquals(again.trackers.length, m.trackers.length - left.trackers, `${where}: trackers kept`);
  assertEquals(again.webSeeds.length, m.webSeeds.length - left.webSeeds, `${where}: web seeds kept`);
  assert(subsequence(again.trackers, m.trackers) && subsequence(again.webSeeds, m.webSeeds), `${where}: order`);
  if (!left.name && left.trackers === 0 && left.webSeeds === 0) {
    assertEquals([again.trackers, again.webSeeds], [m.trackers, m.webSeeds], `${where}: formatMagnet round trip`);
  }
}

Deno.test("parseMagnet() lets only MagnetError out of mutated links, keeps its bounds, and stays fast", () => {
  const r = seeded(seed);
  const n = fuzzIterations(2000);
  const seen = { parsed: 0, refused: 0 };
  let slowest = 0;
  for (let i = 0; i < n; i++) {
    const input = mutate(r, corpus[r.int(corpus.length)]);
    const where = `seed ${seed} #${i} (${input.length} chars ${JSON.stringify(input.slice(0, 120))})`;
    const t0 = performance.now();
    let m: Magnet | undefined;
    try {
      m = parseMagnet(input);
    } catch (e) {
      if (!(e instanceof MagnetError)) throw new Error(`${where}: unexpected ${e}`, { cause: e });
    }
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    assert(ms < SLOW_MS, `${where}: parse took ${ms.toFixed(0)} ms`);
    if (m === undefined) {
      seen.refused++;
      continue;
    }
    seen.parsed++;
    try {
      checkParsed(m, where);
    } catch (e) {
      throw new Error(`${where}: ${e}`, { cause: e });
    }
  }
  if (n >= 1000) assert(seen.parsed > 0 && seen.refused > 0, `seed ${seed}: ${JSON.stringify(seen)}`);
  if (Deno.env.get("FUZZ_ITERATIONS")) console.log(`magnet fuzz: ${JSON.stringify(seen)}, slowest ${slowest} ms`);
});
