// The database under bench/fleet_scale.ts: one MariaDB, or a Galera cluster of 3 (test/helpers/galera.ts), and how nodes name it.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startMariaDb } from "../../test/helpers/mariadb.ts";
import { startGalera } from "../../test/helpers/galera.ts";

/** A database for the fleet: its members' URLs, what each node is given, the servers' pids, a crash of one member. */
export interface DbCluster {
  urls: string[];
  /** The flags node `n` gets to reach the database. */
  nodeArgs(n: number): string[];
  /** The running servers' pids (for their CPU). */
  pids(): number[];
  /** SIGKILL of member i; undefined for a single server. */
  kill?: (i: number) => Promise<void>;
  close(): Promise<void>;
}

/** Whether this tree's nodes take failover members (the Galera branch's option). */
export const FAILOVER = existsSync(new URL("../../src/config/fleet_options.ts", import.meta.url)) &&
  readFileSync(new URL("../../src/config/fleet_options.ts", import.meta.url), "utf8").includes(
    '"fleet-database-hosts"',
  );

const pidIn = (dir: string) => {
  try {
    return Number(readFileSync(join(dir, "pid"), "utf8").trim());
  } catch {
    return NaN;
  }
};

/** One MariaDB, or a three-member Galera cluster over which the nodes are spread (node n on member n mod 3). */
export async function startDb(mode: "single" | "galera", _scratch: string): Promise<DbCluster> {
  if (mode === "single") {
    const db = await startMariaDb();
    return {
      urls: [db.url],
      nodeArgs: () => ["--fleet-database-url", db.url],
      pids: () => [pidIn(db.dir)].filter(Number.isFinite),
      close: () => db.close(),
    };
  }
  const g = await startGalera(3);
  const urls = g.members.map((m) => m.url);
  return {
    urls,
    // Node n starts on member n mod 3; where the tree has failover (--fleet-database-hosts), the other members follow.
    nodeArgs: (n) => {
      const first = n % urls.length;
      const rest = g.members.filter((_, i) => i !== first).map((m) => `127.0.0.1:${m.port}`).join(",");
      return ["--fleet-database-url", urls[first], ...(FAILOVER ? ["--fleet-database-hosts", rest] : [])];
    },
    pids: () => g.members.filter((m) => m.running).map((m) => pidIn(m.dir)).filter(Number.isFinite),
    kill: (i) => g.kill(i),
    close: () => g.close(),
  };
}
