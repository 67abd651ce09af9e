// Shutdown between a worker's lookup and its fill (the lookup held at a gate): no fill starts, the queue marker
// stays for the next start.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import { Gate } from "../helpers/gate.ts";
import { bytes, cacheDir, createImage, put, start } from "../helpers/helpers.ts";

const t = suite("cache shutdown race");

t("close() while a worker is between find and the fill: no fill starts, the queue marker stays", async () => {
  const found = new Gate();
  const node = await start({
    cacheSource: (store) => ({
      find: async (id, who) => {
        const image = await store.find(id, who);
        if (who === null) await found.pass(); // the worker's lookup
        return image;
      },
      read: (image, range) => store.read(image, range),
    }),
  });
  try {
    const id = await createImage(node, bytes(1 << 20));
    await put(node, id);
    await found.entered;
    const closing = node.app.cache.close();
    found.open();
    await closing;
    assert.equal(node.app.cache.stats.fillsStarted, 0);
    assert.equal(node.app.cache.stats.sourceReads, 0);
    assert.ok(existsSync(join(cacheDir(node, "queue"), id)), "resumed at the next start");
  } finally {
    found.open();
    await node.close();
  }
});

t.run();
