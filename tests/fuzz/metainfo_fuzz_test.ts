/**
 * Mutation fuzz of parseMetainfo and parseInfoDict: damaged valid torrents (truncated, bit-flipped, lengths
 * inflated, bytes inserted or deleted). Only MetainfoError may escape; what parses must be self-consistent (hash of
 * the info span, piece count, offsets, safe and sanitised paths). Seeded by FUZZ_SEED, sized by FUZZ_ITERATIONS (the
 * default runs in about a second).
 */
import { assert, assertEquals } from "../_assert.ts";
import { fuzzIterations, fuzzSeed, type Rand, randomBytes, seeded } from "../_gen.ts";
import { MAX_PATH_COMPONENT_BYTES } from "../../lib/limits.ts";
import { makeTorrent, sha1 } from "../_torrent.ts";
import { type Metainfo, MetainfoError, parseInfoDict, parseMetainfo } from "../../lib/metainfo.ts";

const seed = fuzzSeed();

function corpus(r: Rand): Uint8Array[] {
  return [
    makeTorrent({ name: "single.bin", pieceLength: 1024, files: randomBytes(r, 3000), announce: "http://t/a" }).bytes,
    makeTorrent({
      name: "multi",
      pieceLength: 1024,
      files: [
        { path: ["a", "b.txt"], data: randomBytes(r, 700) },
        { path: ["empty"], data: new Uint8Array() },
        { path: [".pad", "324"], data: new Uint8Array(324) },
        { path: ["c"], data: randomBytes(r, 1500) },
      ],
      announceList: [["http://a/"], ["udp://b:1"]],
      urlList: ["http://w/"],
      private: true,
    }).bytes,
    makeTorrent({
      name: "CON",
      pieceLength: 1024,
      files: [
        { path: ["aux.txt", "a?b"], data: randomBytes(r, 300) },
        { path: ["evil\u202etxt.exe"], data: randomBytes(r, 200) },
        { path: ["dots. . .", "Über"], data: randomBytes(r, 100) },
      ],
    }).bytes,
  ];
}

function mutate(r: Rand, src: Uint8Array): Uint8Array {
  let b = src.slice();
  for (let rounds = 1 + r.int(3); rounds > 0; rounds--) {
    const at = r.int(b.length + 1);
    switch (r.int(7)) {
      case 0:
        b = b.slice(0, at);
        break;
      case 1:
        if (b.length) b[r.int(b.length)] ^= 1 << r.int(8);
        break;
      case 2:
        b = new Uint8Array([...b.subarray(0, at), ...randomBytes(r, 1 + r.int(3)), ...b.subarray(at)]);
        break;
      case 3:
        b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + 1 + r.int(4))]);
        break;
      case 4: { // inflate or shrink a digit run
        const text = String.fromCharCode(...b);
        const runs = [...text.matchAll(/\d+/g)];
        if (runs.length === 0) break;
        const m = runs[r.int(runs.length)];
        const n = Number(m[0]);
        const next = String([n + 1, Math.max(0, n - 1), n * 2, 0, 2 ** 53][r.int(5)]);
        const out = text.slice(0, m.index) + next + text.slice((m.index ?? 0) + m[0].length);
        b = Uint8Array.from(out, (c) => c.charCodeAt(0));
        break;
      }
      case 5: // replace a path-ish byte with a hostile one
        if (b.length) b[r.int(b.length)] = [0x2f, 0x5c, 0x00, 0x2e, 0x3a, 0x0a, 0x20, 0x3f, 0x3c, 0x7f][r.int(10)];
        break;
      default: { // overwrite with a bidi control, a C1 control, a BOM or a device name (UTF-8 bytes)
        const ins = new TextEncoder().encode(
          ["\u202e", "\u2066", "\u200f", "\u0085", "\ufeff", "CON", "lpt1."][r.int(7)],
        );
        const k = r.int(Math.max(0, b.length - ins.length) + 1);
        b = new Uint8Array([...b.subarray(0, k), ...ins, ...b.subarray(k + ins.length)]);
      }
    }
  }
  return b;
}

/** What sanitising removes or replaces: bidi and invisible formatting characters, Windows' reserved characters, DEL, C1. */
const UNSANITISED = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff<>:"|?*\x7f-\x9f]/;
/** A Windows device name, with any extension or trailing spaces before it. */
const DEVICE = /^(con|prn|aux|nul|clock\$|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³]) *(\.|$)/i;

function checkConsistent(meta: Metainfo, where: string): void {
  assertEquals(meta.infoHash, sha1(meta.infoBytes), `${where}: info-hash`);
  assertEquals(meta.pieceHashes.length, 20 * meta.pieceCount, `${where}: pieces`);
  assertEquals(meta.pieceCount, Math.ceil(meta.totalLength / meta.pieceLength), `${where}: piece count`);
  let offset = 0;
  for (const f of meta.files) {
    assertEquals(f.offset, offset, `${where}: offset of file ${f.index}`);
    offset += f.length;
    assertEquals(f.path[0], meta.name, `${where}: file ${f.index} under the name`);
    for (const c of f.path) {
      assert(
        c !== "" && c !== "." && c !== ".." && ![...c].some((ch) => ch < " " || ch === "/" || ch === "\\") &&
          !/^[A-Za-z]:/.test(c),
        `${where}: ${JSON.stringify(c)}`,
      );
      assert(
        !UNSANITISED.test(c) && !/[. ]$/.test(c) && !DEVICE.test(c) &&
          new TextEncoder().encode(c).length <= MAX_PATH_COMPONENT_BYTES,
        `${where}: ${JSON.stringify(c)} is not sanitised`,
      );
    }
  }
  assertEquals(offset, meta.totalLength, `${where}: total`);
}

Deno.test("parseMetainfo() lets only MetainfoError out of mutated torrents, and what parses is consistent", () => {
  const r = seeded(seed);
  const seeds = corpus(r);
  const iterations = fuzzIterations(5_000);
  let parsed = 0;
  for (let i = 0; i < iterations; i++) {
    const input = mutate(r, seeds[r.int(seeds.length)]);
    const where = `seed ${seed} #${i} (${input.length} bytes)`;
    try {
      const meta = parseMetainfo(input);
      checkConsistent(meta, where);
      const again = parseInfoDict(meta.infoBytes);
      assertEquals(again.infoHash, meta.infoHash, `${where}: parseInfoDict agrees`);
      parsed++;
    } catch (e) {
      if (e instanceof MetainfoError) continue;
      throw new Error(`${where}: unexpected ${e}`, { cause: e });
    }
  }
  if (iterations >= 1000) assert(parsed > 0, `seed ${seed}: no mutant parsed; the fuzz is not reaching valid paths`);
});
