/**
 * `btfetch demo`: the loopback swarm finishes, prints its summary last, re-verifies every copy and removes its
 * temporary folder, also when interrupted. Each run gets its own TMPDIR so that what it leaves behind is visible.
 * @module
 */
import { assertEquals } from "../_assert.ts";
import { type BtEvent, runBtfetch, spawnBtfetch } from "../interop/_btfetch.ts";
import { brief, exitWithin, namesIn, withTempDir } from "./_cli.ts";

/** The names matching /tmp/btfetch-demo-* (in case TMPDIR were not honoured). */
async function demoDirsInTmp(): Promise<string[]> {
  return ((await namesIn("/tmp")) ?? []).filter((n) => n.startsWith("btfetch-demo-"));
}

Deno.test("btfetch demo --size 8M --leechers 3 exits 0, ends with the summary and leaves no temp folder", async () => {
  await withTempDir("btfetch-cli-demo-", async (tmpdir) => {
    const before = await demoDirsInTmp();
    const r = await runBtfetch(["demo", "--size", "8M", "--leechers", "3"], {
      timeoutMs: 120_000,
      env: { TMPDIR: tmpdir },
    });
    assertEquals(r.code, 0, brief(r));
    const lines = r.stderr.split("\n").map((l) => l.trimEnd()).filter((l) => l !== "");
    const tail = lines.slice(-5);
    const want = [
      /^All 3 leechers have 8(\.0+)? MiB in [\d.]+ s .*every copy re-verified from disk$/,
      /^seeder\s+sent /,
      /^leecher-1\s+got .* from the seeder, .* from other leechers; sent /,
      /^leecher-2\s+got .* from the seeder, .* from other leechers; sent /,
      /^leecher-3\s+got .* from the seeder, .* from other leechers; sent /,
    ];
    for (let i = 0; i < want.length; i++) {
      if (!want[i].test(tail[i]?.trim() ?? "")) {
        throw new Error(`summary line ${i + 1} ${JSON.stringify(tail[i])} does not match ${want[i]}\n${brief(r)}`);
      }
    }
    assertEquals(await namesIn(tmpdir), [], "the demo's temporary folder is removed");
    assertEquals(await demoDirsInTmp(), before);
  });
});

Deno.test("btfetch demo --json reports a demo event with all_verified true, every key in snake_case", async () => {
  await withTempDir("btfetch-cli-demo-", async (tmpdir) => {
    const r = await runBtfetch(["demo", "--size", "8M", "--leechers", "3", "--json"], {
      timeoutMs: 120_000,
      env: { TMPDIR: tmpdir },
    });
    assertEquals(r.code, 0, brief(r));
    const demo = r.events.filter((e) => e.event === "demo");
    assertEquals(demo.length, 1, brief(r));
    const d = demo[0];
    assertEquals(d.all_verified, true);
    assertEquals(d.bytes, 8 * 1024 * 1024);
    assertEquals(typeof d.elapsed_ms, "number");
    assertEquals(typeof d.seeder_uploaded, "number");
    const leechers = d.leechers as Array<{ name: string; from_seeder: number; from_leechers: number }>;
    assertEquals(leechers.map((l) => l.name), ["leecher-1", "leecher-2", "leecher-3"]);
    // every leecher got the payload from somewhere, counted once
    for (const l of leechers) {
      if (l.from_seeder + l.from_leechers < 8 * 1024 * 1024) {
        throw new Error(`${l.name} got too little: ${JSON.stringify(l)}`);
      }
    }
    // the README promises snake_case keys: in every event, at every depth
    const keys = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === "object" && v !== null) {
        for (const [k, x] of Object.entries(v)) {
          keys.add(k);
          walk(x);
        }
      }
    };
    r.events.forEach(walk);
    assertEquals([...keys].filter((k) => !/^[a-z0-9_]+$/.test(k)), []);
    // the sessions' own events are tagged with their name
    const sessions = new Set(r.events.map((e) => e.session).filter((s) => s !== undefined));
    assertEquals([...sessions].sort(), ["leecher-1", "leecher-2", "leecher-3", "seeder"]);
    assertEquals(await namesIn(tmpdir), []);
  });
});

async function interruptDemo(when: (e: BtEvent) => boolean): Promise<void> {
  await withTempDir("btfetch-cli-demo-", async (tmpdir) => {
    const h = spawnBtfetch(["demo", "--size", "64M", "--leechers", "3", "--json"], {
      timeoutMs: 120_000,
      env: { TMPDIR: tmpdir },
    });
    try {
      await h.waitForEvent(when, 60_000);
    } finally {
      h.kill("SIGTERM");
    }
    const { result, killed } = await exitWithin(h, 20_000);
    assertEquals(killed, false, brief(result));
    assertEquals(result.code, 130, brief(result));
    assertEquals(await namesIn(tmpdir), [], "the demo's temporary folder is removed");
  });
}

Deno.test("btfetch demo interrupted by SIGTERM mid-transfer exits 130 and removes its temporary folder", async () => {
  await interruptDemo((e) => e.event === "progress" && e.session === "leecher-3");
});

Deno.test({
  name: "btfetch demo interrupted by SIGTERM while its sessions start exits 130",
  async fn() {
    await interruptDemo((e) => e.session === "leecher-1");
  },
});
