// Target: our cache node as its own process (embedded store, noauth), on Node (via tsx) or on Deno.
import { mkdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { denoBinary, run, type Runtime, type ServerProcess, startServer } from "../../support/processes.ts";
import type { Target } from "../lib/api.ts";
import { onCleanup } from "../lib/cleanup.ts";

export async function startCacheNode(runtime: Runtime, work: string): Promise<Target> {
  const dataDir = join(work, `data-${runtime}`);
  mkdirSync(dataDir, { recursive: true });
  let server: ServerProcess | undefined;
  const stop = onCleanup(`${runtime} server`, async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  try {
    server = await startServer(runtime, dataDir);
  } catch (err) {
    await stop();
    throw err;
  }
  const version = runtime === "node"
    ? `Node ${process.version}`
    : (await run(denoBinary(), ["--version"])).stdout.split("\n")[0].trim();
  return { name: runtime, version, url: server.url, headers: {}, pid: server.pid, stop };
}

export const startNode = (work: string) => startCacheNode("node", work);
