/**
 * `node:` built-in modules loaded on first use, synchronously. Deno compiles its `node:` polyfills when a process first
 * loads one: 8-13 ms for the first, 25-45 ms for `node:fs` or `node:crypto`, paid on the main thread before anything
 * else can run. A `get` whose download needs none of them (a fresh download: the writer thread opens and writes the
 * files) then never pays that; code that does need one (reading pieces back for a peer, a resume record, hashing data
 * already on disk) loads it here at that moment.
 * @module
 */

interface BuiltinLoader {
  getBuiltinModule(id: string): unknown;
}

const loaded = new Map<string, unknown>();

/**
 * The `node:` built-in module `id`, loaded (through `process.getBuiltinModule`) on the first call.
 * @throws {TypeError} when the runtime has no such module.
 * @example
 * ```ts
 * import { strictEqual as eq } from "node:assert/strict";
 * import type * as NodeFs from "node:fs";
 * const fs = nodeBuiltin<typeof NodeFs>("node:fs");
 * eq(typeof fs.openSync, "function");
 * eq(nodeBuiltin<typeof NodeFs>("node:fs"), fs); // loaded once
 * ```
 */
export function nodeBuiltin<T>(id: `node:${string}`): T {
  let m = loaded.get(id);
  if (m === undefined) {
    const proc = (globalThis as unknown as { process?: BuiltinLoader }).process;
    m = proc?.getBuiltinModule(id);
    if (m === undefined || m === null) throw new TypeError(`Cannot load ${id}: the runtime does not provide it`);
    loaded.set(id, m);
  }
  return m as T;
}
