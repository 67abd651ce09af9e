// Pins (PUT/DELETE/GET /v2/x-cache-node/pins) and a cap that holds: disk usage sampled through fills past the cap with readers held.
import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { setCacheMaxSizeForTests } from "../../src/cache/image_cache.ts";
import { runCli } from "../helpers/cli_process.ts";
import {
  bytes,
  createImage,
  listing,
  md5,
  MEMBER,
  put,
  readAll,
  type Running,
  start,
  waitCached,
  waitFor,
} from "../helpers/helpers.ts";

const t = suite("pins and the cap");
const pinPath = (id: string) => `/v2/x-cache-node/pins/${id}`;
type PinList = { pins: { image_id: string; pinned_at: number; cached: boolean }[] };
const pins = async (node: Running) => ((await (await node.req("/v2/x-cache-node/pins")).json()) as PinList).pins;
const cachedIds = async (node: Running) => (await listing(node)).cached_images.map((e) => e.image_id);

/** Sum of the sizes of the files under `dir` (what du would count of files still linked). */
async function usage(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await usage(path);
    else total += await stat(path).then((s) => s.size, () => 0);
  }
  return total;
}

/** Samples the cache directory's usage every 100 ms until stopped; returns every sample. */
function sampler(dir: string, accounted: () => number) {
  const samples: { disk: number; accounted: number }[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      samples.push({ disk: await usage(dir), accounted: accounted() });
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await done;
      return samples;
    },
  };
}

t(
  "a pinned image is cached at once and survives eviction, prune and restart; DELETE /v2/cache drops the pin",
  async () => {
    const opts = { maxSize: 1_000_000 };
    let node = await start(opts);
    try {
      const p = await createImage(node, bytes(300_000));
      assert.equal((await node.req(pinPath(p), { method: "PUT" })).status, 204);
      await waitCached(node, p);
      const [pin] = await pins(node);
      // The status page's document shows it (and the metrics count it).
      const status = (await (await node.req("/v2/x-cache-node/status")).json()) as {
        cache: { used: number; pins: { image_id: string; size: number; cached: boolean }[] };
      };
      assert.deepEqual(status.cache.pins.map((x) => [x.image_id, x.size, x.cached]), [[p, 300_000, true]]);
      assert.equal(status.cache.used, 300_000);
      const metrics = await (await node.req("/metrics")).text();
      assert.match(metrics, /^glance_cache_pinned_images 1$/m);
      assert.match(metrics, /^glance_cache_pinned_bytes 300000$/m);
      assert.match(metrics, /^glance_cache_used_bytes 300000$/m);
      assert.equal(pin.image_id, p);
      assert.equal(pin.cached, true);
      assert.ok(pin.pinned_at > 0);
      // Fill past the cap: others are evicted, never the pinned one (it is also the least recently used).
      for (let i = 0; i < 4; i++) {
        const id = await createImage(node, bytes(300_000));
        await put(node, id);
        await waitCached(node, id);
      }
      assert.ok(node.app.cache.stats.evictions >= 2, `${node.app.cache.stats.evictions} evictions`);
      assert.ok((await cachedIds(node)).includes(p));
      // A prune over a cap that only the pinned image fits in evicts everything else.
      setCacheMaxSizeForTests(node.app.cache, 300_000);
      const pruned = (await (await node.req("/v2/cache/prune", { method: "POST" })).json()) as {
        total_files_pruned: number;
      };
      assert.ok(pruned.total_files_pruned >= 1);
      assert.deepEqual(await cachedIds(node), [p]);
      setCacheMaxSizeForTests(node.app.cache, opts.maxSize);
      // 409: the pinned images would outgrow the cap.
      const big = await createImage(node, bytes(800_000));
      const refused = await node.req(pinPath(big), { method: "PUT" });
      assert.equal(refused.status, 409);
      assert.match(await refused.text(), /larger than image_cache_max_size/);
      // Admin only, by default.
      assert.equal((await node.req(pinPath(p), { method: "DELETE", as: MEMBER })).status, 403);
      // A caller who cannot see the image learns nothing of it: 404, as PUT /v2/cache/{id}.
      assert.equal((await node.req(pinPath(p), { method: "PUT", as: MEMBER })).status, 404);
      assert.equal((await node.req("/v2/x-cache-node/pins", { as: MEMBER })).status, 403);
      assert.equal((await node.req("/v2/x-cache-node/pins", { method: "POST" })).headers.get("allow"), "GET");
      // Restart: the pin is read back from the cache directory.
      await node.stop();
      node = await start(opts, node.dir);
      assert.deepEqual((await pins(node)).map((x) => [x.image_id, x.cached, x.pinned_at]), [[p, true, pin.pinned_at]]);
      // DELETE /v2/cache/{id} of a pinned image removes the copy and the pin.
      assert.equal((await node.req(`/v2/cache/${p}`, { method: "DELETE" })).status, 204);
      assert.deepEqual(await pins(node), []);
      assert.ok(!(await cachedIds(node)).includes(p));
      // Unpin: 204, then 404 once it is not pinned.
      assert.equal((await node.req(pinPath(p), { method: "PUT" })).status, 204);
      assert.equal((await node.req(pinPath(p), { method: "DELETE" })).status, 204);
      assert.equal((await node.req(pinPath(p), { method: "DELETE" })).status, 404);
    } finally {
      await node.close();
    }
  },
);

t("a deleted image loses its pin", async () => {
  const node = await start();
  try {
    const p = await createImage(node, bytes(10_000));
    assert.equal((await node.req(pinPath(p), { method: "PUT" })).status, 204);
    await waitCached(node, p);
    assert.equal((await node.req(`/v2/images/${p}`, { method: "DELETE" })).status, 204);
    await waitFor("unpinned", async () => (await pins(node)).length === 0);
  } finally {
    await node.close();
  }
});

t(
  "the cap holds: usage sampled every 100 ms through fills past the cap with readers held never goes over",
  async () => {
    const MiB = 1 << 20;
    // Images large enough that a reader not reading its body holds its file open (socket buffers hold far less).
    const cap = 64 * MiB;
    const size = 12 * MiB;
    const node = await start({ maxSize: cap, cacheConcurrency: 2 });
    const dir = join(node.dir, "cache");
    const held: { id: string; data: Uint8Array; reader: ReadableStreamDefaultReader<Uint8Array>; first: Uint8Array }[] =
      [];
    const sampling = sampler(dir, () => node.app.cache.totals().usedBytes);
    try {
      const images: { id: string; data: Uint8Array }[] = [];
      for (let i = 0; i < 9; i++) {
        const data = bytes(size);
        images.push({ id: await createImage(node, data), data });
      }
      const hold = async (img: { id: string; data: Uint8Array }) => {
        const reader = (await node.req(`/v2/images/${img.id}/file`)).body!.getReader();
        held.push({ ...img, reader, first: (await reader.read()).value! }); // its body is not read further: a slow reader
      };
      // Three cached images get slow readers: they may not be evicted while read.
      for (const img of images.slice(0, 3)) {
        await put(node, img.id);
        await waitCached(node, img.id);
        await hold(img);
      }
      // A cold download starts a fill and stays attached to it.
      await hold(images[3]);
      assert.equal(node.app.cache.totals().openReaders, 4);
      // The rest is queued: far more than the cap holds beside the read images.
      for (const img of images.slice(4)) await put(node, img.id);
      await waitFor(
        "queue drained",
        async () => node.app.cache.waiting().length === 0 && node.app.cache.fills().length === 0,
        60_000,
      );
      const cached = await cachedIds(node);
      for (const img of images.slice(0, 3)) {
        assert.ok(
          cached.includes(img.id),
          `read image ${img.id} (${images.indexOf(img)}) was evicted: ${JSON.stringify(node.app.cache.stats)}`,
        );
      }
      assert.ok(node.app.cache.stats.evictions >= 3);
      for (const h of held) assert.equal(md5(await readAll(h.reader, [h.first])), md5(h.data));
      held.length = 0;
    } finally {
      for (const h of held) await h.reader.cancel().catch(() => {});
      const samples = await sampling.stop();
      await node.close();
      const maxDisk = Math.max(...samples.map((s) => s.disk));
      const maxAccounted = Math.max(...samples.map((s) => s.accounted));
      console.log(
        `usage trace: ${samples.length} samples, max on disk ${maxDisk} bytes, max accounted ${maxAccounted} bytes, cap ${cap} bytes`,
      );
      assert.ok(maxDisk <= cap, `disk usage ${maxDisk} over the cap ${cap}`);
      assert.ok(maxAccounted <= cap, `accounted usage ${maxAccounted} over the cap ${cap}`);
    }
  },
);

t("image_cache_max_idle: an image not read for that long is removed, a pinned one stays", async () => {
  const node = await start({ maxIdle: 2 });
  try {
    const [idle, pinned] = [await createImage(node, bytes(10_000)), await createImage(node, bytes(10_000))];
    await put(node, idle);
    assert.equal((await node.req(pinPath(pinned), { method: "PUT" })).status, 204);
    await waitCached(node, idle);
    await waitCached(node, pinned);
    // The idle pass runs every second: it removes the unread image, counted as an idle eviction.
    await waitFor("idle image removed", async () => !(await cachedIds(node)).includes(idle), 10_000);
    assert.equal(node.app.cache.stats.idleEvictions, 1);
    assert.ok((await cachedIds(node)).includes(pinned));
    assert.match(await (await node.req("/metrics")).text(), /^glance_cache_idle_evictions_total 1$/m);
  } finally {
    await node.close();
  }
});

t("the CLI pins, lists and unpins: exit 0, and 1 with the node's message when a pin is refused", async () => {
  const node = await start({ insecureTestTokens: true, maxSize: 100_000 });
  const cli = (args: string[]) => runCli(args, { OS_IMAGE_URL: node.url, OS_AUTH_TOKEN: "admin:adminproj:admin" });
  try {
    const id = await createImage(node, bytes(20_000));
    const pinned = await cli(["pin", id]);
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.equal(pinned.stdout, `pinned ${id}\n`);
    await waitCached(node, id);
    const listed = await cli(["pins"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^IMAGE .*CACHED\n${id} .* yes\n$`));
    const json = await cli(["pins", "--json"]);
    assert.deepEqual((JSON.parse(json.stdout) as PinList).pins.map((p) => [p.image_id, p.cached]), [[id, true]]);
    const big = await createImage(node, bytes(90_000));
    const refused = await cli(["pin", big]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /larger than image_cache_max_size/);
    const unpinned = await cli(["unpin", id]);
    assert.equal(unpinned.code, 0, unpinned.stderr);
    assert.equal((await cli(["pins"])).stdout, "no pinned images\n");
  } finally {
    await node.close();
  }
});

t.run();
