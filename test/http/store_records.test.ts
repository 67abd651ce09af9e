// The embedded store's records under concurrent and failing writes, and a record that cannot be read at start.
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { bytes, createImage, start } from "../helpers/helpers.ts";

const t = suite("store records");
const PATCH = { "Content-Type": "application/openstack-images-v2.1-json-patch", Accept: "application/json" };
const recordPath = (dir: string, id: string) => join(dir, "images", `${id}.json`);

t(
  "eight PATCHes of one image at once: every one applies, the record stays whole, and the node starts again",
  async () => {
    const node = await start();
    try {
      const id = await createImage(node, bytes(1000));
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          node.req(`/v2/images/${id}`, {
            method: "PATCH",
            headers: PATCH,
            body: JSON.stringify([{ op: "add", path: `/prop_${i}`, value: "x".repeat(2000 + i) }]),
          })),
      );
      assert.deepEqual(answers.map((r) => r.status), Array(8).fill(200));
      await Promise.all(answers.map((r) => r.body?.cancel()));
      const onDisk = JSON.parse(await readFile(recordPath(node.dir, id), "utf8")) as {
        properties: Record<string, string>;
      };
      assert.equal(Object.keys(onDisk.properties).length, 8, "each change applied to the one before");
      assert.deepEqual((await readdir(join(node.dir, "images"))).filter((n) => n.endsWith(".tmp")), []);
      await node.stop();
      const again = await start({}, node.dir);
      try {
        const shown = (await (await again.req(`/v2/images/${id}`)).json()) as Record<string, unknown>;
        for (let i = 0; i < 8; i++) assert.equal((shown[`prop_${i}`] as string).length, 2000 + i);
      } finally {
        await again.stop();
      }
    } finally {
      await rm(node.dir, { recursive: true, force: true });
    }
  },
);

t("a PATCH whose save fails changes nothing, on disk or in memory", async () => {
  const node = await start();
  try {
    const id = await createImage(node, undefined, { name: "before" });
    // A directory where the record goes: the rename over it fails.
    await rm(recordPath(node.dir, id));
    await mkdir(join(recordPath(node.dir, id), "blocker"), { recursive: true });
    const res = await node.req(`/v2/images/${id}`, {
      method: "PATCH",
      headers: PATCH,
      body: JSON.stringify([{ op: "replace", path: "/name", value: "after" }]),
    });
    assert.equal(res.status, 500);
    await res.body?.cancel();
    const shown = (await (await node.req(`/v2/images/${id}`)).json()) as { name: string };
    assert.equal(shown.name, "before");
  } finally {
    await node.close();
  }
});

t("a record that cannot be read at start is moved aside, logged, counted and reported; the node starts", async () => {
  const node = await start();
  const good = await createImage(node, bytes(100));
  const bad = await createImage(node, bytes(100));
  await node.stop();
  await writeFile(recordPath(node.dir, bad), '{"id": "half a record');
  const logs: string[] = [];
  const again = await start({ log: (l) => logs.push(l) }, node.dir);
  try {
    assert.equal((await again.req(`/v2/images/${good}`)).status, 200);
    assert.equal((await again.req(`/v2/images/${bad}`)).status, 404);
    const aside = (await readdir(join(node.dir, "images"))).filter((n) => n.startsWith(`${bad}.json.unreadable-`));
    assert.equal(aside.length, 1);
    assert.ok(logs.some((l) => l.includes(`${bad}.json could not be read`) && l.includes(aside[0])), logs.join("\n"));
    const metrics = await (await again.req("/metrics")).text();
    assert.match(metrics, /^glance_cache_store_unreadable_records 1$/m);
    const health = await (await again.req("/healthcheck?detailed", { headers: { Accept: "application/json" } }))
      .json() as { detailed: boolean; checks?: unknown };
    assert.match(JSON.stringify(health), new RegExp(`${bad}\\.json -> ${aside[0]}`));
    assert.equal((await again.req("/healthcheck")).status, 200, "the node can still serve");
  } finally {
    await again.close();
  }
});

t.run();
