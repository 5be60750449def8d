/**
 * scripts/build.ts: a one-target build either produces a working binary (a machine that reaches dl.deno.land) or,
 * here, fails fast with the one-line explanation and a non-zero exit code.
 * @module
 */
import assert from "node:assert/strict";
import { binaryName, bundleArgs, compileArgs, noNetworkMessage, TARGETS, V8_FLAGS } from "../../scripts/build.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const TARGET = "x86_64-unknown-linux-gnu";

async function runBuild(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Deno.env.toObject();
  delete env.DENORT_BIN;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/scripts/build.ts`, ...args],
    cwd: ROOT,
    clearEnv: true,
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("build: binary names and compile arguments", () => {
  assert.equal(TARGETS.length, 5);
  assert.equal(binaryName("x86_64-pc-windows-msvc"), "btfetch-x86_64-pc-windows-msvc.exe");
  assert.equal(binaryName("aarch64-apple-darwin"), "btfetch-aarch64-apple-darwin");
  const a = compileArgs(TARGET, "/x/out");
  assert.equal(a[0], "compile");
  assert.ok(a.includes("--allow-net") && a.includes("--allow-read") && a.includes("--allow-write"));
  assert.ok(!a.includes("-A") && !a.includes("--allow-run") && !a.includes("--include"));
  assert.deepEqual(a.slice(a.indexOf("--target"), a.indexOf("--target") + 2), ["--target", TARGET]);
  assert.ok(a[a.length - 1].endsWith("/main.ts"));
  assert.ok(
    a.includes(`--v8-flags=${V8_FLAGS.join(",")}`),
    "built with the V8 flags the benchmark runs its stand-in with",
  );
});

Deno.test("build: one target builds, or fails fast with a one-line explanation when the runtime cannot be fetched", async () => {
  const out = await Deno.makeTempDir({ prefix: "btfetch-build-test-" });
  try {
    const started = Date.now();
    const r = await runBuild(["--target", TARGET, "--out-dir", out, "--timeout", "60"], 90_000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 85_000, `build took ${elapsed} ms`);
    if (r.code === 0) {
      // A machine with network: the binary exists and is btfetch, not the deno CLI.
      const bin = `${out}/${binaryName(TARGET)}`;
      const v = await new Deno.Command(bin, { args: ["--version"], stdout: "piped", stderr: "null" }).output();
      assert.match(new TextDecoder().decode(v.stdout), /^btfetch \d/);
      return;
    }
    assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    assert.deepEqual(lines, [noNetworkMessage(TARGET)]);
    assert.equal(r.stdout, "");
    for await (const e of Deno.readDir(out)) assert.fail(`left a file behind: ${e.name}`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("build: an unknown target is a usage error", async () => {
  const r = await runBuild(["--target", "mips-unknown-linux-gnu", "--out-dir", "/nonexistent-never-created"], 30_000);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown target "mips-unknown-linux-gnu"/);
});

Deno.test("bundleArgs() bundles as deno task bundle does", async () => {
  const task: string = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url))).tasks.bundle;
  const args = bundleArgs("/tmp/out");
  assert.equal(args[0], "bundle");
  for (const flag of ["--platform deno", "--code-splitting", "--outdir"]) {
    assert.equal(task.includes(flag), true, `deno task bundle lacks ${flag}`);
    assert.equal(args.join(" ").includes(flag), true, `bundleArgs lacks ${flag}`);
  }
  assert.equal(args.at(-1)?.endsWith("/main.ts"), true);
});
