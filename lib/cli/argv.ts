/**
 * Splitting a command line into options and positionals: the algorithm of `parseArgs` from `node:util` in its strict
 * mode with positionals allowed, values, messages and error codes alike, for string and boolean options (short names,
 * groups such as `-qo DIR`, `--name=value`, repeated options, `--` ending the options). It is here, not imported, because
 * loading any `node:` module costs btfetch's start-up about 8 ms; `tests/cli/argv_test.ts` checks it against
 * `node:util` on generated command lines.
 * @module
 */

/** One option: its type, its one-letter short name, and whether it may be given more than once. */
export interface ArgvOption {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
}

/** What a command line holds: the options given (absent ones have no key) and the positionals, in order. */
export interface ParsedArgv {
  readonly values: Record<string, string | boolean | (string | boolean)[]>;
  readonly positionals: string[];
}

/** The error codes of `node:util`'s `parseArgs` that a command line can cause here. */
export type ArgvErrorCode = "ERR_PARSE_ARGS_UNKNOWN_OPTION" | "ERR_PARSE_ARGS_INVALID_OPTION_VALUE";

/** An unknown option, a string option without its value, or a boolean option given one. */
export class ArgvError extends TypeError {
  override readonly name = "ArgvError";
  /** Makes the error; `code` and `message` are those `node:util`'s `parseArgs` gives. */
  constructor(readonly code: ArgvErrorCode, message: string) {
    super(message);
  }
}

/** One option as the command line gave it: `name` as configured, `rawName` as typed (`-o`, `--out`). */
interface OptionToken {
  readonly name: string;
  readonly rawName: string;
  readonly value: string | undefined;
  readonly inlineValue: boolean;
}

/**
 * Parses `args` against `options` as `parseArgs({ args, options, strict: true, allowPositionals: true })` of
 * `node:util` does.
 * @throws {ArgvError} for an unknown option, a string option without a value (or with one that looks like an option,
 * unless given inline as `--out=-x`), or a boolean option with a value.
 * @example
 * ```ts
 * import { deepStrictEqual as eq } from "node:assert/strict";
 * const options = { out: { type: "string", short: "o" }, quiet: { type: "boolean", short: "q" } } as const;
 * const r = parseArgv(["get", "-qo", "dl", "a.torrent", "--", "--x"], options);
 * eq({ ...r.values }, { quiet: true, out: "dl" });
 * eq(r.positionals, ["get", "a.torrent", "--x"]);
 * ```
 */
export function parseArgv(args: readonly string[], options: Readonly<Record<string, ArgvOption>>): ParsedArgv {
  const values: ParsedArgv["values"] = Object.create(null);
  const positionals: string[] = [];
  const has = (name: string) => Object.hasOwn(options, name);
  const typeOf = (name: string) => has(name) ? options[name].type : undefined;
  const longFor = (short: string) => Object.keys(options).find((k) => options[k].short === short) ?? short;
  const option = (t: OptionToken) => {
    check(t, options);
    if (t.name === "__proto__") return;
    const v = t.value ?? true;
    if (has(t.name) && options[t.name].multiple) {
      const list = values[t.name];
      if (Array.isArray(list)) list.push(v);
      else values[t.name] = [v];
    } else {
      values[t.name] = v;
    }
  };
  const rest = [...args];
  while (rest.length > 0) {
    const arg = rest.shift() as string;
    const next = rest[0];
    if (arg === "--") {
      positionals.push(...rest);
      break;
    }
    if (arg.length === 2 && arg[0] === "-" && arg[1] !== "-") { // -o [value]
      const name = longFor(arg.charAt(1));
      const value = typeOf(name) === "string" && next !== undefined ? rest.shift() : undefined;
      option({ name, rawName: arg, value, inlineValue: false });
    } else if (arg.length > 2 && arg[0] === "-" && arg[1] !== "-") {
      if (typeOf(longFor(arg.charAt(1))) !== "string") { // -qo: -q -o; -qodir: -q -odir
        const expanded: string[] = [];
        for (let i = 1; i < arg.length; i++) {
          if (typeOf(longFor(arg.charAt(i))) !== "string" || i === arg.length - 1) {
            expanded.push(`-${arg.charAt(i)}`);
          } else {
            expanded.push(`-${arg.slice(i)}`);
            break;
          }
        }
        rest.unshift(...expanded);
      } else { // -odir
        const name = longFor(arg.charAt(1));
        option({ name, rawName: `-${arg.charAt(1)}`, value: arg.slice(2), inlineValue: true });
      }
    } else if (arg.length > 2 && arg.startsWith("--") && !arg.includes("=", 3)) { // --out [value]
      const name = arg.slice(2);
      const value = typeOf(name) === "string" && next !== undefined ? rest.shift() : undefined;
      option({ name, rawName: arg, value, inlineValue: false });
    } else if (arg.length > 2 && arg.startsWith("--")) { // --out=value
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq);
      option({ name, rawName: `--${name}`, value: arg.slice(eq + 1), inlineValue: true });
    } else {
      positionals.push(arg);
    }
  }
  return { values, positionals };
}

/** The strict checks, in `node:util`'s order: a known option, a value only for string options, no value like `-x`. */
function check(t: OptionToken, options: Readonly<Record<string, ArgvOption>>): void {
  if (!Object.hasOwn(options, t.name)) {
    throw new ArgvError(
      "ERR_PARSE_ARGS_UNKNOWN_OPTION",
      `Unknown option '${t.rawName}'. To specify a positional argument starting with a '-', place it at the end of ` +
        `the command after '--', as in '-- ${JSON.stringify(t.rawName)}`,
    );
  }
  const { short, type } = options[t.name];
  const shortAndLong = `${short ? `-${short}, ` : ""}--${t.name}`;
  if (type === "string" && typeof t.value !== "string") {
    throw new ArgvError("ERR_PARSE_ARGS_INVALID_OPTION_VALUE", `Option '${shortAndLong} <value>' argument missing`);
  }
  if (type === "boolean" && t.value !== undefined) {
    throw new ArgvError("ERR_PARSE_ARGS_INVALID_OPTION_VALUE", `Option '${shortAndLong}' does not take an argument`);
  }
  if (!t.inlineValue && t.value !== undefined && t.value.length > 1 && t.value[0] === "-") {
    const example = t.rawName.startsWith("--") ? `'${t.rawName}=-XYZ'` : `'--${t.name}=-XYZ' or '${t.rawName}-XYZ'`;
    throw new ArgvError(
      "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
      `Option '${t.rawName}' argument is ambiguous.\nDid you forget to specify the option argument for ` +
        `'${t.rawName}'?\nTo specify an option argument starting with a dash use ${example}.`,
    );
  }
}
