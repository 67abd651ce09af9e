// Upload limits (issue 16, 2.3): uploads in progress are bounded, a stalled one is aborted, md5 threads are pooled.
import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { connect, type Socket } from "node:net";
import { suite } from "uvu";
import { CURRENT_RUNTIME } from "../../support/processes.ts";
import { HASH_THREADS } from "../../src/streams/side_hasher.ts";
import { createImage, type Running, start, waitFor } from "../helpers/helpers.ts";

const MiB = 1 << 20;
const as = (project: string) => ({
  "X-Identity-Status": "Confirmed",
  "X-Roles": "member",
  "X-Tenant-Id": project,
  "X-User-Id": `${project}-user`,
});

/** A PUT of `total` bytes into image `id` on a raw connection: `send(n)` sends n more; `response` once it came. */
function rawUpload(node: Running, id: string, project: string, total: number) {
  const socket: Socket = connect(Number(new URL(node.url).port), "127.0.0.1");
  let received = "";
  socket.setEncoding("latin1");
  socket.on("data", (d: string) => (received += d));
  socket.on("error", () => {});
  let closed = false;
  socket.on("close", () => (closed = true));
  const headers = Object.entries(as(project)).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  socket.write(
    `PUT /v2/images/${id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Accept: application/json\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: ${total}\r\n\r\n`,
  );
  return {
    socket,
    send: (n: number) => socket.write(new Uint8Array(n).fill(7)),
    /** The status line's code, once the response (or the close) came. */
    status: () =>
      waitFor(`the response to the upload into ${id}`, async () => {
        const m = /^HTTP\/1\.1 (\d+)/.exec(received);
        return m ? Number(m[1]) : closed ? -1 : undefined;
      }),
    get received() {
      return received;
    },
  };
}

const statusOf = async (node: Running, id: string) =>
  ((await (await node.req(`/v2/images/${id}`)).json()) as { status: string }).status;
const waitStatus = (node: Running, id: string, status: string) =>
  waitFor(`${id} ${status}`, async () => (await statusOf(node, id)) === status);

const t = suite("upload limits");

t("uploads beyond the bounds (in all, per project) get 413 and succeed once earlier ones ended", async () => {
  const node = await start({ maxUploads: 2, maxUploadsPerProject: 1 });
  const held: ReturnType<typeof rawUpload>[] = [];
  try {
    const a1 = await createImage(node, undefined, {}, as("pa"));
    const a2 = await createImage(node, undefined, {}, as("pa"));
    const b1 = await createImage(node, undefined, {}, as("pb"));
    const c1 = await createImage(node, undefined, {}, as("pc"));
    const upA = rawUpload(node, a1, "pa", 3 * MiB);
    held.push(upA);
    upA.send(MiB);
    await waitStatus(node, a1, "saving");
    // a second upload of project pa: over its limit
    const refused = rawUpload(node, a2, "pa", 3 * MiB);
    held.push(refused);
    assert.equal(await refused.status(), 413);
    assert.match(refused.received, /image_count_uploading is over limit of 1/);
    assert.equal(await statusOf(node, a2), "queued");
    // another project fills the node's second slot; a third project is then over the node's limit
    const upB = rawUpload(node, b1, "pb", 2 * MiB);
    held.push(upB);
    upB.send(MiB);
    await waitStatus(node, b1, "saving");
    const over = rawUpload(node, c1, "pc", MiB);
    held.push(over);
    assert.equal(await over.status(), 413);
    assert.match(over.received, /uploads in progress/);
    // the first two end; then both refused uploads go through
    upA.send(2 * MiB);
    upB.send(MiB);
    assert.equal(await upA.status(), 204);
    assert.equal(await upB.status(), 204);
    for (const [id, project] of [[a2, "pa"], [c1, "pc"]]) {
      const up = rawUpload(node, id, project, MiB);
      held.push(up);
      up.send(MiB);
      assert.equal(await up.status(), 204, `${project}'s upload once the others ended`);
      assert.equal(await statusOf(node, id), "active");
    }
  } finally {
    for (const h of held) h.socket.destroy();
    await node.close();
  }
});

t("an upload that sends no byte for upload_stall_timeout is aborted: queued again, nothing on disk", async () => {
  const node = await start({ uploadStallTimeout: 1 });
  try {
    const id = await createImage(node, undefined);
    const images = join(node.dir, "images");
    const before = await readdir(images);
    const up = rawUpload(node, id, "adminproj", 10 * MiB);
    up.send(2.5 * MiB);
    await waitStatus(node, id, "saving");
    await waitStatus(node, id, "queued");
    assert.deepEqual((await readdir(images)).filter((f) => f.startsWith(id)), [`${id}.json`]);
    assert.deepEqual(await readdir(images), before);
    assert.equal(await up.status(), 408);
    up.socket.destroy();
    // the slot came back: a whole upload then goes through
    const again = rawUpload(node, id, "adminproj", MiB);
    again.send(MiB);
    assert.equal(await again.status(), 204);
    again.socket.destroy();
  } finally {
    await node.close();
  }
});

if (CURRENT_RUNTIME === "node") {
  t("many concurrent uploads share the hash pool: the thread count stays bounded", async () => {
    const n = 12;
    const node = await start({ maxUploads: n, maxUploadsPerProject: n });
    const held: ReturnType<typeof rawUpload>[] = [];
    const threads = async () => (await readdir("/proc/self/task")).length;
    try {
      // one whole upload first: the pool's threads and libuv's are started and counted in the baseline
      await createImage(node, new Uint8Array(5 * MiB));
      const baseline = await threads();
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push(await createImage(node, undefined));
      for (const id of ids) {
        const up = rawUpload(node, id, "adminproj", 10 * MiB);
        held.push(up);
        up.send(2.5 * MiB);
      }
      // each has hashed and written its first 2 MiB chunk: its md5 is on the pool now
      await waitFor("every upload past its first chunk", async () => {
        const sizes = await Promise.all(
          ids.map((id) => stat(join(node.dir, "images", `${id}.data.upload`)).then((s) => s.size, () => 0)),
        );
        return sizes.every((size) => size >= 2 * MiB);
      });
      const during = await threads();
      assert.ok(during <= baseline + HASH_THREADS, `${during} threads with ${n} uploads, ${baseline} before`);
    } finally {
      for (const h of held) h.socket.destroy();
      await node.close();
    }
  });
}

t.run();
