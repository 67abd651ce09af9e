// Processes for tests and benchmarks: the cache node in a process of its own (Node or Deno), ports, peak RSS, inputs.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import process from "node:process";
import { createReadStream, createWriteStream, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { join } from "node:path";
import { once } from "node:events";
import { promisify } from "node:util";

export type Runtime = "node" | "deno";
/** The runtime running this file: tests start servers on the same one. */
export const CURRENT_RUNTIME: Runtime = "Deno" in globalThis ? "deno" : "node";
const ROOT = new URL("..", import.meta.url).pathname;

export function denoBinary(): string {
  if (CURRENT_RUNTIME === "deno") return process.execPath;
  for (const p of ["node_modules/@deno/linux-x64-glibc/deno", "node_modules/deno/deno"]) {
    if (existsSync(join(ROOT, p))) return join(ROOT, p);
  }
  throw new Error("deno binary not found: npm install");
}

/** Node itself, also when this file runs under Deno. */
export function nodeBinary(): string {
  return CURRENT_RUNTIME === "node" ? process.execPath : "node";
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  srv.close();
  return port;
}

export interface ServerProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  exited: Promise<unknown[]>;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
}

/** `runtimeFlags` go to node or deno itself (--cpu-prof, --trace-gc, --v8-flags=...). */
export async function startServer(
  runtime: Runtime,
  dataDir: string,
  extra: string[] = [],
  port?: number,
  runtimeFlags: string[] = [],
): Promise<ServerProcess> {
  port ??= await freePort();
  const args = ["--port", String(port), "--data-dir", dataDir, "--auth", "noauth", ...extra];
  // The server's log goes next to its data directory, for a post-mortem.
  const log = openSync(`${dataDir.replace(/\/+$/, "")}.log`, "a");
  const child =
    runtime === "node"
      ? spawn(nodeBinary(), [...runtimeFlags, "--import", "tsx", join(ROOT, "mod.ts"), ...args], { cwd: ROOT, stdio: ["ignore", log, "inherit"] })
      : spawn(denoBinary(), ["run", "-A", ...runtimeFlags, join(ROOT, "mod.ts"), ...args], { cwd: ROOT, stdio: ["ignore", log, "inherit"] });
  const exited = once(child, "exit");
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`${url}/versions`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch {}
    if (i > 300 || child.exitCode !== null) throw new Error(`${runtime} server did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    pid: child.pid!,
    child,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      child.kill("SIGKILL");
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Peak resident set size since the last reset, in MB (Linux VmHWM). */
export function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Resets VmHWM to the current RSS, so the next peak belongs to the phase being measured. */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

export async function randomFile(path: string, size: number): Promise<void> {
  if (existsSync(path)) return;
  const out = createWriteStream(path);
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 1 << 20);
    if (!out.write(randomBytes(n))) await once(out, "drain");
    left -= n;
  }
  out.end();
  await once(out, "finish");
}

/** Creates an image and uploads `file` with curl (streamed, never in this process's memory). */
export async function uploadImage(url: string, file: string): Promise<string> {
  const res = await fetch(`${url}/v2/images`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: file, disk_format: "raw", container_format: "bare" }),
  });
  const { id } = (await res.json()) as { id: string };
  await promisify(execFile)("curl", ["-sf", "-X", "PUT", "-H", "Content-Type: application/octet-stream", "-T", file, `${url}/v2/images/${id}/file`]);
  return id;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export { createReadStream };
