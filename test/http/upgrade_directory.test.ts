// A node started on a cache directory as an older version leaves it (no records/, no pins.json, a bare
// incomplete/<id>) starts and serves its cached images from the cache; records/ is then written (docs/operations.md).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import {
  bytes,
  createImage,
  listing,
  md5,
  type Running,
  start,
  tempDir,
  waitCached,
  waitFor,
} from "../helpers/helpers.ts";

const t = suite("upgrade: a cache directory left by an older version");

t(
  "no records/, no pins.json, a bare incomplete/<id>: the node starts, keeps its cached image and serves it",
  async () => {
    const origin = await start({ auth: "noauth" });
    const dir = await tempDir("gcn-upgrade-");
    const cache = join(dir, "cache");
    const edgeOptions = { auth: "noauth" as const, upstream: { url: origin.url, metadataCacheTime: 0 } };
    let edge: Running | undefined;
    try {
      const data = bytes(2 << 20);
      const id = await createImage(origin, data);
      edge = await start(edgeOptions, dir);
      assert.equal((await edge.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
      await waitCached(edge, id);
      assert.equal((await edge.req(`/v2/x-cache-node/pins/${id}`, { method: "PUT" })).status, 204);
      assert.ok(existsSync(join(cache, "records", `${id}.json`)) && existsSync(join(cache, "pins.json")));
      await edge.stop();
      edge = undefined;

      // What an older version leaves: the index and the committed file, no kept records, no pins, an incomplete
      // file named by the id alone.
      await rm(join(cache, "records"), { recursive: true });
      await rm(join(cache, "pins.json"));
      await writeFile(join(cache, "incomplete", id), bytes(1000));

      edge = await start(edgeOptions, dir);
      const before = (await listing(edge)).cached_images;
      assert.deepEqual(before.map((c) => [c.image_id, c.size]), [[id, data.length]]);
      assert.deepEqual(await readdir(join(cache, "incomplete")), [], "the leftover is removed at start");
      assert.deepEqual(await readdir(join(cache, "records")), [], "records/ is created, empty");
      const pins = (await (await edge.req("/v2/x-cache-node/pins")).json()) as { pins: unknown[] };
      assert.deepEqual(pins.pins, []);

      const res = await edge.req(`/v2/images/${id}/file`);
      assert.equal(res.status, 200);
      assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data));
      // Served from the cache (a hit counted), and the upstream's answer for it is now its kept record.
      assert.equal((await listing(edge)).cached_images[0].hits, before[0].hits + 1);
      await waitFor("the kept record written", async () => existsSync(join(cache, "records", `${id}.json`)), 10_000);
    } finally {
      await edge?.close();
      await rm(dir, { recursive: true, force: true });
      await origin.close();
    }
  },
);

t.run();
