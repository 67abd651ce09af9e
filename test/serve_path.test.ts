// The serve path: cached bodies with recycled buffers arrive intact through the runtime adapter; other consumers get fresh ones.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { CHUNK_SIZE } from "../src/streams/files.ts";
import { ADMIN, bytes, createImage, md5, type Running, start, waitCached } from "./helpers.ts";

const t = suite<{ node: Running }>("serve path", {} as never);
t.before.each(async (ctx) => {
  ctx.node = await start();
});
t.after.each(async (ctx) => {
  await ctx.node.close();
});

// Many chunks and a short last one: a buffer recycled while still in use would show as a wrong digest.
const SIZE = 7 * CHUNK_SIZE + 12345;

async function cachedImage(node: Running): Promise<{ id: string; data: Uint8Array }> {
  const data = bytes(SIZE);
  const id = await createImage(node, data);
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  await waitCached(node, id);
  return { id, data };
}

t("a cached download through the runtime's server is byte for byte the image, also several at once", async ({ node }) => {
  const { id, data } = await cachedImage(node);
  const bodies = await Promise.all(
    Array.from({ length: 4 }, async () => new Uint8Array(await (await node.req(`/v2/images/${id}/file`)).arrayBuffer())),
  );
  for (const body of bodies) {
    assert.equal(body.byteLength, SIZE);
    assert.equal(md5(body), md5(data));
  }
});

t("a cached range through the runtime's server is the right bytes", async ({ node }) => {
  const { id, data } = await cachedImage(node);
  const start = CHUNK_SIZE - 7;
  const end = 5 * CHUNK_SIZE + 99;
  const res = await node.req(`/v2/images/${id}/file`, { headers: { Range: `bytes=${start}-${end}` } });
  assert.equal(res.status, 206);
  assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data.subarray(start, end + 1)));
});

t("the handler called directly (no runtime adapter) hands out chunks that stay valid when all are kept", async ({ node }) => {
  const { id, data } = await cachedImage(node);
  const res = await node.app.fetch(new Request(`http://node/v2/images/${id}/file`, { headers: ADMIN }));
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
  assert.ok(chunks.length > 1);
  const whole = new Uint8Array(SIZE);
  let off = 0;
  for (const c of chunks) {
    whole.set(c, off);
    off += c.byteLength;
  }
  assert.equal(off, SIZE);
  assert.equal(md5(whole), md5(data));
});

t.run();
