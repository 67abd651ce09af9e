// The upstream client in front of fake Glances on loopback: path prefix kept, hung and stalled upstreams time out
// (the queue goes on), ranges checked, identity headers stripped, links at the configured public_endpoint.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { suite } from "uvu";
import { bytes, createImage, listing, md5, type Running, start, waitCached, waitFor } from "../helpers/helpers.ts";
import { Gate } from "../helpers/gate.ts";
import { prefixProxy, serveLoopback } from "../helpers/loopback.ts";

const t = suite("upstream_client");

type Behaviour = "ok" | "hang-headers" | "stall-body" | "ignore-range" | "wrong-range";

/** A fake Glance serving images of given data, each file answered as its behaviour says; a gate holds the bad ones. */
async function fakeGlance() {
  const images = new Map<string, { data: Uint8Array; file: Behaviour; meta: Behaviour }>();
  const held = new Gate();
  const received: Headers[] = [];
  let holding = 0;
  const server = await serveLoopback(async (request) => {
    received.push(new Headers(request.headers));
    const m = /^\/v2\/images\/([^/]+)(\/file)?$/.exec(new URL(request.url).pathname);
    const image = m && images.get(m[1]);
    if (!m || !image) return Response.json({ images: [] }, { status: m ? 404 : 200 });
    const { data } = image;
    if (request.method === "PUT") {
      await request.arrayBuffer(); // the whole upload before answering, as Glance does
      return new Response(null, { status: 204 });
    }
    if (!m[2]) {
      if (image.meta === "hang-headers") {
        holding++;
        await held.pass();
      }
      return Response.json({
        id: m[1],
        name: "fake",
        status: "active",
        visibility: "public",
        owner: null,
        size: data.length,
        checksum: md5(data),
        os_hash_algo: null,
        os_hash_value: null,
        disk_format: "raw",
        container_format: "bare",
        min_ram: 0,
        min_disk: 0,
        protected: false,
        os_hidden: false,
        tags: [],
        created_at: "2026-01-01T00:00:00Z",
        updated_at: "2026-01-01T00:00:00Z",
      });
    }
    const range = /^bytes=(\d+)-(\d+)$/.exec(request.headers.get("range") ?? "");
    if (image.file === "hang-headers") {
      holding++;
      await held.pass();
    }
    if (image.file === "stall-body") {
      // the first MiB, then nothing until the gate opens
      let sent = false;
      return new Response(
        new ReadableStream({
          async pull(c) {
            if (sent) {
              holding++;
              await held.pass();
              c.close();
              return;
            }
            sent = true;
            c.enqueue(data.subarray(0, 1 << 20));
          },
        }),
        { headers: { "Content-Length": String(data.length) } },
      );
    }
    if (range && image.file !== "ignore-range") {
      const [start, end] = [Number(range[1]), Number(range[2])];
      const shift = image.file === "wrong-range" ? 1 : 0;
      return new Response(data.slice(start + shift, end + 1 + shift), {
        status: 206,
        headers: { "Content-Range": `bytes ${start + shift}-${end + shift}/${data.length}` },
      });
    }
    return new Response(data as unknown as BodyInit);
  });
  return {
    ...server,
    received,
    /** How many requests are held at the gate now or were. */
    held: () => holding,
    add(file: Behaviour, size = 3 << 20, meta: Behaviour = "ok") {
      const id = crypto.randomUUID();
      images.set(id, { data: bytes(size), file, meta });
      return { id, data: images.get(id)!.data };
    },
    async close() {
      held.open();
      await server.close();
    },
  };
}

const nodeBefore = (url: string, more: Record<string, unknown> = {}) =>
  start({ auth: "headers", upstream: { url, metadataCacheTime: 0, timeout: 1, stallTimeout: 1 }, ...more });

/** Runs `body` with a node (options `more`) in front of a new fake Glance; both are closed after. */
async function withFake(
  body: (fake: Awaited<ReturnType<typeof fakeGlance>>, node: Running) => Promise<void>,
  more: Record<string, unknown> = {},
): Promise<void> {
  const fake = await fakeGlance();
  const node = await nodeBefore(fake.url, more);
  try {
    await body(fake, node);
  } finally {
    await node.close();
    await fake.close();
  }
}

t(
  "devstack-style upstream under a path prefix: pass-through, Location, fill and cached download all keep it",
  async () => {
    const upstream = await start({ auth: "noauth" });
    const mounted = await prefixProxy(upstream.url, "/image");
    const node = await nodeBefore(mounted.base);
    try {
      const res = await node.req("/v2/images", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: "prefixed", disk_format: "raw", container_format: "bare" }),
      });
      assert.equal(res.status, 201);
      const { id } = (await res.json()) as { id: string };
      assert.equal(res.headers.get("location"), `${node.url}/v2/images/${id}`);
      const data = bytes(1 << 20);
      const up = await node.req(`/v2/images/${id}/file`, {
        method: "PUT",
        headers: { "Content-Type": "application/octet-stream" },
        body: data as unknown as BodyInit,
      });
      assert.equal(up.status, 204);
      assert.equal((await node.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
      await waitCached(node, id);
      assert.equal(md5(new Uint8Array(await (await node.req(`/v2/images/${id}/file`)).arrayBuffer())), md5(data));
      const paths = [...mounted.seen.keys()].map((k) => k.split(" ").slice(0, 2).join(" "));
      assert.ok(paths.includes(`PUT /v2/images/${id}/file`), "the upload went under the prefix");
      assert.ok(paths.includes(`GET /v2/images/${id}/file`), "the fill read under the prefix");
      assert.ok(paths.includes(`GET /v2/images/${id}`), "the metadata lookup went under the prefix");
    } finally {
      await node.close();
      await mounted.close();
      await upstream.close();
    }
  },
);

t("an upstream that never answers: the download fails with 503 after upstream_timeout, not forever", async () => {
  await withFake(async (fake, node) => {
    const { id } = fake.add("ok", 1000, "hang-headers");
    const res = await node.req(`/v2/images/${id}/file`);
    // Not cached, and the upstream unreachable: 503 (docs/operations.md, "When the upstream is unreachable").
    assert.equal(res.status, 503);
    assert.match(await res.text(), /did not answer/);
    assert.equal(fake.held(), 1, "the request was held at the gate, not refused");
  });
});

t(
  "a hung and a stalled image do not stall the queue; the stalled fill's reader gets an error, nothing is cached",
  async () => {
    await withFake(async (fake, node) => {
      const stalled = fake.add("stall-body");
      const hung = fake.add("hang-headers");
      const good = fake.add("ok");
      // a download tails the stalled fill: it gets the first MiB, then an error instead of the rest
      const reading = await node.req(`/v2/images/${stalled.id}/file`);
      assert.equal(reading.status, 200);
      await assert.rejects(reading.arrayBuffer());
      for (const { id } of [stalled, hung, good]) {
        assert.equal((await node.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
      }
      await waitCached(node, good.id, 60_000);
      assert.equal(
        md5(new Uint8Array(await (await node.req(`/v2/images/${good.id}/file`)).arrayBuffer())),
        md5(good.data),
      );
      const after = await waitFor("queue drained", async () => {
        const l = await listing(node);
        return l.queued_images.length === 0 && l;
      });
      assert.deepEqual(
        after.cached_images.map((c) => c.image_id),
        [good.id],
      );
      assert.ok(fake.held() >= 3, "the stalled body and the hung file were held at the gate");
    }, { cacheConcurrency: 1 });
  },
);

t("an upload that stops moving (the caller stalls) is given up after upstream_stall_timeout: 502", async () => {
  await withFake(async (fake, node) => {
    const held = new Gate();
    try {
      const { id } = fake.add("ok", 10);
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (held.isOpen) return void c.close();
          c.enqueue(bytes(1000));
          await held.pass(); // never more until the test ends
        },
      });
      const res = await fetch(`${node.url}/v2/images/${id}/file`, {
        method: "PUT",
        headers: {
          "Content-Type": "application/octet-stream",
          "X-Identity-Status": "Confirmed",
          "X-Roles": "admin",
          "X-Tenant-Id": "p",
          "X-User-Id": "u",
        },
        body,
        duplex: "half",
      } as RequestInit);
      assert.equal(res.status, 502);
      assert.match(await res.text(), /stalled/);
    } finally {
      held.open();
    }
  });
});

t(
  "an upstream that answers a range with the whole image, or the wrong range: never passed on as the range",
  async () => {
    await withFake(async (fake, node) => {
      for (const behaviour of ["ignore-range", "wrong-range"] as const) {
        const { id } = fake.add(behaviour, 100_000);
        const res = await node.req(`/v2/images/${id}/file`, { headers: { Range: "bytes=10-19" } });
        assert.equal(res.status, 502, behaviour);
        assert.match(await res.text(), /range|Content-Range/i);
      }
      // an upstream that honours ranges: exactly the bytes asked
      const ok = fake.add("ok", 100_000);
      const res = await node.req(`/v2/images/${ok.id}/file`, { headers: { Range: "bytes=10-19" } });
      assert.equal(res.status, 206);
      assert.equal(res.headers.get("content-range"), "bytes 10-19/100000");
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), ok.data.slice(10, 20));
    });
  },
);

t("the proxy strips the caller's identity headers and the headers its Connection names", async () => {
  await withFake(async (fake, node) => {
    const { stdout } = await promisify(execFile)("curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      `${node.url}/v2/images`,
      "-H",
      "X-Identity-Status: Confirmed",
      "-H",
      "X-Roles: admin",
      "-H",
      "X-User-Id: u",
      "-H",
      "X-User-Name: n",
      "-H",
      "X-Project-Id: p",
      "-H",
      "X-Tenant-Id: p",
      "-H",
      "X-Tenant: p",
      "-H",
      "X-Domain-Id: d",
      "-H",
      "X-User-Domain-Id: d",
      "-H",
      "X-Project-Domain-Name: d",
      "-H",
      "X-Service-Catalog: []",
      "-H",
      "X-Service-Roles: service",
      "-H",
      "X-Is-Admin-Project: True",
      "-H",
      "X-Auth-Token: tok",
      "-H",
      "Connection: keep-alive, X-Secret-Hop",
      "-H",
      "X-Secret-Hop: 1",
      "-H",
      "X-Kept: yes",
      "-H",
      "X-Service-Token: svc",
      "-H",
      "OpenStack-System-Scope: all",
      "-H",
      "X-Application-Credential-Id: ac",
      "-H",
      "X-Application-Credential-Name: acn",
      "-H",
      "X-Application-Credential-Access-Rules: []",
      "-H",
      "X-Service-Identity-Status: Confirmed",
      "-H",
      "X-Trust-Id: t",
    ]);
    assert.equal(stdout, "200");
    const got = fake.received.at(-1)!;
    const names = [...got.keys()];
    for (const name of names) {
      assert.doesNotMatch(
        name,
        /^(x-(identity-status|roles|user|project|tenant|domain|service-(?!token)|is-admin-project|secret-hop|application-credential|trust)|openstack-system-scope)/,
        name,
      );
    }
    assert.equal(got.get("x-auth-token"), "tok", "the token itself goes on: upstream validates it");
    assert.equal(
      got.get("x-service-token"),
      "svc",
      "a service token is a credential upstream checks, not an assertion",
    );
    assert.equal(got.get("x-kept"), "yes");
  });
});

t("public_endpoint: versions, the embedded store's Location and the proxy's Location use it, not Host", async () => {
  const pub = "https://images.example.com/image";
  const embedded = await start({ auth: "headers", publicEndpoint: pub });
  const upstream = await start({ auth: "noauth" });
  const proxying = await start({ auth: "headers", upstream: { url: upstream.url }, publicEndpoint: pub });
  try {
    for (const node of [embedded, proxying]) {
      const versions = (await (await node.req("/versions")).json()) as { versions: { links: { href: string }[] }[] };
      assert.equal(versions.versions[0].links[0].href, `${pub}/v2/`);
      const res = await node.req("/v2/images", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: "pub", disk_format: "raw", container_format: "bare" }),
      });
      assert.equal(res.status, 201);
      const { id } = (await res.json()) as { id: string };
      assert.equal(res.headers.get("location"), `${pub}/v2/images/${id}`);
    }
    // without it, the request's origin as before
    const plain = (await (await upstream.req("/versions")).json()) as { versions: { links: { href: string }[] }[] };
    assert.equal(plain.versions[0].links[0].href, `${upstream.url}/v2/`);
    assert.ok(await createImage(embedded, bytes(10)));
  } finally {
    await proxying.close();
    await upstream.close();
    await embedded.close();
  }
});

t.run();
