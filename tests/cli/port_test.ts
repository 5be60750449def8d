import { assert, assertEquals } from "../_assert.ts";
import { makeTorrent } from "../_torrent.ts";
import { runBtfetch } from "../interop/_btfetch.ts";

Deno.test("get --port on a port that is in use exits 4 with one line saying so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "btfetch-port-" });
  const taken = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const { bytes } = makeTorrent({ name: "p.bin", pieceLength: 16384, files: new Uint8Array(40000).fill(3) });
    await Deno.writeFile(`${dir}/t.torrent`, bytes);
    const r = await runBtfetch(
      ["get", `${dir}/t.torrent`, "-o", `${dir}/out`, "--port", String(port), "--json", "--timeout", "5s"],
      { timeoutMs: 60_000 },
    );
    assertEquals(r.code, 4, r.stderr);
    const errors = r.events.filter((e) => e.event === "error");
    assertEquals(errors.length, 1);
    assertEquals(errors[0].code, 4);
    assert(String(errors[0].message).includes(`port ${port}`), String(errors[0].message));
    assertEquals(r.stderr.trim().split("\n").filter((l) => l.startsWith("btfetch:")).length, 1);
  } finally {
    taken.close();
    await Deno.remove(dir, { recursive: true });
  }
});
