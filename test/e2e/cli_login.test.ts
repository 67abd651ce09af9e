// The CLI's Keystone password login end to end: real Keystone (e2e/start.sh), the node in front of real Glance.
// test-needs: e2e
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { suite } from "uvu";
import { readEnv, startInFront } from "../helpers/e2e_helpers.ts";
import type { Running } from "../helpers/helpers.ts";
import { CURRENT_RUNTIME, denoBinary, nodeBinary } from "../../support/processes.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const t = suite<{ env: Record<string, string>; node: Running }>("e2e cli", {} as never);

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const [bin, pre] = CURRENT_RUNTIME === "deno"
    ? [denoBinary(), ["run", "-A", "cli.ts"]]
    : [nodeBinary(), ["--import", "tsx", "cli.ts"]];
  const child = spawn(bin, [...pre, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

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
