// The cache API end to end over loopback HTTP: queue, list, hits, delete, clear, policies, methods.
import assert from "node:assert/strict";
import { suite } from "uvu";
import {
  ADMIN,
  bytes,
  createImage,
  listing,
  md5,
  MEMBER,
  type Running,
  start,
  waitCached,
} from "../helpers/helpers.ts";

const t = suite<{ node: Running }>("cache api", {} as { node: Running });
t.before.each(async (ctx) => {
  ctx.node = await start();
});
t.after.each(async (ctx) => {
  await ctx.node.close();
});

t("empty listing has Glance's two keys, and fills in progress", async ({ node }) => {
  const res = await node.req("/v2/cache");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.match(res.headers.get("x-openstack-request-id") ?? "", /^req-[0-9a-f-]{36}$/);
  assert.deepEqual(await res.json(), { cached_images: [], queued_images: [], caching_images: {} });
});

t("PUT queues and caches; the listing has Glance's shapes", async ({ node }) => {
  const data = bytes(1 << 20);
  const id = await createImage(node, data);
  const res = await node.req(`/v2/cache/${id}`, { method: "PUT" });
  assert.equal(res.status, 202);
  assert.equal(await res.text(), "");
  const entry = await waitCached(node, id);
  assert.deepEqual(Object.keys(entry), ["image_id", "hits", "last_accessed", "last_modified", "size"]);
  assert.equal(entry.size, data.length);
  assert.equal(entry.hits, 0);
  assert.equal(entry.last_accessed, entry.last_modified);
  assert.deepEqual((await listing(node)).queued_images, []);
});

t("a cached download is served from the cache and counts a hit", async ({ node }) => {
  const data = bytes(300_000);
  const id = await createImage(node, data);
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  const before = await waitCached(node, id);
  const res = await node.req(`/v2/images/${id}/file`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-length"), String(data.length));
  assert.equal(res.headers.get("content-md5"), md5(data));
  assert.equal(res.headers.get("content-type"), "application/octet-stream");
  assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data));
  const after = (await listing(node)).cached_images[0];
  assert.equal(after.hits, 1);
  assert.ok(after.last_accessed >= before.last_accessed);
  assert.equal(after.last_modified, before.last_modified);
});

t("an uncached download fills the cache on the way", async ({ node }) => {
  const data = bytes(2_000_000);
  const id = await createImage(node, data);
  const res = await node.req(`/v2/images/${id}/file`);
  assert.equal(res.headers.get("content-length"), String(data.length));
  assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data));
  const entry = await waitCached(node, id);
  assert.equal(entry.hits, 0);
});

t("DELETE /v2/cache/{id} removes a cached or queued image; 404 for an unknown one", async ({ node }) => {
  const id = await createImage(node, bytes(1000));
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  await waitCached(node, id);
  assert.equal((await node.req(`/v2/cache/${id}`, { method: "DELETE" })).status, 204);
  assert.deepEqual(await listing(node), { cached_images: [], queued_images: [], caching_images: {} });
  // an image that exists but is neither cached nor queued: 204 as Glance
  assert.equal((await node.req(`/v2/cache/${id}`, { method: "DELETE" })).status, 204);
  const unknown = "00000000-0000-0000-0000-000000000000";
  const res = await node.req(`/v2/cache/${unknown}`, { method: "DELETE" });
  assert.equal(res.status, 404);
  assert.match(await res.text(), new RegExp(`Image ${unknown} not found.`));
});

t("DELETE /v2/cache with each clear target empties the cache or not", async ({ node }) => {
  const a = await createImage(node, bytes(1000));
  for (
    const [target, keepCached] of [
      ["cache", false],
      ["queue", true],
      ["", false],
      [undefined, false],
      ["CACHE", false],
    ] as const
  ) {
    await node.req(`/v2/cache/${a}`, { method: "PUT" });
    await waitCached(node, a);
    const headers: Record<string, string> = target === undefined ? {} : { "x-image-cache-clear-target": target };
    const res = await node.req("/v2/cache", { method: "DELETE", headers });
    assert.equal(res.status, 204, `target ${target}`);
    assert.equal((await listing(node)).cached_images.length === 1, keepCached, `cache kept for target ${target}`);
  }
});

t("clear target queue drops queued ids and keeps cached ones", async ({ node }) => {
  const a = await createImage(node, bytes(1000));
  await node.req(`/v2/cache/${a}`, { method: "PUT" });
  await waitCached(node, a);
  // A long queue: the single worker is busy with the first, the rest wait.
  const big = await createImage(node, bytes(8 << 20));
  const waiting = [await createImage(node, bytes(1000)), await createImage(node, bytes(1000))];
  for (const id of [big, ...waiting]) await node.req(`/v2/cache/${id}`, { method: "PUT" });
  const res = await node.req("/v2/cache", { method: "DELETE", headers: { "x-image-cache-clear-target": "queue" } });
  assert.equal(res.status, 204);
  const l = await listing(node);
  assert.deepEqual(l.queued_images, []);
  assert.ok(l.cached_images.some((c) => c.image_id === a));
});

t("an invalid clear target is a 400 in Glance's words and format", async ({ node }) => {
  for (const bad of ["both", "bogus"]) {
    const res = await node.req("/v2/cache", {
      method: "DELETE",
      headers: { "x-image-cache-clear-target": bad, Accept: "application/json" },
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), {
      message: "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.<br /><br />\n\n\n",
      code: "400 Bad Request",
      title: "Bad Request",
    });
  }
  const plain = await node.req("/v2/cache", {
    method: "DELETE",
    headers: { "x-image-cache-clear-target": "x", Accept: "text/plain" },
  });
  assert.equal(plain.headers.get("content-type"), "text/plain; charset=UTF-8");
  assert.equal(
    await plain.text(),
    "400 Bad Request\n\nIf provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.\n\n   ",
  );
});

t("a member gets 403 on the cache API and 404 for images it cannot see", async ({ node }) => {
  const mine = await createImage(node, bytes(1000), {}, MEMBER);
  const hidden = await createImage(node, bytes(1000), { visibility: "private" }, ADMIN);
  await node.req(`/v2/cache/${hidden}`, { method: "PUT" });
  await waitCached(node, hidden);
  const cases: [string, string, number, string?][] = [
    ["GET", "/v2/cache", 403, "cache_list"],
    ["DELETE", "/v2/cache", 403, "cache_delete"],
    ["PUT", `/v2/cache/${mine}`, 403, "cache_image"],
    ["DELETE", `/v2/cache/${mine}`, 403, "cache_delete"],
    ["PUT", `/v2/cache/${hidden}`, 404],
    // cached but invisible: 404, not Glance's 403 that tells the id is cached
    ["DELETE", `/v2/cache/${hidden}`, 404],
  ];
  for (const [method, path, status, rule] of cases) {
    const res = await node.req(path, { method, as: MEMBER });
    assert.equal(res.status, status, `${method} ${path}`);
    if (rule) assert.match(await res.text(), new RegExp(`You are not authorized to complete ${rule} action.`));
  }
  assert.equal((await listing(node)).cached_images.length, 1);
});

t("a member downloads a public cached image from the cache", async ({ node }) => {
  const data = bytes(5000);
  const id = await createImage(node, data, { visibility: "public" });
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  await waitCached(node, id);
  const res = await node.req(`/v2/images/${id}/file`, { as: MEMBER });
  assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data));
  assert.equal((await listing(node)).cached_images[0].hits, 1);
});

t("wrong methods get 405 with Allow", async ({ node }) => {
  const id = await createImage(node, bytes(10));
  for (const method of ["POST", "PUT", "PATCH"]) {
    const res = await node.req("/v2/cache", { method });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET, DELETE");
  }
  for (const method of ["GET", "POST", "PATCH"]) {
    const res = await node.req(`/v2/cache/${id}`, { method });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "DELETE, PUT");
  }
  const post = await node.req(`/v2/images/${id}/file`, { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD, PUT");
});

t("GET /versions lists v2.14 and needs no identity; GET / answers 300", async ({ node }) => {
  const res = await fetch(`${node.url}/versions`);
  assert.equal(res.status, 200);
  const doc = (await res.json()) as { versions: { id: string; status: string; links: { href: string }[] }[] };
  assert.deepEqual(doc.versions.slice(0, 5).map((v) => [v.id, v.status]), [
    ["v2.18", "CURRENT"],
    ["v2.17", "SUPPORTED"],
    ["v2.16", "SUPPORTED"],
    ["v2.15", "SUPPORTED"],
    ["v2.14", "SUPPORTED"],
  ]);
  assert.equal(doc.versions[0].links[0].href, `${node.url}/v2/`);
  assert.equal((await fetch(`${node.url}/`)).status, 300);
});

t("GET /metrics counts fills, source reads and cache bytes", async ({ node }) => {
  const id = await createImage(node, bytes(4096));
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  await waitCached(node, id);
  assert.equal((await fetch(`${node.url}/metrics`)).status, 401); // not public unless public_metrics
  const res = await node.req("/metrics");
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /^glance_cache_fills_started_total 1$/m);
  assert.match(text, /^glance_cache_source_reads_total 1$/m);
  assert.match(text, /^glance_cache_size_bytes 4096$/m);
  assert.match(text, /^glance_cache_images 1$/m);
});

t.run();
