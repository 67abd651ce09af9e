// The fleet's options: Glance's names where Glance has one ([database] connection, worker_self_reference_url).
import type { Group } from "./kinds.ts";

/** A fleet of nodes sharing a MariaDB database: present when a database is named (see docs/fleet.md). */
export const FLEET = {
  when: "databaseUrl",
  fields: {
    databaseUrl: {
      flag: "fleet-database-url",
      ini: [["glance_cache_node", "fleet_database_url"], ["database", "connection"]],
      kind: "string",
      required: true,
      check: (v, name) =>
        /^(mysql|mariadb)(\+[a-z0-9_]+)?:\/\//i.test(v)
          ? undefined
          : `${name}: only MariaDB/MySQL (mysql+pymysql://...) is supported`,
      help: "MariaDB shared by a fleet of nodes, mysql+pymysql://user:pass@host/db (else [database] connection)",
    },
    databaseHosts: {
      flag: "fleet-database-hosts",
      ini: ["glance_cache_node", "fleet_database_hosts"],
      kind: "string",
      check: (v, name) =>
        v.split(",").every((h) => /^\s*(\[[^\]]+\]|[^:\s,]+)(:\d{1,5})?\s*$/.test(h))
          ? undefined
          : `${name}: a comma-separated list of host or host:port: ${v}`,
      help:
        "more members of a Galera cluster, host:port,...: tried in order after the URL's host when it fails (same user, database, TLS)",
    },
    selfUrl: {
      flag: "worker-self-reference-url",
      ini: ["DEFAULT", "worker_self_reference_url"],
      kind: "string",
      required: true,
      help: "this node's own URL, as peers and operators reach it (needed in a fleet)",
    },
    site: {
      flag: "fleet-site",
      ini: ["glance_cache_node", "site"],
      kind: "string",
      help: "this node's site: peer fills stay within a site",
    },
    secret: {
      flag: "fleet-secret",
      ini: ["glance_cache_node", "fleet_secret"],
      kind: "string",
      help: "shared secret authenticating peer reads (unset: no peer fills)",
    },
    pollInterval: {
      flag: "fleet-poll-interval",
      ini: ["glance_cache_node", "fleet_poll_interval"],
      kind: "count",
      default: 2,
      help: "seconds between a node's rounds of fleet work (jobs, deletes, progress)",
    },
    heartbeatInterval: {
      flag: "fleet-heartbeat-interval",
      ini: ["glance_cache_node", "fleet_heartbeat_interval"],
      kind: "count",
      default: 10,
      help: "seconds between heartbeats (a node is stale after max(3 of them, 30 s) without one)",
    },
  },
} as const satisfies Group;
