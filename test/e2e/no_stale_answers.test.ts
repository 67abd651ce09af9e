// No stale answers: every change made through the node (glanceclient, against the real Keystone + Glance of e2e/)
// test-needs: e2e glanceclient
// is seen by the next download at once, although the node reuses upstream metadata for 60 s. Glance is mounted
// under a path prefix (devstack's http://host/image) by a loopback proxy that counts what the node asks it.
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { keystoneOptions, readEnv, scopedToken } from "../helpers/e2e_helpers.ts";
import { field, glanceOk } from "../helpers/glanceclient.ts";
import { bytes, md5, type Running, start, tempDir, waitFor } from "../helpers/helpers.ts";
import { prefixProxy } from "../helpers/loopback.ts";

interface Ctx {
  node: Running;
  glance: Awaited<ReturnType<typeof prefixProxy>>;
  admin: string;
  demo: string;
  demoProject: string;
  dir: string;
}
const t = suite<Ctx>("e2e_stale", {} as Ctx);

t.before(async (ctx) => {
  const env = readEnv();
  ctx.glance = await prefixProxy(env.GLANCE_URL, "/image");
  ctx.node = await start({
    auth: "keystone",
    upstream: { url: ctx.glance.base, metadataCacheTime: 60 },
    keystone: keystoneOptions(env),
  });
  ctx.admin = (await scopedToken(env, "ADMIN")).token;
  const demo = await scopedToken(env, "DEMO");
  ctx.demo = demo.token;
  ctx.demoProject = demo.projectId;
  ctx.dir = await tempDir();
});
t.after(async (ctx) => {
  await ctx.node?.close();
  await ctx.glance?.close();
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

const as = (tok: string) => ({ "X-Auth-Token": tok });

/** A download through the node, with fetch: status and bytes. */
async function download(node: Running, tok: string, id: string): Promise<{ status: number; body: Uint8Array }> {
  const res = await node.req(`/v2/images/${id}/file`, { as: as(tok) });
  return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
}

/** Ids the node lists as cached. */
async function cached(ctx: Ctx): Promise<string[]> {
  const res = await ctx.node.req("/v2/cache", { as: as(ctx.admin) });
  return ((await res.json()) as { cached_images: { image_id: string }[] }).cached_images.map((c) => c.image_id);
}

/** How many times the node asked Glance for the image's metadata (of its own accord: not passing glanceclient's on). */
const lookups = (ctx: Ctx, id: string) => ctx.glance.seen.get(`GET /v2/images/${id} glance-cache-node`) ?? 0;

async function file(ctx: Ctx, data: Uint8Array): Promise<string> {
  const path = join(ctx.dir, `${crypto.randomUUID()}.raw`);
  await writeFile(path, data);
  return path;
}

/**
 * glance image-create --file through the node; without data, a POST through the node (glanceclient
 * uploads its stdin, even empty, when given no file).
 */
async function create(ctx: Ctx, data: Uint8Array | undefined, ...extra: string[]): Promise<string> {
  if (!data) {
    const res = await ctx.node.req("/v2/images", {
      as: as(ctx.admin),
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "e2e-stale", disk_format: "raw", container_format: "bare" }),
    });
    assert.equal(res.status, 201);
    return ((await res.json()) as { id: string }).id;
  }
  const args = ["image-create", "--name", "e2e-stale", "--disk-format", "raw", "--container-format", "bare", ...extra];
  const id = field(await glanceOk(ctx.node.url, ctx.admin, ...args, "--file", await file(ctx, data)), "id");
  assert.ok(id);
  return id;
}

/** glance image-download through the node: the bytes it wrote. */
async function glanceDownload(ctx: Ctx, tok: string, id: string): Promise<Uint8Array> {
  const out = join(ctx.dir, `${crypto.randomUUID()}.out`);
  await glanceOk(ctx.node.url, tok, "image-download", "--file", out, id);
  return new Uint8Array(await readFile(out));
}

t("create, upload with glanceclient, download at once: the bytes, not 204", async (ctx) => {
  const data = bytes(1 << 20);
  const id = await create(ctx, undefined);
  assert.equal((await download(ctx.node, ctx.admin, id)).status, 204, "no data yet");
  await glanceOk(ctx.node.url, ctx.admin, "image-upload", "--file", await file(ctx, data), id);
  assert.equal(md5(await glanceDownload(ctx, ctx.admin, id)), md5(data));
  await glanceOk(ctx.node.url, ctx.admin, "image-delete", id);
});

t("deactivate, then reactivate with glanceclient: a member's next download follows each at once", async (ctx) => {
  const data = bytes(100_000);
  const id = await create(ctx, data, "--visibility", "public");
  assert.equal(md5((await download(ctx.node, ctx.demo, id)).body), md5(data));
  const before = lookups(ctx, id);
  assert.equal((await download(ctx.node, ctx.demo, id)).status, 200);
  assert.equal(lookups(ctx, id), before, "metadata reused (metadata_cache_time 60)");
  await waitFor("cached by the download", async () => (await cached(ctx)).includes(id), 60_000);
  await glanceOk(ctx.node.url, ctx.admin, "image-deactivate", id);
  assert.ok(!(await cached(ctx)).includes(id), "the cached copy went when the deactivate answered");
  assert.equal((await download(ctx.node, ctx.demo, id)).status, 403);
  await glanceOk(ctx.node.url, ctx.admin, "image-reactivate", id);
  const again = await download(ctx.node, ctx.demo, id);
  assert.equal(again.status, 200);
  assert.equal(md5(again.body), md5(data));
  await glanceOk(ctx.node.url, ctx.admin, "image-delete", id);
});

t("PATCH with glanceclient (image-update): show and the next download see it at once", async (ctx) => {
  const data = bytes(1000);
  const id = await create(ctx, data, "--visibility", "public");
  assert.equal((await download(ctx.node, ctx.demo, id)).status, 200);
  const before = lookups(ctx, id);
  assert.equal((await download(ctx.node, ctx.demo, id)).status, 200);
  assert.equal(lookups(ctx, id), before, "metadata reused (metadata_cache_time 60)");
  await glanceOk(ctx.node.url, ctx.admin, "image-update", "--visibility", "private", "--name", "renamed", id);
  assert.equal(field(await glanceOk(ctx.node.url, ctx.admin, "image-show", id), "name"), "renamed");
  assert.equal(
    (await download(ctx.node, ctx.demo, id)).status,
    404,
    "private now: the member's cached answer was dropped",
  );
  await glanceOk(ctx.node.url, ctx.admin, "image-delete", id);
});

t("tags added and removed with glanceclient: the node asks upstream again", async (ctx) => {
  const id = await create(ctx, bytes(1000));
  assert.equal((await download(ctx.node, ctx.admin, id)).status, 200);
  const before = lookups(ctx, id);
  assert.equal((await download(ctx.node, ctx.admin, id)).status, 200);
  assert.equal(lookups(ctx, id), before, "metadata reused (metadata_cache_time 60)");
  await glanceOk(ctx.node.url, ctx.admin, "image-tag-update", id, "e2e-tag");
  assert.match(field(await glanceOk(ctx.node.url, ctx.admin, "image-show", id), "tags") ?? "", /e2e-tag/);
  assert.equal((await download(ctx.node, ctx.admin, id)).status, 200);
  assert.equal(lookups(ctx, id), before + 1, "the tag dropped the node's metadata");
  await glanceOk(ctx.node.url, ctx.admin, "image-tag-delete", id, "e2e-tag");
  assert.equal((await download(ctx.node, ctx.admin, id)).status, 200);
  assert.equal(lookups(ctx, id), before + 2, "removing the tag dropped it again");
  await glanceOk(ctx.node.url, ctx.admin, "image-delete", id);
});

t("members added, accepted and removed with glanceclient: the member's next download follows at once", async (ctx) => {
  const data = bytes(1000);
  const id = await create(ctx, data, "--visibility", "shared");
  assert.equal((await download(ctx.node, ctx.demo, id)).status, 404, "not shared with demo yet");
  const before = lookups(ctx, id);
  assert.equal((await download(ctx.node, ctx.demo, id)).status, 404);
  assert.equal(lookups(ctx, id), before, "the not-found answer is reused (metadata_cache_time 60)");
  await glanceOk(ctx.node.url, ctx.admin, "member-create", id, ctx.demoProject);
  await glanceOk(ctx.node.url, ctx.demo, "member-update", id, ctx.demoProject, "accepted");
  const shared = await download(ctx.node, ctx.demo, id);
  assert.equal(shared.status, 200);
  assert.equal(md5(shared.body), md5(data));
  await glanceOk(ctx.node.url, ctx.admin, "member-delete", id, ctx.demoProject);
  assert.equal((await download(ctx.node, ctx.demo, id)).status, 404, "no longer a member");
  await glanceOk(ctx.node.url, ctx.admin, "image-delete", id);
});

t("stage and import (glance-direct) with glanceclient, then download: the bytes", async (ctx) => {
  const data = bytes(200_000);
  const id = await create(ctx, undefined);
  assert.equal((await download(ctx.node, ctx.admin, id)).status, 204);
  await glanceOk(ctx.node.url, ctx.admin, "image-stage", "--file", await file(ctx, data), id);
  assert.equal((await download(ctx.node, ctx.admin, id)).status, 204, "staged: no data yet");
  await glanceOk(ctx.node.url, ctx.admin, "image-import", "--import-method", "glance-direct", id);
  // The import finishes in Glance's background task, not through the node: wait for it as a client would.
  await waitFor(
    "import done",
    async () => field(await glanceOk(ctx.node.url, ctx.admin, "image-show", id), "status") === "active",
    60_000,
  );
  assert.equal(md5(await glanceDownload(ctx, ctx.admin, id)), md5(data));
  await glanceOk(ctx.node.url, ctx.admin, "image-delete", id);
});

t("delete with glanceclient, then download: 404 and the cached copy gone", async (ctx) => {
  const data = bytes(100_000);
  const id = await create(ctx, data);
  await glanceOk(ctx.node.url, ctx.admin, "cache-queue", id);
  const listing = async () =>
    (await (await ctx.node.req("/v2/cache", { as: as(ctx.admin) })).json()) as {
      cached_images: { image_id: string }[];
      queued_images: string[];
    };
  await waitFor("cached", async () => (await listing()).cached_images.some((c) => c.image_id === id), 60_000);
  assert.equal(md5(await glanceDownload(ctx, ctx.admin, id)), md5(data), "served from the cache, metadata remembered");
  await glanceOk(ctx.node.url, ctx.admin, "image-delete", id);
  const after = await listing();
  assert.ok(!after.cached_images.some((c) => c.image_id === id), "cached copy gone when the delete answered");
  assert.ok(!after.queued_images.includes(id));
  assert.equal((await download(ctx.node, ctx.admin, id)).status, 404);
});

t.run();
