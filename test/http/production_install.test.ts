// A production install (`npm ci --omit=dev`) of the package serves: nothing the node needs at run time is a devDependency.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { cp, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { suite } from "uvu";
import { tempDir } from "../helpers/helpers.ts";
import { CURRENT_RUNTIME } from "../../support/processes.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
/** What `npm pack` would ship for running the node (no tests, no benchmarks). */
const SHIPPED = ["package.json", "package-lock.json", "mod.ts", "deno.json", "src"];

const t = suite("production install");

t("npm ci --omit=dev, then the node starts and answers /versions and /healthcheck", async () => {
  const dir = await tempDir("gcn-prod-");
  try {
    for (const f of SHIPPED) await cp(join(ROOT, f), join(dir, f), { recursive: true });
    // --prefer-offline: the packages usually sit in npm's cache already; this stays a few seconds.
    await promisify(execFile)("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline"], {
      cwd: dir,
      timeout: 300_000,
    });
    // The same command line as `npm start` (or `npm run start:deno`), from the installed copy only.
    const args = ["mod.ts", "--port", "0", "--data-dir", join(dir, "data")];
    const child = CURRENT_RUNTIME === "node"
      ? spawn("node", ["--max-semi-space-size=2", "--import", "tsx", ...args], {
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
      })
      : spawn(process.execPath, ["run", "-A", "--v8-flags=--max-semi-space-size=2", ...args], {
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
      });
    let out = "";
    child.stdout!.on("data", (b) => (out += b));
    child.stderr!.on("data", (b) => (out += b));
    const exited = once(child, "exit");
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening" line within 60 s:\n${out}`)), 60_000);
        const look = () => {
          const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        };
        child.stdout!.on("data", look);
        child.stderr!.on("data", look);
        child.on("exit", () => reject(new Error(`the node exited:\n${out}`)));
      });
      const versions = await fetch(`${url}/versions`);
      assert.equal(versions.status, 200);
      assert.ok(((await versions.json()) as { versions: unknown[] }).versions.length > 0);
      const health = await fetch(`${url}/healthcheck`);
      assert.equal(health.status, 200, await health.clone().text());
      assert.equal(await health.text(), "OK");
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

t.run();
