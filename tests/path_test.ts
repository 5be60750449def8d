import { posix } from "node:path";
import { assertEquals } from "./_assert.ts";
import { dirname, join, resolve } from "../lib/path.ts";

const posixOnly = { ignore: Deno.build.os === "windows" };

/** Segments that exercise every rule: empty, `.`, `..`, repeated and trailing separators, roots. */
const PIECES = ["", ".", "..", "a", "bb", "/", "//", "a/", "/a", "a//b", "../x", "./y", "c/..", "/..", "...", "d/./e"];

/** A deterministic stream of small paths made of {@linkcode PIECES} (xorshift), so a failure reproduces. */
function* paths(count: number, seed = 7): Generator<string[]> {
  let x = seed;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % 1_000_003;
  };
  for (let i = 0; i < count; i++) {
    const n = 1 + (next() % 4);
    yield Array.from({ length: n }, () => PIECES[next() % PIECES.length]);
  }
}

Deno.test({
  name: "join, dirname and resolve give node:path.posix's results",
  ...posixOnly,
  fn() {
    const diffs: string[] = [];
    for (const parts of paths(5000)) {
      if (join(...parts) !== posix.join(...parts)) diffs.push(`join(${JSON.stringify(parts)})`);
      const one = parts.join("");
      if (dirname(one) !== posix.dirname(one)) diffs.push(`dirname(${JSON.stringify(one)})`);
      if (resolve(...parts) !== posix.resolve(...parts)) diffs.push(`resolve(${JSON.stringify(parts)})`);
    }
    assertEquals(diffs.slice(0, 10), []);
  },
});

Deno.test({
  name: "join, dirname and resolve on the edge cases",
  ...posixOnly,
  fn() {
    assertEquals([join(), join(""), join("a", ""), join("/", ".."), join("a", "b/")], [".", ".", "a", "/", "a/b/"]);
    assertEquals([dirname(""), dirname("/"), dirname("//a"), dirname("a//b"), dirname("/a/b/")], [
      ".",
      "/",
      "//",
      "a/",
      "/a",
    ]);
    assertEquals([resolve(), resolve(""), resolve("/x/", "y/")], [Deno.cwd(), Deno.cwd(), "/x/y"]);
  },
});
