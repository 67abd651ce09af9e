// The cache's state machine under races, each driven by holding one side at a gate: delete during the final fsync,
// a discarded fill beside the next one, shutdown between lookup and fill, the shared fill budget, the bounded queue,
// hashlib algorithm names, and the verified fallback to the source after our disk failed.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import type { CacheEvent } from "../../src/cache/events.ts";
import type { Fill, FillHooks } from "../../src/cache/fill.ts";
import type { Image } from "../../src/images/image.ts";
import type { ImageSource } from "../../src/images/source.ts";
import {
  bytes,
  createImage,
  listing,
  md5,
  readAll,
  type Running,
  start,
  waitCached,
  waitFor,
} from "../helpers/helpers.ts";

const t = suite("cache races");
const cacheDir = (node: Running, sub = "") => join(node.dir, "cache", sub);
const put = (node: Running, id: string) => node.req(`/v2/cache/${id}`, { method: "PUT" });
const del = (node: Running, id: string) => node.req(`/v2/cache/${id}`, { method: "DELETE" });

/** One side of a race waits at pass() until the test calls open(); `entered` tells the test it got there. */
class Gate {
  private release!: () => void;
  private arrived!: () => void;
  readonly opened = new Promise<void>((r) => (this.release = r));
  readonly entered = new Promise<void>((r) => (this.arrived = r));
  async pass(): Promise<void> {
    this.arrived();
    await this.opened;
  }
  open(): void {
    this.release();
  }
}

/** The stream gives its first chunk, then waits at the gate. */
function holdAfterFirstChunk(stream: ReadableStream<Uint8Array>, gate: Gate): ReadableStream<Uint8Array> {
  const inner = stream.getReader();
  let first = true;
  return new ReadableStream<Uint8Array>({
    pull: async (c) => {
      if (!first) await gate.pass();
      first = false;
      const { done, value } = await inner.read();
      if (done) c.close();
      else c.enqueue(value);
    },
    cancel: (why) => inner.cancel(why),
  });
}

/** A source whose reads of the images `gated` returns a gate for are held after their first chunk. */
function gatedReads(
  store: ImageSource,
  gated: (image: Image, range?: { start: number; end: number }) => Gate | undefined,
): ImageSource {
  return {
    find: (id, who) => store.find(id, who),
    read: async (image, range) => {
      const stream = await store.read(image, range);
      const gate = gated(image, range);
      return gate ? holdAfterFirstChunk(stream, gate) : stream;
    },
  };
}

/** Resolves with the first event matching `match` emitted from now on. */
function nextEvent(node: Running, match: (e: CacheEvent) => boolean): Promise<CacheEvent> {
  return new Promise((resolve) => {
    const off = node.app.cache.events.on((e) => {
      if (match(e)) {
        off();
        resolve(e);
      }
    });
  });
}
type FillFinished = Extract<CacheEvent, { type: "fill_finished" }>;
const finished = (node: Running, id: string) =>
  nextEvent(node, (e) => e.type === "fill_finished" && e.id === id) as Promise<FillFinished>;

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
    const over = finished(node, id);
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
    assert.equal(node.app.cache.states.of(id), "verifying");
    assert.equal((await del(node, id)).status, 204);
    assert.deepEqual((await listing(node)).cached_images, []);
    fsync.open();
    assert.equal((await over).outcome, "discarded");
    assert.deepEqual(await listing(node), { cached_images: [], queued_images: [], caching_images: {} });
    assert.ok(!existsSync(cacheDir(node, id)), "no committed file");
    assert.deepEqual(await readdir(cacheDir(node, "incomplete")), []);
    assert.deepEqual(await readdir(cacheDir(node, "queue")), []);
    assert.equal(node.app.cache.states.of(id), "absent");
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
        async () => node.app.cache.states.of(id) === "discarding",
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

t(
  "PUT right after a DELETE while a download reads the discarded fill: queued, its own file, cached; the download is whole",
  async () => {
    const gate = new Gate();
    let reads = 0;
    const paths = new Set<string>();
    const node = await start({
      cacheConcurrency: 2,
      cacheSource: (store) => gatedReads(store, () => (++reads === 1 ? gate : undefined)),
      cacheHooks: { beforeWrite: async (f: Fill) => void paths.add(f.path) },
    });
    try {
      const data = bytes(4 << 20);
      const id = await createImage(node, data);
      const res = await node.req(`/v2/images/${id}/file`);
      const reader = res.body!.getReader();
      const first = await reader.read();
      await gate.entered; // the first fill is held after its first chunk, a reader on it
      const [discarded] = node.app.cache.filling();
      const discardedOver = nextEvent(node, (e) => e.type === "fill_finished" && e.id === id && e.outcome !== "cached");
      assert.equal((await del(node, id)).status, 204);
      assert.equal(node.app.cache.states.of(id), "discarding");
      assert.equal((await put(node, id)).status, 202);
      assert.ok(["queued", "filling", "verifying", "cached"].includes(node.app.cache.states.of(id)), "queued again");
      await waitCached(node, id);
      assert.equal(paths.size, 2, "two fills, two temporary files");
      assert.ok(existsSync(discarded.path), "the discarded fill's file is still there for its reader");
      gate.open();
      assert.equal(md5(await readAll(reader, [first.value!])), md5(data));
      assert.deepEqual(await discardedOver, { ...(await discardedOver), outcome: "discarded" });
      await waitFor("discarded file removed", async () => !existsSync(discarded.path));
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

t(
  "clearing the queue while its fill is running: the worker the cancelled fill frees finds nothing left to fill",
  async () => {
    const gate = new Gate();
    let held: string | undefined;
    const node = await start({
      cacheSource: (store) => gatedReads(store, (image) => (image.id === held ? gate : undefined)),
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
      const blockerOver = finished(node, blocker);
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

t(
  "download fills share cache_concurrency: with the slot taken a cold download reads the source, joins keep one read, the queue waits",
  async () => {
    const gate = new Gate();
    let held: string | undefined;
    const node = await start({
      cacheSource: (store) => gatedReads(store, (image) => (image.id === held ? gate : undefined)),
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
    const images = await Promise.all(Array.from({ length: 30 }, async () => {
      const data = bytes(256 << 10);
      return { data, id: await createImage(node, data) };
    }));
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
      cacheSource: (store) => gatedReads(store, (image) => (image.id === held ? gate : undefined)),
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

t("the queue is bounded: a PUT beyond max_queue gets a Glance-format 409, and room frees as it drains", async () => {
  const gate = new Gate();
  const node = await start({ maxQueue: 2, cacheSource: (store) => gatedReads(store, () => gate) });
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
      const over = finished(node, id);
      const res = await node.req(`/v2/images/${id}/file`);
      assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data));
      const e = await over;
      assert.deepEqual([e.outcome, e.verifiedWith], ["cached", hashlib]);

      const bad = await createImage(node, data);
      await setHash(node, bad, hashlib, createHash(runtime).update("other").digest("hex"));
      const badOver = finished(node, bad);
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
    const over = finished(node, id);
    assert.equal(md5(new Uint8Array(await (await node.req(`/v2/images/${id}/file`)).arrayBuffer())), md5(data));
    assert.deepEqual([(await over).outcome, (await over).verifiedWith], ["cached", "md5"]);
    assert.ok(logs.some((l) => /whirlpool_9000.*not available.*md5/.test(l)), logs.join("\n"));

    const bad = await createImage(node, data);
    await setHash(node, bad, "whirlpool_9000", "00", md5(bytes(10)));
    const badOver = finished(node, bad);
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

type Tail = "exact" | "whole" | "short" | "corrupt";

/** Our disk fails once the fill has written 1 MiB (after the test let a download start); ranged reads answer as `tail` says. */
async function diskFailsMidFill(tail: Tail) {
  const disk = new Gate();
  const node = await start({
    cacheHooks: {
      beforeWrite: async (f: Fill) => {
        if (f.written < 1 << 20) return;
        await disk.pass();
        throw new Error("ENOSPC: no space left on device (simulated)");
      },
    },
    cacheSource: (store) => ({
      find: (id, who) => store.find(id, who),
      read: async (image, range) => {
        if (!range) return store.read(image);
        if (tail === "whole") return store.read(image); // a 200 with the whole body where a range was asked
        const stream = await store.read(image, tail === "short" ? { start: range.start, end: range.end - 10 } : range);
        if (tail !== "corrupt") return stream;
        let flipped = false;
        return stream.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, c) {
              if (!flipped && chunk.length) {
                chunk = chunk.slice();
                chunk[0] ^= 1;
                flipped = true;
              }
              c.enqueue(chunk);
            },
          }),
        );
      },
    }),
  });
  const data = bytes(4 << 20);
  const id = await createImage(node, data);
  const res = await node.req(`/v2/images/${id}/file`);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const first = await reader.read(); // this download has bytes from the file: its fallback starts past 0
  await disk.entered;
  disk.open();
  return { node, data, id, reader, first: first.value! };
}

t("disk failure mid-fill: the reader goes on from the source at its byte, verified, whole and right", async () => {
  const { node, data, reader, first } = await diskFailsMidFill("exact");
  try {
    assert.equal(md5(await readAll(reader, [first])), md5(data));
    assert.equal(node.app.cache.stats.fillsFailed, 1);
    assert.deepEqual((await listing(node)).cached_images, []);
  } finally {
    await node.close();
  }
});

for (
  const [tail, what] of [
    ["whole", "answers the whole body for a range"],
    ["short", "sends fewer bytes than asked"],
    ["corrupt", "sends a wrong byte"],
  ] as [Tail, string][]
) {
  t(`disk failure mid-fill and a source that ${what}: the transfer fails, never a complete wrong body`, async () => {
    const { node, reader, first, data } = await diskFailsMidFill(tail);
    try {
      const got: Uint8Array[] = [first];
      let failed = false;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          got.push(value);
        }
      } catch {
        failed = true;
      }
      assert.ok(failed, "the download is aborted");
      const n = got.reduce((s, c) => s + c.length, 0);
      assert.ok(n < data.length, `${n} bytes: the last byte is never sent`);
    } finally {
      await node.close();
    }
  });
}

t.run();
