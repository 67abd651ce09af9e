// The fill budget downloads and the queue share: cache_concurrency slots and the bytes the fills in progress reserve
// under the size cap. A download that finds no room is served from the source, uncached.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { Gate, holdReads } from "../helpers/gate.ts";
import { bytes, createImage, listing, md5, put, readAll, start, waitCached, waitFor } from "../helpers/helpers.ts";

const t = suite("cache fill budget");

t(
  "download fills share cache_concurrency: with the slot taken a cold download reads the source, joins keep one read, the queue waits",
  async () => {
    const gate = new Gate();
    let held: string | undefined;
    const node = await start({
      cacheSource: (store) => holdReads(store, (image) => (image.id === held ? gate : undefined)),
    });
    try {
      const a = bytes(4 << 20);
      const b = bytes(2 << 20);
      const [ia, ib, ic] = [
        await createImage(node, a),
        await createImage(node, b),
        await createImage(node, bytes(1000)),
      ];
      held = ia;
      const resA = await node.req(`/v2/images/${ia}/file`);
      const readerA = resA.body!.getReader();
      const firstA = await readerA.read();
      await gate.entered;
      assert.deepEqual(node.app.cache.fillBudget, { slots: 1, bytes: 4 << 20, waiting: 0 });
      const joined = node.req(`/v2/images/${ia}/file`).then(async (r) => new Uint8Array(await r.arrayBuffer()));
      // a cold image while the only slot is held: served whole from the source, not cached
      assert.equal(md5(new Uint8Array(await (await node.req(`/v2/images/${ib}/file`)).arrayBuffer())), md5(b));
      assert.equal(node.app.cache.stats.uncachedDownloads, 1);
      assert.equal(node.app.cache.stats.fillsStarted, 1);
      // the queue waits for the slot, in order
      assert.equal((await put(node, ic)).status, 202);
      await waitFor("worker waiting for a slot", async () => node.app.cache.fillBudget.waiting === 1);
      assert.deepEqual((await listing(node)).queued_images, [ic]);
      gate.open();
      assert.equal(md5(await readAll(readerA, [firstA.value!])), md5(a));
      assert.equal(md5(await joined), md5(a));
      await waitCached(node, ia);
      await waitCached(node, ic);
      assert.ok(!(await listing(node)).cached_images.some((c) => c.image_id === ib));
      assert.equal(node.app.cache.stats.sourceReads, 3, "a once, b once (uncached), c once");
    } finally {
      gate.open();
      await node.close();
    }
  },
);

t("30 cold downloads at once: never more fills in progress than cache_concurrency, every body right", async () => {
  const node = await start({ cacheConcurrency: 2 });
  try {
    // One upload at a time: uploads in progress are bounded per project (max_uploads_per_project).
    const images: { data: Uint8Array; id: string }[] = [];
    for (let i = 0; i < 30; i++) {
      const data = bytes(256 << 10);
      images.push({ data, id: await createImage(node, data) });
    }
    let now = 0;
    let most = 0;
    node.app.cache.events.on((e) => {
      if (e.type === "fill_started") most = Math.max(most, ++now);
      if (e.type === "fill_finished") now--;
    });
    const bodies = await Promise.all(
      images.map(({ id }) =>
        node.req(`/v2/images/${id}/file`).then(async (r) => new Uint8Array(await r.arrayBuffer()))
      ),
    );
    bodies.forEach((b, i) => assert.equal(md5(b), md5(images[i].data)));
    assert.ok(most >= 1 && most <= 2, `${most} fills at once`);
    const { fillsStarted, uncachedDownloads } = node.app.cache.stats;
    assert.equal(fillsStarted + uncachedDownloads, 30);
  } finally {
    await node.close();
  }
});

t(
  "a download fill reserves its size: one that does not fit beside the fills in progress reads the source",
  async () => {
    const gate = new Gate();
    let held: string | undefined;
    const node = await start({
      cacheConcurrency: 2,
      maxSize: 3 << 20,
      cacheSource: (store) => holdReads(store, (image) => (image.id === held ? gate : undefined)),
    });
    try {
      const [a, b] = [bytes(2 << 20), bytes(2 << 20)];
      const [ia, ib] = [await createImage(node, a), await createImage(node, b)];
      held = ia;
      const resA = await node.req(`/v2/images/${ia}/file`);
      const readerA = resA.body!.getReader();
      const firstA = await readerA.read();
      await gate.entered;
      assert.equal(md5(new Uint8Array(await (await node.req(`/v2/images/${ib}/file`)).arrayBuffer())), md5(b));
      assert.equal(node.app.cache.stats.uncachedDownloads, 1);
      assert.deepEqual(node.app.cache.fillBudget, { slots: 1, bytes: 2 << 20, waiting: 0 });
      gate.open();
      assert.equal(md5(await readAll(readerA, [firstA.value!])), md5(a));
      await waitCached(node, ia);
      assert.deepEqual((await listing(node)).cached_images.map((c) => c.image_id), [ia]);
    } finally {
      gate.open();
      await node.close();
    }
  },
);

t.run();
