// Processes for tests and benchmarks: the cache node in a process of its own (Node or Deno), ports, peak RSS, inputs.
import { type ChildProcess, execFile, spawn, type SpawnOptions } from "node:child_process";
import process from "node:process";
import { createWriteStream, existsSync, openSync, statSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { request as httpsRequest } from "node:https";
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

/**
 * Deno's V8 flags in every start this repository makes (npm run start:deno, deno task start, the servers tests and
 * benchmarks spawn): a young generation of 2 MiB semi-spaces instead of V8's default 16 keeps ~20–40 MB off the
 * peak RSS of the data-path rows, which pays for the hash pool's thread (measured: docs/design.md).
 */
export const DENO_V8_FLAGS = "--v8-flags=--max-semi-space-size=2";

/** The same young generation on Node (npm start, the systemd unit, spawned servers): ~25–40 MB off the peak RSS. */
export const NODE_V8_FLAGS = ["--max-semi-space-size=2"];

/** `runtimeFlags` go to node or deno itself (--cpu-prof, --trace-gc, --v8-flags=..., given after DENO_V8_FLAGS). */
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
  const child = runtime === "node"
    ? spawn(nodeBinary(), [...NODE_V8_FLAGS, ...runtimeFlags, "--import", "tsx", join(ROOT, "mod.ts"), ...args], {
      cwd: ROOT,
      stdio: ["ignore", log, "inherit"],
    })
    : spawn(denoBinary(), ["run", "-A", DENO_V8_FLAGS, ...runtimeFlags, join(ROOT, "mod.ts"), ...args], {
      cwd: ROOT,
      stdio: ["ignore", log, "inherit"],
    });
  const exited = once(child, "exit");
  const url = `${extra.includes("--cert-file") ? "https" : "http"}://127.0.0.1:${port}`;
  await waitForHttp(`${url}/versions`, child, `${runtime} server`);
  return {
    url,
    pid: child.pid!,
    child,
    exited,
    stop: () => stopChild(child),
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** The status of GET url over https, the certificate not checked (only whether the process answers). */
function httpsStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * Waits until GET url answers 2xx (the process is up), or fails when `child` exits or 15 s pass. An https url is
 * probed without checking its certificate: the test checks that itself.
 */
export async function waitForHttp(
  url: string,
  child: ChildProcess | undefined,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  for (const t0 = Date.now();;) {
    try {
      if (url.startsWith("https:")) {
        const status = await httpsStatus(url);
        if (status >= 200 && status < 300) return;
      } else {
        const res = await fetch(url);
        await res.body?.cancel();
        if (res.ok) return;
      }
    } catch { // not answering yet
    }
    if (Date.now() - t0 > timeoutMs || (child && (child.exitCode !== null || child.signalCode !== null))) {
      throw new Error(`${what} did not start (no answer from ${url})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then SIGKILL if it has not exited after graceMs. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = new Promise((r) => setTimeout(r, graceMs, "timeout"));
  if ((await Promise.race([exited, timer])) === "timeout") {
    child.kill("SIGKILL");
    await exited;
  }
}

export interface Done {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall clock from spawn to exit. */
  seconds: number;
}

/** Runs a command to its end, output captured (stdout not kept when `discardStdout`). */
export function run(cmd: string, args: string[], opts: SpawnOptions & { discardStdout?: boolean } = {}): Promise<Done> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const { discardStdout, ...spawnOpts } = opts;
    const child = spawn(cmd, args, { stdio: ["ignore", discardStdout ? "ignore" : "pipe", "pipe"], ...spawnOpts });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d) => (stdout += d));
    child.stderr?.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 }));
  });
}

/** run(), failing unless the exit status is 0. */
export async function runOk(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { discardStdout?: boolean } = {},
): Promise<Done> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}: ${r.stderr.trim().slice(-500)}`);
  return r;
}

/** A file of random bytes, kept if it already has the size (benchmark inputs are reused across runs). */
export async function randomFile(path: string, size: number): Promise<void> {
  if (existsSync(path) && statSync(path).size === size) return;
  const out = createWriteStream(path);
  for (let left = size; left > 0;) {
    const n = Math.min(left, 1 << 20);
    if (!out.write(randomBytes(n))) await once(out, "drain");
    left -= n;
  }
  out.end();
  await once(out, "finish");
}

/** Creates an image and uploads `file` with curl (streamed, never in this process's memory). */
export async function uploadImage(url: string, file: string): Promise<string> {
  const id = await createImageRecord(url, file);
  await uploadFile(url, id, file);
  return id;
}

/** A new raw image record named `name`, without data; its id. */
export async function createImageRecord(url: string, name: string): Promise<string> {
  const res = await fetch(`${url}/v2/images`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name, disk_format: "raw", container_format: "bare" }),
  });
  return ((await res.json()) as { id: string }).id;
}

/** Uploads `file` as image `id`'s data with curl (streamed, never in this process's memory). */
export async function uploadFile(url: string, id: string, file: string): Promise<void> {
  await promisify(execFile)("curl", [
    "-sf",
    "-X",
    "PUT",
    "-H",
    "Content-Type: application/octet-stream",
    "-T",
    file,
    `${url}/v2/images/${id}/file`,
  ]);
}
