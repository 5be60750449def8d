/**
 * The bundle (`deno task bundle`): it builds into one folder (`main.js` and the chunks it loads on demand), and that
 * folder runs on its own — an empty DENO_DIR, no config, no remote or npm modules, cached-only — both for `--version`
 * and `info` and for a real fetch from a python3-libtorrent seeder on loopback, with the bytes identical. What
 * `--version` and `info` load of it imports no `node:` module (start-up, issue 11).
 * @module
 */
import assert from "node:assert/strict";
import { makeTorrent } from "./_torrent.ts";
import { bundleArgs } from "../scripts/build.ts";
import { assertFetchOk, assertSameTree, type BtfetchResult, describeRun, parseEvents } from "./interop/_btfetch.ts";
import {
  freePort,
  ignoreUnless,
  makeTorrentWithLibtorrent,
  MiB,
  requirePrograms,
  startLibtorrentSeeder,
  writeSingleFilePayload,
} from "./interop/_peers.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

async function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string> },
  timeoutMs: number,
) {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: { NO_COLOR: "1", ...(opts.env ?? {}) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr), timedOut } as Ran;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Builds the bundle into `dir/btfetch` as `deno task bundle` does (with a bounded wait: esbuild may come from npm);
 * returns the path of its entry, `main.js`.
 */
async function buildBundle(dir: string): Promise<string> {
  const outDir = `${dir}/btfetch`;
  const r = await run(Deno.execPath(), bundleArgs(outDir), { cwd: ROOT }, 180_000);
  assert.ok(!r.timedOut, "deno bundle did not finish within 180 s");
  assert.equal(r.code, 0, `deno bundle failed:\n${r.stderr}`);
  for await (const e of Deno.readDir(outDir)) {
    const text = await Deno.readTextFile(`${outDir}/${e.name}`);
    assert.doesNotMatch(text, /\bfrom\s+["'](npm:|jsr:|https?:)/, `${e.name} still imports npm/jsr/remote modules`);
  }
  return `${outDir}/main.js`;
}

/** The specifiers a bundle file imports statically (`import ... from "x"`, `import "x"`): what loads with it. */
function staticImports(text: string): string[] {
  return [...text.matchAll(/^\s*(?:import|export)\s+(?:[^"'();]*?\s+from\s+)?["']([^"']+)["'];?\s*$/gm)].map((m) =>
    m[1]
  );
}

/** Every `node:` module loaded with `files` of the bundle folder `dir`, following their static imports. */
async function nodeModulesLoaded(dir: string, files: string[]): Promise<string[]> {
  const seen = new Set<string>();
  const node = new Set<string>();
  const todo = [...files];
  while (todo.length > 0) {
    const f = todo.pop() as string;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const spec of staticImports(await Deno.readTextFile(`${dir}/${f}`))) {
      if (spec.startsWith("node:")) node.add(spec);
      else if (spec.startsWith("./")) todo.push(spec.slice(2));
    }
  }
  return [...node].sort();
}

/** Runs the bundle stand-alone: empty DENO_DIR, no config, no remote, no npm, cached-only. */
async function runBundle(bundle: string, args: string[], cwd: string, timeoutMs: number): Promise<Ran> {
  const denoDir = await Deno.makeTempDir({ prefix: "btfetch-bundle-denodir-" });
  try {
    return await run(
      Deno.execPath(),
      ["run", "--no-config", "--no-remote", "--no-npm", "--cached-only", "--unstable-net", "-A", bundle, ...args],
      { cwd, env: { DENO_DIR: denoDir } },
      timeoutMs,
    );
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
}

Deno.test("bundle: builds into a folder that runs --version and info with an empty DENO_DIR and no config", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "btfetch-bundle-" });
  try {
    const bundle = await buildBundle(tmp);
    const r = await runBundle(bundle, ["--version"], tmp, 30_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^btfetch \d+\.\d+\.\d+/);
    const t = makeTorrent({ name: "info.bin", pieceLength: 16384, files: new Uint8Array(100_000).fill(7) });
    await Deno.writeFile(`${tmp}/t.torrent`, t.bytes);
    const info = await runBundle(bundle, ["info", "--json", "t.torrent"], tmp, 30_000);
    assert.equal(info.code, 0, info.stderr);
    const shown = JSON.parse(info.stdout);
    assert.deepEqual([shown.name, shown.info_hash, shown.size], ["info.bin", t.meta.infoHashHex, 100_000]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("bundle: what --version and info load imports no node: module (node:fs and node:crypto cost ~40 ms)", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "btfetch-bundle-graph-" });
  try {
    const entry = await buildBundle(tmp);
    const dir = `${tmp}/btfetch`;
    const main = await Deno.readTextFile(entry);
    const info = /import\(["']\.\/(info-[^"']+\.js)["']\)/.exec(main);
    assert.ok(info, "main.js does not import the info command's chunk on demand");
    assert.deepEqual(await nodeModulesLoaded(dir, ["main.js"]), [], "--version loads node: modules");
    assert.deepEqual(await nodeModulesLoaded(dir, ["main.js", info[1]]), [], "info loads node: modules");
    // the check sees node: imports where they are: the get command's chunks load node:fs
    const get = /import\(["']\.\/(get-[^"']+\.js)["']\)/.exec(main);
    assert.ok(get, "main.js does not import the get command's chunk on demand");
    assert.ok((await nodeModulesLoaded(dir, [get[1]])).includes("node:fs"));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name: "bundle: the stand-alone bundle fetches a torrent from a libtorrent seeder, bytes identical",
  ignore: ignoreUnless("libtorrent"),
  async fn() {
    requirePrograms("libtorrent");
    const tmp = await Deno.makeTempDir({ prefix: "btfetch-bundle-fetch-" });
    try {
      const bundle = await buildBundle(tmp);
      const pieceLength = 64 * 1024;
      const payload = await writeSingleFilePayload(`${tmp}/seed`, "bundle.bin", 5 * MiB + 4321, 77);
      const torrent = await makeTorrentWithLibtorrent({ path: payload.path, out: `${tmp}/t.torrent`, pieceLength });
      const seeder = await startLibtorrentSeeder({ torrent: torrent.path, dataDir: payload.dir });
      try {
        const out = `${tmp}/out`;
        const args = ["get", torrent.path, "-o", out, "--peer", `127.0.0.1:${seeder.port}`, "--json", "--no-dht"];
        args.push("--timeout", "60s", "--port", String(freePort()));
        const r = await runBundle(bundle, args, tmp, 90_000);
        const res: BtfetchResult = { ...r, signal: null, events: parseEvents(r.stdout) };
        assert.equal(r.code, 0, describeRun(res));
        assertFetchOk(res, { size: payload.size, pieceLength });
        await assertSameTree(payload.path, `${out}/${payload.name}`);
      } finally {
        await seeder.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
