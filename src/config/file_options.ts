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
    regionName: {
      ini: [SECTION, "region_name"],
      kind: "string",
      help:
        "validate tokens at the identity endpoint of this region in the node's service catalog (with interface; default: auth_url)",
    },
    interface: {
      ini: [SECTION, "interface"],
      kind: "enum",
      values: ["public", "internal", "admin"],
      help:
        "validate tokens at the identity endpoint of this interface in the node's service catalog (default: auth_url)",
    },
    serviceTokenRoles: {
      ini: [SECTION, "service_token_roles"],
      kind: "string",
      default: "service",
      help: "an X-Service-Token must hold one of these roles (comma-separated) to count as a service's",
    },
    serviceTokenRolesRequired: {
      ini: [SECTION, "service_token_roles_required"],
      kind: "bool",
      default: false,
      help:
        "refuse (401) a request whose X-Service-Token lacks service_token_roles; false: accept it with a warning, as keystonemiddleware does",
    },
    memcachedServers: {
      ini: [SECTION, "memcached_servers"],
      kind: "string",
      check: (v, name) =>
        v.split(",").every((s) => /^(inet6?:)?(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d+$/.test(s.trim()))
          ? undefined
          : `${name}: not a list of host:port: ${v}`,
      help:
        "host:port list: validated tokens shared by the nodes through memcached for token_cache_time (default: this node's memory)",
    },
    memcacheSecurityStrategy: {
      ini: [SECTION, "memcache_security_strategy"],
      kind: "string",
      check: (v, name) =>
        /^(none|mac|encrypt)$/i.test(v) ? undefined : `${name}: must be None, MAC or ENCRYPT, not ${JSON.stringify(v)}`,
      help: "MAC: shared tokens signed; ENCRYPT: encrypted and signed (both with memcache_secret_key); None",
    },
    memcacheSecretKey: {
      ini: [SECTION, "memcache_secret_key"],
      kind: "string",
      help: "the nodes' shared secret for memcache_security_strategy",
    },
  },
} as const satisfies Group;

/** Keys of glance-api.conf the node reads only to refuse a value it cannot honour (others it ignores: foreign.ts). */
export const TOLERATED = {
  imageCacheDriver: {
    ini: [["DEFAULT", "image_cache_driver"]],
    kind: "tolerated",
    check: (v, name) =>
      ["centralized_db", "sqlite", "xattr"].includes(v.trim())
        ? undefined
        : `${name} = ${v}: not one of Glance's cache drivers (centralized_db, sqlite, xattr)`,
    help:
      "the node keeps its own index; as in Glance, [database] connection is the cache's (a fleet's) only with centralized_db (the default): with sqlite or xattr it is ignored",
  },
  workers: {
    ini: [["DEFAULT", "workers"]],
    kind: "tolerated",
    check: (v, name) =>
      /^[01]$/.test(v.trim())
        ? undefined
        : `${name} = ${v}: this node serves from one process with asynchronous I/O; run one node per cache directory (workers 0 or 1)`,
    help:
      "0 or 1 only: one process serves the port (asynchronous I/O, fills in threads); for more, run several nodes, each on its own cache directory, as a fleet",
  },
} as const satisfies Record<string, Decl>;
