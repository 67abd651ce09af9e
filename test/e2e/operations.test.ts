// Health check and request ids against the real Keystone and Glance of e2e/start.sh: Glance's own log names our request ids.
// test-needs: e2e
import assert from "node:assert/strict";
import { suite } from "uvu";
import { glanceLog, keystoneOptions, readEnv, startInFront, token } from "../helpers/e2e_helpers.ts";
import { bytes, type Running, start, waitFor } from "../helpers/helpers.ts";
import { freePort } from "../../support/processes.ts";

const t = suite<{ env: Record<string, string>; node: Running; admin: string }>("operations e2e", {} as never);

t.before(async (ctx) => {
  ctx.env = readEnv();
  const env = ctx.env;
  ctx.node = await startInFront(env);
  ctx.admin = await token(env, "ADMIN");
});
t.after(async (ctx) => {
  await ctx.node?.close();
});

t(
  "/healthcheck in front of the real Glance and Keystone: 200, every check OK; Keystone a port nobody listens on only in ?detailed",
  async ({ env, node }) => {
    const res = await fetch(`${node.url}/healthcheck?detailed`);
    const body = (await res.json()) as { reasons: { class: string; reason: string }[] };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.deepEqual(body.reasons.map((r) => [r.class, r.reason]), [
      ["CacheDirectoryCheck", "OK"],
      ["DiskSpaceCheck", "OK"],
      ["UpstreamGlanceCheck", "OK"],
      ["KeystoneCheck", "OK"],
    ]);
    const lost = await start({
      auth: "keystone",
      upstream: { url: env.GLANCE_URL },
      keystone: { ...keystoneOptions(env), authUrl: `http://127.0.0.1:${await freePort()}/v3` },
    });
    try {
      // Keystone away: the node still serves tokens it validated before, so a load balancer keeps it;
      // ?detailed tells the outage.
      const down = await fetch(`${lost.url}/healthcheck`);
      assert.equal(down.status, 200);
      assert.equal(await down.text(), "OK");
      const detailed = (await (await fetch(`${lost.url}/healthcheck?detailed`)).json()) as {
        reasons: { class: string; reason: string }[];
      };
      assert.equal(detailed.reasons.find((r) => r.class === "KeystoneCheck")?.reason, "KEYSTONE UNREACHABLE");
    } finally {
      await lost.close();
    }
  },
);

t(
  "the request id we return is the one Glance logs, on the pass-through and on both reads of a download",
  async ({ node, admin }) => {
    const as = { "X-Auth-Token": admin };
    const created = await node.req("/v2/images", {
      as,
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "ops-e2e", disk_format: "raw", container_format: "bare" }),
    });
    assert.equal(created.status, 201);
    const { id } = (await created.json()) as { id: string };
    const createId = created.headers.get("x-openstack-request-id")!;
    assert.match(createId, /^req-[0-9a-f-]{36}$/);
    try {
      const up = await node.req(`/v2/images/${id}/file`, {
        as,
        method: "PUT",
        headers: { "Content-Type": "application/octet-stream" },
        body: bytes(100_000) as unknown as BodyInit,
      });
      assert.equal(up.status, 204);
      const dl = await node.req(`/v2/images/${id}/file`, { as });
      assert.equal(dl.status, 200);
      assert.equal((await dl.arrayBuffer()).byteLength, 100_000);
      const dlId = dl.headers.get("x-openstack-request-id")!;

      const glanceLines = (rid: string) =>
        glanceLog().split("\n").filter((l) => l.includes(` ${rid} `) && l.includes("eventlet.wsgi.server"));
      const created1 = await waitFor(
        "Glance's line of the create",
        async () => glanceLines(createId).length > 0 && glanceLines(createId),
      );
      assert.match(created1[0], /"POST \/v2\/images HTTP/);
      const reads = await waitFor(
        "Glance's lines of the download",
        async () => glanceLines(dlId).length >= 2 && glanceLines(dlId),
      );
      assert.ok(
        reads.some((l) => l.includes(`"GET /v2/images/${id} HTTP`)),
        reads.join("\n"),
      );
      assert.ok(reads.some((l) => l.includes(`"GET /v2/images/${id}/file HTTP`)), reads.join("\n"));
    } finally {
      await (await node.req(`/v2/images/${id}`, { as, method: "DELETE" })).body?.cancel();
    }
  },
);

t.run();
