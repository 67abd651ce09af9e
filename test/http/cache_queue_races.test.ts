// The fill queue under races: cleared while its fill runs (the freed worker finds nothing), and bounded by
// max_queue (a Glance-format 409, room freed as it drains).
import assert from "node:assert/strict";
import { suite } from "uvu";
import { fillFinished } from "../helpers/cache_events.ts";
import { Gate, holdReads } from "../helpers/gate.ts";
import { bytes, createImage, del, listing, put, start, waitCached } from "../helpers/helpers.ts";

const t = suite("cache queue races");

t(
  "clearing the queue while its fill is running: the worker the cancelled fill frees finds nothing left to fill",
  async () => {
    const gate = new Gate();
    let held: string | undefined;
    const node = await start({
      cacheSource: (store) => holdReads(store, (image) => (image.id === held ? gate : undefined)),
    });
    try {
      const [blocker, waiting, later] = [
        await createImage(node, bytes(2 << 20)),
        await createImage(node, bytes(1000)),
        await createImage(node, bytes(1000)),
      ];
      held = blocker;
      const started: string[] = [];
      node.app.cache.events.on((e) => void (e.type === "fill_started" && started.push(e.id)));
      const blockerOver = fillFinished(node, blocker);
      await put(node, blocker);
      await gate.entered; // the only worker is in blocker's fill, which waits after its first chunk
      await put(node, waiting);
      const res = await node.req("/v2/cache", { method: "DELETE", headers: { "x-image-cache-clear-target": "queue" } });
      assert.equal(res.status, 204);
      assert.notEqual((await blockerOver).outcome, "cached"); // its worker is free again
      // The queue is FIFO: had `waiting` survived the clear, the freed worker would fill it before `later`.
      await put(node, later);
      await waitCached(node, later);
      assert.deepEqual(started, [blocker, later]);
      const l = await listing(node);
      assert.deepEqual(l.cached_images.map((c) => c.image_id), [later]);
      assert.deepEqual(l.queued_images, []);
    } finally {
      gate.open();
      await node.close();
    }
  },
);

t("the queue is bounded: a PUT beyond max_queue gets a Glance-format 409, and room frees as it drains", async () => {
  const gate = new Gate();
  const node = await start({ maxQueue: 2, cacheSource: (store) => holdReads(store, () => gate) });
  try {
    const [a, b, c] = [
      await createImage(node, bytes(2 << 20)),
      await createImage(node, bytes(1000)),
      await createImage(node, bytes(1000)),
    ];
    assert.equal((await put(node, a)).status, 202);
    await gate.entered; // a is being filled (still counted: its marker stays until it is cached)
    assert.equal((await put(node, b)).status, 202);
    const full = await node.req(`/v2/cache/${c}`, { method: "PUT", headers: { Accept: "application/json" } });
    assert.equal(full.status, 409);
    const body = (await full.json()) as { code: string; title: string; message: string };
    assert.equal(body.code, "409 Conflict");
    assert.match(body.message, /queue is full/);
    assert.equal((await put(node, b)).status, 202, "an image already queued is still accepted");
    assert.equal((await del(node, b)).status, 204);
    assert.equal((await put(node, c)).status, 202);
    gate.open();
    await waitCached(node, c);
  } finally {
    gate.open();
    await node.close();
  }
});

t.run();
