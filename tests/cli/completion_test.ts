/**
 * `btfetch completion bash|zsh|fish`: each script names every command and flag of the tables in `flags.ts`, and
 * completes for real in its shell (bash always; zsh and fish when installed): commands, a mistyped command's prefix,
 * the flags of the command being typed, folders after `-o`, shells after `completion`.
 * @module
 */
import { completionScript } from "../../lib/cli/completion.ts";
import { COMMANDS, FLAGS, SHELLS } from "../../lib/cli/flags.ts";
import { runBtfetch } from "../interop/_btfetch.ts";
import { assert, assertEquals } from "../_assert.ts";
import { brief, withTempDir } from "./_cli.ts";

function has(program: string): boolean {
  try {
    return new Deno.Command(program, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

async function run(program: string, args: string[], cwd: string): Promise<string> {
  const r = await new Deno.Command(program, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert(r.success, `${program} ${args.join(" ")} failed: ${err}`);
  assertEquals(err, "", `${program} wrote to stderr`);
  return new TextDecoder().decode(r.stdout);
}

/** A folder with a torrent-like file and a sub-folder, for file and folder completion. */
async function withFiles<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  return await withTempDir("btfetch-completion-", async (dir) => {
    await Deno.writeTextFile(`${dir}/ubuntu.torrent`, "d4:infodee");
    await Deno.mkdir(`${dir}/downloads`);
    return await fn(dir);
  });
}

Deno.test("completionScript() names every command and every flag of the tables, in each shell", async (t) => {
  for (const shell of SHELLS) {
    await t.step(shell, () => {
      const s = completionScript(shell);
      for (const c of Object.keys(COMMANDS)) assert(new RegExp(`\\b${c}\\b`).test(s), `${shell}: command ${c}`);
      for (const [name, f] of Object.entries(FLAGS)) {
        const long = shell === "fish" ? `-l ${name} ` : `--${name}`;
        assert(s.includes(long), `${shell}: --${name}`);
        if (f.short) assert(s.includes(shell === "fish" ? `-s ${f.short}` : `-${f.short}`), `${shell}: -${f.short}`);
      }
    });
  }
});

Deno.test("btfetch completion bash prints the script and exits 0", async () => {
  const r = await runBtfetch(["completion", "bash"], { timeoutMs: 30_000 });
  assertEquals(r.code, 0, brief(r));
  assertEquals(r.stdout, completionScript("bash"));
  assertEquals(r.stderr, "");
});

/** [words typed (the last is the one completed), what the completion offers]. */
const ROWS: [string[], string[]][] = [
  [["inf"], ["info"]],
  [["se"], ["seed"]],
  [["ubu"], ["ubuntu.torrent"]],
  [["get", "ubuntu.torrent", "--ou"], ["--out"]],
  [["ubuntu.torrent", "--sel"], ["--select"]],
  [["info", "x.torrent", "--ou"], []],
  [["verify", "x.torrent", "--d"], ["--debug", "--dir"]],
  [["create", "x", "--pri"], ["--private"]],
  [["completion", ""], ["bash", "fish", "zsh"]],
  [["ubuntu.torrent", "-o", "do"], ["downloads"]],
  [["seed", "ubuntu.torrent", "--dir", "do"], ["downloads"]],
  [["create", "x", "-o", "ubu"], ["ubuntu.torrent"]],
];

Deno.test("the bash script completes commands, flags, folders and shells", async (t) => {
  await withFiles(async (dir) => {
    const script = `${dir}/btfetch.bash`;
    await Deno.writeTextFile(script, completionScript("bash"));
    for (const [words, want] of ROWS) {
      await t.step(words.join(" "), async () => {
        const quoted = ["btfetch", ...words].map((w) => `'${w}'`).join(" ");
        const out = await run("bash", [
          "-c",
          `source '${script}'; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length}; _btfetch; ` +
          `printf '%s\\n' "\${COMPREPLY[@]}"`,
        ], dir);
        assertEquals(out.split("\n").filter((l) => l !== "").map((l) => l.replace(/\/$/, "")).sort(), want);
      });
    }
  });
});

Deno.test({
  name: "the fish script completes commands, flags, folders and shells",
  ignore: !has("fish"),
  async fn(t) {
    await withFiles(async (dir) => {
      const script = `${dir}/btfetch.fish`;
      await Deno.writeTextFile(script, completionScript("fish"));
      for (const [words, want] of ROWS) {
        await t.step(words.join(" "), async () => {
          const line = ["btfetch", ...words].join(" ");
          const out = await run("fish", ["-c", `source '${script}'; complete -C '${line}'`], dir);
          const got = out.split("\n").filter((l) => l !== "").map((l) => l.split("\t")[0].replace(/\/$/, ""));
          assertEquals(got.sort(), want);
        });
      }
    });
  },
});

Deno.test({
  name: "the zsh script parses, and hands _arguments the flags of the command being typed",
  ignore: !has("zsh"),
  async fn() {
    await withFiles(async (dir) => {
      const script = `${dir}/_btfetch`;
      await Deno.writeTextFile(script, completionScript("zsh"));
      await run("zsh", ["-n", script], dir);
      // zsh's completion widgets need a terminal: stand-ins print what the script asks of them
      const stubs = `_describe() { print -r -- "describe $*" }; _files() { print -r -- "files $*" }; ` +
        `_arguments() { print -rl -- "$@" }; source '${script}'`;
      const call = async (words: string[]) =>
        (await run("zsh", [
          "-c",
          `${stubs}; words=(btfetch ${words.map((w) => `'${w}'`).join(" ")}); CURRENT=${words.length + 1}; _btfetch`,
        ], dir)).split("\n");
      assertEquals((await call(["inf"])).slice(0, 2), ["describe -t commands command commands", "files "]);
      const seed = await call(["seed", "x.torrent", "--o"]);
      assert(seed.some((l) => l.startsWith("--out=[") && l.endsWith(":_files -/")), seed.join("\n"));
      assert(seed.includes("1:torrent:_files"), seed.join("\n"));
      assert(!seed.some((l) => l.startsWith("--select=")), "seed does not take --select");
      const get = await call(["x.torrent", "--s"]);
      assert(get.some((l) => l.startsWith("--select=")), get.join("\n"));
      assert((await call(["completion", ""])).includes("1:shell:(bash zsh fish)"));
    });
  },
});
