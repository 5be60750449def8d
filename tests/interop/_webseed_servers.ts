/**
 * Small HTTP/1.1 file servers written for the web seed tests, on raw loopback TCP so that a test controls every byte:
 * the status and headers of each answer, a body cut short (the connection closed mid-body), a server-wide rate,
 * keep-alive. Each request is handed to the test's handler, which answers with a {@linkcode Reply} (usually built by
 * {@linkcode serveFile}, which does what nginx does: `206` for a `Range`, `200` without, `404`, `416`). The server
 * records every request and what it sent. `close()` closes the listener and every connection and waits for them.
 * @module
 */

/** A request as the server read it. */
export interface Req {
  /** 0 for the server's first request, then 1, 2, ... */
  readonly n: number;
  /** When it arrived, ms since the server started. */
  readonly at: number;
  readonly method: string;
  /** The request target as sent (percent-encoded). */
  readonly target: string;
  /** The target's path, percent-decoded. */
  readonly path: string;
  /** Header names lowercased. */
  readonly headers: ReadonlyMap<string, string>;
  /** The `Range: bytes=a-b` asked (`end` inclusive, null for an open end), or null. */
  readonly range: { readonly start: number; readonly end: number | null } | null;
  /** Requests earlier on the same connection. */
  readonly onConn: number;
}

/** How to answer one request. */
export interface Reply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** Send only this many body bytes (the headers still announce the whole body), then close the connection. */
  readonly cutAfter?: number;
  /** Close the connection after this answer. */
  readonly close?: boolean;
}

/** What was answered to a request. */
export interface Served {
  readonly req: Req;
  readonly status: number;
  /** Body bytes written. */
  readonly sent: number;
}

/** A running test server. */
export interface TestServer {
  readonly port: number;
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  readonly origin: string;
  /** Every request answered so far, in order of arrival. */
  readonly served: readonly Served[];
  close(): Promise<void>;
}

/** Options of {@linkcode startServer}. */
export interface ServerOptions {
  /** Bytes per second for all bodies together (a shared bucket); default unlimited. */
  readonly rate?: number;
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  307: "Temporary Redirect",
  404: "Not Found",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

const MAX_HEAD = 16 * 1024;
const CHUNK = 16 * 1024;

/** Starts a server on a free 127.0.0.1 port answering each request with `handler`'s reply. */
export function startServer(handler: (req: Req) => Reply | Promise<Reply>, opts: ServerOptions = {}): TestServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const t0 = performance.now();
  const served: Served[] = [];
  const conns = new Set<Deno.Conn>();
  const loops = new Set<Promise<void>>();
  let closed = false;
  let n = 0;
  let nextFree = 0; // the rate bucket: when the next byte may go out
  // pending pauses of the rate bucket: close() ends them at once
  const pauses = new Map<ReturnType<typeof setTimeout>, () => void>();
  const pause = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(() => {
        pauses.delete(t);
        r();
      }, ms);
      pauses.set(t, r);
    });

  const writeAll = async (conn: Deno.Conn, bytes: Uint8Array): Promise<void> => {
    for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
  };

  const sendBody = async (conn: Deno.Conn, body: Uint8Array): Promise<number> => {
    let sent = 0;
    while (sent < body.length && !closed) {
      const k = Math.min(CHUNK, body.length - sent);
      if (opts.rate) {
        const now = performance.now();
        const start = Math.max(now, nextFree);
        nextFree = start + (k / opts.rate) * 1000;
        if (start > now) await pause(start - now);
        if (closed) break;
      }
      await writeAll(conn, body.subarray(sent, sent + k));
      sent += k;
    }
    return sent;
  };

  const serveConn = async (conn: Deno.Conn): Promise<void> => {
    let buf = new Uint8Array(0);
    let onConn = 0;
    const chunk = new Uint8Array(64 * 1024);
    try {
      while (!closed) {
        let end: number;
        while ((end = headEnd(buf)) < 0) {
          if (buf.length > MAX_HEAD) return;
          const k = await conn.read(chunk);
          if (k === null) return;
          const next = new Uint8Array(buf.length + k);
          next.set(buf);
          next.set(chunk.subarray(0, k), buf.length);
          buf = next;
        }
        const head = new TextDecoder().decode(buf.subarray(0, end));
        buf = buf.slice(end + 4);
        const req = parseHead(head, n++, performance.now() - t0, onConn++);
        if (req === null) return;
        const reply = await handler(req);
        const body = reply.body ?? new Uint8Array(0);
        const headers: Record<string, string> = {
          "content-length": String(body.length),
          ...(reply.headers ?? {}),
        };
        const closeAfter = reply.close === true || reply.cutAfter !== undefined;
        if (closeAfter) headers["connection"] = "close";
        const lines = [`HTTP/1.1 ${reply.status} ${STATUS_TEXT[reply.status] ?? "Status"}`];
        for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
        await writeAll(conn, new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
        const record = { req, status: reply.status, sent: 0 };
        served.push(record);
        if (req.method !== "HEAD") {
          const upTo = reply.cutAfter === undefined ? body : body.subarray(0, Math.min(reply.cutAfter, body.length));
          record.sent = await sendBody(conn, upTo);
        }
        if (closeAfter) return;
      }
    } catch {
      // the client went away, or close() closed the connection
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };

  const acceptLoop = (async () => {
    try {
      for await (const conn of listener) {
        if (closed) {
          conn.close();
          break;
        }
        conns.add(conn);
        const p = serveConn(conn);
        loops.add(p);
        p.finally(() => loops.delete(p));
      }
    } catch {
      // listener closed
    }
  })();

  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    served,
    async close() {
      closed = true;
      for (const [t, r] of pauses) {
        clearTimeout(t);
        r();
      }
      pauses.clear();
      try {
        listener.close();
      } catch {
        // already closed
      }
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await acceptLoop;
      await Promise.all([...loops]);
    },
  };
}

function headEnd(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function parseHead(head: string, n: number, at: number, onConn: number): Req | null {
  const [first, ...rest] = head.split("\r\n");
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(first);
  if (!m) return null;
  const headers = new Map<string, string>();
  for (const line of rest) {
    const i = line.indexOf(":");
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  const target = m[2];
  const rawPath = target.split("?")[0];
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    path = rawPath;
  }
  const r = /^bytes=(\d+)-(\d*)$/.exec(headers.get("range") ?? "");
  const range = r ? { start: Number(r[1]), end: r[2] === "" ? null : Number(r[2]) } : null;
  return { n, at, method: m[1], target, path, headers, range, onConn };
}

/** Files read once and kept (the payloads are a few MiB). */
const fileCache = new Map<string, Uint8Array | null>();

function readCached(path: string): Uint8Array | null {
  let data = fileCache.get(path);
  if (data === undefined) {
    try {
      data = Deno.statSync(path).isFile ? Deno.readFileSync(path) : null;
    } catch {
      data = null;
    }
    fileCache.set(path, data);
  }
  return data;
}

/**
 * The answer nginx would give for `req.path` (under `urlPrefix`) from the folder `root`: `206` with `Content-Range`
 * for a satisfiable `Range`, `416` for one past the end, `200` with the whole file without one, `404` when there is no
 * such file.
 */
export function serveFile(root: string, req: Req, urlPrefix = "/"): Reply {
  if (!req.path.startsWith(urlPrefix) || req.path.split("/").includes("..")) return { status: 404 };
  const data = readCached(`${root}/${req.path.slice(urlPrefix.length)}`);
  if (data === null) return { status: 404 };
  return rangeReply(data, req);
}

/** `data` answered as a file to `req` (its `Range` honoured). */
export function rangeReply(data: Uint8Array, req: Req): Reply {
  if (req.range === null) return { status: 200, body: data };
  const start = req.range.start;
  const end = Math.min(req.range.end ?? data.length - 1, data.length - 1);
  if (start >= data.length || end < start) {
    return { status: 416, headers: { "content-range": `bytes */${data.length}` } };
  }
  return {
    status: 206,
    headers: { "content-range": `bytes ${start}-${end}/${data.length}` },
    body: data.subarray(start, end + 1),
  };
}
