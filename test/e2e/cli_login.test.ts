// The CLI's Keystone password login end to end: real Keystone (e2e/start.sh), the node in front of real Glance.
// test-needs: e2e
import assert from "node:assert/strict";
import { suite } from "uvu";
import { runCli } from "../helpers/cli_process.ts";
import { readEnv, startInFront } from "../helpers/e2e_helpers.ts";
import type { Running } from "../helpers/helpers.ts";

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

t.run();
