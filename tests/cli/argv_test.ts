/**
 * `parseArgv()` against `parseArgs` of `node:util` (strict, positionals allowed): the same values, positionals, error
 * codes and messages, on hand-picked command lines and on generated ones, with btfetch's own option table.
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { type ArgvOption, parseArgv } from "../../lib/cli/argv.ts";
import { FLAGS } from "../../lib/cli/flags.ts";
import { assertEquals } from "../_assert.ts";

const OPTIONS: Record<string, ArgvOption> = Object.fromEntries(
  Object.entries(FLAGS).map(([name, f]) => [name, { type: f.type, short: f.short, multiple: f.multiple }]),
);
const NODE_OPTIONS: ParseArgsOptionsConfig = Object.fromEntries(
  Object.entries(FLAGS).map((
    [name, f],
  ) => [name, { type: f.type, multiple: f.multiple ?? false, ...(f.short ? { short: f.short } : {}) }]),
);

/** What a parser made of `args`: its result, or its error's code and message. */
function outcome(parse: () => unknown): unknown {
  try {
    return { ok: parse() };
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
}

function same(args: string[]): void {
  const ours = outcome(() => parseArgv(args, OPTIONS));
  const node = outcome(() => parseArgs({ args, options: NODE_OPTIONS, strict: true, allowPositionals: true }));
  assertEquals(ours, node, JSON.stringify(args));
}

Deno.test("parseArgv() reads command lines as node:util's parseArgs does", async (t) => {
  const rows: string[][] = [
    [],
    ["a.torrent"],
    ["get", "a.torrent", "-o", "dl", "--peer", "1.2.3.4:5", "--peer=5.6.7.8:9", "-t", "http://t/a"],
    ["-qo", "dl", "a"],
    ["-qodl", "a"],
    ["-oq"],
    ["-q", "-V", "-h"],
    ["-qVh"],
    ["--json", "--quiet", "--debug"],
    ["-", "--", "--json", "-q"],
    ["--out=", "x"],
    ["--out=-x"],
    ["-o-x"],
    ["--out", "-"],
    ["--out", "--json"],
    ["-o", "-q"],
    ["--out"],
    ["-o"],
    ["-p"],
    ["--json=1"],
    ["--json="],
    ["-q=1"],
    ["--bogus"],
    ["--ouput", "x"],
    ["-Z"],
    ["-qZ"],
    ["-Zq"],
    ["---"],
    ["---x"],
    ["--="],
    ["--=a=b"],
    ["-="],
    ["--__proto__"],
    ["--constructor"],
    ["--toString"],
    ["-é"],
    [""],
    ["--no-dht", "--no-pex", "--dht-bootstrap", "h:1", "--dht-bootstrap", "h:2"],
    ["--out", "a", "--out", "b", "-d", "c"],
    ["--web-seed", "http://w/", "-w", "http://v/"],
  ];
  for (const args of rows) await t.step(JSON.stringify(args), () => same(args));
});

Deno.test("parseArgv() matches node:util's parseArgs on 5000 generated command lines", () => {
  const words = [
    "a",
    "a.torrent",
    "-",
    "--",
    "",
    "=",
    "-x",
    "-é",
    "x=y",
    "--bogus",
    "--bogus=1",
    "---",
    "--=",
    "-=",
    "--__proto__",
    "--hasOwnProperty",
  ];
  for (const [name, f] of Object.entries(FLAGS)) {
    words.push(`--${name}`, `--${name}=`, `--${name}=v`, `--${name}=-v`);
    if (f.short) words.push(`-${f.short}`, `-${f.short}v`, `-${f.short}-v`, `-${f.short}=`, `-q${f.short}`);
  }
  words.push("-qo", "-oq", "-qVh", "-qZ", "-Zq", "-qodl", "-qpo");
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 5_000; i++) {
    same(Array.from({ length: rand(7) }, () => words[rand(words.length)]));
  }
});
