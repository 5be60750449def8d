import { assertEquals } from "../_assert.ts";
import {
  BEP15_BASE_DELAY_MS,
  type Exchange,
  type ExchangeAction,
  retransmitDelayMs,
  startExchange,
  stepExchange,
} from "../../lib/tracker/udp_exchange.ts";
import { UDP_TRACKER_MAX_ATTEMPT } from "../../lib/limits.ts";

const body = new Uint8Array([1, 2, 3]);

Deno.test("retransmitDelayMs() doubles from the base", () => {
  assertEquals([0, 1, 2, 3].map((n) => retransmitDelayMs(n)), [15_000, 30_000, 60_000, 120_000]);
  assertEquals(retransmitDelayMs(3, 2000), 16_000);
  assertEquals(BEP15_BASE_DELAY_MS, 15_000);
});

Deno.test("stepExchange() retransmits on BEP 15's schedule then gives up", () => {
  let [x, acts]: [Exchange | null, ExchangeAction[]] = startExchange(42, 0);
  assertEquals(acts, [{ type: "send" }, { type: "wake", at: 15_000 }]);
  const sends: number[] = [0];
  let now = 0;
  for (let i = 0; i < 10 && x; i++) {
    const at = acts.find((a) => a.type === "wake");
    if (!at || at.type !== "wake") break;
    now = at.at;
    [x, acts] = stepExchange(x, { type: "timer" }, now);
    if (acts.some((a) => a.type === "send")) sends.push(now);
  }
  assertEquals(sends, [0, 15_000, 45_000, 105_000]);
  assertEquals(sends.length, UDP_TRACKER_MAX_ATTEMPT + 1);
  assertEquals([x, acts], [null, [{ type: "give-up", attempts: UDP_TRACKER_MAX_ATTEMPT + 1 }]]);
  assertEquals(now, 225_000);
});

Deno.test("stepExchange() gives up at the overall deadline", () => {
  const [x, acts] = startExchange(1, 1000, { baseDelayMs: 2000, until: 4000 });
  assertEquals(acts, [{ type: "send" }, { type: "wake", at: 3000 }]);
  const [y, a2] = stepExchange(x, { type: "timer" }, 3000);
  assertEquals(a2, [{ type: "send" }, { type: "wake", at: 4000 }]); // capped by `until`, not 7000
  assertEquals(stepExchange(y as Exchange, { type: "timer" }, 4000), [null, [{ type: "give-up", attempts: 2 }]]);
});

Deno.test("stepExchange() ignores an early timer and a wrong txid, delivers the right one", () => {
  const [x] = startExchange(7, 0, { baseDelayMs: 1000 });
  assertEquals(stepExchange(x, { type: "timer" }, 500), [x, [{ type: "wake", at: 1000 }]]);
  assertEquals(stepExchange(x, { type: "datagram", txid: 8, body }, 600), [x, []]);
  assertEquals(stepExchange(x, { type: "datagram", txid: 7, body }, 700), [null, [{ type: "deliver", body }]]);
});
