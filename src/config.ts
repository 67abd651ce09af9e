// Command-line flags and their environment variables, parsed with node:util's parseArgs.
import { parseArgs } from "node:util";

export interface ServeConfig {
  host: string;
  port: number;
  dataDir: string;
  auth: "noauth" | "headers";
  forceNoauth: boolean;
  cacheConcurrency: number;
  maxSize: number;
  stallTime: number;
  shutdownTimeout: number;
}

const FLAGS = {
  host: { type: "string", env: "GLANCE_CACHE_HOST", default: "127.0.0.1" },
  port: { type: "string", env: "GLANCE_CACHE_PORT", default: "9292" },
  "data-dir": { type: "string", env: "GLANCE_CACHE_DATA_DIR", default: "./data" },
  auth: { type: "string", env: "GLANCE_CACHE_AUTH", default: "noauth" },
  "force-noauth": { type: "boolean", env: "GLANCE_CACHE_FORCE_NOAUTH", default: false },
  "cache-concurrency": { type: "string", env: "GLANCE_CACHE_CONCURRENCY", default: "1" },
  "image-cache-max-size": { type: "string", env: "GLANCE_CACHE_MAX_SIZE", default: String(10 * 1024 ** 3) },
  "image-cache-stall-time": { type: "string", env: "GLANCE_CACHE_STALL_TIME", default: "86400" },
  "shutdown-timeout": { type: "string", env: "GLANCE_CACHE_SHUTDOWN_TIMEOUT", default: "30" },
  help: { type: "boolean", env: "", default: false },
} as const;

export const USAGE = `Usage: mod.ts [options]   (every option also reads the environment variable shown)
  --host HOST               address to listen on           GLANCE_CACHE_HOST      (127.0.0.1)
  --port PORT               port to listen on              GLANCE_CACHE_PORT      (9292)
  --data-dir DIR            image store and cache          GLANCE_CACHE_DATA_DIR  (./data)
  --auth noauth|headers     identity mode                  GLANCE_CACHE_AUTH      (noauth)
  --force-noauth            allow noauth off loopback      GLANCE_CACHE_FORCE_NOAUTH
  --cache-concurrency N     queued images filled at once   GLANCE_CACHE_CONCURRENCY (1)
  --image-cache-max-size B  cache size cap in bytes        GLANCE_CACHE_MAX_SIZE  (10737418240)
  --image-cache-stall-time S  incomplete files older than this are cleaned  GLANCE_CACHE_STALL_TIME (86400)
  --shutdown-timeout S      on SIGTERM/SIGINT, wait this long for downloads  GLANCE_CACHE_SHUTDOWN_TIMEOUT (30)

Commands (the node must not be running on the same --data-dir; it prunes and cleans by itself):
  prune                     evict least recently used images until the cache is within its size
  clean                     remove invalid files and stalled incomplete ones`;

export type Command = "serve" | "prune" | "clean";

export class ConfigError extends Error {}

export function parseConfig(
  argv: string[],
  env: Record<string, string | undefined>,
): { command: Command; config: ServeConfig } | "help" {
  const options = Object.fromEntries(
    Object.entries(FLAGS).map(([name, f]) => [name, { type: f.type }]),
  ) as Record<keyof typeof FLAGS, { type: "string" | "boolean" }>;
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true }));
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
  const command = (positionals[0] ?? "serve") as Command;
  if (!["serve", "prune", "clean"].includes(command) || positionals.length > 1) {
    throw new ConfigError(`unknown command: ${positionals.join(" ")}`);
  }
  if (values.help) return "help";
  const get = (name: keyof typeof FLAGS): string => {
    const f = FLAGS[name];
    const v = values[name] ?? (f.env ? env[f.env] : undefined) ?? f.default;
    return String(v);
  };
  const port = Number(get("port"));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port: not a port: ${get("port")}`);
  const auth = get("auth");
  if (auth !== "noauth" && auth !== "headers") throw new ConfigError(`--auth: must be noauth or headers, not ${auth}`);
  const concurrency = Number(get("cache-concurrency"));
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ConfigError(`--cache-concurrency: not a positive integer: ${get("cache-concurrency")}`);
  }
  const count = (name: keyof typeof FLAGS) => {
    const n = Number(get(name));
    if (!Number.isInteger(n) || n < 0) throw new ConfigError(`--${name}: not a non-negative integer: ${get(name)}`);
    return n;
  };
  const config: ServeConfig = {
    host: get("host"),
    port,
    dataDir: get("data-dir"),
    auth,
    forceNoauth: ["true", "1", "yes"].includes(get("force-noauth").toLowerCase()),
    cacheConcurrency: concurrency,
    maxSize: count("image-cache-max-size"),
    stallTime: count("image-cache-stall-time"),
    shutdownTimeout: count("shutdown-timeout"),
  };
  if (config.auth === "noauth" && !isLoopback(config.host) && !config.forceNoauth) {
    throw new ConfigError(`--auth noauth makes every caller an admin: refusing to listen on ${config.host} (use --force-noauth)`);
  }
  return { command, config };
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
