// End to end with the real thing: the node in front of Debian's glance-api, tokens from Debian's Keystone,
// driven with python-glanceclient. e2e/start.sh (run by .ci/run) starts both and writes $E2E_BASE/env.
// test-needs: e2e glanceclient
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { readEnv, startInFront, token, upstreamDataReads } from "../helpers/e2e_helpers.ts";
import { glance } from "../helpers/glanceclient.ts";
import { bytes, md5, type Running, tempDir, waitFor } from "../helpers/helpers.ts";

const t = suite<{ env: Record<string, string>; node: Running; admin: string; demo: string }>("e2e", {} as never);

t.before(async (ctx) => {
  ctx.env = readEnv();
  const env = ctx.env;
  ctx.node = await startInFront(env);
  ctx.admin = await token(env, "ADMIN");
  ctx.demo = await token(env, "DEMO");
});
t.after(async (ctx) => {
  await ctx.node?.close();
});

const as = (tok: string) => ({ "X-Auth-Token": tok });
const cacheListing = async (node: Running, tok: string) =>
  (await (await node.req("/v2/cache", { as: as(tok) })).json()) as {
    cached_images: { image_id: string; hits: number }[];
    queued_images: string[];
  };

t(
  "upload through the node with glanceclient, queue, cached, download from the cache without reading upstream",
  async ({ node, admin }) => {
    const dir = await tempDir();
    const data = bytes(3 << 20);
    await writeFile(join(dir, "img.raw"), data);
    const created = await glance(
      node.url,
      admin,
      "image-create",
      "--name",
      "e2e",
      "--disk-format",
      "raw",
      "--container-format",
      "bare",
      "--file",
      join(dir, "img.raw"),
    );
    assert.equal(created.code, 0, created.stderr);
    const id = /\|\s*id\s*\|\s*([0-9a-f-]{36})/.exec(created.stdout)?.[1];
    assert.ok(id, created.stdout);
    assert.match(created.stdout, /\|\s*status\s*\|\s*active/);
    assert.match(created.stdout, new RegExp(`\\|\\s*checksum\\s*\\|\\s*${md5(data)}`));

    const queued = await glance(node.url, admin, "cache-queue", id);
    assert.equal(queued.code, 0, queued.stderr);
    assert.equal(queued.stderr, "");
    await waitFor(
      "cached",
      async () => (await cacheListing(node, admin)).cached_images.some((c) => c.image_id === id),
      60_000,
    );
    const listed = await glance(node.url, admin, "cache-list");
    assert.match(listed.stdout, new RegExp(`${id}\\s*\\|\\s*cached`));

    const before = upstreamDataReads(id);
    assert.equal(before, 1, "upstream served the data once, to the fill");
    for (let i = 0; i < 2; i++) {
      const out = join(dir, `out${i}.raw`);
      const dl = await glance(node.url, admin, "image-download", "--file", out, id);
      assert.equal(dl.code, 0, dl.stderr);
      assert.equal(md5(new Uint8Array(await readFile(out))), md5(data));
    }
    assert.equal(upstreamDataReads(id), before, "downloads served from the cache: upstream's data not read again");
    assert.equal(
      (await cacheListing(node, admin)).cached_images.find((c) => c.image_id === id)?.hits,
      2,
    );
    await rm(dir, { recursive: true, force: true });
  },
);

t(
  "an image deleted upstream: download through the node is 404 and the cache entry goes",
  async ({ env, node, admin }) => {
    const res = await node.req("/v2/images", {
      as: as(admin),
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "e2e-del", disk_format: "raw", container_format: "bare" }),
    });
    const { id } = (await res.json()) as { id: string };
    const up = await node.req(`/v2/images/${id}/file`, {
      as: as(admin),
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes(100_000) as unknown as BodyInit,
    });
    assert.equal(up.status, 204);
    await node.req(`/v2/cache/${id}`, { as: as(admin), method: "PUT" });
    await waitFor(
      "cached",
      async () => (await cacheListing(node, admin)).cached_images.some((c) => c.image_id === id),
      60_000,
    );
    const del = await fetch(`${env.GLANCE_URL}/v2/images/${id}`, { method: "DELETE", headers: as(admin) }); // behind the node's back
    assert.equal(del.status, 204);
    assert.equal((await node.req(`/v2/images/${id}/file`, { as: as(admin) })).status, 404);
    assert.ok(
      !(await cacheListing(node, admin)).cached_images.some((c) => c.image_id === id),
    );
  },
);

t("a member is refused the cache API; an admin is not", async ({ node, admin, demo }) => {
  assert.equal((await node.req("/v2/cache", { as: as(demo) })).status, 403);
  assert.equal((await node.req("/v2/cache", { as: as(demo), method: "DELETE" })).status, 403);
  const listed = await glance(node.url, demo, "cache-list");
  assert.notEqual(listed.code, 0);
  assert.match(listed.stderr, /403/);
  assert.equal((await node.req("/v2/cache", { as: as(admin) })).status, 200);
  // a member sees the images API through the node as upstream decides
  assert.equal((await node.req("/v2/images", { as: as(demo) })).status, 200);
});

t("a bogus, missing or revoked token is a 401 with WWW-Authenticate", async ({ env, node }) => {
  for (const headers of [{}, { "X-Auth-Token": "bogus" }] as Record<string, string>[]) {
    const res = await node.req("/v2/cache", { as: headers });
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Keystone uri=/);
  }
  const doomed = await token(env, "ADMIN");
  const revoke = await fetch(`${env.KEYSTONE_URL.replace(/\/$/, "")}/auth/tokens`, {
    method: "DELETE",
    headers: { "X-Auth-Token": doomed, "X-Subject-Token": doomed },
  });
  assert.equal(revoke.status, 204);
  assert.equal((await node.req("/v2/cache", { as: as(doomed) })).status, 401);
  assert.equal((await node.req(`/v2/images`, { as: as(doomed) })).status, 401);
});

t.run();
