// The real Keystone cut off behind a TCP proxy the test owns: a token validated before keeps working, a new one is 503.
// test-needs: e2e
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { suite } from "uvu";
import { keystoneOptions, readEnv, token } from "../helpers/e2e_helpers.ts";
import { type Running, start } from "../helpers/helpers.ts";

const t = suite("keystone outage (e2e)");

/** A TCP proxy on loopback to `target` (host:port): `cut()` closes it and every connection, `mend()` listens again. */
async function tcpProxy(targetHost: string, targetPort: number) {
  const sockets = new Set<Socket>();
  let connections = 0;
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((client) => {
        connections++;
        const upstream = connect(targetPort, targetHost);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on("close", () => sockets.delete(s));
          s.on("error", () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream);
        upstream.pipe(client);
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        port = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  await listen();
  return {
    url: () => `http://127.0.0.1:${port}`,
    connections: () => connections,
    async cut() {
      const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    mend: listen,
  };
}

const status = async (node: Running, tok: string) =>
  (await (await node.req("/v2/x-cache-node/status", { as: { "X-Auth-Token": tok } })).json()) as {
    keystone: { reachable: boolean; authenticated_from_memory: number };
  };

t(
  "Keystone cut off: the token the node validated works, a new real token gets 503; back: a revoked one is 401",
  async () => {
    const env = readEnv();
    const keystone = new URL(env.KEYSTONE_URL);
    const proxy = await tcpProxy(keystone.hostname, Number(keystone.port));
    const viaProxy = `${proxy.url()}/v3`;
    const node = await start({
      auth: "keystone",
      keystone: { ...keystoneOptions(env), authUrl: viaProxy, wwwAuthenticateUri: viaProxy, timeout: 5 },
    });
    try {
      const known = await token(env, "ADMIN");
      assert.equal((await node.req("/v2/cache", { as: { "X-Auth-Token": known } })).status, 200);
      assert.ok(proxy.connections() > 0, "the node validated the token through the proxy");
      const fresh = await token(env, "ADMIN"); // issued by the real Keystone, never shown to the node

      await proxy.cut();
      const listed = await node.req("/v2/cache", { as: { "X-Auth-Token": known } });
      assert.equal(listed.status, 200, await listed.text());
      const refused = await node.req("/v2/cache", { as: { "X-Auth-Token": fresh } });
      assert.equal(refused.status, 503, "a token never seen: 503, never 200 nor 401");
      assert.match(await refused.text(), /identity service \(Keystone\) is unreachable/);
      const down = await status(node, known);
      assert.equal(down.keystone.reachable, false);
      assert.equal(down.keystone.authenticated_from_memory, 2, "the listing and this document");

      // The token is revoked while the node cannot see Keystone; once Keystone is reachable again, its answer wins.
      const revoke = await fetch(`${env.KEYSTONE_URL.replace(/\/$/, "")}/auth/tokens`, {
        method: "DELETE",
        headers: { "X-Auth-Token": known, "X-Subject-Token": known },
      });
      assert.equal(revoke.status, 204);
      assert.equal((await node.req("/v2/cache", { as: { "X-Auth-Token": known } })).status, 200, "still from memory");
      await proxy.mend();
      assert.equal((await node.req("/v2/cache", { as: { "X-Auth-Token": known } })).status, 401);
      assert.equal((await node.req("/v2/cache", { as: { "X-Auth-Token": fresh } })).status, 200);
      assert.equal((await status(node, fresh)).keystone.reachable, true);
    } finally {
      await node.close();
      await proxy.cut().catch(() => {});
    }
  },
);

t.run();
