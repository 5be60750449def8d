import { assertEquals } from "../_assert.ts";
import {
  ANNOUNCE_RETRY_BASE_MS,
  ANNOUNCE_RETRY_MAX_MS,
  createSchedule,
  EARLY_ANNOUNCE_FLOOR_MS,
  type ScheduleAction,
  scheduleDeadline,
  type ScheduleEvent,
  type ScheduleState,
  stepSchedule,
} from "../../lib/tracker/schedule.ts";
import type { TierState } from "../../lib/tracker/tiers.ts";

const tiers = (t: string[][]): TierState => ({ tiers: t, tier: 0, index: 0 });

/** Feeds events in order, recording the actions each produced. */
class Script {
  s: ScheduleState;
  constructor(t: string[][]) {
    this.s = createSchedule(tiers(t));
  }
  step(ev: ScheduleEvent, now: number): ScheduleAction[] {
    const [s, acts] = stepSchedule(this.s, ev, now);
    this.s = s;
    return acts;
  }
  ok(url: string, now: number, interval = 1800, minInterval?: number): ScheduleAction[] {
    return this.step({ type: "announce-ok", url, interval, minInterval }, now);
  }
  fail(url: string, now: number): ScheduleAction[] {
    return this.step({ type: "announce-failed", url }, now);
  }
  get deadline(): number | null {
    return scheduleDeadline(this.s);
  }
}

const A = "http://a/announce";
const B = "udp://b:6969";
const C = "http://c/announce";

Deno.test("stepSchedule() sends started first, then re-announces every interval", () => {
  const x = new Script([[A]]);
  assertEquals(x.deadline, null);
  assertEquals(x.step({ type: "timer" }, 0), []); // idle: nothing
  assertEquals(x.step({ type: "start" }, 0), [{ type: "announce", url: A, event: "started" }]);
  assertEquals(x.deadline, null); // in flight: no timer
  assertEquals(x.step({ type: "start" }, 1), []);
  assertEquals(x.ok(A, 100, 600), []);
  assertEquals(x.deadline, 600_100);
  assertEquals(x.step({ type: "timer" }, 600_099), []);
  assertEquals(x.step({ type: "timer" }, 600_100), [{ type: "announce", url: A }]);
  assertEquals(x.ok(A, 600_200, 900), []);
  assertEquals(x.deadline, 1_500_200);
});

Deno.test("stepSchedule() never re-announces before min interval", () => {
  const x = new Script([[A]]);
  x.step({ type: "start" }, 0);
  x.ok(A, 0, 60, 300);
  assertEquals(x.deadline, 300_000);
});

Deno.test("stepSchedule() announces early for need-peers, but not before the floor or min interval", async (t) => {
  await t.step("before the floor: moved forward to the floor", () => {
    const x = new Script([[A]]);
    x.step({ type: "start" }, 0);
    x.ok(A, 1000);
    assertEquals(x.step({ type: "need-peers" }, 5000), []);
    assertEquals(x.deadline, 1000 + EARLY_ANNOUNCE_FLOOR_MS);
    assertEquals(x.step({ type: "timer" }, 1000 + EARLY_ANNOUNCE_FLOOR_MS), [{ type: "announce", url: A }]);
  });
  await t.step("after the floor: at once", () => {
    const x = new Script([[A]]);
    x.step({ type: "start" }, 0);
    x.ok(A, 0);
    assertEquals(x.step({ type: "need-peers" }, 40_000), [{ type: "announce", url: A }]);
    assertEquals(x.step({ type: "need-peers" }, 40_001), []); // in flight
  });
  await t.step("a longer min interval wins over the floor", () => {
    const x = new Script([[A]]);
    x.step({ type: "start" }, 0);
    x.ok(A, 0, 1800, 120);
    assertEquals(x.step({ type: "need-peers" }, 40_000), []);
    assertEquals(x.deadline, 120_000);
  });
  await t.step("ignored before the first success and while backing off", () => {
    const x = new Script([[A]]);
    x.step({ type: "start" }, 0);
    assertEquals(x.step({ type: "need-peers" }, 10), []);
    x.fail(A, 100);
    assertEquals(x.step({ type: "need-peers" }, 200_000), []);
    assertEquals(x.deadline, 100 + ANNOUNCE_RETRY_BASE_MS);
  });
});

Deno.test("stepSchedule() sends completed once, only after started succeeded", async (t) => {
  await t.step("after started: at once, then never again", () => {
    const x = new Script([[A]]);
    x.step({ type: "start" }, 0);
    x.ok(A, 0);
    assertEquals(x.step({ type: "completed" }, 5000), [{ type: "announce", url: A, event: "completed" }]);
    assertEquals(x.ok(A, 5100), []);
    assertEquals(x.step({ type: "completed" }, 6000), []);
    assertEquals(x.step({ type: "timer" }, 5100 + 1_800_000), [{ type: "announce", url: A }]);
  });
  await t.step("while started is in flight: right after it", () => {
    const x = new Script([[A]]);
    x.step({ type: "start" }, 0);
    assertEquals(x.step({ type: "completed" }, 10), []);
    assertEquals(x.ok(A, 20), [{ type: "announce", url: A, event: "completed" }]);
  });
  await t.step("retried after a failure", () => {
    const x = new Script([[A]]);
    x.step({ type: "start" }, 0);
    x.ok(A, 0);
    x.step({ type: "completed" }, 10);
    assertEquals(x.fail(A, 20), []);
    assertEquals(x.step({ type: "timer" }, 20 + ANNOUNCE_RETRY_BASE_MS), [
      { type: "announce", url: A, event: "completed" },
    ]);
  });
  await t.step("before any started succeeded: never", () => {
    const x = new Script([[A]]);
    x.step({ type: "start" }, 0);
    x.fail(A, 10);
    assertEquals(x.step({ type: "completed" }, 20), []);
    assertEquals(x.step({ type: "timer" }, 10 + ANNOUNCE_RETRY_BASE_MS), [{
      type: "announce",
      url: A,
      event: "started",
    }]);
    assertEquals(x.ok(A, 20_000), []);
    assertEquals(x.step({ type: "timer" }, 20_000 + 1_800_000), [{ type: "announce", url: A }]);
  });
});

Deno.test("stepSchedule() walks the tiers on failure, then backs off doubling to a cap", () => {
  const x = new Script([[A, B], [C]]);
  assertEquals(x.step({ type: "start" }, 0), [{ type: "announce", url: A, event: "started" }]);
  assertEquals(x.fail(A, 10), [{ type: "announce", url: B, event: "started" }]);
  assertEquals(x.fail(B, 20), [{ type: "announce", url: C, event: "started" }]);
  assertEquals(x.fail(C, 30), []);
  assertEquals(x.deadline, 30 + ANNOUNCE_RETRY_BASE_MS);
  let now = 30;
  const waits: number[] = [];
  for (let round = 0; round < 8; round++) {
    const at = x.deadline ?? -1;
    waits.push(at - now);
    now = at;
    assertEquals(x.step({ type: "timer" }, now), [{ type: "announce", url: A, event: "started" }]);
    x.fail(A, now);
    x.fail(B, now);
    x.fail(C, now);
  }
  assertEquals(waits, [15_000, 30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000]);
  assertEquals(ANNOUNCE_RETRY_MAX_MS, 300_000);
});

Deno.test("stepSchedule() talks to the first tracker that works and starts a new one when it switches", () => {
  const x = new Script([[A], [C]]);
  x.step({ type: "start" }, 0);
  assertEquals(x.fail(A, 10), [{ type: "announce", url: C, event: "started" }]);
  assertEquals(x.ok(C, 20, 100), []);
  // a new round starts at the first tier again (BEP 12); A never acknowledged started
  assertEquals(x.step({ type: "timer" }, 100_020), [{ type: "announce", url: A, event: "started" }]);
  assertEquals(x.fail(A, 100_030), [{ type: "announce", url: C }]);
  assertEquals(x.ok(C, 100_040, 100), []);
});

Deno.test("stepSchedule() moves a working tracker to the front of its tier", () => {
  const x = new Script([[A, B]]);
  x.step({ type: "start" }, 0);
  x.fail(A, 1);
  x.ok(B, 2, 100);
  assertEquals(x.s.tiers.tiers, [[B, A]]);
  assertEquals(x.step({ type: "timer" }, 100_002), [{ type: "announce", url: B }]);
});

Deno.test("stepSchedule() sends stopped to the trackers that got started, then goes quiet", async (t) => {
  await t.step("started trackers and the one in flight", () => {
    const x = new Script([[A], [C]]);
    x.step({ type: "start" }, 0);
    x.fail(A, 1); // C in flight with started
    x.ok(C, 2, 100);
    x.step({ type: "timer" }, 100_002); // A in flight with started
    assertEquals(x.step({ type: "stop" }, 100_003), [
      { type: "announce", url: C, event: "stopped" },
      { type: "announce", url: A, event: "stopped" },
    ]);
    assertEquals(x.deadline, null);
    assertEquals(x.ok(A, 100_004), []);
    assertEquals(x.step({ type: "need-peers" }, 200_000), []);
    assertEquals(x.step({ type: "timer" }, 10_000_000), []);
    assertEquals(x.step({ type: "stop" }, 10_000_001), []);
  });
  await t.step("nobody started: nothing to send", () => {
    const x = new Script([[A]]);
    x.step({ type: "start" }, 0);
    x.fail(A, 1);
    assertEquals(x.step({ type: "stop" }, 2), []);
    assertEquals(new Script([[A]]).step({ type: "stop" }, 0), []);
  });
});

Deno.test("stepSchedule() ignores results for a tracker that is not in flight", () => {
  const x = new Script([[A, B]]);
  x.step({ type: "start" }, 0);
  const before = x.s;
  assertEquals(x.ok(B, 1), []);
  assertEquals(x.fail(B, 2), []);
  assertEquals(x.s, before);
});

Deno.test("stepSchedule() with no trackers does nothing", () => {
  const x = new Script([]);
  assertEquals(x.step({ type: "start" }, 0), []);
  assertEquals(x.deadline, null);
});
