// docs/deployment.md's walkthrough in front of Glance with Keystone, run with its own blocks: the service user, a
// region's catalog entry, the node's file with TLS built in, glance-cache status and a glanceclient download.
// test-needs: e2e glanceclient openssl
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { suite } from "uvu";
import { readEnv, token } from "../helpers/e2e_helpers.ts";
import { bytes, md5, tempDir } from "../helpers/helpers.ts";
import { field, glance, glanceOk, transcript } from "../helpers/glanceclient.ts";
import { type Cli, programCommand, runCli, spawnCli } from "../helpers/cli_process.ts";
import { makeCerts, type TestCerts } from "../helpers/certs.ts";
import { freePort, waitForHttp } from "../../support/processes.ts";

const PAGE = await readFile(new URL("../../docs/deployment.md", import.meta.url), "utf8");
const HEADING = "### Walkthrough: the service user, the catalog entry, the file, TLS";

/** The first fenced block of `lang` after `marker` in the walkthrough. */
function block(lang: string, marker: string): string {
  const from = PAGE.indexOf(HEADING);
  const at = PAGE.indexOf(marker, from);
  assert.ok(from >= 0 && at >= 0, `docs/deployment.md's walkthrough has ${marker}`);
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(PAGE.slice(at));
  assert.ok(m, `a ${lang} block after ${marker}`);
  return m[1];
}

const ctx = {} as {
  env: Record<string, string>;
  dir: string;
  certs: TestCerts;
  port: number;
  names: Record<string, string>;
  node?: Cli;
  images: string[];
};

/** The admin's credentials, as an admin-openrc sets them (nothing of the runner's environment). */
const adminEnv = (): Record<string, string> => ({
  PATH: "/usr/bin:/bin",
  HOME: ctx.dir,
  NO_PROXY: "127.0.0.1,localhost",
  OS_AUTH_URL: ctx.env.KEYSTONE_URL,
  OS_IDENTITY_API_VERSION: "3",
  OS_USERNAME: ctx.env.ADMIN_USER,
  OS_PASSWORD: ctx.env.ADMIN_PASSWORD,
  OS_PROJECT_NAME: ctx.env.ADMIN_PROJECT,
  OS_USER_DOMAIN_NAME: ctx.env.DOMAIN,
  OS_PROJECT_DOMAIN_NAME: ctx.env.DOMAIN,
});

/** The page's names block with this run's values: every variable it sets, set to ours. */
function names(): string {
  const text = block("sh", "**1. The names.**");
  const set = [...text.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]);
  assert.deepEqual(set.sort(), Object.keys(ctx.names).sort(), "the page's names are the ones the test sets");
  return text.replace(/^([A-Z_]+)=.*$/gm, (_, k: string) => `${k}='${ctx.names[k]}'`);
}

/** Runs a shell block of the page, after the names, with /usr/bin/openstack as the admin. */
async function sh(script: string): Promise<string> {
  const { stdout } = await promisify(execFile)("bash", ["-euo", "pipefail", "-c", `${names()}\n${script}`], {
    env: adminEnv(),
    timeout: 180_000,
  });
  return stdout;
}

const t = suite("walkthrough in front of Glance with Keystone (docs/deployment.md)");

t.before(async () => {
  ctx.env = readEnv();
  ctx.dir = await tempDir("gcn-ks-walkthrough-");
  ctx.certs = await makeCerts();
  ctx.port = await freePort();
  ctx.images = [];
  const run = randomBytes(4).toString("hex");
  ctx.names = {
    REGION: `gcn-walk-${run}`,
    NODE_USER: `gcn-walk-${run}`,
    NODE_PASSWORD: randomBytes(12).toString("hex"),
    NODE_URL: `https://127.0.0.1:${ctx.port}`,
    GLANCE_URL: ctx.env.GLANCE_URL,
  };
});

t.after(async () => {
  if (ctx.node && ctx.node.child.exitCode === null) {
    ctx.node.child.kill("SIGTERM");
    await ctx.node.exit;
  }
  const admin = await token(ctx.env, "ADMIN").catch(() => undefined);
  for (const id of ctx.images) {
    if (admin) {
      await fetch(`${ctx.env.GLANCE_URL}/v2/images/${id}`, { method: "DELETE", headers: { "X-Auth-Token": admin } });
    }
  }
  // What the walkthrough created in the shared Keystone: the region's endpoints, the region, the user.
  await sh(`
    for id in $(openstack endpoint list --region "$REGION" -f value -c ID); do openstack endpoint delete "$id"; done
    if openstack region show "$REGION" >/dev/null 2>&1; then openstack region delete "$REGION"; fi
    if openstack user show --domain Default "$NODE_USER" >/dev/null 2>&1; then
      openstack user delete --domain Default "$NODE_USER"
    fi
  `).catch((err) => console.error(`cleaning the walkthrough's Keystone objects: ${err}`));
  await rm(ctx.dir, { recursive: true, force: true });
  await rm(ctx.certs?.dir ?? "/nonexistent", { recursive: true, force: true });
});

t("2. the service user: created, with service and admin in the service project", async () => {
  await sh(block("sh", "**2. The node's service user**"));
  const roles = await sh(
    `openstack role assignment list --user "$NODE_USER" --user-domain Default --project service --project-domain Default --names -f value -c Role`,
  );
  assert.deepEqual(roles.trim().split("\n").sort(), ["admin", "service"]);
});

t("3. the catalog: the region's public and internal image endpoints are the node, admin stays at Glance", async () => {
  await sh(block("sh", "**3. The catalog.**"));
  const rows = await sh(
    `openstack endpoint list --service image --region "$REGION" -f value -c Interface -c URL | sort`,
  );
  assert.equal(
    rows.trim(),
    [`admin ${ctx.env.GLANCE_URL}`, `internal ${ctx.names.NODE_URL}`, `public ${ctx.names.NODE_URL}`].join("\n"),
  );
  // The other regions' image endpoints are untouched: still Glance.
  const others = await sh(`openstack endpoint list --service image -f value -c Region -c URL`);
  for (const line of others.trim().split("\n")) {
    if (!line.startsWith(`${ctx.names.REGION} `)) assert.ok(!line.includes(ctx.names.NODE_URL), line);
  }
});

t(
  "4 and 5. the page's file starts the node over TLS; glance-cache status finds it in the catalog; glance downloads through it",
  async () => {
    const conf = block("ini", "**4. The node's file**")
      .replace("bind_host = 0.0.0.0", "bind_host = 127.0.0.1")
      .replace("bind_port = 9292", `bind_port = ${ctx.port}`)
      .replace("/var/lib/glance-cache-node", join(ctx.dir, "data"))
      .replace("https://edge1-images.example.com:9292", ctx.names.NODE_URL)
      .replace("/etc/glance-cache/tls/node.pem", ctx.certs.certFile)
      .replace("/etc/glance-cache/tls/node.key", ctx.certs.keyFile)
      .replace("http://keystone.internal:5000/v3", ctx.env.KEYSTONE_URL)
      .replace("username = glance-cache", `username = ${ctx.names.NODE_USER}`)
      .replace("password = choose-a-long-random-password", `password = ${ctx.names.NODE_PASSWORD}`)
      .replace("http://glance.internal:9292", ctx.env.GLANCE_URL);
    for (const v of [ctx.port, ctx.certs.certFile, ctx.names.NODE_USER, ctx.names.NODE_PASSWORD, ctx.env.GLANCE_URL]) {
      assert.ok(conf.includes(String(v)), `the page's file took ${v}: ${conf}`);
    }
    const file = join(ctx.dir, "glance-api.conf");
    await writeFile(file, conf);
    // As the page starts it: mod.ts --config-file, nothing else.
    const run = block("sh", "```ini");
    assert.match(run, /mod\.ts --config-file \/etc\/glance-cache\/glance-api\.conf$/m);
    ctx.node = spawnCli(["--config-file", file], {}, programCommand());
    await waitForHttp(`${ctx.names.NODE_URL}/versions`, ctx.node.child, "the node", 30_000).catch((err) => {
      throw new Error(`${err}\n${ctx.node!.stdout()}${ctx.node!.stderr()}`);
    });

    // An image in Glance, created through the node (the pass-through) as the admin.
    const admin = await token(ctx.env, "ADMIN");
    const data = bytes(3 << 20);
    const src = join(ctx.dir, "image.raw");
    await writeFile(src, data);
    const created = await glanceOk(
      ctx.names.NODE_URL,
      admin,
      "--os-cacert",
      ctx.certs.caFile,
      "image-create",
      "--disk-format",
      "raw",
      "--container-format",
      "bare",
      "--name",
      "gcn-walkthrough",
      "--file",
      src,
    );
    const id = field(created, "id")!;
    assert.ok(id, created);
    ctx.images.push(id);

    // 5, as the page runs it: OS_REGION_NAME, and the command finds the node in the catalog.
    const check = block("sh", "**5. Check it**");
    assert.match(check, /^export OS_REGION_NAME="\$REGION"$/m);
    assert.match(check, /^glance-cache status$/m);
    const { PATH: _p, HOME: _h, NO_PROXY: _n, ...openrc } = adminEnv();
    const status = await runCli(["status"], {
      ...openrc,
      OS_REGION_NAME: ctx.names.REGION,
      OS_CACERT: ctx.certs.caFile,
    });
    assert.equal(status.code, 0, status.stdout + status.stderr);
    assert.match(status.stdout, new RegExp(`^Node: +${ctx.names.NODE_URL}$`, "m"));
    assert.match(status.stdout, new RegExp(`^Source: +Glance at ${ctx.env.GLANCE_URL}$`, "m"));
    assert.match(status.stdout, /^Keystone: +reachable, /m);

    // glanceclient with a real token downloads through the node: the bytes are read with the node's service user.
    const out = join(ctx.dir, "image.out");
    await glanceOk(ctx.names.NODE_URL, admin, "--os-cacert", ctx.certs.caFile, "image-download", "--file", out, id);
    assert.equal(md5(new Uint8Array(await readFile(out))), md5(data));
  },
);

t(
  "without admin (service alone): callers' tokens are still validated; only images the service project can see are served",
  async () => {
    // The page's step 2 without its admin line: the node's user keeps the service role only.
    await sh(
      `openstack role remove --project service --project-domain Default --user "$NODE_USER" --user-domain Default admin`,
    );
    ctx.node!.child.kill("SIGTERM");
    await ctx.node!.exit;
    ctx.node = spawnCli(["--config-file", join(ctx.dir, "glance-api.conf")], {}, programCommand());
    await waitForHttp(`${ctx.names.NODE_URL}/versions`, ctx.node.child, "the node", 30_000);
    const admin = await token(ctx.env, "ADMIN");
    const data = bytes(1 << 20);
    const src = join(ctx.dir, "small.raw");
    await writeFile(src, data);
    const create = async (visibility: string) => {
      const out = await glanceOk(
        ctx.names.NODE_URL,
        admin,
        "--os-cacert",
        ctx.certs.caFile,
        "image-create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--visibility",
        visibility,
        "--name",
        `gcn-walkthrough-${visibility}`,
        "--file",
        src,
      );
      const id = field(out, "id")!;
      ctx.images.push(id);
      return id;
    };
    const download = (id: string) =>
      glance(
        ctx.names.NODE_URL,
        admin,
        "--os-cacert",
        ctx.certs.caFile,
        "image-download",
        "--file",
        join(ctx.dir, id),
        id,
      );
    const pub = await create("public");
    const priv = await create("private");
    // A caller's token validated by the node's token with the service role alone: the public image downloads.
    const ok = await download(pub);
    assert.equal(ok.code, 0, transcript(ok));
    assert.equal(md5(new Uint8Array(await readFile(join(ctx.dir, pub)))), md5(data));
    // The admin project's private image: the caller may see it, the node's user may not read its data.
    const refused = await download(priv);
    // An error answer before any byte, not a 200 cut short (which glanceclient reports as a corrupt download).
    assert.notEqual(refused.code, 0, transcript(refused));
    assert.match(refused.stderr, /HTTP 502 Bad Gateway: .*the node's service user may not read this image's data/);
  },
);

t.run();
