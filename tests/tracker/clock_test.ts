import { assertEquals } from "../_assert.ts";
import { tick, VirtualClock } from "./_clock.ts";
import { realClock } from "../../lib/tracker/clock.ts";

Deno.test("realClock cancels a timer it set and reads monotonic time", () => {
  let fired = false;
  const t0 = realClock.now();
  realClock.clearTimeout(realClock.setTimeout(() => fired = true, 0));
  realClock.clearTimeout(undefined);
  assertEquals([fired, realClock.now() >= t0], [false, true]);
});

// the tracker runtimes' tests rest on this double: its rules are checked here once
Deno.test("VirtualClock fires timers only as the test moves time, each at its own time, in order", async () => {
  const c = new VirtualClock(1000);
  const fired: string[] = [];
  c.setTimeout(() => fired.push(`b@${c.now()}`), 200);
  const dropped = c.setTimeout(() => fired.push("dropped"), 50);
  c.setTimeout(() => fired.push(`a@${c.now()}`), 100);
  c.setTimeout(() => fired.push(`a2@${c.now()}`), 100); // same time: in the order set
  c.clearTimeout(dropped);
  await tick();
  assertEquals([fired, c.pending], [[], [1100, 1100, 1200]]);
  await c.advanceTo(1150);
  assertEquals([fired, c.now()], [["a@1100", "a2@1100"], 1150]);
  await c.advance(50);
  assertEquals([fired, c.pending], [["a@1100", "a2@1100", "b@1200"], []]);
});

Deno.test("VirtualClock fires a timer set by a timer within the same advance, and one due now at once", async () => {
  const c = new VirtualClock();
  const fired: number[] = [];
  c.setTimeout(() => {
    fired.push(c.now());
    c.setTimeout(() => fired.push(c.now()), 10);
  }, 10);
  await c.advanceTo(25);
  assertEquals(fired, [10, 20]);
  c.setTimeout(() => fired.push(c.now()), 0);
  c.setTimeout(() => fired.push(c.now()), -5);
  await Promise.resolve();
  assertEquals(fired, [10, 20, 25, 25]); // due now: fired on a microtask, without time moving
});
