// Bandwidth limits: upstream reads (fills and uncached downloads) held to upstream_bandwidth_limit, cached downloads not.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { bytes, createImage, md5, MEMBER, type Running, start, waitCached } from "../helpers/helpers.ts";
import { runCli } from "../helpers/cli_process.ts";

const MiB = 1 << 20;
const LIMIT = 4 * MiB;
const SIZE = 6 * MiB;
const ctx = {} as { origin: Running; node: Running };

const t = suite("bandwidth");

t.before(async () => {
  ctx.origin = await start({ auth: "noauth" });
  ctx.node = await start({
    upstream: { url: ctx.origin.url, metadataCacheTime: 0 },
    upstreamBandwidthLimit: LIMIT,
    cacheConcurrency: 2,
  });
});

t.after(async () => {
  await ctx.node?.close();
  await ctx.origin?.close();
});

/** Seconds a whole download takes, and its bytes' md5. */
async function timedDownload(id: string): Promise<{ seconds: number; md5: string; size: number }> {
  const t0 = performance.now();
  const res = await ctx.node.req(`/v2/images/${id}/file`);
  assert.equal(res.status, 200);
  const body = new Uint8Array(await res.arrayBuffer());
  return { seconds: (performance.now() - t0) / 1000, md5: md5(body), size: body.byteLength };
}

const setLimits = async (body: unknown) => {
  const res = await ctx.node.req("/v2/x-cache-node/bandwidth", {
    method: "PUT",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: res.ok ? await res.json() : await res.text() };
};

const metric = async (name: string) => {
  const m = new RegExp(`^${name} ([\\d.e+-]+)$`, "m").exec(await (await ctx.node.req("/metrics")).text());
  assert.ok(m, name);
  return Number(m[1]);
};

t("an uncached download runs at the limit (±15%), a cached one far faster; the limit changes at run time", async () => {
  const [a, b, c] = [bytes(SIZE), bytes(SIZE), bytes(SIZE)];
  const idA = await createImage(ctx.origin, a);
  const idB = await createImage(ctx.origin, b);
  const idC = await createImage(ctx.origin, c);
  assert.deepEqual(await (await ctx.node.req("/v2/x-cache-node/bandwidth")).json(), { upstream: LIMIT, peer: 0 });
  // The status document (and its page) shows the limits in force.
  const shown = (await (await ctx.node.req("/v2/x-cache-node/status")).json()) as {
    bandwidth: { upstream: { limit: number }; peer: { limit: number } };
  };
  assert.deepEqual([shown.bandwidth.upstream.limit, shown.bandwidth.peer.limit], [LIMIT, 0]);
  // The same read unthrottled, in this run, before and after: what the machine itself costs now.
  assert.deepEqual((await setLimits({ upstream: 0 })).body, { upstream: 0, peer: 0 });
  const before = await timedDownload(idA);
  assert.equal(before.md5, md5(a));
  assert.deepEqual((await setLimits({ upstream: LIMIT })).body, { upstream: LIMIT, peer: 0 });
  const waitedBefore = await metric("glance_cache_upstream_bandwidth_wait_seconds_total");
  const held = await timedDownload(idB);
  assert.equal(held.md5, md5(b));
  assert.deepEqual((await setLimits({ upstream: 0 })).body, { upstream: 0, peer: 0 });
  const after = await timedDownload(idC);
  assert.equal(after.md5, md5(c));
  const free = { seconds: Math.max(before.seconds, after.seconds) };
  assert.deepEqual((await setLimits({ upstream: LIMIT })).body, { upstream: LIMIT, peer: 0 });
  const rate = SIZE / held.seconds;
  console.log(
    `upstream limit ${LIMIT} B/s: uncached download ${Math.round(rate)} B/s (${held.seconds.toFixed(2)} s; ` +
      `unthrottled ${free.seconds.toFixed(2)} s)`,
  );
  // Never faster than the limit (a 50 ms burst aside), and no slower than 85% of it beyond what the machine costs.
  assert.ok(rate <= LIMIT * 1.15, `${rate} B/s over the limit`);
  assert.ok(held.seconds <= SIZE / (LIMIT * 0.85) + free.seconds, `${held.seconds} s: under 85% of the limit`);
  assert.ok((await metric("glance_cache_upstream_bandwidth_wait_seconds_total")) > waitedBefore + 0.5);
  assert.equal(await metric("glance_cache_upstream_bandwidth_limit_bytes"), LIMIT);

  // The cached copy is served at the machine's speed, the limit still set.
  await waitCached(ctx.node, idB);
  const cached = await timedDownload(idB);
  assert.equal(cached.md5, md5(b));
  console.log(`cached download ${Math.round(SIZE / cached.seconds)} B/s (${cached.seconds.toFixed(2)} s)`);
  assert.ok(SIZE / cached.seconds > LIMIT * 2, `cached download at ${SIZE / cached.seconds} B/s`);
});

t("fills share the limit: two at once take together as long as their bytes at the limit", async () => {
  const half = 3 * MiB;
  const ids = [await createImage(ctx.origin, bytes(half)), await createImage(ctx.origin, bytes(half))];
  const t0 = performance.now();
  for (const id of ids) assert.equal((await ctx.node.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
  await Promise.all(ids.map((id) => waitCached(ctx.node, id, 30_000)));
  const seconds = (performance.now() - t0) / 1000;
  console.log(`two fills of ${half} B at once: ${Math.round((2 * half) / seconds)} B/s together`);
  // Each alone at the limit would end in half the time: shared, never faster than the limit together.
  assert.ok((2 * half) / seconds <= LIMIT * 1.15, `${(2 * half) / seconds} B/s together`);
});

t("PUT checks its body and its policy; the CLI reads and sets the limits", async () => {
  for (const body of [{}, { upstream: -1 }, { peer: 1.5 }, { upstream: "1M" }, { other: 1 }]) {
    assert.equal((await setLimits(body)).status, 400, JSON.stringify(body));
  }
  const asMember = await ctx.node.req("/v2/x-cache-node/bandwidth", { as: MEMBER });
  assert.equal(asMember.status, 403);
  const put = await ctx.node.req("/v2/x-cache-node/bandwidth", {
    as: MEMBER,
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ upstream: 0 }),
  });
  assert.equal(put.status, 403);
  assert.equal(
    (await ctx.node.req("/v2/x-cache-node/bandwidth", { method: "DELETE" })).headers.get("allow"),
    "GET, PUT",
  );
  const cliNode = await start({ auth: "noauth", upstream: { url: ctx.origin.url } }); // the CLI needs no token
  try {
    const env = { OS_IMAGE_URL: cliNode.url };
    let r = await runCli(["bandwidth", "--upstream", String(LIMIT), "--peer", "1000"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /upstream: 4\.0 MiB\/s \(4194304 bytes\/s\)\npeer: +1000 B\/s|upstream: .*4194304 bytes\/s/);
    r = await runCli(["bandwidth", "--json"], env);
    assert.deepEqual(JSON.parse(r.stdout), { upstream: LIMIT, peer: 1000 });
    r = await runCli(["bandwidth", "--peer", "0"], env);
    assert.match(r.stdout, /peer: +no limit/);
    assert.equal((await runCli(["bandwidth", "--upstream", "-3"], env)).code, 2);
  } finally {
    await cliNode.close();
  }
});

t.run();
