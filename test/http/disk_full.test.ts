// Disk faults for real: the cache directory on a tiny tmpfs fills up in the middle of a fill.
// test-needs: root
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { suite } from "uvu";
import { bytes, createImage, listing, md5, type Running, start, tempDir, waitFor } from "../helpers/helpers.ts";

const run = promisify(execFile);
const t = suite("faults");

/** A data directory whose cache/ is a tmpfs of `size` (needs root, as CI has). */
async function smallCacheDisk(size: string): Promise<{ dir: string; unmount: () => Promise<void> }> {
  const dir = await tempDir();
  const cache = join(dir, "cache");
  await mkdir(cache);
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", cache]);
  } catch (err) {
    throw new Error(`cannot mount a tmpfs for the disk-full test (run as root): ${err}`);
  }
  return {
    dir,
    unmount: async () => {
      await run("umount", ["-l", cache]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

t(
  "disk full during a fill: downloads are served whole from the source, nothing partial stays, the error is logged and counted",
  async () => {
    const disk = await smallCacheDisk("4m");
    const logs: string[] = [];
    let node: Running | undefined;
    try {
      node = await start({ log: (m) => logs.push(m) }, disk.dir);
      const n = node;
      const data = bytes(12 << 20);
      const id = await createImage(n, data);
      for (let i = 0; i < 2; i++) {
        const res = await n.req(`/v2/images/${id}/file`);
        assert.equal(res.status, 200);
        assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data), `download ${i + 1} whole and right`);
        await waitFor("fill over", async () => n.app.cache.fills().length === 0);
      }
      assert.deepEqual((await listing(n)).cached_images, []);
      assert.deepEqual(await readdir(join(disk.dir, "cache", "incomplete")), []);
      assert.equal(n.app.cache.stats.fillsFailed, 2);
      assert.ok(logs.some((l) => /ENOSPC|no space/i.test(l)), logs.join("\n"));
      // A queued fill fails the same way and the worker goes on: a small image is still cached.
      const small = await createImage(n, bytes(1000));
      await n.req(`/v2/cache/${id}`, { method: "PUT" });
      await n.req(`/v2/cache/${small}`, { method: "PUT" });
      await waitFor("small cached", async () => (await listing(n)).cached_images.some((c) => c.image_id === small));
      assert.deepEqual((await listing(n)).queued_images, []);
    } finally {
      await node?.stop();
      await disk.unmount();
    }
  },
);

t.run();
