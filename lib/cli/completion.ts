/**
 * `btfetch completion bash|zsh|fish`: a shell completion script, made from the command and flag tables of
 * `flags.ts` (so it never lists a flag the parser does not take). Commands, the flags of the command being typed,
 * folders after `-o`/`-d`, files after `--save-torrent` and for the torrent, the shells after `completion`.
 * @module
 */
import { type Command, COMMANDS, FLAGS, type FlagSpec, type Shell } from "./flags.ts";

/** What a command's positional argument is, for completion. */
const POSITIONAL: Readonly<Record<Command, "torrent" | "path" | "shell" | "none">> = {
  get: "torrent",
  info: "torrent",
  seed: "torrent",
  verify: "torrent",
  magnet: "torrent",
  create: "path",
  completion: "shell",
  demo: "none",
  help: "none",
  version: "none",
};

const SHELL_NAMES = "bash zsh fish";

/** The commands, in table order. */
function commands(): Command[] {
  return Object.keys(COMMANDS) as Command[];
}

/** The flags `command` takes, in table order. */
function flagsOf(command: Command): [string, FlagSpec][] {
  return Object.entries(FLAGS).filter(([, f]) => f.commands.includes(command));
}

/** What a flag's value is for `command`: folders, files, or anything (nothing to offer); undefined for a switch. */
function valueKind(f: FlagSpec, command: Command): "dir" | "file" | "any" | undefined {
  if (f.type === "boolean") return undefined;
  const v = f.valueFor?.[command] ?? f.value ?? "";
  return v === "DIR" ? "dir" : v === "FILE" || v === "PATH" ? "file" : "any";
}

/** `text` as one single-quoted shell word. */
function sq(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The completion script for `shell`.
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * ok(completionScript("bash").includes("complete -o filenames -F _btfetch btfetch"));
 * ok(completionScript("fish").includes("-l out"));
 * ```
 */
export function completionScript(shell: Shell): string {
  switch (shell) {
    case "bash":
      return bash();
    case "zsh":
      return zsh();
    case "fish":
      return fish();
  }
}

function bash(): string {
  const names = commands().join(" ");
  const byCommand = commands().map((c) => {
    const words = flagsOf(c).flatMap(([name, f]) => [`--${name}`, ...(f.short ? [`-${f.short}`] : [])]);
    return `    ${c}) words=${sq(words.join(" "))} ;;`;
  });
  const values = (kind: "dir" | "file" | "any") => {
    const set = new Set<string>();
    for (const c of commands()) {
      for (const [name, f] of flagsOf(c)) {
        if (valueKind(f, c) !== kind) continue;
        // create -o is a file where the other commands' -o is a folder: decided below by the command
        if (name === "out") continue;
        set.add(`--${name}`);
        if (f.short) set.add(`-${f.short}`);
      }
    }
    return [...set].join("|") || "--none";
  };
  const positional = commands().map((c) => {
    const kind = POSITIONAL[c];
    const action = kind === "shell"
      ? `COMPREPLY=($(compgen -W "${SHELL_NAMES}" -- "$cur"))`
      : kind === "none"
      ? "COMPREPLY=()"
      : `COMPREPLY=($(compgen -f -- "$cur"))`;
    return `    ${c}) ${action} ;;`;
  });
  return `# btfetch completion for bash. Load it in this shell with: source <(btfetch completion bash)
# or for good with: btfetch completion bash > ~/.local/share/bash-completion/completions/btfetch
_btfetch() {
  local cur prev cmd="" words i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      ${commands().join("|")}) cmd="\${COMP_WORDS[i]}"; break ;;
      -*) ;;
      *) [[ -n "$cmd" ]] || cmd=get; break ;;
    esac
  done
  case "$prev" in
    -o|--out|-d|--dir)
      if [[ "$cmd" == create ]]; then COMPREPLY=($(compgen -f -- "$cur")); else COMPREPLY=($(compgen -d -- "$cur")); fi
      return ;;
    ${values("dir")}) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    ${values("file")}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    ${values("any")}) COMPREPLY=(); return ;;
  esac
  if [[ "$cur" == -* ]]; then
    case "\${cmd:-get}" in
${byCommand.join("\n")}
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    return
  fi
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "${names}" -- "$cur") $(compgen -f -- "$cur"))
    return
  fi
  case "$cmd" in
${positional.join("\n")}
  esac
}
complete -o filenames -F _btfetch btfetch
`;
}

/** A description for zsh's `[...]`: brackets and colons taken out. */
function zdesc(text: string): string {
  return text.replace(/[[\]:]/g, " ").replace(/\s+/g, " ").trim();
}

function zsh(): string {
  const describe = commands().map((c) => `    ${sq(`${c}:${zdesc(COMMANDS[c])}`)}`);
  const specs = commands().map((c) => {
    const lines = flagsOf(c).flatMap(([name, f]) => {
      const kind = valueKind(f, c);
      const action = kind === undefined
        ? ""
        : `:${name}:${kind === "dir" ? "_files -/" : kind === "file" ? "_files" : " "}`;
      const star = f.multiple ? "*" : "";
      const out = [sq(`${star}--${name}${kind ? "=" : ""}[${zdesc(f.help)}]${action}`)];
      if (f.short) out.push(sq(`${star}-${f.short}${kind ? "+" : ""}[${zdesc(f.help)}]${action}`));
      return out;
    });
    const kind = POSITIONAL[c];
    if (kind === "torrent" || kind === "path") lines.push(sq(`1:${kind}:_files`));
    if (kind === "shell") lines.push(sq(`1:shell:(${SHELL_NAMES})`));
    return `    ${c}) args=(\n      ${lines.join("\n      ")}\n    ) ;;`;
  });
  return `#compdef btfetch
# btfetch completion for zsh. Load it with: source <(btfetch completion zsh)
# or for good: btfetch completion zsh > "\${fpath[1]}/_btfetch"
_btfetch() {
  local -a commands args
  commands=(
${describe.join("\n")}
  )
  local cmd=get
  if (( CURRENT > 2 )) && [[ -n "\${commands[(r)\${words[2]}:*]}" ]]; then
    cmd=\${words[2]}
    shift words
    (( CURRENT-- ))
  elif (( CURRENT == 2 )) && [[ "\${words[2]}" != -* ]]; then
    _describe -t commands command commands
    _files
    return
  fi
  case $cmd in
${specs.join("\n")}
  esac
  _arguments -s $args
}
if [[ "\${funcstack[1]}" == _btfetch ]]; then _btfetch "$@"; elif (( $+functions[compdef] )); then compdef _btfetch btfetch; fi
`;
}

function fish(): string {
  const all = commands().join(" ");
  const lines = [
    "# btfetch completion for fish. Load it with: btfetch completion fish | source",
    "# or for good: btfetch completion fish > ~/.config/fish/completions/btfetch.fish",
    "complete -c btfetch -f",
  ];
  const none = `not __fish_seen_subcommand_from ${all}`;
  for (const c of commands()) {
    lines.push(`complete -c btfetch -n ${sq(none)} -a ${c} -d ${sq(COMMANDS[c])}`);
  }
  // a flag is offered after a command that takes it, and before any command when `get` (the default) takes it
  for (const [name, f] of Object.entries(FLAGS)) {
    const groups = new Map<string, Command[]>();
    for (const c of f.commands) {
      const kind = valueKind(f, c) ?? "switch";
      groups.set(kind, [...(groups.get(kind) ?? []), c]);
    }
    for (const [kind, cs] of groups) {
      const cond = [`__fish_seen_subcommand_from ${cs.join(" ")}`, ...(cs.includes("get") ? [none] : [])].join("; or ");
      const value = kind === "dir"
        ? " -x -a '(__fish_complete_directories)'"
        : kind === "file"
        ? " -r -F"
        : kind === "any"
        ? " -x"
        : "";
      lines.push(
        `complete -c btfetch -n ${sq(cond)} -l ${name}${f.short ? ` -s ${f.short}` : ""}${value} -d ${sq(f.help)}`,
      );
    }
  }
  const byKind = (k: string) => commands().filter((c) => POSITIONAL[c] === k);
  lines.push(
    `complete -c btfetch -n ${
      sq(`__fish_seen_subcommand_from ${[...byKind("torrent"), ...byKind("path")].join(" ")}; or ${none}`)
    } -F`,
    `complete -c btfetch -n ${sq(`__fish_seen_subcommand_from ${byKind("shell").join(" ")}`)} -x -a ${sq(SHELL_NAMES)}`,
  );
  return lines.join("\n") + "\n";
}
