// Entry point: the embeddable fetch handler, and, run as a program, the server (Node via tsx, or Deno).
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type App, type AppOptions, createApp } from "./src/app.ts";
import { ConfigError, parseConfig, USAGE } from "./src/config.ts";
import { runtimeServe } from "./src/runtime/server.ts";

export type { App, AppOptions };
export type { Authenticator, Identity } from "./src/auth/identity.ts";

/**
 * The cache node as a fetch handler: `const node = await createCacheNode({ dataDir })`, then
 * mount `node.fetch` in any server (Node, Deno, Hono, ...) and `await node.close()` at the end.
 */
export async function createCacheNode(opts: AppOptions): Promise<App> {
  return createApp(opts);
}

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`error: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (config === "help") {
    console.log(USAGE);
    return;
  }
  const node = await createApp({ dataDir: config.dataDir, auth: config.auth, cacheConcurrency: config.cacheConcurrency });
  const serve = await runtimeServe();
  const listening = await serve(node.fetch, { host: config.host, port: config.port });
  console.log(`glance cache node listening on http://${config.host}:${listening.port} (data in ${config.dataDir}, auth ${config.auth})`);
  const stop = async () => {
    await listening.close();
    await node.close();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

const isMain =
  (import.meta as { main?: boolean }).main ?? fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) await main();
