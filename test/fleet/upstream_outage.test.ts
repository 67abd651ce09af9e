// A fleet site cut off from its upstream: a node that never cached an image fills it from a peer of its site that holds it.
// test-needs: mariadb
import assert from "node:assert/strict";
import { suite } from "uvu";
import { freePort } from "../../support/processes.ts";
import { startOnPort } from "../helpers/fleet_helpers.ts";
import { ADMIN, bytes, createImage, listing, md5, MEMBER, type Running, start, waitFor } from "../helpers/helpers.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";
import { type TcpLink, tcpLink } from "../helpers/tcp_link.ts";

interface Ctx {
  db: MariaDb;
  origin: Running;
  link: TcpLink;
  a1: Running;
  a2: Running;
}
const ctx = {} as Ctx;
const t = suite("fleet_outage");

async function startNode(site: string): Promise<Running> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  return startOnPort(port, {
    upstream: { url: ctx.link.url, metadataCacheTime: 0, timeout: 5 },
    fleet: {
      databaseUrl: ctx.db.url.replace("mysql://", "mysql+pymysql://"),
      selfUrl: url,
      site,
      secret: "fleet-outage-secret",
      pollInterval: 0.1,
      heartbeatInterval: 0.5,
      staleAfter: 60,
    },
  });
}

t.before(async () => {
  ctx.db = await startMariaDb();
  ctx.origin = await start({ auth: "noauth" });
  ctx.link = await tcpLink(ctx.origin.url);
  ctx.a1 = await startNode("a");
  ctx.a2 = await startNode("a");
});
t.after(async () => {
  for (const n of [ctx.a1, ctx.a2, ctx.origin]) await n?.close().catch(() => {});
  await ctx.link?.close();
  await ctx.db?.close();
});

const cachedOn = async (node: Running, id: string) =>
  (await listing(node)).cached_images.some((c) => c.image_id === id);

t(
  "upstream down: a node fills from a peer of its site that holds the image, under the kept record's rules",
  async () => {
    const data = bytes(512 * 1024);
    const id = await createImage(ctx.origin, data);
    assert.equal((await ctx.a1.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
    await waitFor("cached on a1", () => cachedOn(ctx.a1, id), 30_000);
    const a2 = ctx.a2.app.fleet!;
    await waitFor(
      "a1 listed as holding it",
      async () => (await a2.registry.peersHolding(id, "a", a2.nodeId)).length > 0,
      30_000,
    );

    await ctx.link.cut();
    const peerReads = a2.reads.peerReads;
    assert.equal(
      (await ctx.a2.req(`/v2/images/${id}/file`, { as: MEMBER })).status,
      404,
      "another project's private image",
    );
    const res = await ctx.a2.req(`/v2/images/${id}/file`, { as: ADMIN });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-glance-cache-node-record"), "kept");
    assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(data));
    assert.equal(a2.reads.peerReads, peerReads + 1, "the bytes came from a1");
    await waitFor(
      "cached on a2, with its own kept record",
      async () => ctx.a2.app.cache.kept.get(id) !== undefined,
      30_000,
    );
    assert.ok(await cachedOn(ctx.a2, id));

    // A second download on a2 is a hit on its own copy.
    const again = await ctx.a2.req(`/v2/images/${id}/file`, { as: ADMIN });
    assert.equal(again.headers.get("x-glance-cache-node-record"), "kept");
    assert.equal(md5(new Uint8Array(await again.arrayBuffer())), md5(data));
    assert.equal(a2.reads.peerReads, peerReads + 1);

    // An image no node of the site holds: 503.
    const other = await createImage(ctx.origin, bytes(1000));
    assert.equal((await ctx.a2.req(`/v2/images/${other}/file`, { as: ADMIN })).status, 503);

    // Deleted centrally while the site is cut off: served until the link returns, then gone from both nodes.
    assert.equal((await ctx.origin.req(`/v2/images/${id}`, { method: "DELETE" })).status, 204);
    assert.equal((await ctx.a1.req(`/v2/images/${id}/file`, { as: ADMIN })).status, 200);
    await ctx.link.restore();
    for (const node of [ctx.a1, ctx.a2]) {
      await waitFor(`dropped on ${node.url}`, async () => !(await cachedOn(node, id)), 30_000);
      assert.equal((await node.req(`/v2/images/${id}/file`, { as: ADMIN })).status, 404);
    }
  },
);

t.run();
