// The fleet's shared database: Glance-style connection URLs and a mysql2 pool on one server (failover_pool.ts: several).
import mysql from "mysql2/promise";
import { databaseSsl } from "./database_tls.ts";

/** The fleet's connection pool (sql.ts): a mysql2 pool, or the failover pool over several members. */
export type { Pool } from "./sql.ts";
/** The schema's migrations (migrations.ts), for the fleet and the tests that set up older schemas. */
export { migrate, SCHEMA_VERSION } from "./migrations.ts";

/**
 * Accepts Glance's [database] connection form (mysql+pymysql://user:pass@host:3306/glance?charset=utf8)
 * as well as plain mysql:// URLs; the driver part is ignored, and of the query options unix_socket and PyMySQL's
 * TLS ones (ssl_ca, ssl_cert, ssl_key, ssl_verify_cert, ...: database_tls.ts) are read.
 */
export function connectionOptions(url: string): mysql.PoolOptions {
  const m = /^(mysql|mariadb)(\+[a-z0-9_]+)?:\/\//i.exec(url);
  if (!m) throw new Error(`fleet database: not a mysql:// or mysql+pymysql:// URL: ${redact(url)}`);
  const u = new URL(`mysql://${url.slice(m[0].length)}`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (!database) throw new Error(`fleet database: the URL names no database: ${redact(url)}`);
  const socket = u.searchParams.get("unix_socket");
  let ssl;
  try {
    ssl = databaseSsl(u.searchParams);
  } catch (err) {
    throw new Error(`fleet database ${redact(url)}: ${(err as Error).message}`);
  }
  return {
    host: u.hostname || "127.0.0.1",
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username) || "root",
    password: decodeURIComponent(u.password) || undefined,
    database,
    ...(socket ? { socketPath: socket } : {}),
    ...(ssl ? { ssl } : {}),
  };
}

/** The URL with its password hidden, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
}

/** One member of a database cluster: the URL's host, or one of [glance_cache_node] fleet_database_hosts. */
export interface Member {
  host: string;
  port: number;
}

/**
 * The members named by fleet_database_hosts ("db1:3306,db2,[fd00::3]:3307"; the port defaults to 3306), after
 * `first` (the URL's own host), each once, in the order given.
 */
export function parseHosts(list: string | undefined, first: Member): Member[] {
  const members = [first];
  for (const item of (list ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(?:\[([^\]]+)\]|([^:\s]+))(?::(\d{1,5}))?$/.exec(item);
    if (!m || (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535))) {
      throw new Error(`fleet database hosts: not host or host:port: ${item}`);
    }
    const member = { host: m[1] ?? m[2], port: m[3] ? Number(m[3]) : 3306 };
    if (!members.some((o) => o.host === member.host && o.port === member.port)) members.push(member);
  }
  return members;
}

/**
 * A small pool on the fleet database named by a Glance-style URL (on `member` instead of the URL's host when
 * given, with the URL's user, database and TLS); nothing connects until the first query.
 */
export function openPool(url: string, member?: Member): mysql.Pool {
  const { socketPath: _, ...overTcp } = connectionOptions(url);
  return mysql.createPool({
    ...(member ? { ...overTcp, host: member.host, port: member.port } : connectionOptions(url)),
    connectionLimit: 4,
    // A quiet node needs one connection (its rounds are serialized); those a burst opened close again within a
    // second, so a fleet holds about one connection per node rather than four (docs/fleet.md, "At 500 nodes").
    maxIdle: 1,
    idleTimeout: 60_000,
    connectTimeout: 5000,
    // Times cross the wire as numbers (UNIX_TIMESTAMP), never as zone-dependent Date objects.
    decimalNumbers: true,
    supportBigNumbers: true,
    timezone: "Z",
  });
}
