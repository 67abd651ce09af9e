// Every option of the node, declared once: flag (its environment variable follows), config-file key, kind, default, help, field.
import { VERIFY_HASHES } from "../cache/verify.ts";
import type { Decl, Group } from "./kinds.ts";
import { KEYSTONE_AUTHTOKEN, TOLERATED } from "./file_options.ts";
import { FLEET } from "./fleet_options.ts";
import { BANDWIDTH_LIMITS, CONNECTION_LIMITS, UPLOAD_LIMITS } from "./limit_options.ts";
import { UPSTREAM } from "./upstream_options.ts";
import { LOG_OPTIONS } from "./log_options.ts";

/**
 * The option table, in --help's order. A key is the field the value lands in (AppOptions, or the server's own
 * fields with use "serve"); a group is a nested object of AppOptions. Types, parsing, --help and
 * docs/configuration.md are all derived from it.
 */
export const OPTIONS = {
  configFile: {
    flag: "config-file",
    kind: "string",
    use: "parse",
    help: "glance-api.conf-style INI file",
  },
  host: {
    flag: "host",
    ini: ["DEFAULT", "bind_host"],
    kind: "string",
    default: "127.0.0.1",
    use: "serve",
    help: "address to listen on",
  },
  port: {
    flag: "port",
    ini: ["DEFAULT", "bind_port"],
    kind: "count",
    default: 9292,
    check: (n, name) => n > 65535 ? `${name}: not a port: ${n}` : undefined,
    use: "serve",
    help: "port to listen on",
  },
  certFile: {
    flag: "cert-file",
    ini: ["DEFAULT", "cert_file"],
    kind: "string",
    use: "serve",
    help: "serve HTTPS with this PEM certificate (chain); with key_file",
  },
  keyFile: {
    flag: "key-file",
    ini: ["DEFAULT", "key_file"],
    kind: "string",
    use: "serve",
    help: "the PEM private key of cert_file",
  },
  caFile: {
    flag: "ca-file",
    ini: ["DEFAULT", "ca_file"],
    kind: "string",
    help: "PEM CA bundle trusted for https upstream_url and fleet peers (default: the runtime's CAs)",
  },
  dataDir: {
    flag: "data-dir",
    ini: ["glance_cache_node", "data_dir"],
    kind: "string",
    default: "./data",
    required: true,
    help: "embedded image store (and the cache, unless --cache-dir)",
  },
  cacheDir: {
    flag: "cache-dir",
    oldEnv: "GLANCE_CACHE_DIR",
    ini: ["DEFAULT", "image_cache_dir"],
    kind: "string",
    help: "the image cache (default DATA_DIR/cache)",
  },
  auth: {
    flag: "auth",
    ini: ["DEFAULT", "auth_strategy"],
    kind: "enum",
    values: ["noauth", "headers", "keystone"],
    default: "noauth",
    help: "noauth | headers | keystone",
  },
  forceNoauth: {
    flag: "force-noauth",
    ini: ["glance_cache_node", "force_noauth"],
    kind: "bool",
    default: false,
    help: "allow noauth off loopback",
  },
  trustedProxies: {
    flag: "trusted-proxies",
    ini: ["glance_cache_node", "trusted_proxies"],
    kind: "cidrs",
    help:
      "auth headers: CIDR list of proxies whose identity headers are believed (default loopback; required off loopback)",
  },
  insecureTestTokens: {
    flag: "insecure-test-tokens",
    ini: ["glance_cache_node", "insecure_test_tokens"],
    kind: "bool",
    default: false,
    help: "auth headers: take X-Auth-Token user:project:role[,role] as that identity (tests only)",
  },
  publicMetrics: {
    flag: "public-metrics",
    ini: ["glance_cache_node", "public_metrics"],
    kind: "bool",
    default: false,
    help: "serve /metrics without authentication (otherwise policy cache_list)",
  },
  tempUrlKey: {
    flag: "temp-url-key",
    ini: ["glance_cache_node", "temp_url_key"],
    kind: "string",
    help: "key of temp URLs (Swift's HMAC-SHA256 TempURL) that download an image without a token (unset: none)",
  },
  maxRequestBodySize: {
    flag: "max-request-body-size",
    ini: ["oslo_middleware", "max_request_body_size"],
    kind: "count",
    default: 65536,
    help: "largest JSON request body, bytes",
  },
  imageSizeCap: {
    flag: "image-size-cap",
    ini: ["DEFAULT", "image_size_cap"],
    kind: "count",
    default: 1099511627776,
    help: "largest image upload into the embedded store, bytes",
  },
  ...UPLOAD_LIMITS,
  cacheConcurrency: {
    flag: "cache-concurrency",
    oldEnv: "GLANCE_CACHE_CONCURRENCY",
    ini: ["glance_cache_node", "cache_concurrency"],
    kind: "count",
    default: 1,
    check: (n, name) => n < 1 ? `${name}: must be at least 1` : undefined,
    help: "queued images filled at once",
  },
  maxSize: {
    flag: "image-cache-max-size",
    oldEnv: "GLANCE_CACHE_MAX_SIZE",
    ini: ["DEFAULT", "image_cache_max_size"],
    kind: "count",
    default: 10 * 1024 ** 3,
    help:
      "cache size cap, bytes: committed files, fills in progress and removed files still being read never hold more",
  },
  highWatermark: {
    flag: "image-cache-high-watermark",
    ini: ["glance_cache_node", "image_cache_high_watermark"],
    kind: "count",
    default: 95,
    check: (n, name) => n < 1 || n > 100 ? `${name}: must be a percent from 1 to 100` : undefined,
    help: "percent of image_cache_max_size above which eviction starts",
  },
  lowWatermark: {
    flag: "image-cache-low-watermark",
    ini: ["glance_cache_node", "image_cache_low_watermark"],
    kind: "count",
    default: 85,
    check: (n, name) => n > 100 ? `${name}: must be a percent from 0 to 100` : undefined,
    help: "percent of image_cache_max_size eviction frees down to (at most the high watermark)",
  },
  maxIdle: {
    flag: "image-cache-max-idle",
    ini: ["glance_cache_node", "image_cache_max_idle"],
    kind: "count",
    default: 0,
    help: "seconds without a read after which a cached image (not pinned) is removed; 0: never",
  },
  verifyHash: {
    flag: "verify-hash",
    ini: ["glance_cache_node", "verify_hash"],
    kind: "enum",
    values: VERIFY_HASHES,
    default: "os_hash_value",
    help: "digest a fill is verified with: os_hash_value (sha512, strong) or checksum (md5: faster, but weak)",
  },
  maxQueue: {
    flag: "image-cache-max-queue",
    oldEnv: "GLANCE_CACHE_MAX_QUEUE",
    ini: ["glance_cache_node", "max_queue"],
    kind: "count",
    default: 1000,
    help: "images that may wait in the cache queue; a PUT beyond gets 409",
  },
  stallTime: {
    flag: "image-cache-stall-time",
    oldEnv: "GLANCE_CACHE_STALL_TIME",
    ini: ["DEFAULT", "image_cache_stall_time"],
    kind: "count",
    default: 86400,
    help: "incomplete files older than this (s) are cleaned",
  },
  ...CONNECTION_LIMITS,
  ...BANDWIDTH_LIMITS,
  shutdownTimeout: {
    flag: "shutdown-timeout",
    ini: ["glance_cache_node", "shutdown_timeout"],
    kind: "count",
    default: 30,
    use: "serve",
    help: "on SIGTERM/SIGINT, wait this long (s) for downloads",
  },
  upstream: UPSTREAM,
  publicEndpoint: {
    flag: "public-endpoint",
    ini: ["DEFAULT", "public_endpoint"],
    kind: "url",
    // A query or fragment would end up inside every link built on it.
    check: (v, name) => /[?#]/.test(v) ? `${name}: not an http(s) URL: ${v}` : undefined,
    help: "URL clients reach the node at, for links and Location (default: the request's Host)",
  },
  policyFile: {
    flag: "policy-file",
    ini: ["oslo_policy", "policy_file"],
    kind: "string",
    use: "serve",
    help: "policy.yaml with cache_list, cache_image, cache_delete",
  },
  debug: {
    flag: "debug",
    ini: ["DEFAULT", "debug"],
    kind: "bool",
    default: false,
    help: "log DEBUG lines too",
  },
  logJson: {
    flag: "use-json",
    ini: ["DEFAULT", "use_json"],
    kind: "bool",
    default: false,
    help: "log lines as JSON objects (default: readable text)",
  },
  ...LOG_OPTIONS,
  healthcheck: {
    when: "always",
    fields: {
      minFreePercent: {
        flag: "healthcheck-min-free-percent",
        ini: ["healthcheck", "min_free_percent"],
        kind: "count",
        default: 5,
        check: (n, name) => n > 100 ? `${name}: a percentage, at most 100` : undefined,
        help: "/healthcheck answers 503 below this much free space (%) on the cache filesystem",
      },
      disableByFilePath: {
        flag: "healthcheck-disable-file",
        ini: ["healthcheck", "disable_by_file_path"],
        kind: "string",
        help: "/healthcheck answers 503 while this file exists (draining)",
      },
    },
  },
  fleet: FLEET,
  keystone: KEYSTONE_AUTHTOKEN,
  ...TOLERATED,
  help: { flag: "help", env: false, kind: "bool", use: "parse", help: "this text" },
} as const satisfies Record<string, Decl | Group>;
