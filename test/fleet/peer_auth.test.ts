// Peer reads are signed for one node, one image and a bounded time, a peer's redirect is never followed, and peer_bandwidth_limit holds.
// test-needs: mariadb
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { once } from "node:events";
import { suite } from "uvu";
import type mysql from "mysql2/promise";
import { openPool } from "../../src/fleet/database.ts";
import { PEER_AUTH_HEADER, peerPath, peerRead, peerToken, peerTokenValid } from "../../src/fleet/peer_auth.ts";
import { bytes, createImage, md5, type Running, start, waitCached } from "../helpers/helpers.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";
import { freePort } from "../../support/processes.ts";
import { startOnPort } from "../helpers/fleet_helpers.ts";

const SECRET = "peer-auth-test-secret";

interface Ctx {
  db: MariaDb;
  sql: mysql.Pool;
  origin: Running;
  a: Running;
  b: Running;
}
const ctx = {} as Ctx;

/** A fleet node of site "s" on a port chosen before it starts (its URL is its identity in the fleet). */
async function startNode(): Promise<Running> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  return await startOnPort(port, {
    upstream: { url: ctx.origin.url, metadataCacheTime: 0 },
    fleet: {
      databaseUrl: ctx.db.url.replace("mysql://", "mysql+pymysql://"),
      selfUrl: url,
      site: "s",
      secret: SECRET,
      pollInterval: 0.1,
      heartbeatInterval: 0.5,
      staleAfter: 60,
    },
  });
}

/** An image of the origin, cached on the nodes given. */
async function cachedImage(size: number, ...on: Running[]): Promise<{ id: string; data: Uint8Array }> {
  const data = bytes(size);
  const id = await createImage(ctx.origin, data);
  for (const node of on) {
    assert.equal((await node.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
    await waitCached(node, id, 20_000);
  }
  return { id, data };
}

/** GET the peer endpoint of `node` for `id` with `token`: the status (the body read or dropped). */
async function peerGet(node: Running, id: string, token: string): Promise<{ status: number; body: Uint8Array }> {
  const res = await fetch(node.url + peerPath(id), { headers: { [PEER_AUTH_HEADER]: token } });
  return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
}

/** A plain HTTP server of the test's own: `respond` answers, `requests` counts. */
async function server(respond: (req: IncomingMessage, res: ServerResponse) => void) {
  const s = { url: "", server: createServer() as Server, requests: 0 };
  s.server.on("request", (req, res) => {
    s.requests++;
    respond(req, res);
  });
  s.server.listen(0, "127.0.0.1");
  await once(s.server, "listening");
  s.url = `http://127.0.0.1:${(s.server.address() as { port: number }).port}`;
  return s;
}

const t = suite("fleet: peer authentication");

t.before(async () => {
  ctx.db = await startMariaDb();
  ctx.sql = openPool(ctx.db.url);
  ctx.origin = await start({ auth: "noauth" });
  ctx.a = await startNode();
  ctx.b = await startNode();
});

t.after(async () => {
  for (const n of [ctx.a, ctx.b, ctx.origin]) await n?.close().catch(() => {});
  await ctx.sql?.end().catch(() => {});
  await ctx.db?.close();
});

t("a token made for node A is refused by node B (403) for the same image", async () => {
  const { id, data } = await cachedImage(20_000, ctx.a, ctx.b);
  const forA = peerToken(SECRET, peerRead(ctx.a.url, id));
  const atA = await peerGet(ctx.a, id, forA);
  assert.equal(atA.status, 200);
  assert.equal(md5(atA.body), md5(data));
  assert.equal((await peerGet(ctx.b, id, forA)).status, 403);
  // B holds the image and answers a token made for it.
  const atB = await peerGet(ctx.b, id, peerToken(SECRET, peerRead(ctx.b.url, id)));
  assert.equal(atB.status, 200);
  assert.equal(md5(atB.body), md5(data));
});

t("a token for image X is refused for image Y", async () => {
  const x = await cachedImage(5_000, ctx.a);
  const y = await cachedImage(6_000, ctx.a);
  const forX = peerToken(SECRET, peerRead(ctx.a.url, x.id));
  assert.equal((await peerGet(ctx.a, y.id, forX)).status, 403);
  assert.equal((await peerGet(ctx.a, x.id, forX)).status, 200);
});

t("a timestamp 60 s ahead is refused, 10 s ahead accepted; 10 minutes old refused", async () => {
  const { id } = await cachedImage(4_000, ctx.a);
  const at = (offsetMs: number) => peerToken(SECRET, peerRead(ctx.a.url, id), Date.now() + offsetMs);
  assert.equal((await peerGet(ctx.a, id, at(60_000))).status, 403);
  assert.equal((await peerGet(ctx.a, id, at(10_000))).status, 200);
  assert.equal((await peerGet(ctx.a, id, at(-600_000))).status, 403);
});

t("a peer answering 302 is not followed: the target counts no request, the fill reads the real source", async () => {
  const data = bytes(300_000);
  const id = await createImage(ctx.origin, data);
  const elsewhere = await server((_req, res) => res.writeHead(404).end());
  const tokens: (string | undefined)[] = [];
  const peer = await server((req, res) => {
    tokens.push(req.headers[PEER_AUTH_HEADER.toLowerCase()] as string | undefined);
    res.writeHead(302, { Location: elsewhere.url + peerPath(id) }).end();
  });
  // The redirecting peer holds the image, as far as the fleet database says, and is B's only peer for it.
  await ctx.sql.query(
    "INSERT INTO fleet_nodes (url, site, state, registered_at, heartbeat_at) VALUES (?, 's', 'active', NOW(3), NOW(3))",
    [peer.url],
  );
  const [[row]] = (await ctx.sql.query("SELECT id FROM fleet_nodes WHERE url = ?", [peer.url])) as unknown as [
    { id: number }[],
  ];
  await ctx.sql.query(
    "INSERT INTO fleet_entries (node_id, image_id, state, size, bytes) VALUES (?, ?, 'cached', ?, ?)",
    [row.id, id, data.length, data.length],
  );
  try {
    const before = { ...ctx.b.app.fleet!.reads };
    assert.equal((await ctx.b.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
    await waitCached(ctx.b, id, 20_000);
    assert.equal(peer.requests, 1);
    assert.equal(elsewhere.requests, 0, "the redirect's target was never asked");
    // What the peer was sent is good for that peer only.
    assert.equal(peerTokenValid(SECRET, peerRead(peer.url, id), tokens[0] ?? null), true);
    assert.equal(peerTokenValid(SECRET, peerRead(elsewhere.url, id), tokens[0] ?? null), false);
    const now = ctx.b.app.fleet!.reads;
    assert.equal(now.peerReads - before.peerReads, 0);
    assert.equal(now.peerFailures - before.peerFailures, 1);
    assert.equal(now.upstreamReads - before.upstreamReads, 1);
    const body = new Uint8Array(await (await ctx.b.req(`/v2/images/${id}/file`)).arrayBuffer());
    assert.equal(md5(body), md5(data));
  } finally {
    await ctx.sql.query("DELETE FROM fleet_entries WHERE node_id = ?", [row.id]);
    await ctx.sql.query("UPDATE fleet_nodes SET state = 'retired' WHERE id = ?", [row.id]);
    peer.server.close();
    elsewhere.server.close();
  }
});

t("peer_bandwidth_limit holds what a node serves to peers to the limit, set at run time", async () => {
  const MiB = 1 << 20;
  const limit = 2 * MiB;
  const { id, data } = await cachedImage(3 * MiB, ctx.a);
  const setPeer = (peer: number) =>
    ctx.a.req("/v2/x-cache-node/bandwidth", {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ peer }),
    });
  const timed = async () => {
    const t0 = performance.now();
    const got = await peerGet(ctx.a, id, peerToken(SECRET, peerRead(ctx.a.url, id)));
    assert.equal(md5(got.body), md5(data));
    return (performance.now() - t0) / 1000;
  };
  try {
    assert.equal((await setPeer(limit)).status, 200);
    const held = await timed();
    console.log(`peer limit ${limit} B/s: served ${Math.round(data.length / held)} B/s (${held.toFixed(2)} s)`);
    assert.ok(data.length / held <= limit * 1.15, `${data.length / held} B/s over the peer limit`);
    assert.equal((await setPeer(0)).status, 200);
    const free = await timed();
    assert.ok(data.length / free > limit * 2, `unlimited again: ${data.length / free} B/s`);
  } finally {
    await setPeer(0);
  }
});

t.run();
