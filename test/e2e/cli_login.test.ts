// The CLI's Keystone password login end to end: real Keystone (e2e/start.sh), the node in front of real Glance.
// test-needs: e2e
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { runCli } from "../helpers/cli_process.ts";
import { readEnv, startInFront } from "../helpers/e2e_helpers.ts";
import { type Running, tempDir } from "../helpers/helpers.ts";

const t = suite<{ env: Record<string, string>; node: Running }>("e2e cli", {} as never);

/** The CLI spawner every test uses: a clean environment plus `env`. */
const cli = runCli;

const login = (env: Record<string, string>, who: "ADMIN" | "DEMO", password = env[`${who}_PASSWORD`]) => ({
  OS_AUTH_URL: env.KEYSTONE_URL,
  OS_USERNAME: env[`${who}_USER`],
  OS_PASSWORD: password,
  OS_PROJECT_NAME: env[`${who}_PROJECT`],
  OS_USER_DOMAIN_NAME: env.DOMAIN,
  OS_PROJECT_DOMAIN_NAME: env.DOMAIN,
});

t.before(async (ctx) => {
  ctx.env = readEnv();
  ctx.node = await startInFront(ctx.env);
});
t.after(async (ctx) => {
  await ctx.node?.close();
});

t("a password login (OS_* variables) reaches the node with an admin token", async ({ env, node }) => {
  const res = await cli(["status"], { ...login(env, "ADMIN"), OS_IMAGE_URL: node.url });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, new RegExp(`^Source:\\s+Glance at ${env.GLANCE_URL}$`, "m"));
});

t("the same login by flags, as a member: 403, exit 1", async ({ env, node }) => {
  const l = login(env, "DEMO");
  const res = await cli(
    [
      "--os-image-url",
      node.url,
      "--os-auth-url",
      l.OS_AUTH_URL,
      "--os-username",
      l.OS_USERNAME,
      "--os-password",
      l.OS_PASSWORD,
      "--os-project-name",
      l.OS_PROJECT_NAME,
      "list",
    ],
    {},
  );
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^error: GET http:\/\/127\.0\.0\.1:\d+\/v2\/cache: 403 /);
});

t("a wrong password fails the login, exit 1", async ({ env, node }) => {
  const res = await cli(["list"], { ...login(env, "ADMIN", "not-the-password"), OS_IMAGE_URL: node.url });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^error: Keystone login as admin failed: 401 /);
});

t(
  "without an image URL the catalog's image endpoint is used (here Glance itself, without a cache API)",
  async ({ env }) => {
    const res = await cli(["list"], login(env, "ADMIN"));
    assert.equal(res.code, 1);
    assert.equal(
      res.stderr,
      `error: GET ${env.GLANCE_URL}/v2/cache: 404 Caching via API is not supported at this site.\n`,
    );
  },
);

/** A clouds.yaml as openstacksdk reads it: an admin cloud pointing at the node, a member one, one using the catalog. */
function cloudsYaml(env: Record<string, string>, node: Running): string {
  const cloud = (who: "ADMIN" | "DEMO", extra: string) =>
    [
      "    auth:",
      `      auth_url: ${env.KEYSTONE_URL}`,
      `      username: ${JSON.stringify(env[`${who}_USER`])}`,
      `      password: ${JSON.stringify(env[`${who}_PASSWORD`])}`,
      `      project_name: ${JSON.stringify(env[`${who}_PROJECT`])}`,
      `      user_domain_name: ${JSON.stringify(env.DOMAIN)}`,
      `      project_domain_name: ${JSON.stringify(env.DOMAIN)}`,
      `    region_name: ${env.REGION}`,
      extra,
    ].join("\n");
  return [
    "clouds:",
    "  e2e-admin:",
    cloud("ADMIN", `    image_endpoint_override: ${node.url}`),
    "  e2e-demo:",
    cloud("DEMO", `    image_endpoint_override: ${node.url}/v2`),
    "  e2e-catalog:",
    cloud("ADMIN", "    interface: public"),
    "",
  ].join("\n");
}

t("clouds.yaml: --os-cloud and OS_CLOUD from ~/.config/openstack, other OS_* then unread", async ({ env, node }) => {
  const home = await tempDir("gcn-clouds-");
  try {
    await mkdir(join(home, ".config", "openstack"), { recursive: true });
    await writeFile(join(home, ".config", "openstack", "clouds.yaml"), cloudsYaml(env, node));
    const admin = await cli(["--os-cloud", "e2e-admin", "status"], { HOME: home });
    assert.equal(admin.code, 0, admin.stderr);
    assert.match(admin.stdout, new RegExp(`^Source:\\s+Glance at ${env.GLANCE_URL}$`, "m"));
    // OS_CLOUD names the cloud; a stray token and image URL in the environment are not read beside it
    const viaEnv = await cli(["list"], {
      HOME: home,
      OS_CLOUD: "e2e-admin",
      OS_AUTH_TOKEN: "not-a-token",
      OS_IMAGE_URL: "http://127.0.0.1:1",
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.match(viaEnv.stdout, /^Cached images: /m);
    const member = await cli(["list"], { HOME: home, OS_CLOUD: "e2e-demo" });
    assert.equal(member.code, 1);
    assert.match(member.stderr, /^error: GET http:\/\/127\.0\.0\.1:\d+\/v2\/cache: 403 /);
    // no override: the catalog's image endpoint in the cloud's region, as the OS_* login does
    const catalog = await cli(["list"], { HOME: home, OS_CLOUD: "e2e-catalog" });
    assert.equal(
      catalog.stderr,
      `error: GET ${env.GLANCE_URL}/v2/cache: 404 Caching via API is not supported at this site.\n`,
    );
    // a flag still wins over the cloud
    const flagged = await cli(["--os-cloud", "e2e-catalog", "--os-image-url", node.url, "list"], { HOME: home });
    assert.equal(flagged.code, 0, flagged.stderr);
    const missing = await cli(["--os-cloud", "nowhere", "list"], { HOME: home });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: .*clouds\.yaml has no cloud named nowhere$/m);
    // OS_CLIENT_CONFIG_FILE names the file itself
    await writeFile(join(home, "other.yaml"), cloudsYaml(env, node).replace("e2e-admin", "elsewhere"));
    const named = await cli(["list"], {
      HOME: home,
      OS_CLIENT_CONFIG_FILE: join(home, "other.yaml"),
      OS_CLOUD: "elsewhere",
    });
    assert.equal(named.code, 0, named.stderr);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

t("clouds.yaml with the password in secure.yaml, as openstacksdk splits them", async ({ env, node }) => {
  const home = await tempDir("gcn-clouds-");
  try {
    const dir = join(home, ".config", "openstack");
    await mkdir(dir, { recursive: true });
    const withoutPassword = cloudsYaml(env, node).split("\n").filter((l) => !l.includes("password:")).join("\n");
    await writeFile(join(dir, "clouds.yaml"), withoutPassword);
    const refused = await cli(["list"], { HOME: home, OS_CLOUD: "e2e-admin" });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: a Keystone login needs --os-password or OS_PASSWORD \(cloud e2e-admin\)$/m);
    await writeFile(
      join(dir, "secure.yaml"),
      `clouds:\n  e2e-admin:\n    auth:\n      password: ${JSON.stringify(env.ADMIN_PASSWORD)}\n`,
    );
    const res = await cli(["list"], { HOME: home, OS_CLOUD: "e2e-admin" });
    assert.equal(res.code, 0, res.stderr);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

t("clouds.yaml: no file on the search path is a clear error", async () => {
  const home = await tempDir("gcn-clouds-");
  try {
    const res = await cli(["list"], { HOME: home, OS_CLOUD: "e2e-admin" });
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /^error: cloud e2e-admin: no clouds\.yaml found \(looked in .*\.config\/openstack\/clouds\.yaml/,
    );
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

t.run();
