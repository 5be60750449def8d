/**
 * `fitLine()`, `wrapText()` and the `Reporter`: the live line fits the terminal at every width from 40 columns up
 * (read again before each redraw), fields go in rank order, the end of a run is one line, seeding shows what it
 * uploads, and a fresh download prints no `checking` line.
 * @module
 */
import { join } from "node:path";
import type { TimedEvent } from "../../lib/engine/events.ts";
import { fitLine, type LiveField, Reporter, type ReportSinks, wrapText } from "../../lib/cli/report.ts";
import { assert, assertEquals } from "../_assert.ts";

/** A reporter writing into strings, on a TTY of `columns` (a function, so a test can resize it) or a pipe. */
function capture(columns: number | (() => number) | null, opts: { json?: boolean; outDir?: string } = {}) {
  const out = { stdout: "", stderr: "" };
  const sinks: ReportSinks = {
    stdout: (t) => out.stdout += t,
    stderr: (t) => out.stderr += t,
    stderrIsTty: columns !== null,
    color: false,
    columns: columns === null ? undefined : typeof columns === "number" ? () => columns : columns,
  };
  const dir = opts.outDir;
  const dataPath = dir === undefined ? undefined : (name: string) => join(dir, name);
  return { out, r: new Reporter(sinks, opts.json ?? false, false, { dataPath }) };
}

/** What a terminal shows of a live stream: each redraw (`\r` + erase-line) replaces the line being drawn. */
function redraws(stderr: string): string[] {
  return stderr.split("\n").flatMap((line) => line.split("\r\x1b[2K")).filter((s) => s !== "");
}

const META: TimedEvent = {
  event: "metadata",
  t: 0,
  name: "ubuntu-24.04-desktop-amd64.iso",
  info_hash: "ab".repeat(20),
  size: 6_000_000_000,
  piece_length: 4_194_304,
  pieces: 1431,
  private: false,
  files: [{ index: 1, path: "ubuntu-24.04-desktop-amd64.iso", length: 6_000_000_000, selected: true }],
};

function progress(t: number, over: Partial<Extract<TimedEvent, { event: "progress" }>> = {}): TimedEvent {
  return {
    event: "progress",
    t,
    verified: 2_345_678_901,
    total: 6_000_000_000,
    downloaded: 2_345_678_901,
    uploaded: 123_456_789,
    download_rate: 98_765_432,
    upload_rate: 1_234_567,
    peers: 48,
    eta_s: 3725,
    web_seeds: 0,
    ...over,
  };
}

function done(t: number, over: Partial<Extract<TimedEvent, { event: "done" }>> = {}): TimedEvent {
  return {
    event: "done",
    t,
    path: "dl/name",
    complete: true,
    downloaded: 0,
    uploaded: 0,
    wasted: 0,
    verified: 6_000_000_000,
    elapsed_ms: t,
    peers: [],
    sources: {},
    ...over,
  };
}

Deno.test("fitLine() never exceeds the width minus 2 and keeps rank 0, at every width from 40 to 200", () => {
  const fields: LiveField[] = [
    { text: "100.0%", rank: 0 },
    { text: "5.6 GiB/5.6 GiB", rank: 5 },
    { text: "down 1023.9 MiB/s", tight: "1023.9 MiB/s", rank: 3 },
    { text: "up 1023.9 MiB/s", rank: 7 },
    { text: "199 peers", rank: 6 },
    { text: "ETA 123:59:59", rank: 2 },
    { text: "elapsed 123:59:59", rank: 1 },
  ];
  for (let w = 40; w <= 200; w++) {
    for (const bar of [undefined, { fraction: 0.37, rank: 4 }]) {
      const l = fitLine(fields, w, bar);
      const shown = l.bar === null ? l.text : `[${l.bar}] ${l.text}`;
      assert(shown.length <= w - 2, `${w} columns: ${JSON.stringify(shown)} is ${shown.length} long`);
      assert(l.text.startsWith("100.0%"), `${w}: ${l.text}`);
      // elapsed (rank 1) outranks everything else but the percentage: it is there at every width
      assert(l.text.includes("123:59:59"), `${w}: ${l.text}`);
      if (l.bar !== null) assert(l.bar.length >= 8 && l.bar.length <= 30, `${w}: bar ${l.bar.length}`);
    }
  }
  // wide enough, everything is there with labels
  const wide = fitLine(fields, 200, { fraction: 0.5, rank: 4 });
  assertEquals(
    wide.text,
    "100.0%  5.6 GiB/5.6 GiB  down 1023.9 MiB/s  up 1023.9 MiB/s  199 peers  ETA 123:59:59  elapsed 123:59:59",
  );
  assertEquals(wide.bar?.length, 30);
});

Deno.test("fitLine() drops the highest rank first, brings back what fits, and cuts what cannot fit alone", async (t) => {
  const f = (text: string, rank: number, tight?: string): LiveField => ({ text, rank, tight });
  const rows: { name: string; fields: LiveField[]; columns: number; want: string }[] = [
    { name: "all fit", fields: [f("a", 0), f("bb", 1), f("cc", 2)], columns: 12, want: "a  bb  cc" },
    { name: "rank 2 goes first", fields: [f("a", 0), f("bbbb", 2), f("cc", 1)], columns: 10, want: "a  cc" },
    {
      name: "a smaller field that fits comes back after a wider one went",
      fields: [f("a", 0), f("bbbbbbbb", 1), f("c", 2)],
      columns: 8,
      want: "a  c",
    },
    {
      name: "tight labels when they keep a more important field",
      fields: [f("50%", 0), f("down 1 MiB/s", 1, "1 MiB/s"), f("3 peers", 2)],
      columns: 21,
      want: "50% 1 MiB/s 3 peers",
    },
    { name: "rank 0 alone is cut to the width", fields: [f("x".repeat(50), 0)], columns: 40, want: "x".repeat(38) },
  ];
  for (const row of rows) {
    await t.step(row.name, () => assertEquals(fitLine(row.fields, row.columns).text, row.want));
  }
});

Deno.test("wrapText() breaks at spaces within the width and cuts a longer word", async (t) => {
  const rows: [string, number, string][] = [
    ["short", 40, "short"],
    ["aaa bbb ccc", 7, "aaa bbb\nccc"],
    ["aaaaaaaaaa b", 4, "aaaa\naaaa\naa b"],
    ["  seeder  sent 1 MiB", 14, "  seeder  sent\n1 MiB"],
  ];
  for (const [text, w, want] of rows) await t.step(JSON.stringify(text), () => assertEquals(wrapText(text, w), want));
});

Deno.test("Reporter's live line fits a TTY of 40 to 160 columns and shows the elapsed time", () => {
  for (const w of [40, 50, 60, 80, 100, 120, 160]) {
    const { out, r } = capture(w);
    r.event(META);
    out.stderr = "";
    for (let t = 1000; t <= 5000; t += 1000) r.event(progress(t));
    r.close();
    for (const line of redraws(out.stderr)) {
      assert(line.length <= w - 2, `${w} columns: ${JSON.stringify(line)}`);
      assert(/^(\[[#-]+\] )?39\.1% /.test(line), `${w}: ${line}`);
      assert(line.includes("elapsed 0:0"), `${w}: no elapsed time in ${JSON.stringify(line)}`);
    }
    assert(out.stderr.endsWith("\r\x1b[2K"), "close() clears the live line");
  }
});

Deno.test("Reporter reads the width before each redraw (a resized terminal)", () => {
  let w = 120;
  const { out, r } = capture(() => w);
  r.event(progress(1000));
  w = 40;
  r.event(progress(2000));
  const [wide, narrow] = redraws(out.stderr);
  assert(wide.length > 80 && wide.length <= 118, wide);
  assert(narrow.length <= 38, narrow);
});

Deno.test("Reporter says 1 peer, 2 peers", () => {
  const { out, r } = capture(160);
  r.event(progress(1000, { peers: 1 }));
  r.event(progress(2000, { peers: 2 }));
  const [one, two] = redraws(out.stderr);
  assert(/ 1 peer /.test(one), one);
  assert(/ 2 peers /.test(two), two);
});

Deno.test("Reporter prints no checking line for a fresh download, and one for a check that takes a while", async (t) => {
  await t.step("fresh: the only checking event is the last one, and nothing was found", () => {
    for (const columns of [80, null]) {
      const { out, r } = capture(columns);
      r.event(META);
      r.event({ event: "checking", t: 5, checked: 1431, total: 1431 });
      r.event({ event: "resume", t: 6, source: "hash", verified: 0, pieces: 0, missing: 1431 });
      r.close();
      assert(!/checking/.test(out.stderr), JSON.stringify(out.stderr));
    }
  });
  await t.step("data on disk: checking progress, then what was found", () => {
    const { out, r } = capture(80);
    r.event({ event: "checking", t: 1000, checked: 400, total: 1431 });
    r.event({ event: "checking", t: 1500, checked: 1431, total: 1431 });
    r.event({ event: "resume", t: 1501, source: "hash", verified: 1_000_000_000, pieces: 240, missing: 1191 });
    const lines = redraws(out.stderr);
    assert(/checking 28%/.test(lines[0]), lines[0]);
    assertEquals(lines.at(-1), "Found 954 MiB already verified on disk (hashed)");
  });
});

Deno.test("Reporter shows uploaded, ratio, upload rate and peers while seeding", () => {
  const { out, r } = capture(120, { outDir: "dl" });
  r.event(META);
  r.event({ event: "complete", t: 1000, verified: 6_000_000_000, elapsed_ms: 1000 });
  r.event({ event: "seeding", t: 1000, until: { ratio: 2, time_s: null } });
  r.event(progress(61_000, { verified: 6_000_000_000, uploaded: 3_000_000_000, upload_rate: 2_000_000, peers: 1 }));
  const lines = redraws(out.stderr);
  assertEquals(lines.slice(1, 3), [
    "dl/ubuntu-24.04-desktop-amd64.iso: complete, 5.6 GiB verified",
    "Seeding until ratio 2",
  ]);
  assertEquals(lines[3], "seeding 1:00  uploaded 2.8 GiB  ratio 0.50  up 1.9 MiB/s  1 peer");
});

Deno.test("Reporter words a machine-readable seeding limit", async (t) => {
  const rows: [unknown, string][] = [
    [null, "Seeding until stopped (Ctrl-C)"],
    [{ ratio: 2, time_s: null }, "Seeding until ratio 2"],
    [{ ratio: null, time_s: 5400 }, "Seeding until 1:30:00 have passed"],
    [{ ratio: 1.5, time_s: 600 }, "Seeding until ratio 1.5 or 10:00 have passed"],
  ];
  for (const [until, want] of rows) {
    await t.step(JSON.stringify(until), () => {
      const { out, r } = capture(null);
      r.event({ event: "seeding", t: 0, until } as unknown as TimedEvent);
      assertEquals(out.stderr, want + "\n");
    });
  }
});

Deno.test("Reporter sums up a run only when it moved or hashed bytes", async (t) => {
  await t.step("bytes moved: Done in …", () => {
    const { out, r } = capture(null);
    r.event(done(12_300, { downloaded: 10_485_760, uploaded: 1024, peers: [peer(1), peer(0)], sources: { pex: 2 } }));
    r.summary();
    assertEquals(
      out.stderr,
      "Done in 12.3 s: downloaded 10.0 MiB (833 KiB/s) from 1 peer, uploaded 1.0 KiB, wasted 0 B; peers found: 2 pex\n",
    );
  });
  await t.step("only hashed: what was verified", () => {
    const { out, r } = capture(null);
    r.event({ event: "resume", t: 400, source: "hash", verified: 1_048_576, pieces: 4, missing: 0 });
    r.event(done(500));
    r.summary();
    assertEquals(out.stderr.split("\n").at(-2), "Done in 0.5 s: 1.0 MiB verified on disk, nothing to download");
  });
  await t.step("nothing done (complete from the resume record): no summary", () => {
    const { out, r } = capture(null);
    r.event({ event: "resume", t: 4, source: "resume", verified: 1_048_576, pieces: 4, missing: 0 });
    r.event(done(5));
    r.summary();
    assert(!/Done/.test(out.stderr), out.stderr);
  });
  await t.step("the done event alone prints nothing (a failure's error line comes alone)", () => {
    const { out, r } = capture(null);
    r.event(done(9_000, { complete: false, downloaded: 5_000_000 }));
    r.close();
    assertEquals(out.stderr, "");
  });
});

Deno.test("Reporter's stoppedSeeding() says how long it seeded, what it uploaded and the ratio", () => {
  const { out, r } = capture(null);
  r.event({ event: "complete", t: 2_000, verified: 1_000_000, elapsed_ms: 2_000 });
  r.event({ event: "seeding", t: 2_000, until: null });
  r.event(done(3_725_000 + 2_000, { uploaded: 1_500_000 }));
  assertEquals(r.seeding, true);
  r.stoppedSeeding();
  assertEquals(out.stderr.split("\n").at(-2), "Stopped seeding after 1:02:05 (uploaded 1.4 MiB, ratio 1.50)");
});

Deno.test("Reporter wraps a long message at spaces on a TTY, not on a pipe", () => {
  const text = "Tracker http://tracker.example/announce: the tracker answered with an error about this torrent";
  const tty = capture(40);
  tty.r.say(text);
  for (const line of tty.out.stderr.trimEnd().split("\n")) assert(line.length <= 39, line);
  const pipe = capture(null);
  pipe.r.say(text);
  assertEquals(pipe.out.stderr, text + "\n");
});

function peer(downloaded: number) {
  return { address: `127.0.0.1:${6881 + downloaded}`, client: "", downloaded, uploaded: 0 };
}
