// What the adapter tells the core about a request's body: a POST without one (no Content-Length, no Transfer-Encoding)
// is bodiless whatever its Content-Type (no 415), on both runtimes' servers; a typed body still is checked.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { suite } from "uvu";
import { ADMIN, bytes, createImage, type Running, start } from "../helpers/helpers.ts";

/** Sends one raw HTTP/1.1 request and returns the status line's code (the server closes: Connection: close). */
function rawStatus(node: Running, head: string, body = ""): Promise<number> {
  const { port } = new URL(node.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1");
    let text = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => (text += d));
    socket.on("error", reject);
    socket.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
    const auth = Object.entries(ADMIN).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    socket.write(`${head}\r\nHost: 127.0.0.1\r\n${auth}Connection: close\r\n\r\n${body}`);
  });
}

const t = suite<{ node: Running; id: string }>("request framing", {} as never);
t.before(async (ctx) => {
  ctx.node = await start();
  ctx.id = await createImage(ctx.node, bytes(1000));
});
t.after(async (ctx) => {
  await ctx.node.close();
});

t("a typed POST without Content-Length or Transfer-Encoding has no body: not 415", async ({ node, id }) => {
  const status = await rawStatus(node, `POST /v2/images/${id}/actions/deactivate HTTP/1.1\r\nContent-Type: text/plain`);
  assert.equal(status, 204);
  const back = await rawStatus(node, `POST /v2/images/${id}/actions/reactivate HTTP/1.1\r\nContent-Type: text/plain`);
  assert.equal(back, 204);
});

t("a typed POST with Content-Length: 0 has no body: not 415", async ({ node, id }) => {
  const head = `POST /v2/images/${id}/actions/deactivate HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 0`;
  assert.equal(await rawStatus(node, head), 204);
  await rawStatus(node, `POST /v2/images/${id}/actions/reactivate HTTP/1.1\r\nContent-Length: 0`);
});

t("a text/plain body on a JSON route is still 415", async ({ node, id }) => {
  const head = `POST /v2/images/${id}/actions/deactivate HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2`;
  assert.equal(await rawStatus(node, head, "{}"), 415);
});

t.run();
