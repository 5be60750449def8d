import { assertEquals } from "../_assert.ts";
import {
  decodeDhtState,
  defaultDhtStatePath,
  encodeDhtState,
  loadDhtState,
  MAX_SAVED_NODES,
  MAX_STATE_FILE_BYTES,
  saveDhtState,
} from "../../lib/dht/state_file.ts";

const id = (b: number) => new Uint8Array(20).fill(b);

Deno.test("encodeDhtState() and decodeDhtState() round-trip ids and IPv4/IPv6 nodes", () => {
  const s = {
    id: id(7),
    nodes: [
      { id: id(1), address: { host: "127.0.0.1", port: 6881 } },
      { id: id(2), address: { host: "::1", port: 6882 } },
    ],
  };
  assertEquals(decodeDhtState(encodeDhtState(s)), s);
});

Deno.test("decodeDhtState() refuses other files and skips bad nodes", async (t) => {
  const good = { id: "07".repeat(20), address: "10.0.0.1:1" };
  const rows: { name: string; text: string; nodes: number | null }[] = [
    { name: "not JSON", text: "{", nodes: null },
    { name: "another version", text: JSON.stringify({ version: 2, id: "07".repeat(20), nodes: [] }), nodes: null },
    { name: "a short id", text: JSON.stringify({ version: 1, id: "07", nodes: [] }), nodes: null },
    { name: "nodes not a list", text: JSON.stringify({ version: 1, id: "07".repeat(20), nodes: 3 }), nodes: 0 },
    {
      name: "bad entries skipped",
      text: JSON.stringify({
        version: 1,
        id: "07".repeat(20),
        nodes: [good, { id: "zz", address: "10.0.0.1:1" }, { id: "07".repeat(20), address: "10.0.0.1:0" }, null],
      }),
      nodes: 1,
    },
    {
      name: "too many nodes: the first MAX_SAVED_NODES kept",
      text: JSON.stringify({ version: 1, id: "07".repeat(20), nodes: Array(MAX_SAVED_NODES + 50).fill(good) }),
      nodes: MAX_SAVED_NODES,
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => assertEquals(decodeDhtState(r.text)?.nodes.length ?? null, r.nodes));
  }
});

Deno.test("defaultDhtStatePath() follows XDG, macOS and Windows conventions", async (t) => {
  const rows = [
    { name: "XDG_CACHE_HOME", env: { XDG_CACHE_HOME: "/c", HOME: "/h" }, os: "linux", want: "/c/btfetch/dht.json" },
    {
      name: "relative XDG ignored",
      env: { XDG_CACHE_HOME: "c", HOME: "/h" },
      os: "linux",
      want: "/h/.cache/btfetch/dht.json",
    },
    { name: "HOME", env: { HOME: "/h" }, os: "linux", want: "/h/.cache/btfetch/dht.json" },
    { name: "macOS", env: { HOME: "/Users/a" }, os: "darwin", want: "/Users/a/Library/Caches/btfetch/dht.json" },
    { name: "Windows", env: { LOCALAPPDATA: "C:\\L" }, os: "windows", want: "C:\\L\\btfetch\\dht.json" },
    { name: "no home", env: {}, os: "linux", want: null },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const env = r.env as Record<string, string>;
      assertEquals(defaultDhtStatePath((k) => env[k], r.os), r.want);
    });
  }
});

Deno.test("saveDhtState() writes atomically; loadDhtState() reads it back and ignores bad files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-dht-state-" });
  try {
    const path = `${dir}/sub/dht.json`;
    const s = { id: id(3), nodes: [{ id: id(4), address: { host: "10.1.2.3", port: 4000 } }] };
    assertEquals(saveDhtState(path, s), null);
    assertEquals(loadDhtState(path), s);
    assertEquals([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name), ["dht.json"]); // no temporary file left
    assertEquals(loadDhtState(`${dir}/missing.json`), null);
    await Deno.writeTextFile(`${dir}/big.json`, " ".repeat(MAX_STATE_FILE_BYTES + 1));
    assertEquals(loadDhtState(`${dir}/big.json`), null);
    // an unwritable place is reported, not thrown, and leaves no temporary file
    await Deno.writeTextFile(`${dir}/file`, "x");
    assertEquals(typeof saveDhtState(`${dir}/file/dht.json`, s), "string");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
