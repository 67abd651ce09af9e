// `npm start` behaves as a service: SIGTERM to npm reaches the node, which drains and exits, leaving no process behind.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { suite } from "uvu";
import { tempDir, waitFor } from "../helpers/helpers.ts";
import { freePort } from "../../support/processes.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

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

const t = suite("npm start as a service");

t("SIGTERM to `npm start` drains and stops the node: the port is free and no process is left", async () => {
  const dir = await tempDir("gcn-service-");
  const port = await freePort();
  const npm = spawn("npm", ["start"], {
    cwd: ROOT,
    env: { ...process.env, GLANCE_CACHE_PORT: String(port), GLANCE_CACHE_DATA_DIR: join(dir, "data") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  npm.stdout!.on("data", (b) => (out += b));
  npm.stderr!.on("data", (b) => (out += b));
  const exited = once(npm, "exit");
  let started: number[] = [];
  try {
    await waitFor(`"listening" from npm start:\n${out}`, async () => {
      if (npm.exitCode !== null) throw new Error(`npm start exited:\n${out}`);
      return out.includes(`listening on http://127.0.0.1:${port}`);
    }, 60_000);
    const versions = await fetch(`http://127.0.0.1:${port}/versions`);
    assert.equal(versions.status, 200);
    await versions.body?.cancel();
    started = descendants(npm.pid!);
    assert.ok(started.length > 0, "npm start runs the node as its child");

    npm.kill("SIGTERM");
    await exited;
    assert.match(out, /SIGTERM: no new connections/, "the node itself got SIGTERM and drained");
    const left = started.filter(alive);
    assert.deepEqual(left, [], `processes left after npm start ended: ${left.join(", ")}\n${out}`);
    assert.ok(await canBind(port), `port ${port} is still held after npm start ended`);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/versions`), "nothing answers on the port any more");
  } finally {
    // a node orphaned by a failed run must not outlive the test
    for (const pid of started.filter(alive)) process.kill(pid, "SIGKILL");
    if (npm.exitCode === null && npm.signalCode === null) npm.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});

t.run();
