// Entry point: the embeddable fetch handler, and, run as a program, the server (Node via tsx, or Deno).
import { readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type App, type AppOptions, createApp } from "./src/app.ts";
import { OPTIONS } from "./src/config/options.ts";
import { ignoredLine } from "./src/config/foreign.ts";
import { ConfigError, type NodeOptions, parseConfig, withPolicy } from "./src/config/parse.ts";
import { USAGE } from "./src/config/usage.ts";
import { runtimeServe, type ServeTls } from "./src/adapter/serve.ts";
import { Logger } from "./src/log.ts";
import { LogSinks } from "./src/log_sinks.ts";

/** A running node (App) and what it is built from (AppOptions: the options of docs/configuration.md and hooks). */
export type { App, AppOptions };
/** Who calls (Identity), how an embedder authenticates (Authenticator), and where a request came from (ConnInfo). */
export type { Authenticator, ConnInfo, Identity } from "./src/auth/identity.ts";
/** The server adapter of the runtime we are on, for serving the handler as `serve` does. */
export { runtimeServe } from "./src/adapter/serve.ts";
/** Where images and their bytes come from: what a new image source implements. */
export type { ImageSource } from "./src/images/source.ts";

/**
 * The cache node as a fetch handler: `const node = await createCacheNode({ dataDir })`, then serve
 * `node.fetch(request, { remoteAddr })` in any server (Node, Deno, Hono, ...) and `await node.close()` at the end.
 * The defaults are the CLI's: data in ./data, noauth for loopback peers only.
 */
export async function createCacheNode(opts: Partial<AppOptions> = {}): Promise<App> {
  return createApp({ dataDir: OPTIONS.dataDir.default, ...opts });
}

/** cert_file and key_file, read: both or neither (an unreadable file stops the start with its name). */
function serverTls(config: NodeOptions): ServeTls | undefined {
  const { certFile, keyFile } = config;
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new Error("cert_file and key_file (--cert-file, --key-file) go together");
  const read = (option: string, path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`${option} ${path}: ${(err as Error).message}`);
    }
  };
  return { cert: read("cert_file", certFile), key: read("key_file", keyFile) };
}

async function serve(config: NodeOptions & Pick<AppOptions, "log">, logger: Logger): Promise<void> {
  const tls = serverTls(config);
  const node = await createApp(config);
  const listening = await (await runtimeServe())(node.fetch, {
    host: config.host,
    port: config.port,
    headersTimeout: config.headersTimeout,
    maxConnections: config.maxConnections,
    tls,
  });
  const source = config.upstream ? `in front of ${config.upstream.url}` : `embedded store in ${config.dataDir}`;
  const scheme = tls ? "https" : "http";
  logger.log(
    "INFO",
    "node",
    `glance cache node listening on ${scheme}://${config.host}:${listening.port} (${source}, auth ${config.auth})`,
  );
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log(
      "INFO",
      "node",
      `${signal}: no new connections; waiting up to ${config.shutdownTimeout} s for downloads in progress`,
    );
    await listening.close(config.shutdownTimeout * 1000);
    await node.close(); // queued images stay queued for the next start
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

/** prune and clean, on a node that is not running (the lock says so). */
async function maintain(command: "prune" | "clean", config: NodeOptions): Promise<void> {
  // Offline upkeep touches only this node's disk; the fleet's rows follow at the node's next start.
  const node = await createApp({ ...config, cacheConcurrency: 0, fleet: undefined });
  try {
    const done = command === "prune" ? (await node.cache.prune()).pruned : await node.cache.clean();
    console.log(`${command}: ${done.length ? done.join("\n") : "nothing to do"}`);
  } finally {
    await node.close();
  }
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`error: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed === "help") return console.log(USAGE);
  const { command, config, warnings, ignored } = parsed;
  try {
    // oslo.log's targets for the server: a file (reopened on SIGHUP, for logrotate), standard error, syslog, or
    // standard output; prune and clean print to standard output.
    const sinks = command === "serve" ? new LogSinks(config) : undefined;
    const write = sinks && ((line: string, level: Parameters<LogSinks["write"]>[1]) => sinks.write(line, level));
    if (sinks) process.on("SIGHUP", () => sinks.reopen());
    const logger = new Logger({ debug: config.debug, json: config.logJson, dateFormat: config.logDateFormat, write });
    for (const warning of warnings) logger.log("WARNING", "config", warning);
    const options = await withPolicy(config);
    if (command === "serve") {
      const ignoredKeys = ignoredLine(ignored);
      if (ignoredKeys) logger.log("INFO", "config", ignoredKeys);
      await serve({ ...options, log: write }, logger);
    } else await maintain(command, options);
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  }
}

const isMain = (import.meta as { main?: boolean }).main ?? fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) await main();
