import { assertEquals } from "../_assert.ts";
import { runBtfetch } from "../interop/_btfetch.ts";

Deno.test("btfetch info shows the URL each web seed is asked for each file (BEP 19)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-info-ws-" });
  try {
    await Deno.mkdir(`${dir}/my site/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/my site/a b.txt`, "hello");
    await Deno.writeTextFile(`${dir}/my site/sub/c#d.txt`, "world");
    const made = await runBtfetch(["create", `${dir}/my site`, "-o", `${dir}/t.torrent`, "-w", "http://m.example/pub"]);
    assertEquals(made.code, 0, made.stderr);
    const r = await runBtfetch(["info", `${dir}/t.torrent`, "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assertEquals(info.web_seed_urls, [{
      url: "http://m.example/pub",
      files: ["http://m.example/pub/my%20site/a%20b.txt", "http://m.example/pub/my%20site/sub/c%23d.txt"],
    }]);
    const text = await runBtfetch(["info", `${dir}/t.torrent`]);
    assertEquals(text.stdout.includes("-> http://m.example/pub/my%20site/a%20b.txt"), true, text.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
