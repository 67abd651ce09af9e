// Bad input: each gets its status and Glance-format error, and nothing on disk changes.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { bytes, createImage, type Running, start, tree, waitCached, waitFor } from "../helpers/helpers.ts";

const t = suite<{ node: Running; active: string; queued: string }>("bad input", {} as never);
t.before(async (ctx) => {
  ctx.node = await start();
  ctx.active = await createImage(ctx.node, bytes(1000));
  ctx.queued = await createImage(ctx.node, undefined);
});
t.after(async (ctx) => {
  await ctx.node.close();
});

async function untouched(node: Running, fn: () => Promise<void>) {
  const before = await tree(node.dir);
  const { fillsStarted, sourceReads } = node.app.cache.stats;
  await fn();
  // Every request has been answered, and a request queues before it answers: with the queue empty
  // and no fill started or running, no stray worker can change anything after this point.
  assert.equal(node.app.cache.totals().queuedImages, 0);
  assert.deepEqual(node.app.cache.fills(), []);
  assert.deepEqual([node.app.cache.stats.fillsStarted, node.app.cache.stats.sourceReads], [fillsStarted, sourceReads]);
  assert.deepEqual(await tree(node.dir), before);
}

const ODD_IDS = ["..", "a.b", "not-a-uuid", "x".repeat(5000), "%2E%2E", "..%2F..%2Fetc"];

t("PUT and DELETE /v2/cache/{id} with ids that are not image ids: 404, disk untouched", async ({ node, active }) => {
  await untouched(node, async () => {
    for (const id of [...ODD_IDS, active.toUpperCase(), "00000000-0000-0000-0000-000000000000"]) {
      for (const method of ["PUT", "DELETE"]) {
        const res = await node.req(`/v2/cache/${id}`, { method, headers: { Accept: "application/json" } });
        assert.equal(res.status, 404, `${method} ${id.slice(0, 40)}`);
        const body = (await res.json()) as { code: string; title: string };
        assert.equal(body.code, "404 Not Found");
        assert.equal(body.title, "Not Found");
      }
    }
  });
});

t("ids with a slash never reach a handler: 404", async ({ node }) => {
  await untouched(node, async () => {
    for (const path of ["/v2/cache/a/b", "/v2/cache/a%2Fb", "/v2/cache/..%2F..%2Fimages", "/v2/cache/"]) {
      const res = await node.req(path, { method: "PUT" });
      assert.ok(res.status === 404 || res.status === 405, `${path}: ${res.status}`);
    }
  });
});

t("the upper-cased id of a real image is 404 (ids match exactly, as in Glance)", async ({ node, active }) => {
  const res = await node.req(`/v2/cache/${active.toUpperCase()}`, { method: "PUT", headers: { Accept: "text/plain" } });
  assert.equal(res.status, 404);
  assert.equal(await res.text(), `404 Not Found\n\nImage ${active.toUpperCase()} not found.\n\n   `);
});

t("an image that is not active cannot be queued: 400", async ({ node, queued }) => {
  await untouched(node, async () => {
    const res = await node.req(`/v2/cache/${queued}`, { method: "PUT", headers: { Accept: "text/plain" } });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /Only images with status active can be targeted for queueing/);
  });
});

t("a body on PUT /v2/cache/{id} is a 400 (Glance: 500)", async ({ node, active }) => {
  await untouched(node, async () => {
    for (const body of ["{}", '{"foo": 1}', "not json"]) {
      const res = await node.req(`/v2/cache/${active}`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body,
      });
      assert.equal(res.status, 400, body);
    }
  });
});

t("an invalid clear target is 400 and clears nothing", async ({ node, active }) => {
  await node.req(`/v2/cache/${active}`, { method: "PUT" });
  await waitCached(node, active);
  await waitFor("queue drained", async () => node.app.cache.totals().queuedImages === 0);
  await untouched(node, async () => {
    const res = await node.req("/v2/cache", {
      method: "DELETE",
      headers: { "x-image-cache-clear-target": "everything" },
    });
    assert.equal(res.status, 400);
  });
});

t("missing identity in headers mode: 401 on every /v2 call", async ({ node, active }) => {
  await untouched(node, async () => {
    for (
      const [method, path] of [
        ["GET", "/v2/cache"],
        ["PUT", `/v2/cache/${active}`],
        ["DELETE", `/v2/cache/${active}`],
        ["DELETE", "/v2/cache"],
        ["GET", `/v2/images/${active}/file`],
        ["GET", "/v2/images"],
      ]
    ) {
      const res = await node.req(path, { method, as: {}, headers: { Accept: "text/plain" } });
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.match(await res.text(), /^401 Unauthorized\n\nThis server could not verify/);
      assert.equal(res.headers.get("x-openstack-request-id"), null);
    }
    const bogus = await node.req("/v2/cache", { as: { "X-Auth-Token": "not-a-token" } });
    assert.equal(bogus.status, 401);
  });
});

t("malformed JSON and read-only attributes on image create", async ({ node }) => {
  const post = (body: string) =>
    node.req("/v2/images", { method: "POST", headers: { "Content-Type": "application/json" }, body });
  assert.equal((await post("{nope")).status, 400);
  assert.equal((await post('{"status": "active"}')).status, 403);
  assert.equal((await post('{"visibility": "everyone"}')).status, 400);
  assert.equal((await post('{"disk_format": "exe"}')).status, 400);
  assert.equal((await post('{"id": "../../etc"}')).status, 400);
});

t("unknown paths are 404", async ({ node }) => {
  assert.equal((await node.req("/v2/nothing")).status, 404);
  assert.equal((await node.req("/v3/cache")).status, 404);
});

t.run();
