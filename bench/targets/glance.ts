// Target: the real Glance 25.1 (Debian) with its image cache, run by bench/glance/ (one API worker, no Keystone).
import { readdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { freePort, run, runOk } from "../../support/processes.ts";
import type { Target } from "../lib/api.ts";
import { onCleanup } from "../lib/cleanup.ts";
import { sleep } from "../lib/measure.ts";

const SCRIPTS = new URL("../glance/", import.meta.url).pathname;
const HEADERS = { "X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-Tenant-Id": "admin", "X-User-Id": "admin" };

export async function startGlance(work: string): Promise<Target> {
  const base = join(work, "glance");
  const port = await freePort();
  // Debug logging off: the bench measures Glance's speed, not its logging.
  const env = { ...process.env, GCN_GLANCE_BASE: base, GCN_GLANCE_PORT: String(port), GCN_GLANCE_DEBUG: "false" };
  const stop = onCleanup("glance-api", async () => {
    await run("bash", [join(SCRIPTS, "stop.sh")], { env });
    await rm(base, { recursive: true, force: true });
  });
  try {
    await runOk("bash", [join(SCRIPTS, "start.sh")], { env });
    const parent = Number(readFileSync(join(base, "glance-api.pid"), "utf8").trim());
    const version = (await run("dpkg-query", ["-W", "-f", "${Version}", "glance-api"])).stdout.trim();
    return {
      name: "glance",
      version: `glance-api ${version}`,
      url: `http://127.0.0.1:${port}`,
      headers: HEADERS,
      pid: await apiWorker(parent),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** glance-api forks its one API worker: that process serves the requests. */
async function apiWorker(parent: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const kids = readdirSync(`/proc/${parent}/task`).flatMap((tid) =>
      readFileSync(`/proc/${parent}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)
    );
    if (kids.length) return kids[0];
    await sleep(100);
  }
  return parent;
}
