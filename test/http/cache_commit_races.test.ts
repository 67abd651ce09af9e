// Deletes racing a fill's commit, the fill held at a commit hook: DELETE of the cache entry or of the image during
// the final fsync, and DELETE during the rename into place. The delete wins, and no file is left behind.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { suite } from "uvu";
import type { FillHooks } from "../../src/cache/fill.ts";
import { type FillFinished, fillFinished } from "../helpers/cache_events.ts";
import { Gate } from "../helpers/gate.ts";
import { bytes, cacheDir, createImage, del, listing, put, type Running, start, waitFor } from "../helpers/helpers.ts";

const t = suite("cache commit races");

/** Runs `race` while the fill of a new 1 MiB image, queued by PUT, waits at the commit hook `at`; `over` is its fill_finished. */
async function withFillHeldAt(
  at: "afterFsync" | "afterRename",
  race: (held: { node: Running; id: string; gate: Gate; over: Promise<FillFinished> }) => Promise<void>,
): Promise<void> {
  const gate = new Gate();
  const hooks: FillHooks = {};
  hooks[at] = () => gate.pass();
  const node = await start({ cacheHooks: hooks });
  try {
    const id = await createImage(node, bytes(1 << 20));
    const over = fillFinished(node, id);
    await put(node, id);
    await gate.entered;
    await race({ node, id, gate, over });
  } finally {
    gate.open();
    await node.close();
  }
}

t("DELETE /v2/cache/{id} during the final fsync wins: 204, nothing listed, no file", async () => {
  await withFillHeldAt("afterFsync", async ({ node, id, gate: fsync, over }) => {
    assert.equal(node.app.cache.stateOf(id), "verifying");
    assert.equal((await del(node, id)).status, 204);
    assert.deepEqual((await listing(node)).cached_images, []);
    fsync.open();
    assert.equal((await over).outcome, "discarded");
    assert.deepEqual(await listing(node), { cached_images: [], queued_images: [], caching_images: {} });
    assert.ok(!existsSync(cacheDir(node, id)), "no committed file");
    assert.deepEqual(await readdir(cacheDir(node, "incomplete")), []);
    assert.deepEqual(await readdir(cacheDir(node, "queue")), []);
    assert.equal(node.app.cache.stateOf(id), "absent");
  });
});

t(
  "DELETE during the commit's rename waits for it, then wins: the renamed file is removed, nothing listed",
  async () => {
    await withFillHeldAt("afterRename", async ({ node, id, gate: renamed, over }) => {
      assert.ok(existsSync(cacheDir(node, id)), "renamed into place, not yet recorded");
      const deleting = del(node, id);
      await waitFor(
        "the DELETE has moved the image to discarding",
        async () => node.app.cache.stateOf(id) === "discarding",
      );
      renamed.open();
      assert.equal((await deleting).status, 204);
      assert.ok(!existsSync(cacheDir(node, id)), "the commit removed its file");
      assert.deepEqual((await listing(node)).cached_images, []);
      assert.equal((await over).outcome, "discarded");
      assert.deepEqual(await readdir(cacheDir(node, "incomplete")), []);
    });
  },
);

t("deleting the image during the final fsync wins: nothing cached, no file", async () => {
  await withFillHeldAt("afterFsync", async ({ node, id, gate: fsync, over }) => {
    assert.equal((await node.req(`/v2/images/${id}`, { method: "DELETE" })).status, 204);
    fsync.open();
    assert.equal((await over).outcome, "discarded");
    assert.deepEqual((await listing(node)).cached_images, []);
    assert.ok(!existsSync(cacheDir(node, id)));
    assert.deepEqual(await readdir(cacheDir(node, "incomplete")), []);
  });
});

t.run();
