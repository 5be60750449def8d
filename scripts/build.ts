/**
 * `deno task build`: compiles btfetch into single executables, one per release target, in `dist/`
 * (`dist/btfetch-<target>`, with `.exe` for Windows).
 *
 * ```
 * deno run -A scripts/build.ts [--target TRIPLE]... [--out-dir DIR] [--timeout SECONDS]
 * ```
 *
 * `deno compile` needs the Deno runtime base (`denort-<target>.zip`) from dl.deno.land. Where that cannot be fetched
 * (no network), each target fails with a one-line explanation and the script exits 1. `DENORT_BIN` in the environment
 * is passed through to `deno compile` (it then uses that file as the runtime base instead of downloading one; it must
 * be a `denort` for the target being built, so pair it with `--target`). Every `deno compile` is killed after
 * `--timeout` seconds (default 600), so a hanging download cannot hang the build.
 *
 * Exit codes: 0 every target built; 1 some target failed; 2 usage error.
 * @module
 */
import { parseArgs } from "node:util";

/** Every release target, as `deno compile --target` names it. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** A release target triple. */
export type Target = typeof TARGETS[number];

/**
 * The permissions btfetch runs with: sockets (peers, trackers, DNS), reading torrents and data, writing downloads and
 * resume state, and environment variables (`NO_COLOR`; node: built-ins read a few more). No subprocesses, no FFI.
 */
export const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];

/**
 * The V8 flags the executable is built with (`deno compile --v8-flags`), and that the benchmark's stand-in for it runs
 * with. `--always-sparkplug` gives a function baseline machine code on its first call instead of interpreting it until
 * it has run for a while: a download's hot path runs thousands of times in its first tenth of a second (8-10 ms less to
 * complete a 64 MiB magnet here), and a short command starts no slower (a `get` refusing a bad torrent: 67 against 75 ms
 * with a warm code cache, 139 against 137 with an empty one). Not `--no-lazy`: it puts every function in the code cache,
 * which brought a magnet's metadata 10-14 ms sooner, but every start then reads the whole cache (that `get`: 91 ms) and
 * a start with an empty cache, a fresh CI runner's, compiles the whole program (188 ms).
 */
export const V8_FLAGS = ["--always-sparkplug"];

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** The executable file name for `target`. */
export function binaryName(target: Target): string {
  return `btfetch-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/** The `deno compile` arguments for `target`, writing to `output`. */
export function compileArgs(target: Target, output: string): string[] {
  return [
    "compile",
    `--config=${ROOT}/deno.json`,
    "--unstable-net", // Deno.listenDatagram (UDP trackers)
    ...PERMISSIONS,
    `--v8-flags=${V8_FLAGS.join(",")}`,
    "--no-prompt",
    "--target",
    target,
    "--output",
    output,
    `${ROOT}/main.ts`,
  ];
}

/**
 * The `deno bundle` arguments that write the whole program into `outDir` (`main.js` and the chunks each command
 * imports when it runs), as `deno task bundle` does: the stand-in for the binary where `deno compile` cannot run.
 */
export function bundleArgs(outDir: string): string[] {
  return [
    "bundle",
    `--config=${ROOT}/deno.json`,
    "--platform",
    "deno",
    "--code-splitting",
    "--outdir",
    outDir,
    `${ROOT}/main.ts`,
  ];
}

/** Whether `deno compile`'s error output says it could not download the runtime base. */
export function isRuntimeFetchFailure(stderr: string): boolean {
  return /dl\.deno\.land|denort|Setting up base binary|dns error|error sending request/i.test(stderr);
}

/** The one-line explanation printed for a target whose runtime base could not be fetched. */
export function noNetworkMessage(target: string): string {
  return `cannot fetch the Deno runtime base for ${target} (no network to dl.deno.land); ` +
    "set DENORT_BIN or build on a machine with network";
}

/** How one target's build ended. */
export interface BuildResult {
  target: Target;
  ok: boolean;
  /** One line: the output path, or why it failed. */
  message: string;
}

// deno-lint-ignore no-control-regex
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/** Compiles btfetch for `target` into `outDir`, killing `deno compile` after `timeoutMs`. */
export async function buildTarget(target: Target, outDir: string, timeoutMs: number): Promise<BuildResult> {
  const output = `${outDir}/${binaryName(target)}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: compileArgs(target, output),
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const stderr = stripAnsi(new TextDecoder().decode(out.stderr));
  if (out.success && !timedOut) return { target, ok: true, message: `built ${output}` };
  if (timedOut) {
    const why = isRuntimeFetchFailure(stderr) || /Download/.test(stderr)
      ? noNetworkMessage(target)
      : `deno compile for ${target} did not finish within ${timeoutMs / 1000} s`;
    return { target, ok: false, message: why };
  }
  if (isRuntimeFetchFailure(stderr) && !Deno.env.get("DENORT_BIN")) {
    return { target, ok: false, message: noNetworkMessage(target) };
  }
  const firstError = stderr.split("\n").find((l) => /error/i.test(l))?.trim() ?? `exit code ${out.code}`;
  return { target, ok: false, message: `deno compile for ${target} failed: ${firstError}` };
}

const USAGE = `Usage: deno run -A scripts/build.ts [--target TRIPLE]... [--out-dir DIR] [--timeout SECONDS]
Targets: ${TARGETS.join(", ")} (default: all)
DENORT_BIN (environment) is passed to deno compile as the runtime base; pair it with --target.`;

/** Runs the build with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args,
      options: {
        target: { type: "string", multiple: true },
        "out-dir": { type: "string" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    console.error(`build: ${e instanceof Error ? e.message : e}\n${USAGE}`);
    return 2;
  }
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const targets: Target[] = [];
  for (const t of v.target ?? TARGETS) {
    if (!(TARGETS as readonly string[]).includes(t)) {
      console.error(`build: unknown target "${t}"\n${USAGE}`);
      return 2;
    }
    targets.push(t as Target);
  }
  const timeoutS = Number(v.timeout ?? "600");
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
    console.error(`build: --timeout: "${v.timeout}" is not a positive number of seconds`);
    return 2;
  }
  const outDir = v["out-dir"] ?? `${ROOT}/dist`;
  await Deno.mkdir(outDir, { recursive: true });
  if (Deno.env.get("DENORT_BIN") && targets.length > 1) {
    console.error("build: warning: DENORT_BIN is used as the runtime base for every target; pass --target to match it");
  }
  let failed = 0;
  for (const t of targets) {
    const r = await buildTarget(t, outDir, timeoutS * 1000);
    if (r.ok) console.log(r.message);
    else {
      failed++;
      console.error(r.message);
    }
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
