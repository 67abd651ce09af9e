// A fleet of two nodes in front of the real Glance 25.1, with Keystone tokens and python-glanceclient (e2e/start.sh runs them).
// test-needs: e2e glanceclient mariadb
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { keystoneOptions, readEnv, token, upstreamDataReads } from "../helpers/e2e_helpers.ts";
import { glance } from "../helpers/glanceclient.ts";
import { startOnPort } from "../helpers/fleet_helpers.ts";
import { bytes, type Running, tempDir, waitFor } from "../helpers/helpers.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";
import { freePort } from "../../support/processes.ts";

const t = suite("fleet e2e");

t(
  "two nodes of a site in front of Glance: one fan-out reads Glance once; nodes/{id}; a delete through one node empties both",
  async () => {
    const env = readEnv();
    const db: MariaDb = await startMariaDb();
    const keystone = keystoneOptions(env);
    const nodes: Running[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const port = await freePort();
        nodes.push(
          await startOnPort(port, {
            auth: "keystone",
            keystone,
            upstream: { url: env.GLANCE_URL, metadataCacheTime: 0 },
            fleet: {
              databaseUrl: db.url,
              selfUrl: `http://127.0.0.1:${port}`,
              site: "a",
              secret: "e2e",
              pollInterval: 0.2,
              heartbeatInterval: 1,
              staleAfter: 60,
            },
          }),
        );
      }
      const admin = await token(env, "ADMIN");
      const demo = await token(env, "DEMO");
      const as = (tok: string) => ({ "X-Auth-Token": tok });
      const dir = await tempDir();
      await writeFile(join(dir, "img.raw"), bytes(2 << 20));
      const created = await glance(
        nodes[0].url,
        admin,
        "image-create",
        "--name",
        "fleet-e2e",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        join(dir, "img.raw"),
      );
      assert.equal(created.code, 0, created.stderr);
      const id = /\|\s*id\s*\|\s*([0-9a-f-]{36})/.exec(created.stdout)![1];
      await rm(dir, { recursive: true, force: true });

      // a member: the admin's private image is not found for it; a fleet prune is refused by policy
      assert.equal(
        (await nodes[1].req("/v2/x-fleet/jobs", {
          as: as(demo),
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ image_id: id }),
        })).status,
        404,
      );
      assert.equal(
        (await nodes[1].req("/v2/x-fleet/jobs", {
          as: as(demo),
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ action: "prune" }),
        })).status,
        403,
      );
      const res = await nodes[1].req("/v2/x-fleet/jobs", {
        as: as(admin),
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ image_id: id }),
      });
      assert.equal(res.status, 202);
      const jobId = ((await res.json()) as { id: string }).id;
      await waitFor("job done", async () => {
        const job = (await (await nodes[0].req(`/v2/x-fleet/jobs/${jobId}`, { as: as(admin) })).json()) as {
          state: string;
          targets: { state: string }[];
        };
        return job.state === "done" && job.targets.every((t) => t.state === "cached");
      }, 60_000);
      assert.equal(upstreamDataReads(id), 1, "the site read Glance once; the second node filled from its peer");
      for (const node of nodes) {
        const listed = await glance(node.url, admin, "cache-list");
        assert.match(listed.stdout, new RegExp(`${id}\\s*\\|\\s*cached`));
      }
      const where = await nodes[0].req(`/v2/cache/nodes/${id}`, { as: as(admin) });
      assert.deepEqual(((await where.json()) as string[]).sort(), nodes.map((n) => n.url).sort());
      assert.equal((await nodes[0].req(`/v2/cache/nodes/${id}`, { as: as(demo) })).status, 403);

      const deleted = await glance(nodes[0].url, admin, "image-delete", id);
      assert.equal(deleted.code, 0, deleted.stderr);
      await waitFor("gone from the other node", async () => {
        const listing = (await (await nodes[1].req("/v2/cache", { as: as(admin) })).json()) as {
          cached_images: { image_id: string }[];
        };
        return !listing.cached_images.some((c) => c.image_id === id);
      }, 30_000);
    } finally {
      for (const n of nodes) await n.close();
      await db.close();
    }
  },
);

t.run();
