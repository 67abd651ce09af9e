// In front of another Glance-speaking server (here: a second node with the embedded store): pass-through, cache, forget.
// test-needs: curl
import assert from "node:assert/strict";
import { suite } from "uvu";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { bytes, md5, type Running, start, tempDir, waitCached } from "../helpers/helpers.ts";

const t = suite<{ upstream: Running; node: Running; reads: (id: string) => number }>("upstream", {} as never);
t.before.each(async (ctx) => {
  ctx.upstream = await start({ auth: "noauth" });
  // Every download the upstream serves is a hit on its own cache or a read of its store.
  const cache = ctx.upstream.app.cache;
  ctx.reads = (id) => cache.stats.sourceReads + (cache.entry(id)?.hits ?? 0);
  ctx.node = await start({ auth: "headers", upstream: { url: ctx.upstream.url, metadataCacheTime: 0 } });
});
t.after.each(async (ctx) => {
  await ctx.node.close();
  await ctx.upstream.close();
});

async function uploadThroughNode(node: Running, data: Uint8Array): Promise<string> {
  const res = await node.req("/v2/images", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "up", disk_format: "raw", container_format: "bare" }),
  });
  assert.equal(res.status, 201);
  assert.match(res.headers.get("location") ?? "", new RegExp(`^${node.url}/v2/images/`), "Location points at the node");
  const { id } = (await res.json()) as { id: string };
  // curl, as operators' scripts do: it streams the file and sends Expect: 100-continue, which must end at the node.
  const file = join(await tempDir(), "image.raw");
  await writeFile(file, data);
  const { stdout } = await promisify(execFile)("curl", [
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-X",
    "PUT",
    "-T",
    file,
    "-H",
    "Content-Type: application/octet-stream",
    "-H",
    "X-Identity-Status: Confirmed",
    "-H",
    "X-Roles: admin",
    "-H",
    "X-Tenant-Id: adminproj",
    "-H",
    "X-User-Id: adminuser",
    `${node.url}/v2/images/${id}/file`,
  ]);
  assert.equal(stdout, "204");
  return id;
}

t(
  "image API calls pass through; the cache is answered by the node; a cached download does not read upstream",
  async ({ node, reads }) => {
    const data = bytes(3 << 20);
    const id = await uploadThroughNode(node, data);
    const shown = (await (await node.req(`/v2/images/${id}`)).json()) as { status: string; checksum: string };
    assert.equal(shown.status, "active");
    assert.equal(shown.checksum, md5(data));
    assert.equal((await node.req("/v2/images")).status, 200);
    assert.equal((await node.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
    await waitCached(node, id);
    const before = reads(id);
    assert.ok(before > 0);
    for (let i = 0; i < 3; i++) {
      const res = await node.req(`/v2/images/${id}/file`);
      assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data));
    }
    assert.equal(reads(id), before, "served from the cache: upstream data not read again");
  },
);

t("an image deleted upstream is not served from the cache, and its entry goes", async ({ node, upstream }) => {
  const id = await uploadThroughNode(node, bytes(100_000));
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  await waitCached(node, id);
  assert.equal((await upstream.req(`/v2/images/${id}`, { method: "DELETE" })).status, 204); // behind the node's back
  assert.equal((await node.req(`/v2/images/${id}/file`)).status, 404);
  assert.deepEqual(((await (await node.req("/v2/cache")).json()) as { cached_images: unknown[] }).cached_images, []);
});

t("deleting through the node removes the cached copy at once", async ({ node }) => {
  const id = await uploadThroughNode(node, bytes(1000));
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  await waitCached(node, id);
  assert.equal((await node.req(`/v2/images/${id}`, { method: "DELETE" })).status, 204);
  assert.deepEqual(((await (await node.req("/v2/cache")).json()) as { cached_images: unknown[] }).cached_images, []);
});

t("a deactivated upstream image is not served from the cache to a member", async ({ node, upstream }) => {
  const id = await uploadThroughNode(node, bytes(1000));
  await upstream.req(`/v2/images/${id}`, {
    method: "PATCH",
    headers: { "Content-Type": "application/openstack-images-v2.1-json-patch" },
    body: JSON.stringify([{ op: "replace", path: "/visibility", value: "public" }]),
  });
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  await waitCached(node, id);
  await upstream.req(`/v2/images/${id}/actions/deactivate`, { method: "POST" });
  const member = { "X-Identity-Status": "Confirmed", "X-Roles": "member", "X-Tenant-Id": "p", "X-User-Id": "u" };
  assert.equal((await node.req(`/v2/images/${id}/file`, { as: member })).status, 403);
  assert.deepEqual(((await (await node.req("/v2/cache")).json()) as { cached_images: unknown[] }).cached_images, []);
});

t.run();
