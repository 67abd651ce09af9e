// In front of the real Glance: HEAD of an image's data reads no data upstream, and a temp URL reads a
// project's private image without a token, with the node's own service credentials.
// test-needs: e2e
import assert from "node:assert/strict";
import { suite } from "uvu";
import { keystoneOptions, readEnv, token, upstreamDataReads } from "../helpers/e2e_helpers.ts";
import { bytes, md5, type Running, start } from "../helpers/helpers.ts";

const t = suite<{ env: Record<string, string>; node: Running; admin: string; demo: string; ids: string[] }>(
  "e2e temp urls",
  {} as never,
);

t.before(async (ctx) => {
  ctx.env = readEnv();
  ctx.ids = [];
  ctx.node = await start({
    auth: "keystone",
    upstream: { url: ctx.env.GLANCE_URL, metadataCacheTime: 0 },
    keystone: keystoneOptions(ctx.env),
    tempUrlKey: "e2e-temp-url-key",
  });
  ctx.admin = await token(ctx.env, "ADMIN");
  ctx.demo = await token(ctx.env, "DEMO");
});
t.after(async (ctx) => {
  for (const id of ctx.ids ?? []) {
    await fetch(`${ctx.env.GLANCE_URL}/v2/images/${id}`, { method: "DELETE", headers: { "X-Auth-Token": ctx.admin } });
  }
  await ctx.node?.close();
});

/** A private image of the demo project, made at the real Glance directly. */
async function demoImage(ctx: { env: Record<string, string>; demo: string; ids: string[] }, data: Uint8Array) {
  const headers = { "X-Auth-Token": ctx.demo };
  const res = await fetch(`${ctx.env.GLANCE_URL}/v2/images`, {
    method: "POST",
    headers: { ...headers, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "e2e-temp-url", disk_format: "raw", container_format: "bare" }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const { id } = (await res.json()) as { id: string };
  ctx.ids.push(id);
  const up = await fetch(`${ctx.env.GLANCE_URL}/v2/images/${id}/file`, {
    method: "PUT",
    headers: { ...headers, "Content-Type": "application/octet-stream" },
    body: data as unknown as BodyInit,
  });
  assert.equal(up.status, 204, await up.text());
  return id;
}

t("HEAD through the node: the GET's headers, no data read upstream", async (ctx) => {
  const data = bytes(300_000);
  const id = await demoImage(ctx, data);
  const before = upstreamDataReads(id);
  const head = await ctx.node.req(`/v2/images/${id}/file`, { method: "HEAD", as: { "X-Auth-Token": ctx.demo } });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(data.byteLength));
  assert.equal(head.headers.get("content-md5"), md5(data));
  assert.equal(head.headers.get("accept-ranges"), "bytes");
  assert.equal(upstreamDataReads(id), before);
  const anonymous = await fetch(`${ctx.node.url}/v2/images/${id}/file`, { method: "HEAD" });
  assert.equal(anonymous.status, 401);
});

t("a temp URL minted by the owner reads the private image with the node's service credentials", async (ctx) => {
  const data = bytes(500_000);
  const id = await demoImage(ctx, data);
  const refused = await ctx.node.req("/v2/x-cache-node/temp-urls", {
    method: "POST",
    as: { "X-Auth-Token": ctx.demo, "Content-Type": "application/json" },
    body: JSON.stringify({ image_id: id, ttl: 60 }),
  });
  assert.equal(refused.status, 403, "create_temp_url is admin by default");
  const minted = await ctx.node.req("/v2/x-cache-node/temp-urls", {
    method: "POST",
    as: { "X-Auth-Token": ctx.admin, "Content-Type": "application/json" },
    body: JSON.stringify({ image_id: id, ttl: 60 }),
  });
  assert.equal(minted.status, 200);
  const { url } = (await minted.json()) as { url: string };
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data));
  assert.equal((await fetch(url.replace(/temp_url_sig=./, "temp_url_sig=x"))).status, 401);
});

t.run();
