import { assertEquals } from "../_assert.ts";
import { PeerConn } from "../../lib/engine/peer_conn.ts";
import { decodeMessage } from "../../lib/wire/messages.ts";
import { readFrame } from "../../lib/wire/frame.ts";

Deno.test("PeerConn.send() queues more messages at once than its write buffer holds, in order", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = listener.accept();
  const client = await Deno.connect({ hostname: "127.0.0.1", port });
  const server = await accepted;
  const conn = new PeerConn(client, { host: "127.0.0.1", port });
  const count = 5000; // 5000 requests of 17 bytes: 85,000 bytes, past the 32 KiB the buffer starts with
  try {
    for (let i = 0; i < count; i++) conn.send({ type: "request", index: i, begin: 0, length: 16384 });
    const want = count * 17;
    const buf = new Uint8Array(want);
    let got = 0;
    while (got < want) {
      const n = await server.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    assertEquals(got, want);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const f = readFrame(buf, at);
      if (f.kind !== "frame") throw new Error(`frame ${i} incomplete`);
      assertEquals(decodeMessage(f.payload), { type: "request", index: i, begin: 0, length: 16384 });
      at = f.next;
    }
  } finally {
    conn.close();
    server.close();
    listener.close();
  }
});
