import { assert, assertEquals } from "../_assert.ts";
import { Listener } from "../../lib/engine/listener.ts";
import { encodeHandshake, type Handshake, reservedBits } from "../../lib/wire/handshake.ts";
import {
  CRYPTO_PLAINTEXT,
  CRYPTO_RC4,
  initiatorStep3,
  mseCiphers,
  publicKey,
  sharedSecret,
} from "../../lib/wire/mse.ts";

const infoHash = new Uint8Array(20).map((_, i) => i + 1);
const hex = Array.from(infoHash, (b) => b.toString(16).padStart(2, "0")).join("");
const theirs: Handshake = { reserved: reservedBits({ fast: true }), infoHash, peerId: new Uint8Array(20).fill(0x41) };

async function readSome(conn: Deno.Conn, want: number, ms = 3000): Promise<Uint8Array> {
  const out: number[] = [];
  const buf = new Uint8Array(4096);
  const deadline = Date.now() + ms;
  while (out.length < want && Date.now() < deadline) {
    const n = await conn.read(buf);
    if (n === null) break;
    out.push(...buf.subarray(0, n));
  }
  return new Uint8Array(out);
}

async function withListener(
  fn: (port: number, accepted: Promise<{ h: Handshake; leftover: Uint8Array }>) => Promise<void>,
) {
  const l = Listener.open(0);
  let resolve!: (v: { h: Handshake; leftover: Uint8Array }) => void;
  const accepted = new Promise<{ h: Handshake; leftover: Uint8Array }>((r) => (resolve = r));
  const conns: Deno.TcpConn[] = [];
  l.register(hex, (conn, h, leftover) => {
    conns.push(conn);
    resolve({ h, leftover });
    return true;
  });
  try {
    await fn(l.port, accepted);
  } finally {
    for (const c of conns) c.close();
    await l.close();
  }
}

Deno.test("Listener routes a plain handshake to its torrent with the bytes that followed", async () => {
  await withListener(async (port, accepted) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await c.write(new Uint8Array([...encodeHandshake(theirs), 0, 0, 0, 1, 2]));
      const got = await accepted;
      assertEquals(got.h.infoHash, infoHash);
      assertEquals(got.leftover, new Uint8Array([0, 0, 0, 1, 2]));
    } finally {
      c.close();
    }
  });
});

Deno.test("Listener accepts an MSE handshake, selects plaintext and routes the handshake inside it", async () => {
  await withListener(async (port, accepted) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const xa = 0x1f2e3d4c5b6a798807f6e5d4c3b2a1n;
      await c.write(new Uint8Array([...publicKey(xa), ...new Uint8Array(33).fill(9)])); // Ya, PadA
      const yb = await readSome(c, 96);
      const s = sharedSecret(yb.subarray(0, 96), xa);
      const ia = encodeHandshake(theirs);
      const after = new Uint8Array([0, 0, 0, 1, 2]); // an `interested`, in plaintext after the handshake
      await c.write(new Uint8Array([...initiatorStep3(s, infoHash, CRYPTO_PLAINTEXT | CRYPTO_RC4, ia), ...after]));
      // the receiver's step 4 follows its padding: find the encrypted verification constant
      const { b } = mseCiphers(s, infoHash);
      const vc = b.apply(new Uint8Array(8));
      const rest = await readSome(c, 14, 1000);
      const all = new Uint8Array([...yb.subarray(96), ...rest]);
      let at = -1;
      for (let i = 0; i + 8 <= all.length && at < 0; i++) if (vc.every((x, k) => all[i + k] === x)) at = i;
      assert(at >= 0, "no encrypted VC from the receiver");
      const select = b.apply(all.subarray(at + 8, at + 14));
      assertEquals(select, new Uint8Array([0, 0, 0, CRYPTO_PLAINTEXT, 0, 0]));
      const got = await accepted;
      assertEquals(got.h.peerId, theirs.peerId);
      assertEquals(got.leftover, after);
    } finally {
      c.close();
    }
  });
});

Deno.test("Listener drops an MSE handshake for a torrent it does not have", async () => {
  await withListener(async (port) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const xa = 0x1234567n;
      await c.write(publicKey(xa));
      const yb = await readSome(c, 96);
      const s = sharedSecret(yb.subarray(0, 96), xa);
      await c.write(initiatorStep3(s, new Uint8Array(20).fill(0xee), CRYPTO_PLAINTEXT, encodeHandshake(theirs)));
      const more = await readSome(c, 1, 2000);
      assertEquals(more.length, 0, "the listener should close without answering");
    } finally {
      c.close();
    }
  });
});

Deno.test("Listener accepts peers over IPv6 too", async () => {
  await withListener(async (port, accepted) => {
    let c: Deno.TcpConn;
    try {
      c = await Deno.connect({ hostname: "::1", port });
    } catch {
      return; // no IPv6 loopback on this machine: nothing to check
    }
    try {
      await c.write(encodeHandshake(theirs));
      const got = await accepted;
      assertEquals(got.h.infoHash, infoHash);
    } finally {
      c.close();
    }
  });
});
