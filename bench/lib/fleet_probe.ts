// What bench/fleet_scale.ts reads off a running fleet: database counters and connections, node processes' CPU and memory.
import { readFileSync } from "node:fs";
import mysql from "mysql2/promise";
import { connectionOptions } from "../../src/fleet/database.ts";
import { cpuSeconds } from "./measure.ts";

/** The SHOW GLOBAL STATUS counters the idle window compares (statements by kind, and Galera's write sets). */
export const COUNTERS = [
  "Questions",
  "Com_select",
  "Com_insert",
  "Com_insert_select",
  "Com_update",
  "Com_update_multi",
  "Com_delete",
  "Com_delete_multi",
  "Com_replace",
  "Com_begin",
  "Com_commit",
  "Com_rollback",
  "wsrep_replicated",
] as const;

/** One reading of every database member: counters summed over the members, and the fleet's connections. */
export interface DbReading {
  at: number;
  counters: Record<string, number>;
  /** Client connections other than the probe's own, summed over the members. */
  connections: number;
  /** Per member: its connections. */
  perMember: number[];
  maxUsedConnections: number;
}

/** Reads counters and connections of each member (one short-lived connection each, not counted). */
export async function readDb(urls: string[]): Promise<DbReading> {
  const counters: Record<string, number> = Object.fromEntries(COUNTERS.map((c) => [c, 0]));
  const perMember: number[] = [];
  let maxUsed = 0;
  for (const url of urls) {
    const conn = await mysql.createConnection({ ...connectionOptions(url), connectTimeout: 3000 });
    try {
      const [status] = (await conn.query("SHOW GLOBAL STATUS")) as unknown as [
        { Variable_name: string; Value: string }[],
      ];
      const byName = new Map(status.map((r) => [r.Variable_name.toLowerCase(), Number(r.Value)]));
      for (const c of COUNTERS) counters[c] += byName.get(c.toLowerCase()) ?? 0;
      maxUsed += byName.get("max_used_connections") ?? 0;
      const [procs] = (await conn.query(
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND COMMAND <> 'Daemon' AND USER NOT IN ('system user', 'event_scheduler')",
      )) as unknown as [{ n: number }[]];
      perMember.push(Number(procs[0].n));
    } finally {
      await conn.end();
    }
  }
  return {
    at: performance.now(),
    counters,
    connections: perMember.reduce((a, b) => a + b, 0),
    perMember,
    maxUsedConnections: maxUsed,
  };
}

/** Per second between two readings, per counter; the probe's own statements between them are not subtracted. */
export function ratesBetween(a: DbReading, b: DbReading): Record<string, number> {
  const s = (b.at - a.at) / 1000;
  return Object.fromEntries(COUNTERS.map((c) => [c, (b.counters[c] - a.counters[c]) / s]));
}

/** Resident memory of a process now, MB (VmRSS). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU seconds of each process, all threads. */
export function cpuOf(pids: number[]): number[] {
  return pids.map((p) => {
    try {
      return cpuSeconds(p);
    } catch {
      return NaN;
    }
  });
}

/** The q-quantile (0..1) of xs, nearest rank. */
export function quantile(xs: number[], q: number): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
