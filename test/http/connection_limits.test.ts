// Connection limits (issue 16, 2.2): headers must arrive within headers_timeout; past max_connections a request gets 503.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { suite } from "uvu";
import { start, waitFor } from "../helpers/helpers.ts";

/** A raw connection: what it received so far, and whether (and when) the server closed it. */
function rawConnection(url: string) {
  const { port } = new URL(url);
  const socket: Socket = connect(Number(port), "127.0.0.1");
  const state = { received: "", closedAt: 0 };
  socket.setEncoding("latin1");
  socket.on("data", (d: string) => (state.received += d));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) =>
    socket.on("close", () => {
      state.closedAt = Date.now();
      resolve();
    })
  );
  const connected = new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  /** Sends a GET and waits for its whole response (Content-Length bodies only); the response's text. */
  async function get(path: string): Promise<string> {
    const from = state.received.length;
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n`);
    return await waitFor(`the response to GET ${path}`, async () => {
      const text = state.received.slice(from);
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return state.closedAt ? text || "(closed)" : undefined;
      const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      return text.length >= end + 4 + length || state.closedAt ? text : undefined;
    });
  }
  return { socket, state, closed, connected, get };
}

const t = suite("connection limits");

t("a client that trickles header lines is cut once headers_timeout has passed; others are served", async () => {
  const node = await start({}, undefined, 0, { headersTimeout: 1 });
  const slow = rawConnection(node.url);
  const ticker = setInterval(() => slow.socket.write(`X-Trickle-${Date.now()}: x\r\n`), 100);
  try {
    await slow.connected;
    const t0 = Date.now();
    slow.socket.write("GET /versions HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    // a well-behaved client meanwhile
    const res = await node.req("/versions");
    assert.equal(res.status, 200);
    await res.body?.cancel();
    await waitFor("the trickling connection to be closed", async () => slow.state.closedAt > 0, 10_000);
    // headers_timeout (1 s), checked every 250 ms here: the cut comes well before a trickle could finish
    assert.ok(slow.state.closedAt - t0 < 3000, `cut after ${slow.state.closedAt - t0} ms`);
    assert.match(slow.state.received, /^HTTP\/1\.1 408 /);
  } finally {
    clearInterval(ticker);
    slow.socket.destroy();
    await node.close();
  }
});

t("past max_connections a request gets 503 in Glance's format and its connection closes", async () => {
  const node = await start({}, undefined, 0, { maxConnections: 2 });
  const first = rawConnection(node.url);
  const second = rawConnection(node.url);
  const extra = [rawConnection(node.url)];
  try {
    assert.match(await first.get("/versions"), /^HTTP\/1\.1 200 /);
    assert.match(await second.get("/versions"), /^HTTP\/1\.1 200 /);
    const refused = await extra[0].get("/versions");
    assert.match(refused, /^HTTP\/1\.1 503 /);
    assert.match(refused, /"code": ?"503 Service Unavailable"/);
    await extra[0].closed;
    // the connections within the cap still work, kept alive
    assert.match(await first.get("/versions"), /^HTTP\/1\.1 200 /);
    assert.match(await second.get("/versions"), /^HTTP\/1\.1 200 /);
    // once one of them closes, a new connection is served again (the server may see the close a little later)
    first.socket.end();
    await first.closed;
    await waitFor("a new connection served", async () => {
      const c = rawConnection(node.url);
      extra.push(c);
      const text = await c.get("/versions");
      c.socket.destroy();
      return /^HTTP\/1\.1 200 /.test(text);
    });
  } finally {
    for (const c of [first, second, ...extra]) c.socket.destroy();
    await node.close();
  }
});

t.run();
