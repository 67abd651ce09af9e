// Fleet nodes as processes of their own: one killed with SIGKILL in the middle of a fan-out catches up after its restart.
// test-needs: mariadb
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { suite } from "uvu";
import type { ImageSource } from "../../src/images/source.ts";
import { ImageGates } from "../helpers/gate.ts";
import { bytes, createImage, md5, type Running, start, tempDir, waitFor } from "../helpers/helpers.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";
import { CURRENT_RUNTIME, freePort, type ServerProcess, startServer } from "../../support/processes.ts";

interface Job {
  id: string;
  state: string;
  targets: { node: string; state: string; bytes: number }[];
}

const t = suite("fleet crash");

t("a node killed with SIGKILL mid-fan-out finishes its part after it restarts", async () => {
  const db: MariaDb = await startMariaDb();
  const gate = new ImageGates();
  const origin: Running = await start({ auth: "noauth", cacheSource: (s: ImageSource) => gate.wrap(s) });
  const nodes: { port: number; dir: string; args: string[]; proc?: ServerProcess }[] = [];
  try {
    for (const site of ["a", "a", "b"]) {
      const port = await freePort();
      const args = [
        "--upstream-url",
        origin.url,
        "--metadata-cache-time",
        "0",
        "--fleet-database-url",
        db.url,
        "--worker-self-reference-url",
        `http://127.0.0.1:${port}`,
        "--fleet-site",
        site,
        "--fleet-poll-interval",
        "1",
        "--fleet-heartbeat-interval",
        "1",
      ];
      const node = { port, dir: await tempDir(), args };
      nodes.push({ ...node, proc: await startServer(CURRENT_RUNTIME, node.dir, args, port) });
    }
    const data = bytes(6 << 20);
    const id = await createImage(origin, data);
    gate.arm(id);
    const api = (i: number, path: string, init?: RequestInit) =>
      fetch(`http://127.0.0.1:${nodes[i].port}${path}`, init);
    const res = await api(0, "/v2/x-fleet/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image_id: id }),
    });
    assert.equal(res.status, 202);
    const jobId = ((await res.json()) as Job).id;
    const victim = `http://127.0.0.1:${nodes[1].port}`;
    const job = (path: number) => api(path, `/v2/x-fleet/jobs/${jobId}`).then((r) => r.json() as Promise<Job>);
    // the victim has part of the image when it dies
    await waitFor(
      "victim filling",
      async () => (await job(0)).targets.find((t) => t.node === victim && t.state === "filling" && t.bytes > 0),
      30_000,
    );
    await nodes[1].proc!.kill();
    nodes[1].proc = await startServer(CURRENT_RUNTIME, nodes[1].dir, nodes[1].args, nodes[1].port);
    gate.release(id);
    const done = await waitFor("job done", async () => {
      const j = await job(2);
      return j.state === "done" && j;
    }, 60_000);
    assert.deepEqual(done.targets.map((t) => t.state), ["cached", "cached", "cached"]);
    const body = new Uint8Array(await (await api(1, `/v2/images/${id}/file`)).arrayBuffer());
    assert.equal(md5(body), md5(data));
    assert.deepEqual(((await (await api(2, `/v2/cache/nodes/${id}`)).json()) as string[]).length, 3);
  } finally {
    for (const n of nodes) {
      await n.proc?.stop();
      await rm(n.dir, { recursive: true, force: true });
      await rm(`${n.dir}.log`, { force: true });
    }
    await origin.close();
    await db.close();
  }
});

t.run();
