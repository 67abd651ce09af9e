// No trust by default: who may call, from where, with what (peer addresses, trusted proxies, noauth,
// the public list, owner changes, request and image size limits). Driven through the fetch handler with the
// peer address an adapter would pass, and over real HTTP on loopback.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { suite } from "uvu";
import { createCacheNode } from "../../mod.ts";
import type { App, AppOptions } from "../../src/app.ts";
import { ADMIN, bytes, createImage, MEMBER, type Running, start, tempDir, tree } from "../helpers/helpers.ts";

const t = suite("trust");

/** A node used only through its handler (no server); closed and removed by the returned function. */
async function handler(opts: Partial<AppOptions>): Promise<{ app: App; done: () => Promise<void> }> {
  const dataDir = await tempDir();
  const app = await createCacheNode({ log: () => {}, ...opts, dataDir });
  return { app, done: async () => (await app.close(), await rm(dataDir, { recursive: true, force: true })) };
}

const call = (
  app: App,
  path: string,
  remoteAddr: string | undefined,
  headers: Record<string, string> = {},
  init: RequestInit = {},
) =>
  app.fetch(
    new Request(`http://localhost${path}`, { ...init, headers: { Accept: "application/json", ...headers } }),
    remoteAddr === undefined ? undefined : { remoteAddr },
  );

async function glanceError(res: Response, status: number): Promise<string> {
  assert.equal(res.status, status);
  const body = (await res.json()) as { code: string; title: string; message: string };
  assert.match(body.code, new RegExp(`^${status} `));
  return body.message;
}

t("createCacheNode() defaults: noauth serves loopback peers only; unknown or remote peers get 403", async () => {
  const { app, done } = await handler({});
  try {
    for (const peer of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) {
      assert.equal((await call(app, "/v2/cache", peer)).status, 200, peer);
    }
    for (const peer of [undefined, "192.0.2.10", "10.0.0.1", "::ffff:192.0.2.10", "2001:db8::1", "not an address"]) {
      assert.match(
        await glanceError(await call(app, "/v2/cache", peer), 403),
        /serves loopback clients only/,
        String(peer),
      );
      assert.equal((await call(app, "/v2/images", peer, {}, { method: "POST", body: "{}" })).status, 403);
    }
    // The public list still answers anyone.
    assert.equal((await call(app, "/versions", "192.0.2.10")).status, 200);
    assert.equal((await call(app, "/", undefined)).status, 300);
  } finally {
    await done();
  }
});

t(
  "noauth refuses what a web page on this host can send: another origin, a rebound Host; the status page still works",
  async () => {
    const { app, done } = await handler({});
    try {
      const evil = { Origin: "http://evil.example" };
      const json = { "Content-Type": "application/json" };
      const created = await call(app, "/v2/images", "127.0.0.1", { ...evil, ...json }, {
        method: "POST",
        body: JSON.stringify({ name: "x", visibility: "public" }),
      });
      assert.match(await glanceError(created, 403), /other origins/);
      assert.equal((await call(app, "/v2/cache/clean", "127.0.0.1", evil, { method: "POST" })).status, 403);
      assert.equal(
        (await call(app, "/v2/cache/clean", "127.0.0.1", { Origin: "null" }, { method: "POST" })).status,
        403,
      );
      // A DNS-rebound name resolves to 127.0.0.1, but the request still names it.
      const rebound = await app.fetch(
        new Request("http://attacker.example:9292/v2/cache", { headers: { Accept: "application/json" } }),
        { remoteAddr: "127.0.0.1" },
      );
      assert.match(await glanceError(rebound, 403), /loopback name/);
      assert.equal(app.store!.all().length, 0);
      // Same-origin calls (the status page's), loopback names and addresses are served.
      for (const base of ["http://localhost:9292", "http://127.0.0.1:9292", "http://[::1]:9292"]) {
        const res = await app.fetch(
          new Request(`${base}/v2/x-cache-node/status`, { headers: { Origin: base } }),
          { remoteAddr: "127.0.0.1" },
        );
        assert.equal(res.status, 200, base);
        await res.body?.cancel();
      }
      assert.equal((await call(app, "/status", "127.0.0.1", evil)).status, 200);
    } finally {
      await done();
    }
  },
);

t("JSON routes take JSON types only: a text/plain or form body is a 415 before anything happens", async () => {
  const { app, done } = await handler({});
  try {
    for (
      const type of ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
    ) {
      const res = await call(app, "/v2/images", "127.0.0.1", { "Content-Type": type }, {
        method: "POST",
        body: JSON.stringify({ name: "x" }),
      });
      assert.match(await glanceError(res, 415), /Content type .* is not supported/, type);
    }
    const queued = await call(app, "/v2/cache/00000000-0000-0000-0000-000000000001", "127.0.0.1", {
      "Content-Type": "text/plain",
    }, { method: "PUT", body: "x" });
    assert.equal(queued.status, 415);
    assert.equal(app.store!.all().length, 0);
    const ok = await call(app, "/v2/images", "127.0.0.1", { "Content-Type": "application/json; charset=UTF-8" }, {
      method: "POST",
      body: JSON.stringify({ name: "x" }),
    });
    assert.equal(ok.status, 201);
  } finally {
    await done();
  }
});

t("in front of an upstream Glance, every body but image data is capped, whatever its type", async () => {
  const upstream = await start({ auth: "noauth" });
  const node = await start({
    auth: "headers",
    upstream: { url: upstream.url, metadataCacheTime: 0 },
    maxRequestBodySize: 4096,
  });
  try {
    for (const type of ["text/plain", "application/octet-stream", "application/json"]) {
      const res = await node.req("/v2/images/00000000-0000-0000-0000-000000000001/members", {
        method: "POST",
        headers: { "Content-Type": type, Accept: "application/json" },
        body: "x".repeat(2_000_000),
      });
      assert.ok(res.status === 413 || res.status === 415, `${type}: ${res.status}`);
      await res.body?.cancel();
    }
    assert.equal(upstream.app.store!.all().length, 0);
  } finally {
    await node.close();
    await upstream.close();
  }
});

t("noauth with forceNoauth serves remote peers (the CLI's --force-noauth)", async () => {
  const { app, done } = await handler({ forceNoauth: true });
  try {
    assert.equal((await call(app, "/v2/cache", "192.0.2.10")).status, 200);
    assert.equal((await call(app, "/v2/cache", undefined)).status, 200);
  } finally {
    await done();
  }
});

t("headers mode: identity headers are believed only from trusted proxies (IPv4, IPv6, IPv4-mapped)", async () => {
  const { app, done } = await handler({ auth: "headers", trustedProxies: ["10.0.0.0/8", "fd00::/8", "192.0.2.7"] });
  try {
    for (const peer of ["10.1.2.3", "::ffff:10.1.2.3", "fd12::5", "192.0.2.7"]) {
      assert.equal((await call(app, "/v2/cache", peer, ADMIN)).status, 200, peer);
    }
    for (const peer of [undefined, "127.0.0.1", "::1", "192.0.2.8", "11.0.0.1", "fe80::1", "::ffff:192.0.2.8"]) {
      const res = await call(app, "/v2/cache", peer, ADMIN);
      assert.match(await glanceError(res, 401), /could not verify/, String(peer));
    }
  } finally {
    await done();
  }
});

t("headers mode: default trust is loopback; X-Identity-Status must be Confirmed", async () => {
  const { app, done } = await handler({ auth: "headers" });
  try {
    assert.equal((await call(app, "/v2/cache", "127.0.0.1", ADMIN)).status, 200);
    assert.equal((await call(app, "/v2/cache", "::1", ADMIN)).status, 200);
    assert.equal((await call(app, "/v2/cache", "192.0.2.1", ADMIN)).status, 401);
    for (const status of [undefined, "Invalid", "confirmedx", ""]) {
      const headers: Record<string, string> = { ...ADMIN };
      if (status === undefined) delete (headers as Record<string, string>)["X-Identity-Status"];
      else headers["X-Identity-Status"] = status;
      assert.equal((await call(app, "/v2/cache", "127.0.0.1", headers)).status, 401, String(status));
    }
    // The token form is off unless asked for.
    assert.equal((await call(app, "/v2/cache", "127.0.0.1", { "X-Auth-Token": "admin:adminproj:admin" })).status, 401);
  } finally {
    await done();
  }
});

t("headers mode: user:project:role tokens only with insecureTestTokens, only from trusted peers", async () => {
  const { app, done } = await handler({ auth: "headers", insecureTestTokens: true });
  try {
    assert.equal((await call(app, "/v2/cache", "127.0.0.1", { "X-Auth-Token": "admin:adminproj:admin" })).status, 200);
    assert.equal((await call(app, "/v2/cache", "127.0.0.1", { "X-Auth-Token": "m:p:member" })).status, 403);
    assert.equal((await call(app, "/v2/cache", "192.0.2.1", { "X-Auth-Token": "admin:adminproj:admin" })).status, 401);
    // A proxy that says the token is not valid is believed.
    const invalid = { "X-Auth-Token": "admin:adminproj:admin", "X-Identity-Status": "Invalid" };
    assert.equal((await call(app, "/v2/cache", "127.0.0.1", invalid)).status, 401);
  } finally {
    await done();
  }
});

t("every route authenticates except /, /versions, /healthcheck; /metrics only when public_metrics", async () => {
  const { app, done } = await handler({ auth: "headers" });
  try {
    for (
      const [method, path] of [
        ["GET", "/metrics"],
        ["GET", "/v2/cache"],
        ["DELETE", "/v2/cache"],
        ["GET", "/v2/images"],
        ["GET", "/v2/schemas/image"],
        ["GET", "/v2/nothing"],
        ["GET", "/v3/cache"],
        ["GET", "/anything"],
        ["POST", "/versions/x"],
      ]
    ) {
      assert.equal((await call(app, path, "127.0.0.1", {}, { method })).status, 401, `${method} ${path}`);
    }
    assert.equal((await call(app, "/versions", "203.0.113.9")).status, 200);
    assert.equal((await call(app, "/", "203.0.113.9")).status, 300);
    assert.equal((await call(app, "/metrics", "127.0.0.1", MEMBER)).status, 403); // cache_list
    assert.equal((await call(app, "/metrics", "127.0.0.1", ADMIN)).status, 200);
  } finally {
    await done();
  }
  const open = await handler({ auth: "headers", publicMetrics: true });
  try {
    assert.equal((await call(open.app, "/metrics", "203.0.113.9")).status, 200);
    assert.equal((await call(open.app, "/v2/cache", "203.0.113.9")).status, 401);
  } finally {
    await open.done();
  }
});

t("over real HTTP the adapter passes the peer: loopback noauth works, the handler sees 127.0.0.1", async () => {
  const node = await start({ auth: "noauth" });
  try {
    assert.equal((await fetch(`${node.url}/v2/cache`)).status, 200);
  } finally {
    await node.close();
  }
  let seen: string | undefined;
  const spy = await start({
    auth: {
      authenticate: async (
        _r,
        conn,
      ) => ((seen = conn.remoteAddr), { userId: "u", projectId: "p", roles: ["admin"], isAdmin: true }),
    },
  });
  try {
    assert.equal((await fetch(`${spy.url}/v2/cache`)).status, 200);
    assert.ok(seen === "127.0.0.1" || seen === "::ffff:127.0.0.1", String(seen));
  } finally {
    await spy.close();
  }
});

t("in front of an upstream Glance, JSON bodies over the limit are refused before they go upstream", async () => {
  const upstream = await start({ auth: "noauth" });
  const node = await start({
    auth: "headers",
    upstream: { url: upstream.url, metadataCacheTime: 0 },
    maxRequestBodySize: 4096,
  });
  try {
    const big = JSON.stringify({ name: "big", description: "y".repeat(5000) });
    const res = await node.req("/v2/images", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: big,
    });
    assert.match(await glanceError(res, 413), /Request is too large/);
    assert.equal(upstream.app.store!.all().length, 0);
    const ok = await node.req("/v2/images", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "small" }),
    });
    assert.equal(ok.status, 201);
    assert.equal(upstream.app.store!.all().length, 1);
  } finally {
    await node.close();
    await upstream.close();
  }
});

const ts = suite<{ node: Running }>("trust: images", {} as never);
ts.before(async (ctx) => {
  ctx.node = await start({ maxRequestBodySize: 4096, imageSizeCap: 100_000 });
});
ts.after(async (ctx) => {
  await ctx.node.close();
});

const PATCH = { "Content-Type": "application/openstack-images-v2.1-json-patch", Accept: "application/json" };

ts("a non-admin cannot change an image's owner with PATCH (403); an admin can", async ({ node }) => {
  const id = await createImage(node, undefined, {}, MEMBER);
  for (const op of ["replace", "add"]) {
    const res = await node.req(`/v2/images/${id}`, {
      as: MEMBER,
      method: "PATCH",
      headers: PATCH,
      body: JSON.stringify([{ op, path: "/owner", value: "someone-else" }]),
    });
    assert.match(await glanceError(res, 403), /Owner can't be updated by non admin/);
  }
  const shown = (await (await node.req(`/v2/images/${id}`, { as: MEMBER })).json()) as { owner: string };
  assert.equal(shown.owner, "memberproj");
  const res = await node.req(`/v2/images/${id}`, {
    method: "PATCH",
    headers: PATCH,
    body: JSON.stringify([{ op: "replace", path: "/owner", value: "someone-else" }]),
  });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { owner: string }).owner, "someone-else");
});

ts(
  "JSON bodies over max_request_body_size: 413 in Glance's format, announced or streamed, nothing created",
  async ({ node }) => {
    const big = JSON.stringify({ name: "x", description: "y".repeat(5000) });
    const before = await tree(node.dir);
    const announced = await node.req("/v2/images", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: big,
    });
    assert.equal(await glanceError(announced, 413), "Request is too large.<br /><br />\n\n\n");
    const streamed = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    const chunked = await node.req(
      "/v2/images",
      {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: streamed,
        duplex: "half",
      } as RequestInit,
    );
    assert.equal(chunked.status, 413);
    await chunked.body?.cancel();
    assert.deepEqual(await tree(node.dir), before);
    const id = await createImage(node, undefined);
    const patch = await node.req(`/v2/images/${id}`, {
      method: "PATCH",
      headers: PATCH,
      body: JSON.stringify([{ op: "add", path: "/description", value: "y".repeat(5000) }]),
    });
    assert.equal(patch.status, 413);
    await patch.body?.cancel();
    const small = await node.req(`/v2/images/${id}`, {
      method: "PATCH",
      headers: PATCH,
      body: JSON.stringify([{ op: "add", path: "/description", value: "fits" }]),
    });
    assert.equal(small.status, 200);
  },
);

ts("uploads over image_size_cap: 413, the image queued again, no data left behind", async ({ node }) => {
  const id = await createImage(node, undefined);
  const before = await tree(node.dir);
  const put = (body: BodyInit, extra: RequestInit = {}) =>
    node.req(
      `/v2/images/${id}/file`,
      {
        method: "PUT",
        headers: { "Content-Type": "application/octet-stream", Accept: "application/json" },
        body,
        ...extra,
      } as RequestInit,
    );
  const announced = await put(bytes(100_001) as unknown as BodyInit);
  assert.match(await glanceError(announced, 413), /The incoming image is too large/);
  // Streamed without a length: the cap is enforced on the bytes themselves.
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= 300_000) return c.close();
      sent += 10_000;
      c.enqueue(bytes(10_000));
    },
  });
  const streamed = await put(stream, { duplex: "half" } as RequestInit);
  assert.match(await glanceError(streamed, 413), /The incoming image is too large/);
  const image = (await (await node.req(`/v2/images/${id}`)).json()) as { status: string; size: number | null };
  assert.equal(image.status, "queued");
  assert.equal(image.size, null);
  const after = await tree(node.dir);
  // Only the record's updated_at may differ (its size in bytes stays the same); no .data and no .upload file.
  assert.deepEqual(after.filter((f) => !f.includes(".json")), before.filter((f) => !f.includes(".json")));
  assert.equal(after.some((f) => f.includes(".upload") || f.includes(".data")), false);
  // At the cap exactly, the upload works.
  assert.equal((await put(bytes(100_000) as unknown as BodyInit)).status, 204);
});

t.run();
ts.run();
