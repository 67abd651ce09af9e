// Keys read only from the config file: [keystone_authtoken] as keystonemiddleware names it, and Glance's we ignore.
import type { Decl, Group } from "./kinds.ts";

const SECTION = "keystone_authtoken";

/** [keystone_authtoken]: validates tokens (auth keystone) and gives the node its own identity upstream. */
export const KEYSTONE_AUTHTOKEN = {
  when: "section",
  fields: {
    authUrl: { ini: [SECTION, "auth_url"], kind: "string", required: true, help: "Keystone, with or without /v3" },
    wwwAuthenticateUri: {
      ini: [SECTION, "www_authenticate_uri"],
      kind: "string",
      help: "where 401 answers send clients (default auth_url)",
    },
    username: { ini: [SECTION, "username"], kind: "string", required: true, help: "the node's own user" },
    password: { ini: [SECTION, "password"], kind: "string", required: true, help: "its password" },
    projectName: { ini: [SECTION, "project_name"], kind: "string", required: true, help: "its project" },
    userDomainName: {
      ini: [SECTION, "user_domain_name"],
      kind: "string",
      default: "Default",
      required: true,
      help: "the user's domain",
    },
    projectDomainName: {
      ini: [SECTION, "project_domain_name"],
      kind: "string",
      default: "Default",
      required: true,
      help: "the project's domain",
    },
    tokenCacheTime: {
      ini: [SECTION, "token_cache_time"],
      kind: "count",
      default: 60,
      required: true,
      invalid: "not a number of seconds",
      help: "seconds a validated token is trusted without asking Keystone again",
    },
    authType: {
      ini: [SECTION, "auth_type"],
      kind: "string",
      use: "parse",
      check: (v, name) => !v || v === "password" ? undefined : `${name} = ${v}: only password is supported`,
      help: "password (the only plugin supported)",
    },
    timeout: {
      ini: [SECTION, "http_connect_timeout"],
      kind: "count",
      default: 30,
      invalid: "not a number of seconds",
      check: (n, name) => n < 1 ? `${name}: not a number of seconds: ${n}` : undefined,
      help: "seconds for any request to Keystone, connecting included",
    },
    cafile: {
      ini: [SECTION, "cafile"],
      kind: "string",
      help: "PEM CA bundle trusted for an https auth_url (default: the runtime's CAs)",
    },
    insecure: {
      ini: [SECTION, "insecure"],
      kind: "bool",
      default: false,
      help: "do not verify Keystone's certificate (an explicit choice; never the default)",
    },
  },
} as const satisfies Group;

/** Keys of glance-api.conf that mean nothing for this node but are harmless to find there. */
export const TOLERATED = {
  glanceLogging: {
    ini: [["DEFAULT", "verbose"], ["DEFAULT", "use_stderr"], ["DEFAULT", "log_file"], ["DEFAULT", "log_dir"]],
    kind: "tolerated",
    help: "Glance's logging: this node logs to standard output (see debug, use_json)",
  },
  glanceCacheDriver: {
    ini: [["DEFAULT", "image_cache_driver"], ["DEFAULT", "image_cache_sqlite_db"]],
    kind: "tolerated",
    help: "Glance's cache driver: this node keeps its own index in the cache directory",
  },
  workers: {
    ini: [["DEFAULT", "workers"]],
    kind: "tolerated",
    check: (v, name) =>
      /^[01]$/.test(v.trim())
        ? undefined
        : `${name} = ${v}: this node serves from one process with asynchronous I/O; run one node per cache directory (workers 0 or 1)`,
    help: "0 or 1 only: one process per cache directory",
  },
  pasteDeploy: {
    ini: [["paste_deploy", "flavor"], ["paste_deploy", "config_file"]],
    kind: "tolerated",
    help: "Glance's WSGI pipeline: this node has none",
  },
  healthcheckMiddleware: {
    ini: [["healthcheck", "backends"], ["healthcheck", "detailed"], ["healthcheck", "path"]],
    kind: "tolerated",
    help: "oslo.middleware's healthcheck settings: /healthcheck has fixed checks (see min_free_percent)",
  },
} as const satisfies Record<string, Decl>;
