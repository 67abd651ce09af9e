// A fill discarded by DELETE while a download still reads it: a PUT right after queues a fill of its own beside
// it, and the download still gets the whole image.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { suite } from "uvu";
import type { Fill } from "../../src/cache/fill.ts";
import { nextEvent } from "../helpers/cache_events.ts";
import { Gate, holdReads } from "../helpers/gate.ts";
import {
  bytes,
  cacheDir,
  createImage,
  del,
  listing,
  md5,
  put,
  readAll,
  start,
  waitCached,
  waitFor,
} from "../helpers/helpers.ts";

const t = suite("cache discarded fill");

t(
  "PUT right after a DELETE while a download reads the discarded fill: queued, its own file, cached; the download is whole",
  async () => {
    const gate = new Gate();
    let reads = 0;
    const paths = new Set<string>();
    const node = await start({
      cacheConcurrency: 2,
      cacheSource: (store) => holdReads(store, () => (++reads === 1 ? gate : undefined)),
      cacheHooks: { beforeWrite: async (f: Fill) => void paths.add(f.path) },
    });
    try {
      const data = bytes(4 << 20);
      const id = await createImage(node, data);
      const res = await node.req(`/v2/images/${id}/file`);
      const reader = res.body!.getReader();
      const first = await reader.read();
      await gate.entered; // the first fill is held after its first chunk, a reader on it
      const [discardedPath] = paths;
      const discardedOver = nextEvent(node, (e) => e.type === "fill_finished" && e.id === id && e.outcome !== "cached");
      assert.equal((await del(node, id)).status, 204);
      assert.equal(node.app.cache.stateOf(id), "discarding");
      assert.equal((await put(node, id)).status, 202);
      assert.ok(["queued", "filling", "verifying", "cached"].includes(node.app.cache.stateOf(id)), "queued again");
      await waitCached(node, id);
      assert.equal(paths.size, 2, "two fills, two temporary files");
      assert.ok(existsSync(discardedPath), "the discarded fill's file is still there for its reader");
      gate.open();
      assert.equal(md5(await readAll(reader, [first.value!])), md5(data));
      assert.deepEqual(await discardedOver, { ...(await discardedOver), outcome: "discarded" });
      await waitFor("discarded file removed", async () => !existsSync(discardedPath));
      assert.deepEqual(await readdir(cacheDir(node, "incomplete")), []);
      assert.equal(md5(new Uint8Array(await readFile(cacheDir(node, id)))), md5(data));
      assert.deepEqual((await listing(node)).cached_images.map((c) => c.image_id), [id]);
      assert.equal(node.app.cache.stats.sourceReads, 2);
    } finally {
      gate.open();
      await node.close();
    }
  },
);

t.run();
