import { assert, assertEquals } from "./_assert.ts";
import { clearTimer, MAX_DELAY_MS, setRepeat, setTimer, sleep } from "../lib/timers.ts";
import { realClock } from "../lib/tracker/clock.ts";

const LIB = new URL("../lib/", import.meta.url);

Deno.test("timers: a timer fires once, after its delay, in the order of its due time", async () => {
  const t0 = performance.now();
  const order: string[] = [];
  await new Promise<void>((resolve) => {
    setTimer(() => order.push("30"), 30);
    setTimer(() => order.push("5"), 5);
    setTimer(() => {
      order.push("60");
      resolve();
    }, 60);
  });
  assert(performance.now() - t0 >= 59, `the 60 ms timer fired after ${performance.now() - t0} ms`);
  assertEquals(order, ["5", "30", "60"]);
});

Deno.test("timers: a cleared timer never fires; clearing twice, an unknown or undefined handle does nothing", async () => {
  let fired = 0;
  const h = setTimer(() => fired++, 5);
  clearTimer(h);
  clearTimer(h);
  clearTimer(undefined);
  clearTimer(987_654_321);
  await sleep(30);
  assertEquals(fired, 0);
  // a fired one is forgotten: clearing it later is harmless
  const h2 = setTimer(() => fired++, 1);
  await sleep(20);
  clearTimer(h2);
  assertEquals(fired, 1);
});

Deno.test("timers: a repeat runs until cleared, even when cleared from its own callback", async () => {
  let calls = 0;
  await new Promise<void>((resolve) => {
    const h = setRepeat(() => {
      if (++calls === 4) {
        clearTimer(h);
        resolve();
      }
    }, 2);
  });
  await sleep(30);
  assertEquals(calls, 4);
  // a 0 ms repeat runs every millisecond at most, as Node's setInterval does, instead of spinning
  let zero = 0;
  const z = setRepeat(() => zero++, 0);
  await sleep(50);
  clearTimer(z);
  assert(zero >= 1 && zero <= 100, `a 0 ms repeat ran ${zero} times in 50 ms`);
});

Deno.test("timers: NaN and negative delays are 0; a delay past the platform's bound is cut to it, not wrapped", async () => {
  const fired: string[] = [];
  setTimer(() => fired.push("nan"), NaN);
  setTimer(() => fired.push("negative"), -50);
  const far = setTimer(() => fired.push("far"), MAX_DELAY_MS * 4);
  const inf = setTimer(() => fired.push("infinite"), Infinity);
  // the trackers' real clock too: a tracker's interval of 2^31 ms or more re-announced every 1 ms on Node's timers
  const tracker = realClock.setTimeout(() => fired.push("tracker interval"), 2 ** 31 + 5);
  await sleep(30);
  clearTimer(far);
  clearTimer(inf);
  realClock.clearTimeout(tracker);
  assertEquals(fired.sort(), ["nan", "negative"]);
});

Deno.test("timers: sleep ends early, without rejecting, when its signal aborts (or has)", async () => {
  const t0 = performance.now();
  await sleep(60_000, AbortSignal.abort());
  const ctl = new AbortController();
  setTimer(() => ctl.abort(), 5);
  await sleep(60_000, ctl.signal);
  assert(performance.now() - t0 < 5_000);
});

/** Runs `code` (which imports the timers as `T`) in a process of its own; its stdout, exit code and wall time. */
async function inProcess(code: string): Promise<{ out: string; code: number; ms: number }> {
  const src = `import * as T from ${JSON.stringify(new URL("timers.ts", LIB).href)};\n${code}`;
  const t0 = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", src],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { out: new TextDecoder().decode(r.stdout).trim(), code: r.code, ms: performance.now() - t0 };
}

Deno.test("timers: an armed timer keeps the process alive; a cleared one does not hold it", async () => {
  const kept = await inProcess(`T.setTimer(() => console.log("fired"), 300);`);
  assertEquals([kept.out, kept.code], ["fired", 0]);
  const repeat = await inProcess(
    `let n = 0; const h = T.setRepeat(() => { if (++n === 3) { T.clearTimer(h); console.log(n); } }, 50);`,
  );
  assertEquals([repeat.out, repeat.code], ["3", 0]);
  const cleared = await inProcess(`const h = T.setTimer(() => console.log("fired"), 20_000); T.clearTimer(h);`);
  assertEquals([cleared.out, cleared.code], ["", 0]);
  assert(cleared.ms < 15_000, `a cleared 20 s timer held the process ${Math.round(cleared.ms)} ms`);
});

/** The lines of `text` with comments blanked: comment lines, and the rest of a line after `//`. */
function codeLines(text: string): string[] {
  return text.split("\n").map((l) => /^\s*(\*|\/\*\*|\/\/)/.test(l) ? "" : l.replace(/\s\/\/.*$/, ""));
}

Deno.test("timers: lib/ arms no global timer (Deno's are node:timers, whose first call costs the main thread 8-36 ms)", async () => {
  const offenders: string[] = [];
  const walk = async (dir: URL) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(new URL(`${e.name}/`, dir));
      else if (e.name.endsWith(".ts")) {
        const lines = codeLines(await Deno.readTextFile(new URL(e.name, dir)));
        lines.forEach((l, i) => {
          const signature = /^\s*\w+\(.*\):\s*\w+( \| \w+)*;$/.test(l); // a method declared in an interface
          const names = "setTimeout|setInterval|clearTimeout|clearInterval|setImmediate";
          const global = new RegExp(`(?<![.\\w#])(${names})\\s*\\(`).test(l) || // a call
            new RegExp(`\\b(globalThis|self|window)\\.(${names})\\b`).test(l) || // through the global object
            new RegExp(`[(,]\\s*(${names})\\s*[,)]`).test(l) || // passed as a value
            /["']node:timers(\/promises)?["']/.test(l) || /Deno\.(un)?refTimer/.test(l);
          if (!signature && global) {
            offenders.push(`${new URL(e.name, dir).pathname.replace(/^.*\/lib\//, "lib/")}:${i + 1}: ${l.trim()}`);
          }
        });
      }
    }
  };
  await walk(LIB);
  assertEquals(offenders, []);
});
