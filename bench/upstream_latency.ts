// Bench: latency of a cached 1 MiB download through the node vs. a direct download from the upstream Glance
// (real Keystone and Glance from e2e/start.sh). Median and p90 of 20 each, interleaved.
// Usage: bash e2e/start.sh && node --import tsx bench/upstream_latency.ts [--runs 20] [--runtime node|deno]
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { promisify } from "node:util";
import { randomFile, type Runtime, startServer } from "../support/processes.ts";
import { median } from "./lib/measure.ts";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "20" }, runtime: { type: "string", default: "node" } },
});
const runs = Number(values.runs);
const env = Object.fromEntries(
  readFileSync(join(process.env.E2E_BASE ?? "/tmp/gcn-e2e", "env"), "utf8")
    .split("\n")
    .map((l) => /^([A-Z_0-9]+)=(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => [m[1], m[2]]),
);

async function token(user: string, password: string, project: string): Promise<string> {
  const res = await fetch(`${env.KEYSTONE_URL}/auth/tokens`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      auth: {
        identity: { methods: ["password"], password: { user: { name: user, domain: { name: env.DOMAIN }, password } } },
        scope: { project: { name: project, domain: { name: env.DOMAIN } } },
      },
    }),
  });
  await res.body?.cancel();
  return res.headers.get("x-subject-token")!;
}

/** curl's total time for one download, in ms (a fresh connection each time, as a client would). */
async function curlMs(url: string, tok: string): Promise<number> {
  const { stdout } = await promisify(execFile)("curl", [
    "-sf",
    "-o",
    "/dev/null",
    "-w",
    "%{time_total}",
    "-H",
    `X-Auth-Token: ${tok}`,
    url,
  ]);
  return Number(stdout) * 1000;
}

const dir = await mkdtemp(join(tmpdir(), "gcn-latency-"));
const conf = join(dir, "glance-api.conf");
await writeFile(
  conf,
  `[DEFAULT]\nauth_strategy = keystone\n[keystone_authtoken]\nauth_url = ${env.KEYSTONE_URL}\nusername = ${env.SERVICE_USER}\npassword = ${env.SERVICE_PASSWORD}\nproject_name = ${env.SERVICE_PROJECT}\nuser_domain_name = ${env.DOMAIN}\nproject_domain_name = ${env.DOMAIN}\ntoken_cache_time = 60\n[glance_cache_node]\nupstream_url = ${env.GLANCE_URL}\nmetadata_cache_time = 5\n`,
);
const node = await startServer(values.runtime as Runtime, join(dir, "data"), [
  "--config-file",
  conf,
  "--auth",
  "keystone",
]);
try {
  const admin = await token(env.ADMIN_USER, env.ADMIN_PASSWORD, env.ADMIN_PROJECT);
  const file = join(tmpdir(), "gcn-bench-inputs", "random-1M.bin");
  await randomFile(file, 1 << 20);
  const created = await fetch(`${node.url}/v2/images`, {
    method: "POST",
    headers: { "X-Auth-Token": admin, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "latency", disk_format: "raw", container_format: "bare" }),
  });
  const { id } = (await created.json()) as { id: string };
  await promisify(execFile)("curl", [
    "-sf",
    "-X",
    "PUT",
    "-H",
    `X-Auth-Token: ${admin}`,
    "-H",
    "Content-Type: application/octet-stream",
    "-T",
    file,
    `${node.url}/v2/images/${id}/file`,
  ]);
  await fetch(`${node.url}/v2/cache/${id}`, { method: "PUT", headers: { "X-Auth-Token": admin } });
  for (;;) {
    const l = (await (await fetch(`${node.url}/v2/cache`, { headers: { "X-Auth-Token": admin } })).json()) as {
      cached_images: { image_id: string }[];
    };
    if (l.cached_images.some((c) => c.image_id === id)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const viaNode: number[] = [];
  const direct: number[] = [];
  await curlMs(`${node.url}/v2/images/${id}/file`, admin); // warm both
  await curlMs(`${env.GLANCE_URL}/v2/images/${id}/file`, admin);
  for (let i = 0; i < runs; i++) {
    viaNode.push(await curlMs(`${node.url}/v2/images/${id}/file`, admin));
    direct.push(await curlMs(`${env.GLANCE_URL}/v2/images/${id}/file`, admin));
  }
  const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
  console.log(`| 1 MiB download (${runs} each, ${values.runtime}) | median | p90 |`);
  console.log(`|---|---|---|`);
  console.log(`| through the node, cached | ${median(viaNode).toFixed(1)} ms | ${p90(viaNode).toFixed(1)} ms |`);
  console.log(`| direct from upstream Glance | ${median(direct).toFixed(1)} ms | ${p90(direct).toFixed(1)} ms |`);
  console.log(`| added by the node | ${(median(viaNode) - median(direct)).toFixed(1)} ms | |`);
  await fetch(`${env.GLANCE_URL}/v2/images/${id}`, { method: "DELETE", headers: { "X-Auth-Token": admin } });
} finally {
  await node.stop();
  await rm(dir, { recursive: true, force: true });
}
