/**
 * The single-file bundle (`deno task bundle`): it builds, and the one file runs on its own — an empty DENO_DIR, no
 * config, no remote or npm modules, cached-only — both for `--version` and for a real fetch from a python3-libtorrent
 * seeder on loopback, with the bytes identical.
 * @module
 */
import assert from "node:assert/strict";
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

/** Builds the bundle into `dir` (as `deno task bundle` does, with a bounded wait: esbuild may come from npm). */
async function buildBundle(dir: string): Promise<string> {
  const out = `${dir}/btfetch.js`;
  const r = await run(
    Deno.execPath(),
    ["bundle", `--config=${ROOT}/deno.json`, "--platform", "deno", "-o", out, `${ROOT}/main.ts`],
    { cwd: ROOT },
    180_000,
  );
  assert.ok(!r.timedOut, "deno bundle did not finish within 180 s");
  assert.equal(r.code, 0, `deno bundle failed:\n${r.stderr}`);
  const text = await Deno.readTextFile(out);
  assert.doesNotMatch(text, /\bfrom\s+["'](npm:|jsr:|https?:)/, "the bundle still imports npm/jsr/remote modules");
  return out;
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

Deno.test("bundle: builds into one file that runs with an empty DENO_DIR and no config", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "btfetch-bundle-" });
  try {
    const bundle = await buildBundle(tmp);
    const r = await runBundle(bundle, ["--version"], tmp, 30_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^btfetch \d+\.\d+\.\d+/);
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
