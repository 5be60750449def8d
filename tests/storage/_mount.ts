/**
 * Mounts for storage tests that need a real read-only or full file system. They need root (the test machines run as
 * root); `canMount` says whether this run can, so tests are ignored elsewhere instead of failing.
 * @module
 */

/** Whether this process may mount (it is root on Linux). */
export const canMount: boolean = Deno.build.os === "linux" && Deno.uid?.() === 0;

async function run(cmd: string, args: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`);
}

/** Unmounts `dir` and removes it; lazily when something still holds it open (a failed test), so no mount leaks. */
async function unmount(dir: string): Promise<void> {
  try {
    await run("umount", [dir]);
  } catch {
    await run("umount", ["-l", dir]);
  }
  await Deno.remove(dir);
}

/** Runs `fn` with `src` also visible read-only at a new mount point (a read-only bind mount), unmounted after. */
export async function withReadOnlyView<T>(src: string, fn: (ro: string) => Promise<T> | T): Promise<T> {
  const ro = await Deno.makeTempDir({ prefix: "btfetch-ro-" });
  await run("mount", ["--bind", src, ro]);
  try {
    await run("mount", ["-o", "remount,bind,ro", ro]);
    return await fn(ro);
  } finally {
    await unmount(ro);
  }
}

/** Runs `fn` with a fresh tmpfs of `kib` KiB mounted on a new directory, unmounted after. */
export async function withTmpfs<T>(kib: number, fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-tmpfs-" });
  await run("mount", ["-t", "tmpfs", "-o", `size=${kib}k`, "tmpfs", dir]);
  try {
    return await fn(dir);
  } finally {
    await unmount(dir);
  }
}
