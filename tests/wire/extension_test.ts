import { assertEquals, assertThrows } from "../_assert.ts";
import { decodeExtHandshake, encodeExtHandshake, type ExtHandshake } from "../../lib/wire/extension.ts";
import { WireError } from "../../lib/wire/frame.ts";
import { MAX_METADATA_BYTES } from "../../lib/limits.ts";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

Deno.test("encodeExtHandshake() writes a canonical dictionary", async (t) => {
  const rows: { name: string; h: ExtHandshake; want: string }[] = [
    { name: "empty m", h: { m: new Map() }, want: "d1:mdee" },
    {
      name: "every field",
      h: {
        m: new Map([["ut_pex", 1], ["ut_metadata", 2]]),
        v: "btfetch 0.1",
        p: 6881,
        reqq: 250,
        metadataSize: 31235,
        yourip: new Uint8Array([127, 0, 0, 1]),
      },
      want: "d1:md11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e1:pi6881e4:reqqi250e" +
        "1:v11:btfetch 0.16:yourip4:\x7f\x00\x00\x01e",
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const b = encodeExtHandshake(r.h);
      assertEquals(b, new Uint8Array([...r.want].map((c) => c.charCodeAt(0))));
      assertEquals(decodeExtHandshake(b), r.h);
    });
  }
});

Deno.test("encodeExtHandshake() refuses bad ids and ports", async (t) => {
  const rows: [string, ExtHandshake][] = [
    ["id 256", { m: new Map([["ut_pex", 256]]) }],
    ["id -1", { m: new Map([["ut_pex", -1]]) }],
    ["port 0", { m: new Map(), p: 0 }],
    ["port 65536", { m: new Map(), p: 65536 }],
  ];
  for (const [name, h] of rows) await t.step(name, () => void assertThrows(() => encodeExtHandshake(h), RangeError));
});

Deno.test("decodeExtHandshake() is lenient: unknown keys, unsorted keys, ill-typed optional fields", async (t) => {
  const rows: { name: string; payload: string; want: ExtHandshake }[] = [
    { name: "no m at all", payload: "de", want: { m: new Map() } },
    {
      name: "unknown keys",
      payload: "d1:ai1e1:md6:ut_pexi3ee11:upload_onlyi1ee",
      want: { m: new Map([["ut_pex", 3]]) },
    },
    {
      name: "unsorted keys (some clients)",
      payload: "d1:pi6881e1:md11:ut_metadatai2eee",
      want: { m: new Map([["ut_metadata", 2]]), p: 6881 },
    },
    { name: "id 0 disables an extension", payload: "d1:md6:ut_pexi0eee", want: { m: new Map([["ut_pex", 0]]) } },
    {
      name: "ids out of range or ill-typed are dropped",
      payload: "d1:md1:ai256e1:bi-1e1:c1:x1:di7eee",
      want: { m: new Map([["d", 7]]) },
    },
    { name: "p out of range", payload: "d1:mde1:pi70000ee", want: { m: new Map() } },
    { name: "p as a string", payload: "d1:mde1:p4:6881e", want: { m: new Map() } },
    { name: "reqq 0", payload: "d1:mde4:reqqi0ee", want: { m: new Map() } },
    { name: "negative metadata_size", payload: "d1:mde13:metadata_sizei-1ee", want: { m: new Map() } },
    {
      name: "metadata_size over the limit",
      payload: `d1:mde13:metadata_sizei${MAX_METADATA_BYTES + 1}ee`,
      want: { m: new Map() },
    },
    {
      name: "metadata_size at the limit",
      payload: `d1:mde13:metadata_sizei${MAX_METADATA_BYTES}ee`,
      want: { m: new Map(), metadataSize: MAX_METADATA_BYTES },
    },
    { name: "yourip of 5 bytes", payload: "d1:mde6:yourip5:abcdee", want: { m: new Map() } },
    {
      name: "yourip IPv6",
      payload: "d1:mde6:yourip16:0123456789abcdefe",
      want: { m: new Map(), yourip: text("0123456789abcdef") },
    },
    { name: "v as an integer", payload: "d1:mde1:vi1ee", want: { m: new Map() } },
    { name: "v not UTF-8", payload: "d1:mde1:v2:\xff\xfee", want: { m: new Map(), v: "\ufffd\ufffd" } },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const bytes = new Uint8Array([...r.payload].map((c) => c.charCodeAt(0)));
      assertEquals(decodeExtHandshake(bytes), r.want);
    });
  }
});

Deno.test("decodeExtHandshake() keeps a copy of yourip, not a view", () => {
  const b = text("d1:mde6:yourip4:abcde");
  const h = decodeExtHandshake(b);
  b.fill(0);
  assertEquals(h.yourip, text("abcd"));
});

Deno.test("decodeExtHandshake() refuses what is not one dictionary with bad-payload", async (t) => {
  const rows = [
    { name: "empty", payload: "", offset: 0 },
    { name: "a list", payload: "le", offset: 0 },
    { name: "an integer", payload: "i1e", offset: 0 },
    { name: "truncated", payload: "d1:md", offset: 5 },
    { name: "trailing bytes", payload: "d1:mdeexx", offset: 7 },
    { name: "m is a list", payload: "d1:mlee", offset: 0 },
    { name: "m is a string", payload: "d1:m1:xe", offset: 0 },
    { name: "garbage", payload: "\x00\x01\x02", offset: 0 },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const err = assertThrows(() => decodeExtHandshake(text(r.payload)), WireError);
      assertEquals([err.code, err.offset], ["bad-payload", r.offset]);
    });
  }
});
