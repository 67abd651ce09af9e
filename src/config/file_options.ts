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
  },
} as const satisfies Group;

/** Keys of glance-api.conf the node reads only to refuse a value it cannot honour (others it ignores: foreign.ts). */
export const TOLERATED = {
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
