// An operator's own glance-api.conf, devstack-style and unchanged save the node's section, starts the node in front
// of the real Keystone and Glance: foreign options listed once, log_file written, downloads work; a typo of the
// node's own section and a wrong value of an option it uses stop it, naming the closest key or the line.
// test-needs: e2e memcached
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import { devstackGlanceApiConf } from "../helpers/devstack_conf.ts";
import { readEnv, token } from "../helpers/e2e_helpers.ts";
import { bytes, md5, tempDir, waitFor } from "../helpers/helpers.ts";
import { type Cli, programCommand, spawnCli } from "../helpers/cli_process.ts";
import { freePort } from "../../support/processes.ts";
import { Memcached } from "../../src/auth/memcached.ts";
import { startMemcached } from "../helpers/memcached.ts";

const t = suite("operator's glance-api.conf");

/** The conf written to a new directory, and the program started on it (`--config-file` alone). */
async function withConf(change: (conf: string) => string = (c) => c, own?: string, memcachedServers?: string) {
  const env = readEnv();
  const dir = await tempDir();
  const port = await freePort();
  const logFile = join(dir, "glance-cache-node.log");
  const path = join(dir, "glance-api.conf");
  writeFileSync(
    path,
    change(devstackGlanceApiConf({ env, port, dataDir: join(dir, "data"), logFile, own, memcachedServers })),
  );
  const cli = spawnCli(["--config-file", path], {}, programCommand());
  return { env, dir, port, logFile, path, cli, url: `http://127.0.0.1:${port}` };
}

async function stop(cli: Cli): Promise<void> {
  cli.child.kill("SIGTERM");
  await cli.exit;
}

t(
  "a devstack-style glance-api.conf starts the node: ignored options in one line, log_file written, a download works",
  async () => {
    const mc = await startMemcached();
    const { env, logFile, cli, url } = await withConf((c) => c, undefined, mc.servers);
    try {
      await waitFor("the node answers", async () => {
        if (cli.child.exitCode !== null) throw new Error(`the node exited: ${cli.stderr()}`);
        return await fetch(`${url}/versions`).then((r) => r.ok, () => false);
      }, 20_000);
      const log = () => readFileSync(logFile, "utf8");
      const ignored = log().split("\n").filter((l) => l.includes("ignored options of glance-api.conf"));
      assert.equal(ignored.length, 1, log());
      const line = ignored[0];
      console.log(`\n  start-up line: ${line}\n`);
      assert.match(line, /^\S+ \S+ \d+ INFO config \[-\] ignored options of glance-api\.conf the node does not use: /);
      for (
        const key of [
          "[DEFAULT] transport_url",
          "[DEFAULT] enabled_backends",
          "[DEFAULT] logging_context_format_string",
          "[database] max_retries",
          "[oslo_concurrency] lock_path",
          "[oslo_messaging_notifications] driver",
          "[paste_deploy] flavor",
          "[glance_store] default_backend",
          "[fast] filesystem_store_datadir",
          "[oslo_policy] enforce_scope",
          "[cors] allowed_origin",
          "[profiler] enabled",
          "[oslo_limit] endpoint_id",
          "[database] connection",
        ]
      ) assert.ok(line.includes(`${key},`) || line.endsWith(key), `${key} listed: ${line}`);
      const used = [
        "[DEFAULT] bind_port",
        "[DEFAULT] log_file",
        "[DEFAULT] debug",
        "[DEFAULT] workers",
        "[DEFAULT] image_cache_driver",
        "[keystone_authtoken] auth_url",
        "[keystone_authtoken] region_name",
        "[keystone_authtoken] interface",
        "[keystone_authtoken] service_token_roles_required",
        "[glance_cache_node] upstream_url",
      ];
      for (const key of used) assert.ok(!line.includes(key), `${key} is used, not ignored`);
      assert.equal(cli.stdout(), "", "with log_file nothing goes to standard output");

      // An image in the real Glance, downloaded through the node with a user's token.
      const admin = await token(env, "ADMIN");
      const headers = { "X-Auth-Token": admin, "Content-Type": "application/json" };
      const created = await fetch(`${env.GLANCE_URL}/v2/images`, {
        method: "POST",
        headers,
        body: JSON.stringify({ name: "operator-conf", disk_format: "raw", container_format: "bare" }),
      });
      assert.equal(created.status, 201);
      const { id } = (await created.json()) as { id: string };
      const data = bytes(1 << 20);
      const put = await fetch(`${env.GLANCE_URL}/v2/images/${id}/file`, {
        method: "PUT",
        headers: { "X-Auth-Token": admin, "Content-Type": "application/octet-stream" },
        body: data as unknown as BodyInit,
      });
      assert.equal(put.status, 204);
      try {
        const got = await fetch(`${url}/v2/images/${id}/file`, { headers: { "X-Auth-Token": admin } });
        assert.equal(got.status, 200);
        assert.equal(md5(new Uint8Array(await got.arrayBuffer())), md5(data));
        await waitFor(
          "the download's access line in log_file",
          async () => log().includes(`GET /v2/images/${id}/file`),
        );
        assert.match(log(), new RegExp(`INFO access \\[req-\\S+ \\S+ \\S+\\] GET /v2/images/${id}/file status=200`));
        assert.doesNotMatch(
          log(),
          /WARNING/,
          "interface and region_name found Keystone in the catalog; memcached answered",
        );
        // memcached_servers: the admin's validated token is there for the other nodes, under a hash of the token.
        const shared = new Memcached(mc.servers);
        const key = `glance-cache-node/token/${createHash("sha256").update(admin).digest("hex")}`;
        assert.match((await shared.get(key)) ?? "", /"roles":\[[^\]]*"admin"/);
        shared.close();
      } finally {
        await fetch(`${env.GLANCE_URL}/v2/images/${id}`, { method: "DELETE", headers: { "X-Auth-Token": admin } });
      }
    } finally {
      await stop(cli);
      await mc.stop();
    }
  },
);

t("a misspelt key of [glance_cache_node] stops the node with the closest valid name", async () => {
  const { cli, path } = await withConf((c) => c, "upstream_stall_timout = 30");
  assert.equal(await cli.exit, 2);
  assert.match(
    cli.stderr(),
    new RegExp(
      `config file ${path}:\\n  line \\d+: \\[glance_cache_node\\] upstream_stall_timout: unknown option \\(did you mean upstream_stall_timeout\\?\\)`,
    ),
  );
});

t("a wrong value of an option the node uses stops it, naming the file's line", async () => {
  const { cli, path, logFile } = await withConf((c) =>
    c.replace(/^image_cache_max_size = .*$/m, "image_cache_max_size = 10G")
  );
  const lineNo = readFileSync(path, "utf8").split("\n").indexOf("image_cache_max_size = 10G") + 1;
  assert.equal(await cli.exit, 2);
  assert.match(
    cli.stderr(),
    new RegExp(
      `error: config file ${path} line ${lineNo}: --image-cache-max-size \\(\\[DEFAULT\\] image_cache_max_size\\): not a non-negative integer: "10G"`,
    ),
  );
  assert.equal(existsSync(logFile), false, "nothing started, nothing logged");
});

t.run();
