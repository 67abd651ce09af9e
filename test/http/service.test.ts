// The node as a service: SIGTERM to `npm start` reaches the node, which drains and exits, leaving no process behind;
// the systemd unit's command line, directory and environment start it on the sample configuration and stop it.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { copyFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { suite } from "uvu";
import { tempDir, waitFor } from "../helpers/helpers.ts";
import { CURRENT_RUNTIME, freePort } from "../../support/processes.ts";
import { ROOT, serviceSettings, setting } from "../helpers/systemd_unit.ts";
import { SAMPLE_PATHS } from "../../src/config/sample.ts";

/** Every process whose parent is `pid`, and theirs, from /proc (pid, parent pid: field 4 of stat). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // the command name may hold spaces and parentheses: the fields after its closing one are fixed
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(Number(entry), ppid);
    } catch { // gone while we looked
    }
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parents) {
      if (parent === p) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

/** Whether `pid` is still a live process (a zombie waiting to be reaped has ended). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Whether a new listener can take 127.0.0.1:port (nobody holds it any more). */
async function canBind(port: number): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

/** Collects a child's output and waits for its "listening" line on `port`; fails if it exits first. */
async function listening(child: ChildProcess, port: number, what: string): Promise<() => string> {
  let out = "";
  child.stdout!.on("data", (b) => (out += b));
  child.stderr!.on("data", (b) => (out += b));
  await waitFor(`"listening" from ${what}`, async () => {
    if (child.exitCode !== null) throw new Error(`${what} exited:\n${out}`);
    return out.includes(`listening on http://127.0.0.1:${port}`);
  }, 60_000);
  return () => out;
}

const t = suite("the node as a service");

t("SIGTERM to `npm start` drains and stops the node: the port is free and no process is left", async () => {
  const dir = await tempDir("gcn-service-");
  const port = await freePort();
  const npm = spawn("npm", ["start"], {
    cwd: ROOT,
    env: { ...process.env, GLANCE_CACHE_PORT: String(port), GLANCE_CACHE_DATA_DIR: join(dir, "data") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = once(npm, "exit");
  let started: number[] = [];
  let out = () => "";
  try {
    out = await listening(npm, port, "npm start");
    const versions = await fetch(`http://127.0.0.1:${port}/versions`);
    assert.equal(versions.status, 200);
    await versions.body?.cancel();
    started = descendants(npm.pid!);
    assert.ok(started.length > 0, "npm start runs the node as its child");

    npm.kill("SIGTERM");
    await exited;
    assert.match(out(), /SIGTERM: no new connections/, "the node itself got SIGTERM and drained");
    assert.equal(existsSync(join(dir, "data", "cache", "lock")), false, "the node closed: its cache lock is released");
    const left = started.filter(alive);
    assert.deepEqual(left, [], `processes left after npm start ended: ${left.join(", ")}\n${out()}`);
    assert.ok(await canBind(port), `port ${port} is still held after npm start ended`);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/versions`), "nothing answers on the port any more");
  } finally {
    // a node orphaned by a failed run must not outlive the test
    for (const pid of started.filter(alive)) process.kill(pid, "SIGKILL");
    if (npm.exitCode === null && npm.signalCode === null) npm.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});

/** The node binary on this machine (what the unit's /usr/bin/node stands for when it lives elsewhere). */
const nodePath = () =>
  CURRENT_RUNTIME === "node"
    ? process.execPath
    : execFileSync("sh", ["-c", "command -v node"], { encoding: "utf8" }).trim();

t("the unit's command, directory and environment serve the sample configuration; its KillSignal stops it", async () => {
  const dir = await tempDir("gcn-unit-run-");
  const port = await freePort();
  const unit = serviceSettings();
  const state = `/var/lib/${setting(unit, "StateDirectory")}`;
  // as installed, but with this machine's node, this checkout for /opt/glance-cache-node and temporary paths
  const config = join(dir, "glance-api.conf");
  await copyFile(SAMPLE_PATHS.config, config);
  const local = (text: string) =>
    text.replace(/^\/usr\/bin\/node$/, nodePath()).replace("/opt/glance-cache-node", ROOT)
      .replace(/^\/etc\/glance-cache-node\/glance-api\.conf$/, config).replace(state, join(dir, "state"));
  const [program, ...args] = setting(unit, "ExecStart").split(/\s+/).map(local);
  const environment = Object.fromEntries(
    (unit.get("Environment") ?? []).map((e) => [e.slice(0, e.indexOf("=")), local(e.slice(e.indexOf("=") + 1))]),
  );
  // systemd's environment is nearly empty: a PATH, and what the unit sets
  const child = spawn(program, args, {
    cwd: local(setting(unit, "WorkingDirectory")),
    env: { PATH: process.env.PATH, ...environment, GLANCE_CACHE_PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = once(child, "exit");
  try {
    const out = await listening(child, port, "the unit's ExecStart");
    assert.match(out(), new RegExp(`embedded store in ${join(dir, "state")}`), "the data directory is the unit's");
    const health = await fetch(`http://127.0.0.1:${port}/healthcheck`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    child.kill(setting(unit, "KillSignal") as NodeJS.Signals);
    const [code] = await exited;
    assert.match(out(), /SIGTERM: no new connections/);
    // it closed rather than died: its cache lock is released (Deno's child_process reports the signal it sent as
    // the way the child ended, whatever its exit status: the status is checked on Node only)
    assert.equal(existsSync(join(dir, "state", "cache", "lock")), false, "the cache lock is released");
    if (CURRENT_RUNTIME === "node") assert.equal(code, 0, out());
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});

t.run();
