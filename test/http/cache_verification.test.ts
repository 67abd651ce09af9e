// Verification of every byte served: os_hash_algo by its hashlib name (sha3, blake2), md5 when this runtime lacks
// the algorithm, and downloads straight from the source verified too.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { fillFinished } from "../helpers/cache_events.ts";
import { bytes, cacheDir, createImage, md5, put, type Running, start, waitCached } from "../helpers/helpers.ts";

const t = suite("cache verification");

/** hashlib names and node:crypto names, as the tests compute the expected digest. */
const ALGOS: [string, string][] = [
  ["sha3_512", "sha3-512"],
  ["blake2b", "blake2b512"],
  ["blake2s", "blake2s256"],
  ["sha3_256", "sha3-256"],
];

async function setHash(node: Running, id: string, algo: string, value: string, checksum?: string) {
  const store = node.app.store!;
  const image = (await store.find(id, null))!;
  await store.save({ ...image, os_hash_algo: algo, os_hash_value: value, checksum: checksum ?? image.checksum });
}

for (const [hashlib, runtime] of ALGOS) {
  t(`os_hash_algo ${hashlib}: cold download verified with it and cached; a wrong value is refused`, async () => {
    const node = await start();
    try {
      const data = bytes(3 << 20);
      const id = await createImage(node, data);
      await setHash(node, id, hashlib, createHash(runtime).update(data).digest("hex"));
      const over = fillFinished(node, id);
      const res = await node.req(`/v2/images/${id}/file`);
      assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data));
      const e = await over;
      assert.deepEqual([e.outcome, e.verifiedWith], ["cached", hashlib]);

      const bad = await createImage(node, data);
      await setHash(node, bad, hashlib, createHash(runtime).update("other").digest("hex"));
      const badOver = fillFinished(node, bad);
      await assert.rejects((await node.req(`/v2/images/${bad}/file`)).arrayBuffer());
      assert.equal((await badOver).outcome, "failed");
      assert.deepEqual(await readdir(cacheDir(node, "invalid")), [bad]);
      // and through the queue
      const queued = await createImage(node, data);
      await setHash(node, queued, hashlib, createHash(runtime).update(data).digest("hex"));
      await put(node, queued);
      await waitCached(node, queued);
    } finally {
      await node.close();
    }
  });
}

t("an os_hash_algo this runtime lacks: size and md5 checksum verified instead, and logged", async () => {
  const logs: string[] = [];
  const node = await start({ log: (m) => logs.push(m) });
  try {
    const data = bytes(1 << 20);
    const id = await createImage(node, data);
    await setHash(node, id, "whirlpool_9000", "00");
    const over = fillFinished(node, id);
    assert.equal(md5(new Uint8Array(await (await node.req(`/v2/images/${id}/file`)).arrayBuffer())), md5(data));
    assert.deepEqual([(await over).outcome, (await over).verifiedWith], ["cached", "md5"]);
    assert.ok(logs.some((l) => /whirlpool_9000.*not available.*md5/.test(l)), logs.join("\n"));

    const bad = await createImage(node, data);
    await setHash(node, bad, "whirlpool_9000", "00", md5(bytes(10)));
    const badOver = fillFinished(node, bad);
    await assert.rejects((await node.req(`/v2/images/${bad}/file`)).arrayBuffer());
    assert.equal((await badOver).outcome, "failed");
  } finally {
    await node.close();
  }
});

t("a download served straight from the source is verified too: a corrupted image is an aborted transfer", async () => {
  const node = await start({ maxSize: 1 << 20 }); // larger than the cap: never cached, always from the source
  try {
    const data = bytes(2 << 20);
    const id = await createImage(node, data);
    assert.equal(md5(new Uint8Array(await (await node.req(`/v2/images/${id}/file`)).arrayBuffer())), md5(data));
    const corrupted = data.slice();
    corrupted[data.length - 1] ^= 1; // even the very last byte
    await writeFile(join(node.dir, "images", `${id}.data`), corrupted);
    const res = await node.req(`/v2/images/${id}/file`);
    assert.equal(res.status, 200);
    await assert.rejects(res.arrayBuffer());
    assert.equal(node.app.cache.stats.fillsStarted, 0);
  } finally {
    await node.close();
  }
});

t.run();
