import { assert, assertEquals } from "../_assert.ts";
import { AddressRefused, BODY_READ_BYTES, RangeClient, type RangeResponse } from "../../lib/engine/webseed_http.ts";

/**
 * A loopback HTTP/1.1 server that answers each request with `answer(requestHead, n)` (n counts requests over all
 * connections) and closes a connection after an answer when `closeAfter` says so. Counts connections and requests.
 */
function scriptedServer(
  answer: (head: string, n: number) => Uint8Array,
  closeAfter: (n: number) => boolean = () => false,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stats = { connections: 0, requests: 0, heads: [] as string[] };
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      stats.connections++;
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        let have = "";
        try {
          for (;;) {
            const r = await conn.read(buf);
            if (r === null) break;
            have += new TextDecoder().decode(buf.subarray(0, r));
            let end: number;
            while ((end = have.indexOf("\r\n\r\n")) >= 0) {
              const head = have.slice(0, end);
              have = have.slice(end + 4);
              const n = stats.requests++;
              stats.heads.push(head);
              const bytes = answer(head, n);
              for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
              if (closeAfter(n)) throw new Error("close");
            }
          }
        } catch {
          /* closed */
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch { /* already */ }
        }
      })();
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}/file.bin`,
    stats,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already */ }
      }
      await serving.catch(() => {});
    },
  };
}

const enc = (s: string) => new TextEncoder().encode(s);

/** A 206 answer with `body`, framed by Content-Length. */
function partial(body: Uint8Array, extra = ""): Uint8Array {
  const head = enc(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${body.length}\r\n${extra}\r\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** Reads a whole body through `res.read`, reusing the buffer as readBody does. */
async function readAll(res: RangeResponse): Promise<Uint8Array> {
  const parts: number[] = [];
  let buf = new Uint8Array(4096);
  for (;;) {
    const chunk = await res.read(buf);
    if (chunk === null) break;
    parts.push(...chunk);
    buf = new Uint8Array(chunk.buffer as ArrayBuffer);
  }
  res.close();
  return Uint8Array.from(parts);
}

const BODY = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7) & 255);

Deno.test("RangeClient reads a Content-Length answer over its own connection and reuses it for the next", async () => {
  const server = scriptedServer(() => partial(BODY));
  const client = new RangeClient();
  try {
    const signal = new AbortController().signal;
    for (let k = 0; k < 3; k++) {
      const res = await client.request(server.url, 100, 10_099, signal);
      assertEquals([res.status, res.header("Content-Length")], [206, "10000"]);
      assertEquals(await readAll(res), BODY);
    }
    assertEquals([server.stats.connections, server.stats.requests], [1, 3]);
    assert(server.stats.heads[0].includes("Range: bytes=100-10099"), server.stats.heads[0]);
    assert(server.stats.heads[0].startsWith("GET /file.bin HTTP/1.1"));
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("RangeClient asks again on a new connection when a kept-alive one was closed by the server", async () => {
  const server = scriptedServer(() => partial(BODY), () => true); // closes after every answer
  const client = new RangeClient();
  try {
    const signal = new AbortController().signal;
    for (let k = 0; k < 2; k++) assertEquals(await readAll(await client.request(server.url, 0, 9_999, signal)), BODY);
    assertEquals([server.stats.connections, server.stats.requests], [2, 2]);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("RangeClient leaves to fetch() what it does not read itself, and never reuses a doubtful connection", async (t) => {
  const chunked = enc("HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  await t.step("a chunked answer: fetch() asks again and reads it", async () => {
    const server = scriptedServer(() => chunked);
    const client = new RangeClient();
    try {
      const res = await client.request(server.url, 0, 4, new AbortController().signal);
      assertEquals(new TextDecoder().decode(await readAll(res)), "hello");
      assertEquals(server.stats.requests, 2, "ours, then fetch()'s");
    } finally {
      client.close();
      await server.close();
    }
  });
  await t.step("Connection: close: the next request opens a new connection", async () => {
    const server = scriptedServer(() => partial(BODY, "Connection: close\r\n"));
    const client = new RangeClient();
    try {
      for (let k = 0; k < 2; k++) {
        await readAll(await client.request(server.url, 0, 9_999, new AbortController().signal));
      }
      assertEquals(server.stats.connections, 2);
    } finally {
      client.close();
      await server.close();
    }
  });
  await t.step("an HTTP/1.0 answer without keep-alive: not reused", async () => {
    const server = scriptedServer(() => {
      const a = partial(BODY);
      a.set(enc("HTTP/1.0"));
      return a;
    });
    const client = new RangeClient();
    try {
      for (let k = 0; k < 2; k++) {
        await readAll(await client.request(server.url, 0, 9_999, new AbortController().signal));
      }
      assertEquals(server.stats.connections, 2);
    } finally {
      client.close();
      await server.close();
    }
  });
  await t.step("a body left unread: the connection is closed, not reused", async () => {
    const server = scriptedServer(() => partial(BODY));
    const client = new RangeClient();
    try {
      const res = await client.request(server.url, 0, 9_999, new AbortController().signal);
      await res.read(new Uint8Array(10));
      res.close();
      await readAll(await client.request(server.url, 0, 9_999, new AbortController().signal));
      assertEquals(server.stats.connections, 2);
    } finally {
      client.close();
      await server.close();
    }
  });
  await t.step("a direct=false client: every request through fetch()", async () => {
    const server = scriptedServer(() => partial(BODY));
    const client = new RangeClient(false);
    try {
      assertEquals(await readAll(await client.request(server.url, 0, 9_999, new AbortController().signal)), BODY);
      assert(!server.stats.heads[0].includes("User-Agent: btfetch"), "fetch()'s request, not ours");
    } finally {
      client.close();
      await server.close();
    }
  });
});

Deno.test("RangeClient: an abort mid-body ends the read with the signal's reason and closes the connection", async () => {
  // the answer promises more than it sends, then stalls
  const server = scriptedServer(() => enc("HTTP/1.1 206 Partial Content\r\nContent-Length: 100000\r\n\r\nabc"));
  const client = new RangeClient();
  const ac = new AbortController();
  try {
    const res = await client.request(server.url, 0, 99_999, ac.signal);
    const first = await res.read(new Uint8Array(BODY_READ_BYTES));
    assertEquals(first?.length, 3);
    setTimeout(() => ac.abort(new Error("stop")), 20);
    let failed = false;
    try {
      await res.read(new Uint8Array(BODY_READ_BYTES));
    } catch {
      failed = true;
    }
    res.close();
    assert(failed, "the read ended by the abort");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("RangeClient lends read buffers of BODY_READ_BYTES and keeps a few for reuse", () => {
  const client = new RangeClient();
  const a = client.takeBuffer();
  assertEquals(a.length, BODY_READ_BYTES);
  client.giveBuffer(a);
  assertEquals(client.takeBuffer().buffer, a.buffer);
  client.giveBuffer(new Uint8Array(10)); // another size: let go
  assert(client.takeBuffer().length === BODY_READ_BYTES);
  client.close();
});

Deno.test("RangeClient keeps at most 8 idle connections in all, whatever the number of origins", async () => {
  const servers = Array.from({ length: 10 }, () => scriptedServer(() => partial(BODY)));
  const client = new RangeClient();
  try {
    const get = async (k: number) =>
      await readAll(await client.request(servers[k].url, 0, 9_999, new AbortController().signal));
    const connections = () => servers.map((s) => s.stats.connections).reduce((a, b) => a + b);
    for (let k = 0; k < 10; k++) await get(k);
    assertEquals(connections(), 10);
    // the 8 most recent kept theirs: asked again, newest first, they reuse them
    for (let k = 9; k >= 2; k--) await get(k);
    assertEquals(connections(), 10);
    // the 2 oldest were closed: they connect again
    await get(0);
    await get(1);
    assertEquals(connections(), 12);
  } finally {
    client.close();
    for (const s of servers) await s.close();
  }
});

Deno.test("RangeClient checks the address a request goes to before it sends anything", async (t) => {
  const server = scriptedServer(() => partial(BODY));
  const client = new RangeClient();
  const signal = new AbortController().signal;
  const noLoopback = (a: string) => a !== "127.0.0.1" && a !== "::1";
  try {
    await t.step("over a connection of ours: the address it connected to (a name, too)", async () => {
      const byName = server.url.replace("127.0.0.1", "localhost");
      for (const url of [server.url, byName]) {
        let refused: unknown = null;
        try {
          await client.request(url, 0, 9, signal, noLoopback);
        } catch (e) {
          refused = e;
        }
        assert(refused instanceof AddressRefused, `${url}: ${refused}`);
      }
      assertEquals(server.stats.requests, 0); // nothing was sent
    });
    await t.step("through fetch(), which does not tell: the address checked before", async () => {
      let refused: unknown = null;
      try {
        await client.request("https://127.0.0.1:1/f.bin", 0, 9, signal, noLoopback);
      } catch (e) {
        refused = e;
      }
      assert(refused instanceof AddressRefused, String(refused));
    });
    await t.step("an address it may reach is asked as before", async () => {
      const res = await client.request(server.url, 0, 9_999, signal, () => true);
      assertEquals(await readAll(res), BODY);
      assertEquals(server.stats.requests, 1);
    });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("RangeClient says where an answer came from, and after a redirect never hands a request to fetch()", async (t) => {
  const client = new RangeClient();
  const signal = new AbortController().signal;
  try {
    await t.step("an answer over a connection of ours carries its address", async () => {
      const server = scriptedServer(() => partial(BODY));
      try {
        const res = await client.request(server.url, 0, 9_999, signal);
        assertEquals(res.address, "127.0.0.1");
        await readAll(res);
      } finally {
        await server.close();
      }
    });
    await t.step(
      "an answer without Content-Length after a redirect is refused, not asked again by fetch()",
      async () => {
        const chunked = enc(
          "HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        );
        const server = scriptedServer(() => chunked);
        try {
          let refused: unknown = null;
          try {
            await client.request(server.url, 0, 4, signal, () => true);
          } catch (e) {
            refused = e;
          }
          assert(refused instanceof AddressRefused, String(refused));
          assertEquals(server.stats.requests, 1); // ours only: fetch() never asked
        } finally {
          await server.close();
        }
      },
    );
  } finally {
    client.close();
  }
});
