// The fill path: checksums, a worker that survives failures, one fill per image, restarts, deletes.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import {
  bytes,
  cacheDir,
  createImage,
  listing,
  md5,
  type Running,
  start,
  waitCached,
  waitFor,
} from "../helpers/helpers.ts";

const t = suite<{ node: Running }>("fill", {} as never);
t.before.each(async (ctx) => {
  ctx.node = await start();
});
t.after.each(async (ctx) => {
  await ctx.node.close();
});

const storeFile = (node: Running, id: string) => join(node.dir, "images", `${id}.data`);

t("a checksum mismatch moves the file to invalid/, the worker lives on", async ({ node }) => {
  const data = bytes(1 << 20);
  const bad = await createImage(node, data);
  const corrupted = data.slice();
  corrupted[1000] ^= 0xff;
  await writeFile(storeFile(node, bad), corrupted);
  const good = await createImage(node, bytes(1000));
  await node.req(`/v2/cache/${bad}`, { method: "PUT" });
  await node.req(`/v2/cache/${good}`, { method: "PUT" });
  await waitCached(node, good);
  const l = await listing(node);
  assert.deepEqual(l.cached_images.map((c) => c.image_id), [good]);
  assert.deepEqual(l.queued_images, []);
  assert.deepEqual(await readdir(cacheDir(node, "invalid")), [bad]);
  assert.deepEqual(await readdir(cacheDir(node, "incomplete")), []);
  assert.equal(node.app.cache.stats.fillsFailed, 1);
});

t(
  "verify_hash = checksum: the md5 checksum verifies a fill (and only it); by default the sha512 multihash does",
  async () => {
    for (const verifyHash of ["checksum", "os_hash_value"] as const) {
      const node = await start({ verifyHash });
      try {
        const finished: { outcome: string; verifiedWith: string | null }[] = [];
        node.app.cache.events.on((e) => {
          if (e.type === "fill_finished") finished.push({ outcome: e.outcome, verifiedWith: e.verifiedWith });
        });
        const id = await createImage(node, bytes(3 << 20));
        // a record whose multihash is wrong: only a fill that checks it notices
        const image = (await node.app.store!.find(id, null))!;
        image.os_hash_value = "0".repeat(128);
        await node.req(`/v2/cache/${id}`, { method: "PUT" });
        // the event comes once the fill has let go of its file, after the listing already shows the outcome
        await waitFor(
          "fill over",
          async () => finished.length === 1 && (await listing(node)).queued_images.length === 0,
        );
        const cached = (await listing(node)).cached_images.map((c) => c.image_id);
        if (verifyHash === "checksum") {
          assert.deepEqual(cached, [id]);
          assert.deepEqual(finished, [{ outcome: "cached", verifiedWith: "md5" }]);
        } else {
          assert.deepEqual(cached, []);
          assert.deepEqual(finished.map((f) => f.outcome), ["failed"]);
          assert.deepEqual(await readdir(cacheDir(node, "invalid")), [id]);
        }
      } finally {
        await node.close();
      }
    }
  },
);

t("a corrupted image downloaded uncached: the client sees an aborted transfer, nothing cached", async ({ node }) => {
  const data = bytes(3 << 20);
  const id = await createImage(node, data);
  const corrupted = data.slice();
  corrupted[5] ^= 1;
  await writeFile(storeFile(node, id), corrupted);
  const res = await node.req(`/v2/images/${id}/file`);
  assert.equal(res.status, 200);
  await assert.rejects(res.arrayBuffer());
  await waitFor("fill over", async () => node.app.cache.fills().length === 0);
  assert.deepEqual((await listing(node)).cached_images, []);
  assert.deepEqual(await readdir(cacheDir(node, "invalid")), [id]);
});

t("a missing store file fails the fill, and the next image is still cached", async ({ node }) => {
  const gone = await createImage(node, bytes(1000));
  const { rm } = await import("node:fs/promises");
  await rm(storeFile(node, gone));
  const good = await createImage(node, bytes(1000));
  await node.req(`/v2/cache/${gone}`, { method: "PUT" });
  await node.req(`/v2/cache/${good}`, { method: "PUT" });
  await waitCached(node, good);
  assert.deepEqual((await listing(node)).queued_images, []);
});

t("PUT of a queued, in-flight or cached image starts no second fill", async ({ node }) => {
  const id = await createImage(node, bytes(16 << 20));
  const puts = await Promise.all(Array.from({ length: 20 }, () => node.req(`/v2/cache/${id}`, { method: "PUT" })));
  assert.ok(puts.every((r) => r.status === 202));
  await waitCached(node, id);
  await waitFor("queue drained", async () => node.app.cache.totals().queuedImages === 0);
  assert.equal((await node.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
  // A PUT queues before it answers: with nothing queued and no fill running, no fill can follow.
  assert.equal(node.app.cache.totals().queuedImages, 0);
  assert.deepEqual(node.app.cache.fills(), []);
  assert.equal(node.app.cache.stats.fillsStarted, 1);
  assert.equal(node.app.cache.stats.sourceReads, 1);
});

t("concurrent uncached downloads and a PUT read the source once", async ({ node }) => {
  const data = bytes(8 << 20);
  const id = await createImage(node, data);
  const downloads = Array.from({ length: 8 }, () => node.req(`/v2/images/${id}/file`).then((r) => r.arrayBuffer()));
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  for (const body of await Promise.all(downloads)) assert.equal(md5(new Uint8Array(body)), md5(data));
  await waitCached(node, id);
  assert.equal(node.app.cache.stats.sourceReads, 1);
});

t("queued images are filled in order, one at a time by default", async ({ node }) => {
  const first = await createImage(node, bytes(32 << 20));
  const second = await createImage(node, bytes(1000));
  await node.req(`/v2/cache/${first}`, { method: "PUT" });
  await node.req(`/v2/cache/${second}`, { method: "PUT" });
  const l = await listing(node);
  assert.ok(l.queued_images.includes(second));
  await waitCached(node, second);
  assert.ok((await listing(node)).cached_images.some((c) => c.image_id === first), "first done before second");
});

t("the index and the queue survive a restart; the queue resumes by itself", async ({ node }) => {
  const cached = await createImage(node, bytes(5000));
  await node.req(`/v2/cache/${cached}`, { method: "PUT" });
  await waitCached(node, cached);
  await node.req(`/v2/images/${cached}/file`).then((r) => r.arrayBuffer());
  const pending = await createImage(node, bytes(1000));
  // The marker a queued PUT leaves, as if the process had stopped before the worker took it.
  await writeFile(join(cacheDir(node, "queue"), pending), "");
  await node.stop();
  const again = await start({}, node.dir);
  try {
    const entry = await waitCached(again, pending);
    assert.equal(entry.size, 1000);
    const old = (await listing(again)).cached_images.find((c) => c.image_id === cached);
    assert.equal(old?.hits, 1);
    assert.deepEqual((await listing(again)).queued_images, []);
  } finally {
    await again.stop();
  }
});

t("a fill interrupted by shutdown is resumed at the next start", async ({ node }) => {
  const id = await createImage(node, bytes(64 << 20));
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  await node.stop();
  assert.ok(existsSync(join(cacheDir(node, "queue"), id)));
  const again = await start({}, node.dir);
  try {
    await waitCached(again, id, 30_000);
    assert.deepEqual(await readdir(cacheDir(again, "incomplete")), []);
  } finally {
    await again.stop();
  }
});

t("deleting or deactivating an image removes its cached copy and its queue entry", async ({ node }) => {
  const a = await createImage(node, bytes(1000));
  const b = await createImage(node, bytes(1000));
  for (const id of [a, b]) {
    await node.req(`/v2/cache/${id}`, { method: "PUT" });
    await waitCached(node, id);
  }
  const queuedOnly = await createImage(node, bytes(1000));
  await writeFile(join(cacheDir(node, "queue"), queuedOnly), ""); // on disk only: not yet taken
  assert.equal((await node.req(`/v2/images/${a}`, { method: "DELETE" })).status, 204);
  assert.equal((await node.req(`/v2/images/${b}/actions/deactivate`, { method: "POST" })).status, 204);
  assert.equal((await node.req(`/v2/images/${queuedOnly}`, { method: "DELETE" })).status, 204);
  const l = await listing(node);
  assert.deepEqual(l.cached_images, []);
  assert.ok(!existsSync(join(cacheDir(node), a)) && !existsSync(join(cacheDir(node), b)));
  assert.ok(!existsSync(join(cacheDir(node, "queue"), queuedOnly)));
});

t("deleting an image while it is filling cancels the fill and leaves nothing", async ({ node }) => {
  const id = await createImage(node, bytes(64 << 20));
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  await waitFor("fill started", async () => node.app.cache.fills().length > 0);
  assert.equal((await node.req(`/v2/images/${id}`, { method: "DELETE" })).status, 204);
  await waitFor("fill over", async () => node.app.cache.fills().length === 0);
  assert.deepEqual(await listing(node), { cached_images: [], queued_images: [], caching_images: {} });
  assert.deepEqual(await readdir(cacheDir(node, "incomplete")), []);
  assert.deepEqual(await readdir(cacheDir(node, "queue")), []);
});

t("a deactivated image is served to an admin from the source and not cached", async ({ node }) => {
  const data = bytes(4000);
  const id = await createImage(node, data);
  await node.req(`/v2/images/${id}/actions/deactivate`, { method: "POST" });
  const res = await node.req(`/v2/images/${id}/file`);
  assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data));
  assert.deepEqual((await listing(node)).cached_images, []);
  assert.equal((await node.req(`/v2/cache/${id}`, { method: "PUT" })).status, 400);
});

t("Range on a cached image is cut from the cache", async ({ node }) => {
  const data = bytes(10_000);
  const id = await createImage(node, data);
  await node.req(`/v2/cache/${id}`, { method: "PUT" });
  await waitCached(node, id);
  const reads = node.app.cache.stats.sourceReads;
  const res = await node.req(`/v2/images/${id}/file`, { headers: { Range: "bytes=100-199" } });
  assert.equal(res.status, 206);
  assert.equal(res.headers.get("content-range"), "bytes 100-199/10000");
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), data.subarray(100, 200));
  assert.equal(node.app.cache.stats.sourceReads, reads);
  const tail = await node.req(`/v2/images/${id}/file`, { headers: { Range: "bytes=-10" } });
  assert.deepEqual(new Uint8Array(await tail.arrayBuffer()), data.subarray(9990));
  const bad = await node.req(`/v2/images/${id}/file`, { headers: { Range: "bytes=20000-" } });
  assert.equal(bad.status, 416);
});

t.run();
