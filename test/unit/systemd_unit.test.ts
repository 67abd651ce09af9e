// contrib/systemd/glance-cache-node.service passes `systemd-analyze verify` and stops as the node needs; its user file is valid.
// test-needs: systemd-analyze
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { promisify } from "node:util";
import { suite } from "uvu";
import { envName } from "../../src/config/kinds.ts";
import { OPTIONS } from "../../src/config/options.ts";
import { tempDir } from "../helpers/helpers.ts";
import { ROOT, serviceSettings, setting, UNIT } from "../helpers/systemd_unit.ts";
import { CURRENT_RUNTIME } from "../../support/processes.ts";

const SYSUSERS = join(ROOT, "contrib/sysusers.d/glance-cache-node.conf");
const run = promisify(execFile);

/** The node binary on this machine (what the unit's /usr/bin/node stands for when it lives elsewhere). */
const nodePath = () =>
  CURRENT_RUNTIME === "node"
    ? process.execPath
    : execFileSync("sh", ["-c", "command -v node"], { encoding: "utf8" }).trim();

const t = suite("systemd unit");

/** The unit as it would be installed on this machine: its node and its package directory those of this checkout. */
function localUnit(text = readFileSync(UNIT, "utf8")): string {
  // verify checks that ExecStart's program exists: point it at this machine's node and this checkout.
  return text.replaceAll("/usr/bin/node", nodePath()).replaceAll("/opt/glance-cache-node", ROOT);
}

/** `systemd-analyze verify` of `unit` written to a temporary file: its exit status and what it said. */
async function verify(unit: string): Promise<{ code: number; stderr: string }> {
  const dir = await tempDir("gcn-unit-");
  try {
    const path = join(dir, "glance-cache-node.service");
    await writeFile(path, unit);
    try {
      const { stderr } = await run("systemd-analyze", ["verify", "--man=no", path]);
      // the hardening, as systemd itself rates it: the command fails above the threshold ("OK" is below 4.0)
      await run("systemd-analyze", ["security", "--offline=yes", "--threshold=20", path]);
      return { code: 0, stderr };
    } catch (err) {
      const e = err as { code?: number; stderr?: string };
      return { code: e.code ?? 1, stderr: e.stderr ?? String(err) };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

t("systemd-analyze verify finds nothing to say about the unit, run from this checkout", async () => {
  const { code, stderr } = await verify(localUnit());
  assert.equal(code, 0, stderr);
  // other units of the machine may be mentioned; nothing about ours may be
  assert.deepEqual(stderr.split("\n").filter((line) => line.includes("glance-cache-node")), [], stderr);
});

t("a broken unit is caught: a value systemd cannot parse, a program that is not there", async () => {
  const unknown = await verify(localUnit().replace("ProtectSystem=strict", "ProtectSystem=strictly"));
  assert.match(unknown.stderr, /glance-cache-node\.service:\d+: Failed to parse protect system value/);
  const missing = await verify(localUnit().replace(nodePath(), "/nonexistent/node"));
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /Command \/nonexistent\/node is not executable/);
});

t(
  "the node itself gets SIGTERM, has longer than shutdown_timeout to drain, and writes only its state directory",
  () => {
    const s = serviceSettings(readFileSync(UNIT, "utf8"));
    const one = (key: string) => {
      const values = s.get(key);
      assert.ok(values?.length, `${key} is set`);
      return values[values.length - 1];
    };
    const exec = one("ExecStart").split(/\s+/);
    assert.match(exec[0], /^\/.*\/node$/, "ExecStart runs the runtime directly (not npm, not a shell)");
    // node's own flags (the young generation's size, docs/design.md), then tsx and the program
    const program = exec.indexOf("--import");
    assert.ok(exec.slice(1, program).every((f) => f.startsWith("--")), "only node's flags before --import");
    assert.equal(exec[program + 1], "tsx");
    assert.match(exec[program + 2], /^\/.*\/mod\.ts$/);
    assert.ok(exec[program + 2].startsWith(one("WorkingDirectory") + "/"), "tsx resolves from the package's directory");
    assert.equal(one("KillSignal"), "SIGTERM");
    assert.ok(Number(one("TimeoutStopSec")) > OPTIONS.shutdownTimeout.default, "TimeoutStopSec > shutdown_timeout");
    assert.notEqual(one("User"), "root");
    const state = `/var/lib/${one("StateDirectory")}`;
    assert.ok(one("ReadWritePaths").split(/\s+/).includes(state), "ReadWritePaths holds the state directory");
    assert.ok(
      s.get("Environment")!.includes(`${envName(OPTIONS.dataDir)}=${state}`),
      "the data directory is the state one",
    );
    assert.equal(one("NoNewPrivileges"), "yes");
    assert.equal(one("ProtectSystem"), "strict");
    assert.equal(one("PrivateTmp"), "yes");
    assert.equal(one("ProtectHome"), "yes");
  },
);

t("systemd-sysusers accepts the user file and creates the unit's user", async () => {
  const dir = await tempDir("gcn-sysusers-");
  try {
    const { stdout, stderr } = await run("systemd-sysusers", ["--dry-run", `--root=${dir}`, SYSUSERS]);
    const user = setting(serviceSettings(), "User");
    assert.match(stdout + stderr, new RegExp(`Creating user '${user}'`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

t.run();
