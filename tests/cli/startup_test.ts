/**
 * Start-up (issue 11): what `btfetch --version`, `--help`, `magnet`, `info` and `get` load. Any `node:` module costs
 * start-up (the first about 8 ms; `node:fs` and `node:crypto`, which share their stream and buffer polyfills, about
 * 40 ms), so the modules `main.ts` imports statically, and those of the `info` and `get` commands, import none: each
 * command's module is imported when that command runs, and `get` loads a `node:` module (`lib/node_builtin.ts`) only
 * where its download needs one. This checks the module graph, not a time; the figures are in docs/BENCHMARKS.md.
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

interface Dependency {
  readonly code?: { readonly specifier?: string };
  readonly isDynamic?: boolean;
}
interface GraphModule {
  readonly specifier: string;
  readonly dependencies?: readonly Dependency[];
}

/** The module graph of main.ts as `deno info --json` gives it, by specifier. */
async function graph(): Promise<Map<string, GraphModule>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `--config=${new URL("deno.json", ROOT).pathname}`, new URL("main.ts", ROOT).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const { modules } = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: GraphModule[] };
  return new Map(modules.map((m) => [m.specifier, m]));
}

/** Every module loaded with `roots`, following static imports only (not `import()`, not `import type`). */
function staticClosure(mods: Map<string, GraphModule>, roots: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = roots.map((r) => new URL(r, ROOT).href);
  while (todo.length > 0) {
    const s = todo.pop() as string;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of mods.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code?.specifier) todo.push(d.code.specifier);
    }
  }
  return seen;
}

const nodeModules = (loaded: Set<string>) => [...loaded].filter((s) => s.startsWith("node:")).sort();

Deno.test("start-up: --version, --help and magnet (main.ts's static imports) load no node: module", async () => {
  const loaded = staticClosure(await graph(), ["main.ts"]);
  assert.ok(loaded.has(new URL("lib/cli/flags.ts", ROOT).href), "the graph walk missed flags.ts");
  assert.deepEqual(nodeModules(loaded), []);
});

Deno.test("start-up: info, get and verify load no node: module (create and demo, imported when they run, do)", async () => {
  const mods = await graph();
  assert.deepEqual(nodeModules(staticClosure(mods, ["main.ts", "lib/cli/info.ts"])), []);
  for (const command of ["get", "verify"]) {
    const loaded = staticClosure(mods, [`lib/cli/${command}.ts`]);
    assert.ok(loaded.has(new URL("lib/storage/disk.ts", ROOT).href), `${command}: the graph walk missed disk.ts`);
    assert.deepEqual(nodeModules(loaded), [], command);
  }
  // the walk sees node: imports where they are
  assert.ok(nodeModules(staticClosure(mods, ["lib/cli/demo.ts"])).includes("node:fs"));
  // create starts its hashing threads first, then imports lib/create.ts (node:fs), so their start-up overlaps its own
  assert.deepEqual(nodeModules(staticClosure(mods, ["lib/cli/create.ts"])), []);
  assert.ok(nodeModules(staticClosure(mods, ["lib/create.ts"])).includes("node:fs"));
});
