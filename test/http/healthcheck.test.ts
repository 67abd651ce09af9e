// GET /healthcheck as oslo.middleware answers it: OK, JSON on request, and 503 for each thing the node needs.
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { type Running, start } from "../helpers/helpers.ts";
import { freePort } from "../../support/processes.ts";

const t = suite("healthcheck");
/** No token, no identity headers: what a load balancer sends. */
const probe = (node: Running, query = "", headers: Record<string, string> = {}, method = "GET") =>
  fetch(`${node.url}/healthcheck${query}`, { method, headers });

async function withNode(opts: Parameters<typeof start>[0], fn: (node: Running) => Promise<void>) {
  const node = await start({ auth: "headers", ...opts });
  try {
    await fn(node);
  } finally {
    await node.close();
  }
}

t("healthy: 200 OK as text/plain without a token; HEAD 204; JSON when asked; ?detailed lists every check", async () => {
  await withNode({}, async (node) => {
    const plain = await probe(node);
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.get("content-type"), "text/plain; charset=UTF-8");
    assert.equal(await plain.text(), "OK");
    assert.equal(
      plain.headers.get("x-openstack-request-id"),
      null,
      "as Glance's healthcheck, before its context middleware",
    );

    const head = await probe(node, "", {}, "HEAD");
    assert.equal(head.status, 204);

    const json = await probe(node, "", { Accept: "application/json" });
    assert.equal(json.status, 200);
    assert.equal(json.headers.get("content-type"), "application/json");
    assert.deepEqual(await json.json(), { detailed: false, reasons: ["OK"] });

    // oslo offers text/plain first: a browser's Accept and */* get text
    assert.equal(await (await probe(node, "", { Accept: "*/*" })).text(), "OK");
    assert.equal(await (await probe(node, "", { Accept: "text/plain, application/json;q=0.5" })).text(), "OK");

    const detailed = await probe(node, "?detailed");
    assert.equal(detailed.status, 200);
    const body = (await detailed.json()) as {
      detailed: boolean;
      now: string;
      reasons: { class: string; reason: string; details: string }[];
    };
    assert.equal(body.detailed, true);
    assert.match(body.now, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
    assert.deepEqual(body.reasons.map((r) => [r.class, r.reason]), [
      ["CacheDirectoryCheck", "OK"],
      ["DiskSpaceCheck", "OK"],
      ["ImageRecordsCheck", "OK"],
    ]);
    assert.match(body.reasons[1].details, /GiB free of .* GiB .*minimum 5%/);
    // no paths in what anyone may read
    assert.ok(!JSON.stringify(body).includes(node.dir), JSON.stringify(body));

    assert.equal((await probe(node, "", {}, "POST")).status, 405);
  });
});

t("503 when the cache directory cannot take a file (a file where its incomplete/ directory should be)", async () => {
  await withNode({ healthcheck: { cacheSeconds: 0 } }, async (node) => {
    assert.equal((await probe(node)).status, 200);
    const incomplete = join(node.dir, "cache", "incomplete");
    await rm(incomplete, { recursive: true });
    await writeFile(incomplete, "not a directory");
    try {
      const res = await probe(node);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get("content-type"), "text/plain; charset=UTF-8");
      assert.equal(await res.text(), "CACHE DIRECTORY NOT WRITABLE");
      const detailed = (await (await probe(node, "?detailed")).json()) as {
        reasons: { class: string; details: string }[];
      };
      assert.match(detailed.reasons[0].details, /ENOTDIR/);
      const json = await probe(node, "", { Accept: "application/json" });
      assert.equal(json.status, 503);
      assert.deepEqual(await json.json(), { detailed: false, reasons: ["CACHE DIRECTORY NOT WRITABLE"] });
      assert.equal((await probe(node, "", {}, "HEAD")).status, 503);
    } finally {
      await rm(incomplete);
      await mkdir(incomplete);
    }
    assert.equal((await probe(node)).status, 200, "healthy again once the directory is back");
  });
});

t("503 when the disk is nearly full (threshold above what is free: 100%)", async () => {
  await withNode({ healthcheck: { minFreePercent: 100 } }, async (node) => {
    const res = await probe(node);
    assert.equal(res.status, 503);
    assert.equal(await res.text(), "CACHE DISK NEARLY FULL");
  });
});

t(
  "in front of Glance: healthy while it answers; an outage of Glance or Keystone only in ?detailed while the node can serve",
  async () => {
    const upstream = await start({ auth: "noauth" });
    try {
      await withNode({ upstream: { url: upstream.url } }, async (node) => {
        const res = await probe(node, "?detailed");
        assert.equal(res.status, 200);
        const body = (await res.json()) as { reasons: { class: string; reason: string }[] };
        assert.deepEqual(body.reasons.find((r) => r.class === "UpstreamGlanceCheck")?.reason, "OK");
      });
    } finally {
      await upstream.close();
    }
    // A port nobody listens on: bound, then released.
    const nobody = `http://127.0.0.1:${await freePort()}`;
    // The cache can still serve from its kept records: a load balancer must keep the node; ?detailed says why.
    await withNode({ upstream: { url: nobody } }, async (node) => {
      const res = await probe(node);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "OK");
      const body = (await (await probe(node, "?detailed")).json()) as { reasons: { class: string; reason: string }[] };
      assert.equal(body.reasons.find((r) => r.class === "UpstreamGlanceCheck")?.reason, "GLANCE UNREACHABLE");
    });
    await withNode({ upstream: { url: nobody, serveCachedWhenDown: false } }, async (node) => {
      const res = await probe(node);
      assert.equal(res.status, 503);
      assert.equal(await res.text(), "GLANCE UNREACHABLE");
    });
    const keystone = {
      authUrl: `${nobody}/v3`,
      username: "u",
      password: "p",
      projectName: "service",
      userDomainName: "Default",
      projectDomainName: "Default",
      tokenCacheTime: 60,
    };
    const upstream2 = await start({ auth: "noauth" });
    try {
      await withNode({ upstream: { url: upstream2.url }, keystone }, async (node) => {
        // Keystone away: the node still serves the callers whose tokens it validated before, so it stays in.
        const res = await probe(node);
        assert.equal(res.status, 200);
        assert.equal(await res.text(), "OK");
        const detailed = (await (await probe(node, "?detailed")).json()) as {
          reasons: { class: string; reason: string; details: string }[];
        };
        assert.deepEqual(detailed.reasons.map((r) => [r.class, r.reason]), [
          ["CacheDirectoryCheck", "OK"],
          ["DiskSpaceCheck", "OK"],
          ["UpstreamGlanceCheck", "OK"],
          ["KeystoneCheck", "KEYSTONE UNREACHABLE"],
        ]);
        assert.match(detailed.reasons[3].details, /ECONNREFUSED.*served from memory/);
      });
    } finally {
      await upstream2.close();
    }
  },
);

t("oslo's disable_by_file drains the node; one round of checks is reused for its cache time", async () => {
  await withNode({}, async (first) => {
    const file = join(first.dir, "drain");
    await withNode({ healthcheck: { disableByFilePath: file, cacheSeconds: 3600 } }, async (cached) => {
      await withNode({ healthcheck: { disableByFilePath: file, cacheSeconds: 0 } }, async (fresh) => {
        assert.equal((await probe(cached)).status, 200);
        assert.equal((await probe(fresh)).status, 200);
        await writeFile(file, "");
        const res = await probe(fresh);
        assert.equal(res.status, 503);
        assert.equal(await res.text(), "DISABLED BY FILE");
        assert.equal((await probe(cached)).status, 200, "the cached round is reused");
      });
    });
  });
});

t.run();
