// The upstream cut off: cached images answered from their kept records (visibility, bytes, headers), the options,
// /metrics, the log lines, /healthcheck, the status document and `glance-cache status`, and the revalidation after.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import type { AppOptions } from "../../src/app.ts";
import { runCli } from "../helpers/cli_process.ts";
import { bytes, md5, type Running, start, waitCached, waitFor } from "../helpers/helpers.ts";
import { type Loopback, serveLoopback } from "../helpers/loopback.ts";
import { type TcpLink, tcpLink } from "../helpers/tcp_link.ts";

/** A Glance of the test's own: visibility by the X-Auth-Token "user:project:role" the node passes on. */
interface FakeImage {
  id: string;
  owner: string;
  visibility: "private" | "shared" | "public";
  members: string[];
  status: "active" | "deactivated";
  data: Uint8Array;
}

interface Ctx {
  glance: Loopback;
  images: Map<string, FakeImage>;
  /** "up", or the status every request is answered with (503: a Glance whose backend is gone). */
  mode: "up" | 503;
  link: TcpLink;
  node: Running;
  lines: string[];
}
const t = suite<Ctx>("upstream_outage", {} as Ctx);

const OWNER = "owner:ownerproj:member";
const MEMBER = "m:memberproj:member";
const OTHER = "o:otherproj:member";
const ADMIN = "admin:adminproj:admin";
const as = (token: string) => ({ "X-Auth-Token": token });

function imageDoc(img: FakeImage) {
  return {
    id: img.id,
    name: "outage",
    status: img.status,
    visibility: img.visibility,
    owner: img.owner,
    size: img.data.byteLength,
    checksum: md5(img.data),
    os_hash_algo: "sha512",
    os_hash_value: createHash("sha512").update(img.data).digest("hex"),
    disk_format: "raw",
    container_format: "bare",
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
  };
}

async function fakeGlance(ctx: Ctx): Promise<Loopback> {
  return serveLoopback((request) => {
    if (ctx.mode !== "up") return new Response("backend gone", { status: ctx.mode });
    const path = new URL(request.url).pathname;
    if (path === "/versions") return Response.json({ versions: [] });
    const m = /^\/v2\/images\/([^/]+)(\/file)?$/.exec(path);
    const img = m && ctx.images.get(m[1]);
    const token = request.headers.get("x-auth-token");
    const [, project, role] = (token ?? "::").split(":");
    // No token: the node's own reads (background fills, revalidation) see all, as a service user would.
    const sees = img && (!token || role === "admin" || img.visibility === "public" || img.owner === project ||
      (img.visibility === "shared" && img.members.includes(project)));
    if (!img || !sees) return new Response("not found", { status: 404 });
    if (m[2]) return new Response(img.data as unknown as BodyInit);
    return Response.json(imageDoc(img));
  });
}

async function startNode(ctx: Ctx, upstream: Partial<NonNullable<AppOptions["upstream"]>> = {}, dir?: string) {
  return start({
    auth: "headers",
    insecureTestTokens: true,
    upstream: { url: ctx.link.url, metadataCacheTime: 0, timeout: 5, ...upstream },
    log: (line) => ctx.lines.push(line),
  }, dir);
}

t.before.each(async (ctx) => {
  ctx.images = new Map();
  ctx.mode = "up";
  ctx.lines = [];
  ctx.glance = await fakeGlance(ctx);
  ctx.link = await tcpLink(ctx.glance.url);
  ctx.node = await startNode(ctx);
});
t.after.each(async (ctx) => {
  await ctx.node?.close();
  await ctx.link?.close();
  await ctx.glance?.close();
});

function addImage(ctx: Ctx, fields: Partial<FakeImage> = {}): FakeImage {
  const img: FakeImage = {
    id: crypto.randomUUID(),
    owner: "ownerproj",
    visibility: "private",
    members: [],
    status: "active",
    data: bytes(200_000),
    ...fields,
  };
  ctx.images.set(img.id, img);
  return img;
}

/** Cached through the queue, then downloaded online by each caller in `seenBy` (the upstream answering them). */
async function cached(ctx: Ctx, img: FakeImage, seenBy: string[] = []): Promise<void> {
  assert.equal((await ctx.node.req(`/v2/cache/${img.id}`, { method: "PUT", as: as(ADMIN) })).status, 202);
  await waitCached(ctx.node, img.id);
  for (const token of seenBy) {
    const res = await ctx.node.req(`/v2/images/${img.id}/file`, { as: as(token) });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }
}

const get = (ctx: Ctx, id: string, token: string) => ctx.node.req(`/v2/images/${id}/file`, { as: as(token) });

t("cut off: a cached image is served from its kept record to its owner, a member and an admin", async (ctx) => {
  const img = addImage(ctx, { visibility: "shared", members: ["memberproj"] });
  await cached(ctx, img, [MEMBER]);
  const online = await get(ctx, img.id, OWNER);
  const onlineHeaders = Object.fromEntries(online.headers);
  await online.arrayBuffer();
  assert.equal(online.headers.get("x-glance-cache-node-record"), null, "online: no kept-record header");
  await ctx.link.cut();
  for (const token of [OWNER, MEMBER, ADMIN]) {
    const res = await get(ctx, img.id, token);
    assert.equal(res.status, 200, token);
    assert.equal(res.headers.get("x-glance-cache-node-record"), "kept");
    for (const h of ["content-type", "content-length", "content-md5"]) {
      assert.equal(res.headers.get(h), onlineHeaders[h]);
    }
    assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(img.data));
  }
  const range = await ctx.node.req(`/v2/images/${img.id}/file`, { as: { ...as(OWNER), Range: "bytes=10-19" } });
  assert.equal(range.status, 206);
  assert.deepEqual(new Uint8Array(await range.arrayBuffer()), img.data.slice(10, 20));
});

t("cut off: another project's private image is 404, a shared one 404 to a project never seen", async (ctx) => {
  const priv = addImage(ctx);
  const shared = addImage(ctx, { visibility: "shared", members: ["memberproj", "otherproj"] });
  await cached(ctx, priv);
  await cached(ctx, shared, [MEMBER]);
  await ctx.link.cut();
  assert.equal((await get(ctx, priv.id, MEMBER)).status, 404);
  const res = await get(ctx, shared.id, OTHER);
  assert.equal(res.status, 404, "otherproj is a member upstream, but the node never saw it answered");
  assert.match(await res.text(), new RegExp(`Image ${shared.id} not found`));
  assert.equal((await get(ctx, shared.id, MEMBER)).status, 200);
});

t("a member the upstream stops answering (sharing revoked) is no longer a member known", async (ctx) => {
  const img = addImage(ctx, { visibility: "shared", members: ["memberproj"] });
  await cached(ctx, img, [MEMBER]);
  img.members = [];
  assert.equal((await get(ctx, img.id, MEMBER)).status, 404, "online: the upstream's answer");
  await ctx.link.cut();
  assert.equal((await get(ctx, img.id, MEMBER)).status, 404, "cut off: not from the kept record either");
  assert.equal((await get(ctx, img.id, OWNER)).status, 200);
});

t("cut off: an image never cached answers 503 in Glance's format, at once", async (ctx) => {
  const img = addImage(ctx, { visibility: "public" });
  await ctx.link.cut();
  const t0 = performance.now();
  const res = await ctx.node.req(`/v2/images/${img.id}/file`, {
    as: { ...as(OWNER), Accept: "application/json" },
  });
  assert.equal(res.status, 503);
  const body = (await res.json()) as { code: string; message: string };
  assert.equal(body.code, "503 Service Unavailable");
  assert.match(body.message, /upstream image service is unreachable/);
  assert.ok(performance.now() - t0 < 5000, "within upstream_timeout");
});

t(
  "a black-holed link: the first download waits upstream_timeout, the next ones do not ask the upstream",
  async (ctx) => {
    await ctx.node.close();
    // metadata_cache_time 30: the first probe of the link comes 30 s after the outage starts, after this test.
    ctx.node = await startNode(ctx, { timeout: 1, metadataCacheTime: 30 });
    const img = addImage(ctx);
    await cached(ctx, img);
    ctx.link.blackhole();
    const first = await get(ctx, img.id, OWNER);
    assert.equal(first.headers.get("x-glance-cache-node-record"), "kept");
    await first.arrayBuffer();
    const asked = ctx.link.swallowed;
    assert.ok(asked >= 1, "the first download asked the upstream and timed out");
    for (let i = 0; i < 3; i++) {
      const res = await get(ctx, img.id, OWNER);
      assert.equal(res.status, 200);
      assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(img.data));
    }
    assert.equal(ctx.link.swallowed, asked, "answered from the kept record without asking the upstream");
  },
);

t("a Glance answering 5xx is unreachable too", async (ctx) => {
  const img = addImage(ctx);
  await cached(ctx, img);
  ctx.mode = 503;
  const res = await get(ctx, img.id, OWNER);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-glance-cache-node-record"), "kept");
  assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(img.data));
});

t("the kept records are on disk beside the index: a node restarted while cut off still serves", async (ctx) => {
  const img = addImage(ctx, { visibility: "shared" });
  img.members.push("memberproj");
  await cached(ctx, img, [MEMBER]);
  assert.deepEqual(await readdir(join(ctx.node.dir, "cache", "records")), [`${img.id}.json`]);
  await ctx.link.cut();
  await ctx.node.stop();
  ctx.node = await startNode(ctx, {}, ctx.node.dir);
  const res = await get(ctx, img.id, MEMBER);
  assert.equal(res.status, 200);
  assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(img.data));
  // The copy evicted: its record goes with it.
  await ctx.link.restore();
  assert.equal((await ctx.node.req(`/v2/cache/${img.id}`, { method: "DELETE", as: as(ADMIN) })).status, 204);
  assert.deepEqual(await readdir(join(ctx.node.dir, "cache", "records")), []);
});

t("serve_cached_when_upstream_down = false: 502 as before", async (ctx) => {
  await ctx.node.close();
  ctx.node = await startNode(ctx, { serveCachedWhenDown: false });
  const img = addImage(ctx);
  await cached(ctx, img);
  await ctx.link.cut();
  const res = await get(ctx, img.id, OWNER);
  assert.equal(res.status, 502);
  assert.equal(res.headers.get("x-glance-cache-node-record"), null);
});

t("max_upstream_outage: past it, even a cached image answers 503", async (ctx) => {
  await ctx.node.close();
  ctx.node = await startNode(ctx, { maxOutage: 1 });
  const img = addImage(ctx);
  await cached(ctx, img);
  await ctx.link.cut();
  assert.equal((await get(ctx, img.id, OWNER)).status, 200, "within the bound");
  const res = await waitFor("the bound passed", async () => {
    const r = await get(ctx, img.id, OWNER);
    return r.status === 503 ? r : void (await r.body?.cancel());
  }, 10_000);
  assert.match(await res.text(), /max_upstream_outage/);
});

t("said: header, /metrics, log lines, /healthcheck, status document, glance-cache status", async (ctx) => {
  const img = addImage(ctx);
  await cached(ctx, img);
  const metric = async (name: string) => {
    const text = await (await ctx.node.req("/metrics", { as: as(ADMIN) })).text();
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    return m ? Number(m[1]) : undefined;
  };
  assert.equal(await metric("glance_cache_kept_record_answers_total"), 0);
  assert.equal(await metric("glance_cache_upstream_up"), 1);
  await ctx.link.cut();
  for (let i = 0; i < 2; i++) await (await get(ctx, img.id, OWNER)).arrayBuffer();
  assert.equal(await metric("glance_cache_kept_record_answers_total"), 2);
  assert.equal(await metric("glance_cache_upstream_up"), 0);
  assert.ok((await metric("glance_cache_upstream_last_answer_seconds"))! >= 0);
  assert.equal(ctx.lines.filter((l) => /WARNING upstream .*unreachable/.test(l)).length, 1, "one line at the start");

  const plain = await ctx.node.req("/healthcheck", { as: {} });
  assert.equal(plain.status, 200, "the cache can serve: a load balancer keeps the node");
  assert.equal(await plain.text(), "OK");
  const detailed = (await (await ctx.node.req("/healthcheck?detailed", { as: {} })).json()) as {
    reasons: { class: string; reason: string; details: string }[];
  };
  const up = detailed.reasons.find((r) => r.class === "UpstreamGlanceCheck")!;
  assert.equal(up.reason, "GLANCE UNREACHABLE");
  assert.match(up.details, /kept records/);

  const doc = (await (await ctx.node.req("/v2/x-cache-node/status", { as: as(ADMIN) })).json()) as {
    source: { link: { state: string; serving_cached: boolean; kept_answers: number; kept_records: number } };
  };
  assert.deepEqual(
    [doc.source.link.state, doc.source.link.serving_cached, doc.source.link.kept_answers, doc.source.link.kept_records],
    ["down", true, 2, 1],
  );
  const cli = await runCli(["status"], { OS_IMAGE_URL: ctx.node.url, OS_AUTH_TOKEN: ADMIN });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^Upstream:\s+UNREACHABLE for .*cached images served from kept records \(2 answer/m);

  await ctx.link.restore();
  await waitFor(
    "the outage's end logged",
    async () => ctx.lines.some((l) => /INFO upstream .*answers again/.test(l)),
    10_000,
  );
  assert.equal(ctx.lines.filter((l) => /answers again/.test(l)).length, 1, "one line at the end");
  assert.equal(await metric("glance_cache_upstream_up"), 1);
  const back = await get(ctx, img.id, OWNER);
  assert.equal(back.headers.get("x-glance-cache-node-record"), null);
  await back.arrayBuffer();
});

t("the link back: images deleted, deactivated or changed meanwhile are dropped, the rest kept", async (ctx) => {
  const [gone, off, changed, same] = [addImage(ctx), addImage(ctx), addImage(ctx), addImage(ctx)];
  for (const img of [gone, off, changed, same]) await cached(ctx, img);
  await ctx.link.cut();
  assert.equal((await get(ctx, gone.id, OWNER)).status, 200, "deleted centrally: still served at the edge");
  ctx.images.delete(gone.id);
  off.status = "deactivated";
  changed.data = bytes(200_000);
  await ctx.link.restore();
  const ids = async () =>
    ((await (await ctx.node.req("/v2/cache", { as: as(ADMIN) })).json()) as { cached_images: { image_id: string }[] })
      .cached_images.map((c) => c.image_id).sort();
  await waitFor("revalidated", async () => (await ids()).length === 1, 10_000);
  assert.deepEqual(await ids(), [same.id]);
  assert.equal((await get(ctx, gone.id, OWNER)).status, 404);
  assert.equal((await get(ctx, off.id, OWNER)).status, 403);
  assert.match(ctx.lines.join("\n"), /revalidated 4 cached image\(s\), 3 dropped/);
});

t.run();
