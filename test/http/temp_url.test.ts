// Tokenless reads: HEAD of an image's data, and Swift-style temp URLs read by qemu-img's curl driver.
// test-needs: qemu-img
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { suite } from "uvu";
import { tempUrlQuery } from "../../src/auth/temp_url.ts";
import { runCli } from "../helpers/cli_process.ts";
import { bytes, createImage, listing, md5, MEMBER, type Running, start, tempDir } from "../helpers/helpers.ts";

const run = promisify(execFile);
const KEY = "the-temp-url-key";
const t = suite<{ node: Running; work: string; qcow: Uint8Array; id: string; lines: string[] }>(
  "temp urls",
  {} as never,
);

t.before(async (ctx) => {
  ctx.work = await tempDir("gcn-tempurl-");
  const file = join(ctx.work, "disk.qcow2");
  await run("qemu-img", ["create", "-q", "-f", "qcow2", file, "8M"]);
  await run("qemu-io", ["-c", "write -q -P 0xab 0 1M", "-c", "write -q -P 0x5c 3M 512k", file]);
  ctx.qcow = new Uint8Array(await readFile(file));
  ctx.lines = [];
  ctx.node = await start({ tempUrlKey: KEY, insecureTestTokens: true, log: (l) => ctx.lines.push(l) });
  ctx.id = await createImage(ctx.node, ctx.qcow, { disk_format: "qcow2", name: "disk" });
});
t.after(async ({ node, work }) => {
  await node?.close();
  await rm(work, { recursive: true, force: true });
});

async function mint(node: Running, id: string, ttl?: number, as?: Record<string, string>): Promise<Response> {
  return await node.req("/v2/x-cache-node/temp-urls", {
    as,
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(ttl === undefined ? { image_id: id } : { image_id: id, ttl }),
  });
}

async function metric(node: Running, result: string): Promise<number> {
  const text = await (await node.req("/metrics")).text();
  const m = new RegExp(`^glance_cache_temp_url_requests_total\\{result="${result}"\\} (\\d+)$`, "m").exec(text);
  return Number(m?.[1]);
}

t("HEAD answers as the GET would, without a fill or a read of the source; GET sends Accept-Ranges", async (ctx) => {
  const { node, id, qcow } = ctx;
  const reads = node.app.cache.stats.sourceReads;
  const head = await node.req(`/v2/images/${id}/file`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(qcow.byteLength));
  assert.equal(head.headers.get("content-type"), "application/octet-stream");
  assert.equal(head.headers.get("content-md5"), md5(qcow));
  assert.equal(head.headers.get("accept-ranges"), "bytes");
  assert.equal((await head.arrayBuffer()).byteLength, 0);
  const ranged = await node.req(`/v2/images/${id}/file`, { method: "HEAD", headers: { Range: "bytes=10-19" } });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get("content-range"), `bytes 10-19/${qcow.byteLength}`);
  assert.equal(ranged.headers.get("content-length"), "10");
  // nothing started: no source read, nothing queued or cached
  assert.equal(node.app.cache.stats.sourceReads, reads);
  const l = await listing(node);
  assert.deepEqual([l.cached_images.length, l.queued_images.length], [0, 0]);
  const get = await node.req(`/v2/images/${id}/file`, { headers: { Range: "bytes=0-3" } });
  assert.equal(get.headers.get("accept-ranges"), "bytes");
  assert.deepEqual(new Uint8Array(await get.arrayBuffer()), qcow.subarray(0, 4));
});

t("a minted temp URL reads the image without a token: qemu-img info and convert as on the local file", async (ctx) => {
  const { node, id, work } = ctx;
  const res = await mint(node, id, 600);
  assert.equal(res.status, 200);
  const { url, expires } = (await res.json()) as { url: string; expires: number };
  assert.ok(url.startsWith(`${node.url}/v2/images/${id}/file?temp_url_sig=`), url);
  assert.ok(expires > Date.now() / 1000 + 590 && expires <= Date.now() / 1000 + 600);
  const accepted = await metric(node, "accepted");

  const local = join(work, "disk.qcow2");
  ctx.lines.length = 0;
  const info = async (target: string) => {
    const doc = JSON.parse((await run("qemu-img", ["info", "--output=json", target])).stdout);
    return [doc["virtual-size"], doc.format];
  };
  assert.deepEqual(await info(url), await info(local));
  assert.deepEqual(await info(url), [8 << 20, "qcow2"]);
  await run("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", url, join(work, "remote.raw")]);
  await run("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", local, join(work, "local.raw")]);
  const remote = new Uint8Array(await readFile(join(work, "remote.raw")));
  assert.equal(remote.byteLength, 8 << 20);
  assert.equal(md5(remote), md5(new Uint8Array(await readFile(join(work, "local.raw")))));
  assert.equal(remote[0], 0xab);
  // what qemu's curl driver sends: a HEAD for the size, then Range reads; the log never shows the signature whole
  const sig = /temp_url_sig=([0-9a-f]+)/.exec(url)![1];
  const access = ctx.lines.filter((l) => l.includes(`/v2/images/${id}/file`));
  assert.match(access.join("\n"), /HEAD \S+ status=200/);
  assert.match(access.join("\n"), /GET \S+ status=206/);
  assert.ok(access.every((l) => l.includes(`temp_url_sig=${sig.slice(0, 8)}...&`) && !l.includes(sig)));
  assert.ok(await metric(node, "accepted") > accepted, "temp URL reads counted");

  // a plain fetch, no identity at all: the whole image, and HEAD with the GET's signature
  const got = await fetch(url);
  assert.equal(got.status, 200);
  assert.equal(md5(new Uint8Array(await got.arrayBuffer())), md5(ctx.qcow));
  assert.equal((await fetch(url, { method: "HEAD" })).status, 200);
});

t("401 for a wrong, expired or misplaced signature; the temp URL identity can do nothing else", async (ctx) => {
  const { node, id } = ctx;
  const other = await createImage(node, bytes(1000), { name: "other" });
  const path = `/v2/images/${id}/file`;
  const future = Math.floor(Date.now() / 1000) + 600;
  const refused = await metric(node, "refused");
  const denied: [string, string][] = [
    ["GET", `${path}?${tempUrlQuery("wrong-key", path, future)}`],
    // tampered: the signature's first hex digit changed, whatever it was
    ["GET", `${path}?${tempUrlQuery(KEY, path, future).replace(/sig=(.)/, (_, c) => `sig=${c === "0" ? "1" : "0"}`)}`],
    ["GET", `${path}?${tempUrlQuery(KEY, path, Math.floor(Date.now() / 1000) - 1)}`],
    ["GET", `${path}?temp_url_expires=${future}`],
    // the signature of one image opens no other
    ["GET", `/v2/images/${other}/file?${tempUrlQuery(KEY, path, future)}`],
    // a valid signature is good for GET and HEAD of that path only
    ["PUT", `${path}?${tempUrlQuery(KEY, path, future)}`],
    ["DELETE", `/v2/cache/${id}?${tempUrlQuery(KEY, `/v2/cache/${id}`, future)}`],
    ["GET", `/v2/cache?${tempUrlQuery(KEY, "/v2/cache", future)}`],
    ["POST", `/v2/x-cache-node/temp-urls?${tempUrlQuery(KEY, "/v2/x-cache-node/temp-urls", future)}`],
    ["GET", `/v2/images/${id}?${tempUrlQuery(KEY, `/v2/images/${id}`, future)}`],
  ];
  for (const [method, target] of denied) {
    const res = await fetch(node.url + target, { method });
    assert.equal(res.status, 401, `${method} ${target}`);
    if (method !== "HEAD") assert.match(await res.text(), /could not verify that you are authorized/);
  }
  // even carrying an admin's identity headers, a temp URL's query is judged alone
  const withAdmin = await node.req(`/v2/cache?${tempUrlQuery(KEY, "/v2/cache", future)}`);
  assert.equal(withAdmin.status, 401);
  assert.equal(await metric(node, "refused"), refused + denied.length + 1);
});

t("a deactivated or deleted image answers as usual through a temp URL", async (ctx) => {
  const { node } = ctx;
  const id = await createImage(node, bytes(2000), { name: "short-lived" });
  const { url } = (await (await mint(node, id)).json()) as { url: string };
  assert.equal((await fetch(url)).status, 200);
  assert.equal((await node.req(`/v2/images/${id}/actions/deactivate`, { method: "POST" })).status, 204);
  const deactivated = await fetch(url);
  assert.equal(deactivated.status, 403);
  assert.match(await deactivated.text(), /deactivated/);
  assert.equal((await node.req(`/v2/images/${id}`, { method: "DELETE" })).status, 204);
  assert.equal((await fetch(url)).status, 404);
});

t("minting: policy create_temp_url (admin by default), the image as the caller sees it, bad input", async (ctx) => {
  const { node, id } = ctx;
  const shared = await createImage(node, bytes(10), { name: "shared", visibility: "public" });
  const member = await mint(node, shared, 60, MEMBER);
  assert.equal(member.status, 403);
  assert.match(await member.text(), /create_temp_url/);
  assert.equal((await mint(node, "0d9e4f9e-3bd5-4c1c-9b63-7a3e0d1f0000")).status, 404);
  for (const ttl of [0, -5, 1.5, "60", 8 * 24 * 3600]) {
    assert.equal((await mint(node, id, ttl as number)).status, 400, `ttl ${ttl}`);
  }
  assert.equal((await node.req("/v2/x-cache-node/temp-urls")).status, 405);
  const bare = await start({ insecureTestTokens: true });
  try {
    const img = await createImage(bare, bytes(10));
    const res = await mint(bare, img);
    assert.equal(res.status, 409);
    assert.match(await res.text(), /temp_url_key/);
  } finally {
    await bare.close();
  }
  // an operator may let anyone who sees the image mint one
  const open = await start({ tempUrlKey: KEY, insecureTestTokens: true, policy: { create_temp_url: "" } });
  try {
    const mine = await createImage(open, bytes(10), { name: "mine" }, MEMBER);
    const res = await mint(open, mine, 60, MEMBER);
    assert.equal(res.status, 200);
    assert.equal((await fetch(((await res.json()) as { url: string }).url)).status, 200);
    const hidden = await createImage(open, bytes(10), { name: "admins" });
    assert.equal((await mint(open, hidden, 60, MEMBER)).status, 404);
  } finally {
    await open.close();
  }
});

t("glance-cache temp-url ID --ttl S prints a URL that reads the image", async (ctx) => {
  const { node, id } = ctx;
  const out = await runCli(["temp-url", id, "--ttl", "120"], {
    OS_IMAGE_URL: node.url,
    OS_AUTH_TOKEN: "admin:adminproj:admin",
  });
  assert.equal(out.code, 0, out.stderr);
  const url = out.stdout.trim();
  assert.match(url, /temp_url_sig=[0-9a-f]{64}&temp_url_expires=\d+$/);
  const expires = Number(/temp_url_expires=(\d+)/.exec(url)![1]);
  assert.ok(expires <= Date.now() / 1000 + 120 && expires > Date.now() / 1000 + 100);
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(md5(new Uint8Array(await res.arrayBuffer())), md5(ctx.qcow));
});

t.run();
