// HTTPS: the node serves it with cert_file and key_file; its clients (upstream, Keystone, peers) verify with a CA bundle.
// test-needs: openssl
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { suite } from "uvu";
import { KeystoneClient, type KeystoneOptions } from "../../src/auth/keystone.ts";
import { PeerSource } from "../../src/fleet/peer_source.ts";
import type { Image } from "../../src/images/image.ts";
import type { ImageSource } from "../../src/images/source.ts";
import { clientFetch } from "../../src/platform/tls_fetch.ts";
import { CURRENT_RUNTIME, denoBinary, nodeBinary, run, startServer } from "../../support/processes.ts";
import { makeCerts, type TestCerts } from "../helpers/certs.ts";
import { runCli } from "../helpers/cli_process.ts";
import { bytes, createImage, md5, readAll, start, tempDir, waitCached } from "../helpers/helpers.ts";
import { serveLoopback } from "../helpers/loopback.ts";

const t = suite<{ certs: TestCerts }>("tls", {} as never);
t.before(async (ctx) => {
  ctx.certs = await makeCerts();
});
t.after(async ({ certs }) => {
  await rm(certs.dir, { recursive: true, force: true });
});

/** GET over node:https (both runtimes), trusting `ca` if given: the status and body, or the error. */
function httpsGet(url: string, ca?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** GET over plain http: the status, or the error the connection ended with. */
function plainGet(url: string): Promise<number | Error> {
  return new Promise((resolve) => {
    const req = httpRequest(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(10_000, () => req.destroy(new Error("no answer")));
    req.on("error", (err) => resolve(err));
    req.end();
  });
}

const modArgs = (args: string[]) =>
  CURRENT_RUNTIME === "node"
    ? { cmd: nodeBinary(), args: ["--import", "tsx", "mod.ts", ...args] }
    : { cmd: denoBinary(), args: ["run", "-A", "mod.ts", ...args] };

t(
  "the node serves HTTPS with cert_file and key_file; plain http to that port gets no HTTP answer; the CLI with --os-cacert",
  async ({ certs }) => {
    const dir = await tempDir();
    const node = await startServer(CURRENT_RUNTIME, dir, ["--cert-file", certs.certFile, "--key-file", certs.keyFile]);
    try {
      assert.match(node.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const versions = await httpsGet(`${node.url}/versions`, certs.ca);
      assert.equal(versions.status, 200);
      assert.ok(JSON.parse(versions.body).versions.length > 0);
      // localhost is in the certificate too; a client that does not trust the test CA refuses it.
      assert.equal((await httpsGet(`${node.url.replace("127.0.0.1", "localhost")}/versions`, certs.ca)).status, 200);
      await assert.rejects(httpsGet(`${node.url}/versions`), /certificate/i);
      const plain = await plainGet(`${node.url.replace("https:", "http:")}/versions`);
      assert.ok(plain instanceof Error || plain >= 400, `plain http answered ${plain}`);
      // The glance-cache command trusts the CA as glanceclient does: --os-cacert (or OS_CACERT).
      const trusted = await runCli(["--os-image-url", node.url, "--os-cacert", certs.caFile, "list"]);
      assert.equal(trusted.code, 0, trusted.stderr);
      const fromEnv = await runCli(["--os-image-url", node.url, "list"], { OS_CACERT: certs.caFile });
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
      const untrusted = await runCli(["--os-image-url", node.url, "list"]);
      assert.equal(untrusted.code, 1);
      assert.match(untrusted.stderr, /cannot be reached: .*certificate/);
      const log = await readFile(`${dir}.log`, "utf8");
      assert.match(log, /listening on https:\/\/127\.0\.0\.1:\d+/);
    } finally {
      await node.stop();
      await rm(dir, { recursive: true, force: true });
      await rm(`${dir}.log`, { force: true });
    }
  },
);

t("cert_file without key_file, or an unreadable one, stops the start naming the option", async ({ certs }) => {
  const dir = await tempDir();
  try {
    const alone = modArgs(["--port", "0", "--data-dir", dir, "--cert-file", certs.certFile]);
    const one = await run(alone.cmd, alone.args, { cwd: new URL("../..", import.meta.url).pathname });
    assert.equal(one.code, 1, one.stderr);
    assert.match(one.stderr, /cert_file and key_file/);
    const missing = modArgs([
      "--port",
      "0",
      "--data-dir",
      dir,
      "--cert-file",
      certs.certFile,
      "--key-file",
      join(dir, "nope.key"),
    ]);
    const two = await run(missing.cmd, missing.args, { cwd: new URL("../..", import.meta.url).pathname });
    assert.equal(two.code, 1, two.stderr);
    assert.match(two.stderr, /key_file .*nope\.key/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

t(
  "an upstream over https: with ca_file the node fills and serves; without, 502 naming the certificate",
  async ({ certs }) => {
    const tls = { cert: await readFile(certs.certFile, "utf8"), key: await readFile(certs.keyFile, "utf8") };
    const upstream = await start({ auth: "noauth", tls: { ...tls, ca: certs.ca } });
    const data = bytes(1 << 20);
    const id = await createImage(upstream, data);
    const lines: string[] = [];
    const node = await start({
      auth: "headers",
      upstream: { url: upstream.url, metadataCacheTime: 0 },
      caFile: certs.caFile,
    });
    const blind = await start({
      auth: "headers",
      upstream: { url: upstream.url, metadataCacheTime: 0 },
      log: (line) => lines.push(line),
    });
    try {
      assert.match(upstream.url, /^https:/);
      const first = await node.req(`/v2/images/${id}/file`);
      assert.equal(first.status, 200);
      assert.equal(md5(new Uint8Array(await first.arrayBuffer())), md5(data));
      assert.equal((await node.req(`/v2/cache/${id}`, { method: "PUT" })).status, 202);
      await waitCached(node, id);
      const cached = await node.req(`/v2/images/${id}/file`);
      assert.equal(md5(new Uint8Array(await cached.arrayBuffer())), md5(data));
      assert.equal((await node.req("/v2/images")).status, 200, "the pass-through goes over https too");
      // An upload through the node streams its body up over https.
      const uploaded = bytes(2 << 20);
      const upId = await createImage(node, uploaded);
      const back = await upstream.req(`/v2/images/${upId}/file`);
      assert.equal(md5(new Uint8Array(await back.arrayBuffer())), md5(uploaded));

      const refused = await blind.req(`/v2/images/${id}/file`, { headers: { Accept: "application/json" } });
      // An upstream whose certificate is refused is one the node cannot reach: an image it has not cached is 503.
      assert.equal(refused.status, 503);
      const body = (await refused.json()) as { code: string; title: string; message: string };
      assert.equal(body.code, "503 Service Unavailable");
      assert.match(body.message, /unreachable.*certificate/i);
      assert.ok(lines.some((l) => /certificate/i.test(l)), `a certificate error in the log:\n${lines.join("\n")}`);
    } finally {
      await blind.close();
      await node.close();
      await upstream.close();
    }
  },
);

/** A fake Keystone v3 over https: issues the service token, and says "good" is valid. */
function fakeKeystone(tls: { cert: string; key: string }) {
  return serveLoopback((request) => {
    if (new URL(request.url).pathname !== "/v3/auth/tokens") return new Response("", { status: 404 });
    const token = { expires_at: "2999-01-01T00:00:00Z", project: { id: "p1" }, roles: [{ name: "admin" }] };
    if (request.method === "POST") {
      return Response.json({ token: { ...token, user: { id: "svc", name: "svc" } } }, {
        status: 201,
        headers: { "X-Subject-Token": "service-token" },
      });
    }
    if (request.headers.get("x-subject-token") !== "good") return Response.json({}, { status: 404 });
    return Response.json({ token: { ...token, user: { id: "u1", name: "user" } } });
  }, tls);
}

t("Keystone over https: cafile verifies it, insecure is an explicit choice, neither is a 503", async ({ certs }) => {
  const tls = { cert: await readFile(certs.certFile, "utf8"), key: await readFile(certs.keyFile, "utf8") };
  const keystone = await fakeKeystone(tls);
  const opts: KeystoneOptions = {
    authUrl: keystone.url,
    username: "svc",
    password: "secret",
    projectName: "service",
    userDomainName: "Default",
    projectDomainName: "Default",
    tokenCacheTime: 60,
  };
  const node = await start({ auth: "keystone", keystone: { ...opts, insecure: true } });
  try {
    assert.equal((await new KeystoneClient({ ...opts, cafile: certs.caFile }).validate("good"))?.userId, "u1");
    assert.equal((await new KeystoneClient({ ...opts, insecure: true }).validate("good"))?.userId, "u1");
    await assert.rejects(new KeystoneClient(opts).validate("good"), (err: Error & { kind?: string }) => {
      assert.equal(err.kind, "unavailable");
      assert.match(err.message, /could not be reached.*certificate/i);
      return true;
    });
    const res = await node.req("/v2/cache", { as: { "X-Auth-Token": "good" } });
    assert.equal(res.status, 200, await res.text());
  } finally {
    await node.close();
    await keystone.close();
  }
});

t("peer reads over https: ca_file verifies the peer; without it the read goes to the source", async ({ certs }) => {
  const tls = { cert: await readFile(certs.certFile, "utf8"), key: await readFile(certs.keyFile, "utf8") };
  const data = bytes(256 << 10);
  const image = { id: "11111111-2222-3333-4444-555555555555", size: data.byteLength } as Image;
  const peer = await serveLoopback(
    () => new Response(data as BodyInit, { headers: { "Content-Length": String(data.byteLength) } }),
    tls,
  );
  const real = {
    find: () => Promise.resolve(image),
    read: () => Promise.resolve(new Response(data as BodyInit).body!),
  } as unknown as ImageSource;
  const logs: string[] = [];
  const deps = { peers: () => Promise.resolve([peer.url]), secret: "s", log: (l: string) => logs.push(l) };
  try {
    const trusting = new PeerSource(real, { ...deps, fetch: clientFetch({ caFile: certs.caFile }) });
    assert.equal(md5(await readAll((await trusting.read(image)).getReader())), md5(data));
    assert.deepEqual(trusting.reads, { upstreamReads: 0, peerReads: 1, peerFailures: 0 });
    const blind = new PeerSource(real, { ...deps, fetch: clientFetch() });
    assert.equal(md5(await readAll((await blind.read(image)).getReader())), md5(data));
    assert.deepEqual(blind.reads, { upstreamReads: 1, peerReads: 0, peerFailures: 1 });
    assert.ok(logs.some((l) => /certificate/i.test(l)), logs.join("\n"));
  } finally {
    await peer.close();
  }
});

t.run();
