// The real python-glanceclient CLI (/usr/bin/glance, Debian's python3-glanceclient 4.1) against a running node:
// image-create, image-download, cache-queue, cache-list, cache-delete, cache-clear and their errors.
// test-needs: glanceclient
// GLANCECLIENT_TRANSCRIPT=1 prints every command with its exit code and output (helpers/glanceclient.ts).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import type { Image } from "../../src/images/image.ts";
import type { ByteRange } from "../../src/images/source.ts";
import { GLANCE, glance as runGlance, type GlanceResult, transcript } from "../helpers/glanceclient.ts";
import { bytes, createImage, listing, md5, type Running, start, waitCached, waitFor } from "../helpers/helpers.ts";

const ADMIN_TOKEN = "admin:adminproj:admin";
const MEMBER_TOKEN = "memberuser:memberproj:member";
const WAIT_MS = 30_000;
const UNKNOWN = "00000000-0000-0000-0000-000000000000";
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

type Result = GlanceResult;
const show = transcript;

function ok(r: Result): Result {
  assert.equal(r.code, 0, `expected exit 0\n${show(r)}`);
  return r;
}

/** glance against the node, with an insecure test token (admin unless said). */
const glance = (node: Running, args: string[], token = ADMIN_TOKEN): Promise<Result> =>
  runGlance(node.url, token, ...args);

/** The id in the Property/Value table that image-create prints. */
function tableValue(r: Result, property: string): string {
  const m = r.stdout.match(new RegExp(`^\\|\\s*${property}\\s*\\|\\s*(.*?)\\s*\\|\\s*$`, "m"));
  assert.ok(m, `no ${property} row in the table\n${show(r)}`);
  return m[1];
}

/** The cells of the cache-list row for id: ID, State, Last Accessed, Last Modified, Size, Hits. */
function cacheRow(r: Result, id: string): string[] | undefined {
  const line = r.stdout.split("\n").find((l) => l.includes(id));
  return line?.split("|").slice(1, -1).map((c) => c.trim());
}

/**
 * What GET /v2/cache says is cached and queued, ids only. Only Glance's two keys are compared: the node
 * may list more (fills in progress), and the image being filled (`filling`) may or may not be listed as queued.
 */
async function cacheState(node: Running, filling?: string): Promise<{ cached: string[]; queued: string[] }> {
  const l = await listing(node);
  return {
    cached: l.cached_images.map((c) => c.image_id).sort(),
    queued: l.queued_images.filter((id) => id !== filling),
  };
}
const EMPTY = { cached: [], queued: [] };

const t = suite<{ node: Running; work: string }>("glanceclient CLI", {} as never);
t.before.each(async (ctx) => {
  ctx.node = await start({ insecureTestTokens: true });
  ctx.work = await mkdtemp(join(tmpdir(), "gcn-glance-files-"));
});
t.after.each(async (ctx) => {
  await ctx.node.close();
  await rm(ctx.work, { recursive: true, force: true });
});

t(`${GLANCE} is installed and runs`, async ({ node }) => {
  const r = ok(await glance(node, ["--version"]));
  assert.match(r.stdout + r.stderr, /^\d+\.\d+/m, show(r));
});

t("image-create --file, cache-queue, cache-list, image-download, cache-delete", async ({ node, work }) => {
  const data = bytes(1 << 20);
  const file = join(work, "image.raw");
  await writeFile(file, data);

  const created = ok(
    await glance(node, [
      "image-create",
      "--disk-format",
      "raw",
      "--container-format",
      "bare",
      "--name",
      "X",
      "--file",
      file,
    ]),
  );
  const id = tableValue(created, "id");
  assert.match(id, new RegExp(`^${UUID}$`), show(created));
  assert.equal(tableValue(created, "status"), "active", show(created));
  assert.equal(tableValue(created, "size"), String(data.length), show(created));
  assert.equal(tableValue(created, "checksum"), md5(data), show(created));
  assert.equal(tableValue(created, "name"), "X", show(created));
  assert.deepEqual(await cacheState(node), EMPTY, "an upload caches nothing");

  const queued = ok(await glance(node, ["cache-queue", id]));
  assert.equal(queued.stderr, "", show(queued));
  const entry = await waitCached(node, id, WAIT_MS);
  assert.equal(entry.size, data.length);

  const list = ok(await glance(node, ["cache-list"]));
  assert.match(list.stdout, /\|\s*ID\s*\|\s*State\s*\|/, show(list));
  const row = cacheRow(list, id);
  assert.ok(row, `no row for ${id}\n${show(list)}`);
  assert.equal(row.length, 6, show(list));
  assert.deepEqual([row[0], row[1], row[4], row[5]], [id, "cached", String(data.length), "0"], show(list));

  // served from the cache: one hit
  const out = join(work, "out.raw");
  const downloaded = ok(await glance(node, ["image-download", "--file", out, id]));
  assert.equal(md5(new Uint8Array(await readFile(out))), md5(data), show(downloaded));
  assert.equal(
    (await listing(node)).cached_images.find((c) => c.image_id === id)?.hits,
    1,
    "the download was a cache hit",
  );

  const deleted = ok(await glance(node, ["cache-delete", id]));
  assert.equal(deleted.stderr, "", show(deleted));
  assert.deepEqual(await cacheState(node), EMPTY, show(deleted));

  // uncached now: the download is served while it fills the cache again
  const out2 = join(work, "out2.raw");
  const again = ok(await glance(node, ["image-download", "--file", out2, id]));
  assert.equal(md5(new Uint8Array(await readFile(out2))), md5(data), show(again));
  assert.equal((await waitCached(node, id, WAIT_MS)).hits, 0);
});

/**
 * Holds the node's only cache worker on `blocker`: its source read never yields a byte until the
 * fill is cancelled, so images queued after it stay queued. Returns the restore function.
 */
async function holdWorker(node: Running, blocker: string): Promise<() => void> {
  const store = node.app.store!;
  const original = store.read;
  let reading: () => void = () => {};
  const started = new Promise<void>((r) => (reading = r));
  store.read = async function (image: Image, range?: ByteRange) {
    if (image.id !== blocker || range) return original.call(this, image, range);
    reading();
    return new ReadableStream<Uint8Array>({ pull: () => new Promise<void>(() => {}) }, { highWaterMark: 0 });
  };
  await node.req(`/v2/cache/${blocker}`, { method: "PUT" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      started,
      new Promise((
        _,
        reject,
      ) => (timer = setTimeout(() => reject(new Error("the blocker fill never started")), WAIT_MS))),
    ]);
  } catch (err) {
    store.read = original;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return () => {
    store.read = original;
  };
}

const TARGETS: [string, string[]][] = [
  ["--target cache", ["--target", "cache"]],
  ["--target queue", ["--target", "queue"]],
  ["--target both", ["--target", "both"]],
  ["no --target", []],
];

for (const [label, targetArgs] of TARGETS) {
  t(`cache-clear ${label}`, async ({ node }) => {
    // state before: `cached` cached, `blocker` filling (and listed as queued), `waiting` queued behind it
    const cached = await createImage(node, bytes(1000));
    const blocker = await createImage(node, bytes(1000));
    const waiting = await createImage(node, bytes(1000));
    await node.req(`/v2/cache/${cached}`, { method: "PUT" });
    await waitCached(node, cached, WAIT_MS);
    const restore = await holdWorker(node, blocker);
    try {
      await node.req(`/v2/cache/${waiting}`, { method: "PUT" });
      assert.deepEqual(await cacheState(node, blocker), { cached: [cached], queued: [waiting] }, "state before");
      assert.deepEqual(node.app.cache.fills().map((f) => f.id), [blocker], "filling before");

      const r = ok(await glance(node, ["cache-clear", ...targetArgs]));
      assert.equal(r.stderr, "", show(r));
      const after = await cacheState(node, blocker);
      const clearsCache = label !== "--target queue";
      const clearsQueue = label !== "--target cache";
      // a kept queue may already have moved on to `waiting` by the time we look
      const nowCached = after.cached.filter((id) => clearsQueue || id !== waiting);
      assert.deepEqual(nowCached, clearsCache ? [] : [cached], `cached after\n${show(r)}`);
      if (clearsQueue) assert.deepEqual(after.queued, [], `queued after\n${show(r)}`);

      // settled: the blocked fill is cancelled either way; a kept queue is then filled, a cleared one is not
      await waitFor("no fill running", async () => node.app.cache.fills().length === 0, WAIT_MS);
      if (clearsQueue) {
        // the queue is empty and no fill runs: nothing can be filled after this point
        assert.equal(node.app.cache.totals().queuedImages, 0);
        assert.deepEqual(
          (await cacheState(node)).cached,
          clearsCache ? [] : [cached],
          `nothing filled after\n${show(r)}`,
        );
      } else {
        await waitCached(node, waiting, WAIT_MS);
        assert.deepEqual((await cacheState(node)).cached, [waiting], `the kept queue was filled\n${show(r)}`);
      }
      assert.deepEqual((await cacheState(node)).queued, [], "queue drained");
    } finally {
      restore();
    }
  });
}

t("cache-list as a member: exit non-zero, 403 on stderr", async ({ node }) => {
  const r = await glance(node, ["cache-list"], MEMBER_TOKEN);
  assert.notEqual(r.code, 0, show(r));
  assert.match(r.stderr, /403/, show(r));
  assert.match(r.stderr, /You are not authorized to complete cache_list action\./, show(r));
});

t("cache-queue of an unknown image: a 404 message on stderr, nothing queued", async ({ node }) => {
  // glanceclient 4.1 prints the error and still exits 0 for cache-queue, so only the message is checked
  const r = await glance(node, ["cache-queue", UNKNOWN]);
  assert.match(r.stderr, /404/, show(r));
  assert.match(r.stderr, new RegExp(`Image ${UNKNOWN} not found\\.`), show(r));
  assert.deepEqual(await cacheState(node), EMPTY, show(r));
});

t.run();
