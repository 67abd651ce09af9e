// Crashes and shutdowns of a real server process: SIGKILL mid-fill at several points, then SIGTERM with downloads in flight.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { bytes, concat, md5, tempDir, waitFor } from "../helpers/helpers.ts";
import { CURRENT_RUNTIME, type ServerProcess, startServer } from "../../support/processes.ts";

const t = suite("crash");
const SIZE = 64 << 20;
const data = bytes(SIZE);
const DIGEST = md5(data);

type Listing = {
  cached_images: { image_id: string; size: number }[];
  queued_images: string[];
  caching_images: Record<string, { bytes_written: number }>;
};
const listing = async (s: ServerProcess) => (await (await fetch(`${s.url}/v2/cache`)).json()) as Listing;

async function createImage(s: ServerProcess): Promise<string> {
  const res = await fetch(`${s.url}/v2/images`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "crash", disk_format: "raw", container_format: "bare" }),
  });
  const { id } = (await res.json()) as { id: string };
  const up = await fetch(`${s.url}/v2/images/${id}/file`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body: data as unknown as BodyInit,
  });
  assert.equal(up.status, 204);
  return id;
}

async function downloadMd5(s: ServerProcess, id: string): Promise<string> {
  const res = await fetch(`${s.url}/v2/images/${id}/file`);
  assert.equal(res.status, 200);
  return md5(new Uint8Array(await res.arrayBuffer()));
}

/** Every listed entry is whole, and nothing half-written sits among the committed files. */
async function assertConsistent(s: ServerProcess, dir: string, id: string) {
  const l = await listing(s);
  for (const e of l.cached_images) assert.equal(e.size, SIZE, "a listed entry is complete");
  const committed = (await readdir(join(dir, "cache"))).filter((n) => n === id);
  if (!l.cached_images.length) assert.deepEqual(committed, [], "no committed file without its row");
}

const KILL_POINTS: [string, (written: number) => boolean][] = [
  ["early", (w) => w > 0],
  ["middle", (w) => w >= SIZE / 2],
  ["just before commit", (w) => w >= SIZE],
];

for (const [name, reached] of KILL_POINTS) {
  t(`SIGKILL ${name} in a fill: restart resumes it from the queue, no wrong bytes ever`, async () => {
    const dir = await tempDir();
    let s = await startServer(CURRENT_RUNTIME, dir);
    try {
      const id = await createImage(s);
      await fetch(`${s.url}/v2/cache/${id}`, { method: "PUT" });
      for (let i = 0;; i++) {
        const l = await listing(s);
        const w = l.caching_images[id]?.bytes_written ?? 0;
        if (reached(w) || l.cached_images.length) break;
        if (i > 20000) throw new Error("fill never reached the kill point");
      }
      await s.kill();
      s = await startServer(CURRENT_RUNTIME, dir);
      await assertConsistent(s, dir, id);
      // A download right after the restart gets the right bytes, whatever state the fill is in.
      assert.equal(await downloadMd5(s, id), DIGEST);
      await waitFor("cached again after restart", async () => (await listing(s)).cached_images.length > 0, 20_000);
      await assertConsistent(s, dir, id);
      const l = await listing(s);
      assert.deepEqual(l.queued_images, []);
      assert.deepEqual(await readdir(join(dir, "cache", "incomplete")), []);
      assert.equal(await downloadMd5(s, id), DIGEST);
    } finally {
      await s.kill();
      await removeAll(dir);
    }
  });
}

t("SIGKILL with a queue: the queued images are filled after restart without a new PUT", async () => {
  const dir = await tempDir();
  let s = await startServer(CURRENT_RUNTIME, dir);
  try {
    const ids = [await createImage(s), await createImage(s)];
    for (const id of ids) await fetch(`${s.url}/v2/cache/${id}`, { method: "PUT" });
    await s.kill();
    s = await startServer(CURRENT_RUNTIME, dir);
    await waitFor("queue resumed: both cached", async () => (await listing(s)).cached_images.length >= 2, 30_000);
    for (const id of ids) assert.equal(await downloadMd5(s, id), DIGEST);
  } finally {
    await s.kill();
    await removeAll(dir);
  }
});

t("SIGTERM: stops accepting, lets a download in flight finish, keeps the queue", async () => {
  const dir = await tempDir();
  const s = await startServer(CURRENT_RUNTIME, dir);
  try {
    const cached = await createImage(s);
    await fetch(`${s.url}/v2/cache/${cached}`, { method: "PUT" });
    await waitFor("cached", async () => (await listing(s)).cached_images.length > 0);
    const queued = await createImage(s);

    const res = await fetch(`${s.url}/v2/images/${cached}/file`);
    const reader = res.body!.getReader();
    const chunks: Uint8Array[] = [];
    const first = await reader.read();
    chunks.push(first.value!);
    await fetch(`${s.url}/v2/cache/${queued}`, { method: "PUT" });
    s.child.kill("SIGTERM");
    // the listener closes soon after the signal: wait for that, not for a fixed pause
    await waitFor("no longer accepting connections after SIGTERM", () =>
      fetch(`${s.url}/versions`).then(
        (r) => r.body?.cancel().then(() => false) ?? false,
        () => true,
      ), 10_000);
    for (;;) {
      await new Promise((r) => setTimeout(r, 1)); // a slow client
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    const got = concat(chunks);
    assert.equal(got.byteLength, SIZE);
    assert.equal(md5(got), DIGEST);
    const [code, signal] = await s.exited;
    // Deno's child_process reports the signal we sent rather than the exit status the child chose.
    if (CURRENT_RUNTIME === "node") assert.deepEqual([code, signal], [0, null]);
    // the queued image's fill was stopped by the shutdown or had finished; either way nothing is lost
    const marker = existsSync(join(dir, "cache", "queue", queued));
    const done = existsSync(join(dir, "cache", queued));
    assert.ok(marker || done, "queued image kept in the queue (or already cached)");
    assert.deepEqual(await readdir(join(dir, "cache", "incomplete")), []);
  } finally {
    await s.kill();
    await removeAll(dir);
  }
});

/** The data directory and the server's log beside it. */
async function removeAll(dir: string) {
  await rm(dir, { recursive: true, force: true });
  await rm(`${dir}.log`, { force: true });
}

t.run();
