// A site cut off from the real Glance (a TCP link the test owns, refusing connections): cached images served from kept records.
// test-needs: e2e
// Owner and member get the bytes, another project's private image is 404, an uncached one 503; with Keystone cut off
// too, a token validated before still works and a new one is 503; an image deleted on
// Glance meanwhile is served until the link returns, then 404 and its copy gone. Glance itself is never stopped.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { keystoneOptions, readEnv, scopedToken } from "../helpers/e2e_helpers.ts";
import { bytes, md5, type Running, start, waitFor } from "../helpers/helpers.ts";
import { type TcpLink, tcpLink } from "../helpers/tcp_link.ts";

interface Ctx {
  env: Record<string, string>;
  link: TcpLink;
  /** The node's link to Keystone. */
  keystoneLink: TcpLink;
  node: Running;
  admin: string;
  demo: string;
  demoProject: string;
  created: string[];
}
const t = suite<Ctx>("e2e_outage", {} as Ctx);

t.before(async (ctx) => {
  ctx.env = readEnv();
  ctx.created = [];
  ctx.link = await tcpLink(ctx.env.GLANCE_URL);
  ctx.keystoneLink = await tcpLink(ctx.env.KEYSTONE_URL);
  const keystoneUrl = `${ctx.keystoneLink.url}/v3`;
  ctx.node = await start({
    auth: "keystone",
    upstream: { url: ctx.link.url, metadataCacheTime: 0, timeout: 10 },
    keystone: { ...keystoneOptions(ctx.env), authUrl: keystoneUrl, wwwAuthenticateUri: keystoneUrl, timeout: 5 },
  });
  ctx.admin = (await scopedToken(ctx.env, "ADMIN")).token;
  const demo = await scopedToken(ctx.env, "DEMO");
  ctx.demo = demo.token;
  ctx.demoProject = demo.projectId;
});
t.after(async (ctx) => {
  await ctx.link?.restore();
  await ctx.keystoneLink?.restore();
  await ctx.node?.close();
  await ctx.link?.close();
  await ctx.keystoneLink?.close();
  for (const id of ctx.created) await glance(ctx, ctx.admin, "DELETE", `/v2/images/${id}`).catch(() => {});
});

/** A request to the real Glance at its own URL (not through the link). */
async function glance(ctx: Ctx, token: string, method: string, path: string, body?: unknown, type?: string) {
  const res = await fetch(ctx.env.GLANCE_URL.replace(/\/$/, "") + path, {
    method,
    headers: { "X-Auth-Token": token, ...(body !== undefined ? { "Content-Type": type ?? "application/json" } : {}) },
    body: body === undefined
      ? undefined
      : body instanceof Uint8Array
      ? body as unknown as BodyInit
      : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** An image with data, created on Glance as `token`. */
async function image(ctx: Ctx, token: string, visibility: string, data: Uint8Array): Promise<string> {
  const { id } = await glance(ctx, token, "POST", "/v2/images", {
    name: "e2e-outage",
    disk_format: "raw",
    container_format: "bare",
    visibility,
  });
  ctx.created.push(id);
  await glance(ctx, token, "PUT", `/v2/images/${id}/file`, data, "application/octet-stream");
  return id;
}

const as = (token: string) => ({ "X-Auth-Token": token });
const cachedIds = async (ctx: Ctx) =>
  ((await (await ctx.node.req("/v2/cache", { as: as(ctx.admin) })).json()) as { cached_images: { image_id: string }[] })
    .cached_images.map((c) => c.image_id);

async function cache(ctx: Ctx, id: string): Promise<void> {
  assert.equal((await ctx.node.req(`/v2/cache/${id}`, { method: "PUT", as: as(ctx.admin) })).status, 202);
  await waitFor(`${id} cached`, async () => (await cachedIds(ctx)).includes(id), 60_000);
}

async function download(ctx: Ctx, token: string, id: string) {
  const res = await ctx.node.req(`/v2/images/${id}/file`, { as: as(token) });
  return {
    status: res.status,
    kept: res.headers.get("x-glance-cache-node-record"),
    md5: md5(new Uint8Array(await res.arrayBuffer())),
  };
}

t(
  "cut off from Glance: owner and member served from kept records, others 404, uncached 503; a delete lands on return",
  async (ctx) => {
    const own = bytes(300_000);
    const shared = bytes(200_000);
    const priv = bytes(100_000);
    const ownId = await image(ctx, ctx.demo, "private", own); // owner: demo
    const sharedId = await image(ctx, ctx.admin, "shared", shared);
    await glance(ctx, ctx.admin, "POST", `/v2/images/${sharedId}/members`, { member: ctx.demoProject });
    await glance(ctx, ctx.demo, "PUT", `/v2/images/${sharedId}/members/${ctx.demoProject}`, { status: "accepted" });
    const privId = await image(ctx, ctx.admin, "private", priv);
    const uncachedId = await image(ctx, ctx.admin, "public", bytes(1000));
    for (const id of [ownId, sharedId, privId]) await cache(ctx, id);
    // Online: Glance answers demo for its own image and as a member of the shared one (the member is kept).
    assert.equal((await download(ctx, ctx.demo, ownId)).status, 200);
    assert.equal((await download(ctx, ctx.demo, sharedId)).status, 200);
    assert.equal((await download(ctx, ctx.demo, privId)).status, 404);

    await ctx.link.cut();
    const asOwner = await download(ctx, ctx.demo, ownId);
    assert.deepEqual(asOwner, { status: 200, kept: "kept", md5: md5(own) });
    const asMember = await download(ctx, ctx.demo, sharedId);
    assert.deepEqual(asMember, { status: 200, kept: "kept", md5: md5(shared) });
    assert.equal((await download(ctx, ctx.admin, privId)).status, 200, "admin");
    assert.equal((await download(ctx, ctx.demo, privId)).status, 404, "another project's private image");
    const t0 = performance.now();
    assert.equal((await download(ctx, ctx.demo, uncachedId)).status, 503, "never cached");
    assert.ok(performance.now() - t0 < 10_000, "within upstream_timeout");

    // Keystone cut off too: the token the node validated before still works; a token it never saw gets 503.
    await ctx.keystoneLink.cut();
    assert.deepEqual(await download(ctx, ctx.demo, ownId), { status: 200, kept: "kept", md5: md5(own) });
    const fresh = (await scopedToken(ctx.env, "DEMO")).token; // from the real Keystone, never shown to the node
    const unknown = await ctx.node.req(`/v2/images/${ownId}/file`, { as: as(fresh) });
    assert.equal(unknown.status, 503, "a token never seen while Keystone is away: 503, never 200 nor 401");
    await unknown.body?.cancel();
    await ctx.keystoneLink.restore();

    // Deleted on Glance while the node is cut off: still served at the edge until the link returns.
    await glance(ctx, ctx.demo, "DELETE", `/v2/images/${ownId}`);
    assert.equal((await download(ctx, ctx.demo, ownId)).status, 200);

    await ctx.link.restore();
    await waitFor("the deleted image's copy dropped", async () => !(await cachedIds(ctx)).includes(ownId), 30_000);
    assert.equal((await download(ctx, ctx.demo, ownId)).status, 404);
    const after = await download(ctx, ctx.demo, sharedId);
    assert.deepEqual(after, { status: 200, kept: null, md5: md5(shared) });
    assert.ok((await cachedIds(ctx)).includes(sharedId), "the others stay cached");
  },
);

t.run();
