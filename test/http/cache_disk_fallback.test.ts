// Our disk fails mid-fill while a download reads the fill: the download goes on from the source at its byte,
// verified; a source that answers the range wrongly fails the transfer rather than send a wrong body.
import assert from "node:assert/strict";
import { suite } from "uvu";
import type { Fill } from "../../src/cache/fill.ts";
import { Gate } from "../helpers/gate.ts";
import { bytes, createImage, listing, md5, readAll, start } from "../helpers/helpers.ts";

const t = suite("cache disk fallback");

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
