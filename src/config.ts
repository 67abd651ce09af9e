// Configuration: a glance-api.conf in oslo.config's dialect, overridden by environment variables, overridden by flags.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type Cidr, isLoopback, parseCidrList } from "./auth/addresses.ts";
import type { KeystoneOptions } from "./auth/keystone.ts";
import { VERIFY_HASHES, type VerifyHash } from "./cache/verify.ts";
import { type ConfigDoc, ConfigFileError, parseOsloConfig } from "./config_file.ts";

export { isLoopback };
import type { FleetOptions } from "./fleet/fleet.ts";

export type AuthMode = "noauth" | "headers" | "keystone";
export type Command = "serve" | "prune" | "clean";

export interface ServeConfig {
  host: string;
  port: number;
  dataDir: string;
  cacheDir: string | undefined;
  auth: AuthMode;
  forceNoauth: boolean;
  /** Peers whose identity headers are believed (auth headers); default loopback, required off loopback. */
  trustedProxies: Cidr[] | undefined;
  insecureTestTokens: boolean;
  publicMetrics: boolean;
  maxRequestBodySize: number;
  imageSizeCap: number;
  cacheConcurrency: number;
  /** Which of an image's digests verifies a fill. */
  verifyHash: VerifyHash;
  maxSize: number;
  stallTime: number;
  maxQueue: number;
  shutdownTimeout: number;
  upstreamUrl: string | undefined;
  metadataCacheTime: number;
  upstreamTimeout: number;
  upstreamStallTimeout: number;
  publicEndpoint: string | undefined;
  policyFile: string | undefined;
  keystone: KeystoneOptions | undefined;
  debug: boolean;
  useJson: boolean;
  healthcheckMinFreePercent: number;
  healthcheckDisableFile: string | undefined;
  /** Set when a fleet database is configured. */
  fleet: FleetOptions | undefined;
}

type Kind = "string" | "count" | "bool";
interface Option {
  kind: Kind;
  env?: string;
  /** [section, key] in the config file */
  ini?: [string, string];
  default?: string;
  help: string;
}

/** Every option: a flag (--name), maybe an environment variable, maybe a config-file key. */
const OPTIONS: Record<string, Option> = {
  "config-file": { kind: "string", env: "GLANCE_CACHE_CONFIG_FILE", help: "glance-api.conf-style INI file" },
  host: {
    kind: "string",
    env: "GLANCE_CACHE_HOST",
    ini: ["DEFAULT", "bind_host"],
    default: "127.0.0.1",
    help: "address to listen on",
  },
  port: {
    kind: "count",
    env: "GLANCE_CACHE_PORT",
    ini: ["DEFAULT", "bind_port"],
    default: "9292",
    help: "port to listen on",
  },
  "data-dir": {
    kind: "string",
    env: "GLANCE_CACHE_DATA_DIR",
    ini: ["glance_cache_node", "data_dir"],
    default: "./data",
    help: "embedded image store (and the cache, unless --cache-dir)",
  },
  "cache-dir": {
    kind: "string",
    env: "GLANCE_CACHE_DIR",
    ini: ["DEFAULT", "image_cache_dir"],
    help: "the image cache (default DATA_DIR/cache)",
  },
  auth: {
    kind: "string",
    env: "GLANCE_CACHE_AUTH",
    ini: ["DEFAULT", "auth_strategy"],
    default: "noauth",
    help: "noauth | headers | keystone",
  },
  "force-noauth": {
    kind: "bool",
    env: "GLANCE_CACHE_FORCE_NOAUTH",
    ini: ["glance_cache_node", "force_noauth"],
    default: "false",
    help: "allow noauth off loopback",
  },
  "trusted-proxies": {
    kind: "string",
    env: "GLANCE_CACHE_TRUSTED_PROXIES",
    ini: ["glance_cache_node", "trusted_proxies"],
    help:
      "auth headers: CIDR list of proxies whose identity headers are believed (default loopback; required off loopback)",
  },
  "insecure-test-tokens": {
    kind: "bool",
    env: "GLANCE_CACHE_INSECURE_TEST_TOKENS",
    ini: ["glance_cache_node", "insecure_test_tokens"],
    default: "false",
    help: "auth headers: take X-Auth-Token user:project:role[,role] as that identity (tests only)",
  },
  "public-metrics": {
    kind: "bool",
    env: "GLANCE_CACHE_PUBLIC_METRICS",
    ini: ["glance_cache_node", "public_metrics"],
    default: "false",
    help: "serve /metrics without authentication (otherwise policy cache_list)",
  },
  "max-request-body-size": {
    kind: "count",
    env: "GLANCE_CACHE_MAX_REQUEST_BODY_SIZE",
    ini: ["oslo_middleware", "max_request_body_size"],
    default: "65536",
    help: "largest JSON request body, bytes",
  },
  "image-size-cap": {
    kind: "count",
    env: "GLANCE_CACHE_IMAGE_SIZE_CAP",
    ini: ["DEFAULT", "image_size_cap"],
    default: "1099511627776",
    help: "largest image upload into the embedded store, bytes",
  },
  "cache-concurrency": {
    kind: "count",
    env: "GLANCE_CACHE_CONCURRENCY",
    ini: ["glance_cache_node", "cache_concurrency"],
    default: "1",
    help: "queued images filled at once",
  },
  "image-cache-max-size": {
    kind: "count",
    env: "GLANCE_CACHE_MAX_SIZE",
    ini: ["DEFAULT", "image_cache_max_size"],
    default: String(10 * 1024 ** 3),
    help: "cache size cap, bytes",
  },
  "verify-hash": {
    kind: "string",
    env: "GLANCE_CACHE_VERIFY_HASH",
    ini: ["glance_cache_node", "verify_hash"],
    default: "os_hash_value",
    help: "digest a fill is verified with: os_hash_value (sha512, strong) or checksum (md5: faster, but weak)",
  },
  "image-cache-max-queue": {
    kind: "count",
    env: "GLANCE_CACHE_MAX_QUEUE",
    ini: ["glance_cache_node", "max_queue"],
    default: "1000",
    help: "images that may wait in the cache queue; a PUT beyond gets 409",
  },
  "image-cache-stall-time": {
    kind: "count",
    env: "GLANCE_CACHE_STALL_TIME",
    ini: ["DEFAULT", "image_cache_stall_time"],
    default: "86400",
    help: "incomplete files older than this (s) are cleaned",
  },
  "shutdown-timeout": {
    kind: "count",
    env: "GLANCE_CACHE_SHUTDOWN_TIMEOUT",
    ini: ["glance_cache_node", "shutdown_timeout"],
    default: "30",
    help: "on SIGTERM/SIGINT, wait this long (s) for downloads",
  },
  "upstream-url": {
    kind: "string",
    env: "GLANCE_CACHE_UPSTREAM_URL",
    ini: ["glance_cache_node", "upstream_url"],
    help: "an existing Glance to cache for (default: the embedded store)",
  },
  "metadata-cache-time": {
    kind: "count",
    env: "GLANCE_CACHE_METADATA_CACHE_TIME",
    ini: ["glance_cache_node", "metadata_cache_time"],
    default: "5",
    help: "seconds upstream image metadata is reused",
  },
  "upstream-timeout": {
    kind: "count",
    env: "GLANCE_CACHE_UPSTREAM_TIMEOUT",
    ini: ["glance_cache_node", "upstream_timeout"],
    default: "60",
    help: "seconds to the upstream's response headers (connecting included)",
  },
  "upstream-stall-timeout": {
    kind: "count",
    env: "GLANCE_CACHE_UPSTREAM_STALL_TIMEOUT",
    ini: ["glance_cache_node", "upstream_stall_timeout"],
    default: "60",
    help: "seconds an upstream transfer may go without a byte",
  },
  "public-endpoint": {
    kind: "string",
    env: "GLANCE_CACHE_PUBLIC_ENDPOINT",
    ini: ["DEFAULT", "public_endpoint"],
    help: "URL clients reach the node at, for links and Location (default: the request's Host)",
  },
  "policy-file": {
    kind: "string",
    env: "GLANCE_CACHE_POLICY_FILE",
    ini: ["oslo_policy", "policy_file"],
    help: "policy.yaml with cache_list, cache_image, cache_delete",
  },
  debug: {
    kind: "bool",
    env: "GLANCE_CACHE_DEBUG",
    ini: ["DEFAULT", "debug"],
    default: "false",
    help: "log DEBUG lines too",
  },
  "use-json": {
    kind: "bool",
    env: "GLANCE_CACHE_USE_JSON",
    ini: ["DEFAULT", "use_json"],
    default: "false",
    help: "log lines as JSON objects (default: readable text)",
  },
  "healthcheck-min-free-percent": {
    kind: "count",
    env: "GLANCE_CACHE_HEALTHCHECK_MIN_FREE_PERCENT",
    ini: ["healthcheck", "min_free_percent"],
    default: "5",
    help: "/healthcheck answers 503 below this much free space (%) on the cache filesystem",
  },
  "healthcheck-disable-file": {
    kind: "string",
    env: "GLANCE_CACHE_HEALTHCHECK_DISABLE_FILE",
    ini: ["healthcheck", "disable_by_file_path"],
    help: "/healthcheck answers 503 while this file exists (draining)",
  },
  "fleet-database-url": {
    kind: "string",
    env: "GLANCE_CACHE_FLEET_DATABASE_URL",
    ini: ["glance_cache_node", "fleet_database_url"],
    help: "MariaDB shared by a fleet of nodes, mysql+pymysql://user:pass@host/db (else [database] connection)",
  },
  "worker-self-reference-url": {
    kind: "string",
    env: "GLANCE_CACHE_WORKER_SELF_REFERENCE_URL",
    ini: ["DEFAULT", "worker_self_reference_url"],
    help: "this node's own URL, as peers and operators reach it (needed in a fleet)",
  },
  "fleet-site": {
    kind: "string",
    env: "GLANCE_CACHE_FLEET_SITE",
    ini: ["glance_cache_node", "site"],
    help: "this node's site: peer fills stay within a site",
  },
  "fleet-secret": {
    kind: "string",
    env: "GLANCE_CACHE_FLEET_SECRET",
    ini: ["glance_cache_node", "fleet_secret"],
    help: "shared secret authenticating peer reads (unset: no peer fills)",
  },
  "fleet-poll-interval": {
    kind: "count",
    env: "GLANCE_CACHE_FLEET_POLL_INTERVAL",
    ini: ["glance_cache_node", "fleet_poll_interval"],
    default: "2",
    help: "seconds between a node's rounds of fleet work (jobs, deletes, progress)",
  },
  "fleet-heartbeat-interval": {
    kind: "count",
    env: "GLANCE_CACHE_FLEET_HEARTBEAT_INTERVAL",
    ini: ["glance_cache_node", "fleet_heartbeat_interval"],
    default: "10",
    help: "seconds between heartbeats (a node is stale after max(3 of them, 30 s) without one)",
  },
  help: { kind: "bool", help: "this text" },
};

/** [keystone_authtoken] keys, as keystonemiddleware names them. */
const KEYSTONE_KEYS = [
  "auth_url",
  "www_authenticate_uri",
  "username",
  "password",
  "project_name",
  "user_domain_name",
  "project_domain_name",
  "token_cache_time",
  "auth_type",
  "http_connect_timeout",
];
/** Keys of glance-api.conf that mean nothing for this node but are harmless to find there. */
const TOLERATED: Record<string, string[]> = {
  DEFAULT: ["verbose", "use_stderr", "log_file", "log_dir", "image_cache_driver", "image_cache_sqlite_db"],
  paste_deploy: ["flavor", "config_file"],
  healthcheck: ["backends", "detailed", "path"],
};

export class ConfigError extends Error {}

export const USAGE = `Usage: mod.ts [serve|prune|clean] [options]
Options (flag, environment variable, config-file key; flags win over the environment, which wins over the file):
${
  Object.entries(OPTIONS)
    .map(([name, o]) =>
      `  --${name.padEnd(22)} ${o.help}${o.default ? ` (${o.default})` : ""}\n      ${o.env ?? ""}${
        o.ini ? `  [${o.ini[0]}] ${o.ini[1]}` : ""
      }`
    )
    .join("\n")
}
Config file only: [keystone_authtoken] ${KEYSTONE_KEYS.join(", ")}
Commands (the node must not be running on the same cache; it prunes and cleans by itself):
  prune   evict least recently used images until the cache is within its size
  clean   remove invalid files and stalled incomplete ones`;

export function parseConfig(
  argv: string[],
  env: Record<string, string | undefined>,
): { command: Command; config: ServeConfig } | "help" {
  const flagSpec = Object.fromEntries(
    Object.entries(OPTIONS).map(([name, o]) => [name, { type: o.kind === "bool" ? "boolean" : "string" }]),
  ) as Record<string, { type: "string" | "boolean" }>;
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: flagSpec, strict: true, allowPositionals: true }));
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) return "help";
  const command = (positionals[0] ?? "serve") as Command;
  if (!["serve", "prune", "clean"].includes(command) || positionals.length > 1) {
    throw new ConfigError(`unknown command: ${positionals.join(" ")}`);
  }

  const configFile = (values["config-file"] as string | undefined) ?? env.GLANCE_CACHE_CONFIG_FILE;
  const file = configFile ? readConfigFile(configFile) : {};
  const raw = (name: string): string | undefined => {
    const o = OPTIONS[name];
    const flag = values[name];
    if (flag !== undefined) return String(flag);
    if (o.env && env[o.env] !== undefined) return env[o.env];
    if (o.ini) {
      const v = file[o.ini[0]]?.[o.ini[1]];
      if (v !== undefined) return v;
    }
    return o.default;
  };
  const str = (name: string) => raw(name) || undefined;
  const count = (name: string): number => {
    const v = raw(name) ?? "";
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) {
      throw new ConfigError(`${describe(name)}: not a non-negative integer: ${JSON.stringify(v)}`);
    }
    return n;
  };
  const bool = (name: string): boolean => {
    const v = (raw(name) ?? "false").toLowerCase();
    if (["true", "1", "yes", "on"].includes(v)) return true;
    if (["false", "0", "no", "off", ""].includes(v)) return false;
    throw new ConfigError(`${describe(name)}: not a boolean: ${JSON.stringify(v)}`);
  };

  const cidrs = (name: string): Cidr[] | undefined => {
    const v = str(name);
    if (v === undefined) return undefined;
    try {
      return parseCidrList(v);
    } catch (err) {
      throw new ConfigError(`${describe(name)}: ${(err as Error).message}`);
    }
  };

  const auth = raw("auth") as AuthMode;
  if (!["noauth", "headers", "keystone"].includes(auth)) {
    throw new ConfigError(`${describe("auth")}: must be noauth, headers or keystone, not ${JSON.stringify(auth)}`);
  }
  const port = count("port");
  if (port > 65535) throw new ConfigError(`${describe("port")}: not a port: ${port}`);
  const concurrency = count("cache-concurrency");
  if (concurrency < 1) throw new ConfigError(`${describe("cache-concurrency")}: must be at least 1`);
  const verifyHash = raw("verify-hash") as VerifyHash;
  if (!VERIFY_HASHES.includes(verifyHash)) {
    throw new ConfigError(
      `${describe("verify-hash")}: must be ${VERIFY_HASHES.join(" or ")}, not ${JSON.stringify(verifyHash)}`,
    );
  }
  const upstreamUrl = str("upstream-url");
  if (upstreamUrl && !/^https?:\/\/[^/]+/.test(upstreamUrl)) {
    throw new ConfigError(`${describe("upstream-url")}: not an http(s) URL: ${upstreamUrl}`);
  }
  const publicEndpoint = str("public-endpoint");
  if (publicEndpoint && !/^https?:\/\/[^/?#]+[^?#]*$/.test(publicEndpoint)) {
    throw new ConfigError(`${describe("public-endpoint")}: not an http(s) URL: ${publicEndpoint}`);
  }
  for (const name of ["upstream-timeout", "upstream-stall-timeout"]) {
    if (count(name) < 1) throw new ConfigError(`${describe(name)}: must be at least 1 second`);
  }

  const config: ServeConfig = {
    host: raw("host")!,
    port,
    dataDir: raw("data-dir")!,
    cacheDir: str("cache-dir"),
    auth,
    forceNoauth: bool("force-noauth"),
    trustedProxies: cidrs("trusted-proxies"),
    insecureTestTokens: bool("insecure-test-tokens"),
    publicMetrics: bool("public-metrics"),
    maxRequestBodySize: count("max-request-body-size"),
    imageSizeCap: count("image-size-cap"),
    cacheConcurrency: concurrency,
    verifyHash,
    maxSize: count("image-cache-max-size"),
    stallTime: count("image-cache-stall-time"),
    maxQueue: count("image-cache-max-queue"),
    shutdownTimeout: count("shutdown-timeout"),
    upstreamUrl,
    metadataCacheTime: count("metadata-cache-time"),
    upstreamTimeout: count("upstream-timeout"),
    upstreamStallTimeout: count("upstream-stall-timeout"),
    publicEndpoint,
    policyFile: str("policy-file"),
    keystone: keystoneOptions(file.keystone_authtoken),
    debug: bool("debug"),
    useJson: bool("use-json"),
    healthcheckMinFreePercent: count("healthcheck-min-free-percent"),
    healthcheckDisableFile: str("healthcheck-disable-file"),
    fleet: fleetOptions(str("fleet-database-url") ?? (file.database?.connection || undefined), {
      selfUrl: str("worker-self-reference-url"),
      site: str("fleet-site"),
      secret: str("fleet-secret"),
      pollInterval: count("fleet-poll-interval"),
      heartbeatInterval: count("fleet-heartbeat-interval"),
    }),
  };
  if (config.healthcheckMinFreePercent > 100) {
    throw new ConfigError(`${describe("healthcheck-min-free-percent")}: a percentage, at most 100`);
  }
  if (config.auth === "noauth" && !isLoopback(config.host) && !config.forceNoauth) {
    throw new ConfigError(
      `auth noauth makes every caller an admin: refusing to listen on ${config.host} (set --force-noauth)`,
    );
  }
  if (config.auth === "keystone" && !config.keystone) {
    throw new ConfigError("auth keystone needs a [keystone_authtoken] section in the config file");
  }
  if (config.auth === "headers" && !isLoopback(config.host) && !config.trustedProxies?.length) {
    throw new ConfigError(
      `auth headers believes identity headers only from trusted proxies: refusing to listen on ${config.host} without ${
        describe("trusted-proxies")
      }`,
    );
  }
  const workers = file.DEFAULT?.workers;
  if (workers !== undefined && !/^[01]$/.test(workers.trim())) {
    throw new ConfigError(
      `[DEFAULT] workers = ${workers}: this node serves from one process with asynchronous I/O; run one node per cache directory (workers 0 or 1)`,
    );
  }
  return { command, config };
}

function fleetOptions(
  databaseUrl: string | undefined,
  o: { selfUrl?: string; site?: string; secret?: string; pollInterval: number; heartbeatInterval: number },
): FleetOptions | undefined {
  if (!databaseUrl) return undefined;
  if (!/^(mysql|mariadb)(\+[a-z0-9_]+)?:\/\//i.test(databaseUrl)) {
    throw new ConfigError(`${describe("fleet-database-url")}: only MariaDB/MySQL (mysql+pymysql://...) is supported`);
  }
  // As Glance's centralized_db driver: a node of a shared cache must say how it is reached.
  if (!o.selfUrl) {
    throw new ConfigError(`a fleet database needs ${describe("worker-self-reference-url")}, this node's own URL`);
  }
  if (!/^https?:\/\/[^/]+/.test(o.selfUrl)) {
    throw new ConfigError(`${describe("worker-self-reference-url")}: not an http(s) URL: ${o.selfUrl}`);
  }
  if (o.pollInterval < 1 || o.heartbeatInterval < 1) {
    throw new ConfigError("fleet poll and heartbeat intervals must be at least 1 second");
  }
  return {
    databaseUrl,
    selfUrl: o.selfUrl.replace(/\/+$/, ""),
    site: o.site,
    secret: o.secret,
    pollInterval: o.pollInterval,
    heartbeatInterval: o.heartbeatInterval,
  };
}

function describe(name: string): string {
  const o = OPTIONS[name];
  return `--${name}${o.ini ? ` ([${o.ini[0]}] ${o.ini[1]})` : ""}`;
}

/** Reads the file and refuses options it does not know, naming each. */
function readConfigFile(path: string): ConfigDoc {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
  let doc: ConfigDoc;
  try {
    doc = parseOsloConfig(text);
  } catch (err) {
    if (err instanceof ConfigFileError) throw new ConfigError(`config file ${path}: ${err.message}`);
    throw err;
  }
  const problems: string[] = [];
  for (const [section, body] of Object.entries(doc)) {
    for (const key of Object.keys(body)) {
      if (!knownKey(section, key)) problems.push(`[${section}] ${key}: unknown option`);
    }
  }
  if (problems.length) throw new ConfigError(`config file ${path}:\n  ${problems.join("\n  ")}`);
  return doc;
}

function knownKey(section: string, key: string): boolean {
  if (section === "keystone_authtoken") return KEYSTONE_KEYS.includes(key);
  if (section === "DEFAULT" && key === "workers") return true;
  if (section === "database" && key === "connection") return true;
  if (TOLERATED[section]?.includes(key)) return true;
  return Object.values(OPTIONS).some((o) => o.ini?.[0] === section && o.ini[1] === key);
}

function keystoneOptions(section: Record<string, string> | undefined): KeystoneOptions | undefined {
  if (!section) return undefined;
  const need = (k: string) => {
    const v = section[k];
    if (!v) throw new ConfigError(`[keystone_authtoken] ${k} is required`);
    return v;
  };
  if (section.auth_type && section.auth_type !== "password") {
    throw new ConfigError(`[keystone_authtoken] auth_type = ${section.auth_type}: only password is supported`);
  }
  const cacheTime = section.token_cache_time ?? "60";
  if (!/^\d+$/.test(cacheTime)) {
    throw new ConfigError(`[keystone_authtoken] token_cache_time: not a number of seconds: ${cacheTime}`);
  }
  const timeout = section.http_connect_timeout ?? "30";
  if (!/^\d+$/.test(timeout) || Number(timeout) < 1) {
    throw new ConfigError(`[keystone_authtoken] http_connect_timeout: not a number of seconds: ${timeout}`);
  }
  return {
    authUrl: need("auth_url"),
    wwwAuthenticateUri: section.www_authenticate_uri,
    username: need("username"),
    password: need("password"),
    projectName: need("project_name"),
    userDomainName: section.user_domain_name ?? "Default",
    projectDomainName: section.project_domain_name ?? "Default",
    tokenCacheTime: Number(cacheTime),
    timeout: Number(timeout),
  };
}
