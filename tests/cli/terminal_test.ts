/**
 * The progress display through a real pseudo-terminal (tmux), at several widths, checked on the screen after the run:
 * the live line never wraps and leaves nothing behind (no stale progress rows, no `^C` remnant), and what stays is
 * the lines a person needs: the metadata, where the files are, one summary or one stop line.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { btfetchArgv } from "../interop/_btfetch.ts";
import { type SeedChild, startSeed, torrentWithData, withTempDir } from "./_cli.ts";

function has(program: string): boolean {
  try {
    return new Deno.Command(program, { args: ["-V"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

/** A row of a live line, whole or in part: a percentage, the bar, the ETA, elapsed or seeding time. */
const LIVE = /\d+\.\d%|\[[#-]{4,}|ETA \d|elapsed \d|seeding \d/;

function sq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** One private tmux server for the test; every pane runs a btfetch command and writes its exit code to a file. */
class Tmux {
  readonly socket = `btfetch-test-${Deno.pid}`;
  constructor(readonly dir: string) {}

  async run(args: string[]): Promise<string> {
    const r = await new Deno.Command("tmux", { args: ["-L", this.socket, ...args], stdout: "piped", stderr: "piped" })
      .output();
    if (!r.success) throw new Error(`tmux ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
    return new TextDecoder().decode(r.stdout);
  }

  /** Starts `btfetch ARGS` in a pane `columns` wide, in the test's folder; its exit code goes to a file. */
  async start(name: string, columns: number, args: string[]): Promise<void> {
    const [cmd, argv] = btfetchArgv(args);
    const line = `${[cmd, ...argv].map(sq).join(" ")}; echo EXIT=$? > ${sq(`${this.dir}/${name}.exit`)}; sleep 600`;
    await this.run(["new-session", "-d", "-s", name, "-x", String(columns), "-y", "40", "-c", this.dir, line]);
  }

  /** The pane's screen, rows without trailing blanks, trailing empty rows dropped. */
  async screen(name: string): Promise<string[]> {
    const rows = (await this.run(["capture-pane", "-p", "-t", name])).split("\n").map((r) => r.trimEnd());
    while (rows.length > 0 && rows.at(-1) === "") rows.pop();
    return rows;
  }

  /** Waits until the pane's command has exited; its exit code. */
  async exit(name: string, ms = 60_000): Promise<number> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      try {
        return Number(/EXIT=(\d+)/.exec(await Deno.readTextFile(`${this.dir}/${name}.exit`))?.[1]);
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw new Error(`${name} did not exit in ${ms} ms:\n${(await this.screen(name)).join("\n")}`);
  }

  /** Waits until the pane shows a row matching `re`. */
  async waitFor(name: string, re: RegExp, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await this.screen(name)).some((r) => re.test(r))) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${name}: no ${re} in ${ms} ms:\n${(await this.screen(name)).join("\n")}`);
  }

  async close(): Promise<void> {
    await this.run(["kill-server"]).catch(() => {});
  }
}

async function withTmux(fn: (tmux: Tmux, tmp: string, seeder: SeedChild) => Promise<void>): Promise<void> {
  await withTempDir("btfetch-tty-", async (tmp) => {
    const tor = await torrentWithData(tmp, { size: 3 * 1024 * 1024, seed: 5, pieceLength: 32 * 1024 });
    const seeder = await startSeed(tor.path, tor.dataDir);
    const tmux = new Tmux(tmp);
    try {
      await fn(tmux, tmp, seeder);
    } finally {
      await tmux.close();
      await seeder.stop();
    }
  });
}

/** Asserts that no row of `rows` is (part of) a live line or a `^C` echo. */
function noTrail(rows: string[], what: string): void {
  const stale = rows.filter((r) => LIVE.test(r) || r.includes("^C"));
  assertEquals(stale, [], `${what}: rows left behind:\n${rows.join("\n")}`);
}

Deno.test({
  name: "a download in a 40-, 60-, 80- and 120-column terminal leaves only its three lines on the screen",
  ignore: !has("tmux"),
  async fn() {
    await withTmux(async (tmux, _tmp, seeder) => {
      const widths = [40, 60, 80, 120];
      for (const w of widths) {
        await tmux.start(`get${w}`, w, [
          "get",
          "t.torrent",
          "-o",
          `out${w}`,
          "--no-dht",
          "--port",
          "0",
          "--peer",
          `127.0.0.1:${seeder.port}`,
          "--max-download-rate",
          "1M",
        ]);
      }
      for (const w of widths) {
        assertEquals(await tmux.exit(`get${w}`), 0, (await tmux.screen(`get${w}`)).join("\n"));
        const rows = await tmux.screen(`get${w}`);
        noTrail(rows, `${w} columns`);
        // the messages are wrapped at spaces, so the rows joined by spaces are the messages
        const text = rows.join(" ");
        const want = new RegExp(
          `^payload\\.bin: 3\\.0 MiB in 1 file out${w}/payload\\.bin: complete, 3\\.0 MiB verified ` +
            // downloaded and wasted: the four downloads find each other through PEX, so an endgame may duplicate blocks
            `Done in [\\d.]+ s: downloaded [\\d.]+ [KM]iB \\([^)]*\\) from \\d+ peers?, uploaded [^,]*, wasted [^;]*; ` +
            `peers found: 1 manual[a-z0-9, ]*$`,
        );
        assert(want.test(text), `${w} columns:\n${rows.join("\n")}`);
        assert(rows.every((r) => r.length < w), `${w} columns: a row fills the width`);
      }
    });
  },
});

Deno.test({
  name: "Ctrl-C in a 40-column terminal: seeding stops with one line, a download with its error, no remnant",
  ignore: !has("tmux"),
  async fn() {
    await withTmux(async (tmux, tmp, seeder) => {
      await tmux.start("seed", 40, ["seed", "t.torrent", "-d", "data", "--no-dht", "--port", "0"]);
      await tmux.start("get", 40, [
        "t.torrent",
        "-o",
        "stalled",
        "--no-dht",
        "--port",
        "0",
        "--peer",
        `127.0.0.1:${seeder.port}`,
        "--max-download-rate",
        "16K",
      ]);
      await tmux.waitFor("seed", /^seeding \d/);
      await tmux.waitFor("get", /elapsed 0:0[2-9]/);
      await tmux.run(["send-keys", "-t", "seed", "C-c"]);
      await tmux.run(["send-keys", "-t", "get", "C-c"]);

      assertEquals(await tmux.exit("seed"), 0);
      const seed = await tmux.screen("seed");
      noTrail(seed, "seed");
      const seedText = seed.join(" ");
      assert(
        /data\/payload\.bin: complete, 3\.0 MiB verified Seeding until stopped \(Ctrl-C\) Stopped seeding after 0:\d\d \(uploaded [\d.]+ [KM]?i?B, ratio \d\.\d\d\)$/
          .test(seedText),
        seed.join("\n"),
      );

      assertEquals(await tmux.exit("get"), 130);
      const get = await tmux.screen("get");
      noTrail(get, "get");
      // the error line is printed as it is: the terminal wraps it
      assertEquals(
        get.slice(1).join(""),
        "btfetch: Interrupted by SIGINT: state saved, run the same command again to resume",
        get.join("\n"),
      );
      assert((await Deno.stat(`${tmp}/stalled/.btfetch`)).isDirectory, "the resume record stays after an interrupt");
    });
  },
});
