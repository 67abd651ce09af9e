// A private memcached (Debian's) on a free loopback port, for the suites that share tokens through it.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createConnection } from "node:net";
import process from "node:process";
import { freePort } from "../../support/processes.ts";
import { waitFor } from "./helpers.ts";

/** A running memcached: its host:port (memcached_servers) and how to stop it. */
export interface MemcachedServer {
  servers: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts memcached on 127.0.0.1 and a free port; resolves once it accepts connections. */
export async function startMemcached(): Promise<MemcachedServer> {
  const port = await freePort();
  const asRoot = process.getuid?.() === 0 ? ["-u", "root"] : [];
  const child = spawn("memcached", ["-l", "127.0.0.1", "-p", String(port), "-U", "0", "-m", "16", ...asRoot], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = once(child, "exit");
  await waitFor("memcached accepts connections", () =>
    new Promise<boolean>((resolve) => {
      if (child.exitCode !== null) throw new Error("memcached exited");
      const c = createConnection({ host: "127.0.0.1", port }, () => {
        c.destroy();
        resolve(true);
      });
      c.on("error", () => resolve(false));
    }));
  return {
    servers: `127.0.0.1:${port}`,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(child.pid!, "SIGTERM");
      await exited;
    },
  };
}
