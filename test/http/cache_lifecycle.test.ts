// Cache lifecycle in one process: size cap, cleaning, reconciling at start, progress, faults of the source, coalescing.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { ByteGate, failingAfter } from "../helpers/gate.ts";
import {
  bytes,
  cacheDir,
  createImage,
  listing,
  md5,
  put,
  readAll,
  type Running,
  start,
  waitCached,
  waitFor,
} from "../helpers/helpers.ts";

const t = suite("lifecycle");
const download = async (node: Running, id: string) =>
  new Uint8Array(await (await node.req(`/v2/images/${id}/file`)).arrayBuffer());

t("over the size cap, least recently used images are evicted", async () => {
  const node = await start({ maxSize: 250_000 });
  try {
    const [a, b, c] = [
      await createImage(node, bytes(100_000)),
      await createImage(node, bytes(100_000)),
      await createImage(node, bytes(100_000)),
    ];
    await put(node, a);
    await waitCached(node, a);
    await put(node, b);
    await waitCached(node, b);
    await download(node, a); // a is now more recently used than b
    await put(node, c);
    await waitCached(node, c);
    await waitFor("pruned", async () => (await listing(node)).cached_images.length === 2);
    const ids = (await listing(node)).cached_images.map((e) => e.image_id).sort();
    assert.deepEqual(ids, [a, c].sort());
    assert.ok(!existsSync(cacheDir(node, b)));
    assert.equal(node.app.cache.stats.evictions, 1);
  } finally {
    await node.close();
  }
});

t("an image larger than the cap is served but not cached", async () => {
  const node = await start({ maxSize: 50_000 });
  try {
    const data = bytes(100_000);
    const id = await createImage(node, data);
    assert.equal(md5(await download(node, id)), md5(data));
    // the worker takes it off the queue without filling it: wait for that, then count
    const unqueued = new Promise<void>((resolve) =>
      node.app.cache.events.on((e) => e.type === "unqueued" && e.id === id && resolve())
    );
    assert.equal((await put(node, id)).status, 202);
    await unqueued;
    assert.equal(node.app.cache.stats.fillsStarted, 0);
    assert.deepEqual((await listing(node)).cached_images, []);
    assert.deepEqual((await listing(node)).queued_images, []);
  } finally {
    await node.close();
  }
});

t(
  "an image being downloaded is not evicted under its reader: the fill needing its room waits for the reader's end",
  async () => {
    const node = await start({ maxSize: 20 << 20 });
    try {
      const data = bytes(16 << 20);
      const a = await createImage(node, data);
      await put(node, a);
      await waitCached(node, a);
      const res = await node.req(`/v2/images/${a}/file`);
      const reader = res.body!.getReader();
      const first = await reader.read(); // the download has begun; its body is not read further meanwhile
      const b = await createImage(node, bytes(16 << 20));
      await put(node, b);
      // b's fill waits for room (a queue worker waiting in the budget), and a is neither evicted nor b started.
      await waitFor("b waits for room", async () => node.app.cache.fillBudget.waiting === 1);
      assert.equal(node.app.cache.stats.evictions, 0);
      assert.equal(node.app.cache.stats.fillsStarted, 1);
      assert.ok(node.app.cache.isCached(a));
      assert.equal(md5(await readAll(reader, [first.value!])), md5(data));
      // The reader is over: a goes, b is cached.
      await waitCached(node, b);
      assert.ok(!node.app.cache.isCached(a));
      assert.equal(node.app.cache.stats.evictions, 1);
    } finally {
      await node.close();
    }
  },
);

t("prune() and clean() on demand", async () => {
  const node = await start();
  try {
    const id = await createImage(node, bytes(1000));
    await put(node, id);
    await waitCached(node, id);
    assert.deepEqual(await node.app.cache.prune(), { pruned: [], bytes: 0 });
    const stale = "11111111-1111-1111-1111-111111111111";
    const fresh = "22222222-2222-2222-2222-222222222222";
    await writeFile(join(cacheDir(node, "incomplete"), stale), "x");
    await writeFile(join(cacheDir(node, "incomplete"), fresh), "x");
    const staleFill = `${stale}.0123456789ab`; // a fill's own file name, left by a crash
    const freshFill = `${fresh}.0123456789ab`;
    for (const name of [staleFill, freshFill]) await writeFile(join(cacheDir(node, "incomplete"), name), "x");
    const old = new Date(Date.now() - 2 * 86400 * 1000);
    await utimes(join(cacheDir(node, "incomplete"), stale), old, old);
    await utimes(join(cacheDir(node, "incomplete"), staleFill), old, old);
    await writeFile(join(cacheDir(node, "invalid"), fresh), "x");
    const removed = await node.app.cache.clean();
    assert.deepEqual(removed.sort(), [`incomplete/${stale}`, `incomplete/${staleFill}`, `invalid/${fresh}`]);
    assert.deepEqual((await readdir(cacheDir(node, "incomplete"))).sort(), [fresh, freshFill]);
  } finally {
    await node.close();
  }
});

t("at start, files and index are reconciled and leftovers removed", async () => {
  const node = await start();
  const data = bytes(5000);
  const [kept, noFile, wrongSize] = [
    await createImage(node, data),
    await createImage(node, data),
    await createImage(node, data),
  ];
  for (const id of [kept, noFile, wrongSize]) {
    await put(node, id);
    await waitCached(node, id);
  }
  await node.stop();
  const { rm } = await import("node:fs/promises");
  await rm(cacheDir(node, noFile));
  await writeFile(cacheDir(node, wrongSize), "short");
  const stray = "33333333-3333-3333-3333-333333333333";
  await writeFile(cacheDir(node, stray), "no row");
  await writeFile(join(cacheDir(node, "incomplete"), stray), "partial");
  await writeFile(join(cacheDir(node, "invalid"), stray), "bad");
  const journalTemp = cacheDir(node, `index.jsonl.${stray}.tmp`); // a compaction a crash cut short
  await writeFile(journalTemp, "half a journal");
  const again = await start({}, node.dir);
  try {
    assert.deepEqual((await listing(again)).cached_images.map((e) => e.image_id), [kept]);
    assert.ok(!existsSync(cacheDir(again, stray)));
    assert.ok(!existsSync(journalTemp));
    assert.ok(!existsSync(cacheDir(again, wrongSize)));
    assert.deepEqual(await readdir(cacheDir(again, "incomplete")), []);
    assert.deepEqual(await readdir(cacheDir(again, "invalid")), []);
    assert.equal(md5(await download(again, wrongSize)), md5(data)); // served from the source, then cached again
  } finally {
    await again.close();
  }
});

t("fills in progress are listed under caching_images with bytes written and expected size", async () => {
  const gate = new ByteGate();
  const node = await start({ cacheSource: (store) => gate.wrap(store) });
  try {
    const id = await createImage(node, bytes(4 << 20));
    await put(node, id);
    const progress = await waitFor("progress", async () => {
      const p = ((await listing(node)) as unknown as {
        caching_images: Record<string, { bytes_written: number; expected_size: number; started_at: number }>;
      }).caching_images[id];
      return p && p.bytes_written > 0 ? p : undefined;
    });
    assert.equal(progress.expected_size, 4 << 20);
    assert.ok(progress.bytes_written < 4 << 20);
    assert.ok(Math.abs(progress.started_at - Date.now() / 1000) < 60);
    assert.deepEqual((await listing(node)).queued_images, [], "in progress, not waiting");
    gate.open();
    await waitCached(node, id);
  } finally {
    gate.open();
    await node.close();
  }
});

t("a source that fails mid-stream: aborted transfer, nothing cached, nothing left", async () => {
  const node = await start({ cacheSource: (store) => failingAfter(store, 1 << 20) });
  try {
    const id = await createImage(node, bytes(4 << 20));
    const res = await node.req(`/v2/images/${id}/file`);
    assert.equal(res.status, 200);
    await assert.rejects(res.arrayBuffer());
    await waitFor("fill over", async () => node.app.cache.fills().length === 0);
    assert.deepEqual((await listing(node)).cached_images, []);
    assert.deepEqual(await readdir(cacheDir(node, "incomplete")), []);
    assert.deepEqual(await readdir(cacheDir(node, "invalid")), []);
  } finally {
    await node.close();
  }
});

t("DELETE /v2/cache/{id} while it is filling cancels the fill and leaves nothing", async () => {
  const gate = new ByteGate();
  const node = await start({ cacheSource: (store) => gate.wrap(store) });
  try {
    const id = await createImage(node, bytes(4 << 20));
    await put(node, id);
    await waitFor("filling", async () => node.app.cache.fills()[0]?.bytesWritten > 0);
    assert.equal((await node.req(`/v2/cache/${id}`, { method: "DELETE" })).status, 204);
    gate.open();
    await waitFor("fill over", async () => node.app.cache.fills().length === 0);
    assert.deepEqual((await listing(node)).cached_images, []);
    assert.deepEqual(await readdir(cacheDir(node, "incomplete")), []);
    assert.deepEqual(await readdir(cacheDir(node, "queue")), []);
  } finally {
    gate.open();
    await node.close();
  }
});

t("1,000 concurrent PUTs of one image start one fill", async () => {
  // 1,000 connections at once, and the test's own: above max_connections' default of 1,000.
  const node = await start({}, undefined, 0, { maxConnections: 1100 });
  try {
    const id = await createImage(node, bytes(1 << 20));
    const statuses = await Promise.all(Array.from({ length: 1000 }, () => put(node, id).then((r) => r.status)));
    assert.ok(statuses.every((s) => s === 202));
    await waitCached(node, id);
    assert.equal(node.app.cache.stats.fillsStarted, 1);
    assert.equal(node.app.cache.stats.sourceReads, 1);
  } finally {
    await node.close();
  }
});

t("a slow reader does not stall the others, and the source is read once", async () => {
  const node = await start();
  try {
    const data = bytes(32 << 20);
    const id = await createImage(node, data);
    const slow = await node.req(`/v2/images/${id}/file`);
    const slowReader = slow.body!.getReader();
    await slowReader.read(); // takes one chunk, then stalls
    const fast = await Promise.all(Array.from({ length: 4 }, () => download(node, id)));
    for (const f of fast) assert.equal(md5(f), md5(data));
    await waitCached(node, id);
    await slowReader.cancel();
    assert.equal(node.app.cache.stats.sourceReads, 1);
  } finally {
    await node.close();
  }
});

t("Range on an uncached image is served from the source and fills nothing", async () => {
  const node = await start();
  try {
    const data = bytes(10_000);
    const id = await createImage(node, data);
    const res = await node.req(`/v2/images/${id}/file`, { headers: { Range: "bytes=9000-" } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get("content-range"), "bytes 9000-9999/10000");
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), data.subarray(9000));
    const multi = await node.req(`/v2/images/${id}/file`, { headers: { Range: "bytes=0-1,5-6" } });
    assert.equal(multi.status, 200);
    assert.equal((await multi.arrayBuffer()).byteLength, 10_000);
  } finally {
    await node.close();
  }
});

t(
  "the cache-directory lock: held by a live process it refuses; a dead holder or a recycled PID is taken over",
  async () => {
    const { CacheLayout } = await import("../../src/cache/layout.ts");
    const { acquireLock } = await import("../../src/cache/upkeep.ts");
    const { readFile, mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const process = (await import("node:process")).default;
    const dir = await mkdtemp(join(tmpdir(), "gcn-lock-"));
    try {
      const layout = new CacheLayout(dir);
      await layout.create();
      const lock = join(dir, "lock");
      const stat = await readFile(`/proc/${process.ppid}/stat`, "utf8");
      const parentStart = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
      // a live process with its own start time holds it
      await writeFile(lock, `${process.ppid} ${parentStart}`);
      await assert.rejects(acquireLock(layout), /in use by process/);
      // the same PID, but started at another time: the PID was recycled, the lock is stale
      await writeFile(lock, `${process.ppid} 1`);
      let release = await acquireLock(layout);
      assert.match(await readFile(lock, "utf8"), new RegExp(`^${process.pid} \\d+$`));
      await release();
      assert.ok(!existsSync(lock));
      // a process that is gone
      await writeFile(lock, "2147483646 12345");
      release = await acquireLock(layout);
      await release();
      // created exclusively: a lock file that appears is never overwritten while its holder lives
      await writeFile(lock, `${process.ppid} ${parentStart}`);
      await assert.rejects(acquireLock(layout), /in use/);
      assert.equal(await readFile(lock, "utf8"), `${process.ppid} ${parentStart}`);
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n.startsWith("lock")),
        ["lock"],
        "no temporary lock files left",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

t.run();
