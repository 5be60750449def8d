/**
 * std-style assertions over `node:assert/strict` (JSR's @std/assert is out of reach here).
 * @module
 */
import assert from "node:assert/strict";

/** Asserts deep, strict equality. */
export function assertEquals<T>(actual: unknown, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg);
}

/** Asserts that two values are not deeply equal. */
export function assertNotEquals(actual: unknown, expected: unknown, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}

/** Asserts that a value is truthy. */
export function assert_(cond: unknown, msg?: string): asserts cond {
  assert.ok(cond, msg);
}
export { assert_ as assert };

/** Asserts that `fn` throws an instance of `cls`, and returns the error for further checks. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  cls: new (...args: any[]) => E,
  msg?: string,
): E {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new assert.AssertionError({
      message: `${msg ?? "assertThrows"}: expected ${cls.name}, got ${e instanceof Error ? e.stack : String(e)}`,
    });
  }
  throw new assert.AssertionError({ message: `${msg ?? "assertThrows"}: expected ${cls.name}, nothing was thrown` });
}

/** Asserts that the promise rejects with an instance of `cls`, and returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  cls: new (...args: any[]) => E,
  msg?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new assert.AssertionError({
      message: `${msg ?? "assertRejects"}: expected ${cls.name}, got ${e instanceof Error ? e.stack : String(e)}`,
    });
  }
  throw new assert.AssertionError({ message: `${msg ?? "assertRejects"}: expected ${cls.name}, nothing was thrown` });
}
