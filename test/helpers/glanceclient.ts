// The one runner of python-glanceclient (/usr/bin/glance, Debian's python3-glanceclient) for tests: each call a
// process of its own with a fresh HOME and a clean environment, its command, exit and both outputs returned.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** Where Debian's python3-glanceclient installs the CLI (test-needs: glanceclient). */
export const GLANCE = "/usr/bin/glance";

/** One call takes 1-2 s; the limit is only there so a hung call fails instead of hanging the suite. */
const COMMAND_TIMEOUT_MS = 120_000;

/** A finished glance call: what was run, how it exited, what it printed. */
export interface GlanceResult {
  command: string;
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** The command, its exit and both outputs: the message of an assertion about a glance call. */
export function transcript(r: GlanceResult): string {
  const signal = r.signal ? ` (signal ${r.signal})` : "";
  return `$ ${r.command}\nexit ${r.code}${signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}---`;
}

/**
 * Runs `glance --os-image-url URL --os-auth-token TOKEN ...args` without blocking (a node under test may serve
 * in this very process). Each call gets a HOME of its own: glanceclient 4.1 caches a schema in ~/.glanceclient
 * that breaks the next run. Nothing of the runner's environment leaks in (no OS_* settings, no proxy for
 * loopback); stdin is empty. GLANCECLIENT_TRANSCRIPT=1 prints every call with its exit and output.
 */
export async function glance(url: string, token: string, ...args: string[]): Promise<GlanceResult> {
  const home = await mkdtemp(join(tmpdir(), "gcn-glance-home-"));
  const argv = ["--os-image-url", url, "--os-auth-token", token, ...args];
  const command = `glance ${argv.join(" ")}`;
  try {
    const result = await new Promise<GlanceResult>((resolve, reject) => {
      const child = spawn(GLANCE, argv, {
        cwd: home,
        env: { HOME: home, PATH: "/usr/bin:/bin", NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
      child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(
          new Error(
            `timed out after ${COMMAND_TIMEOUT_MS} ms: ${command}\n--- stdout\n${stdout}--- stderr\n${stderr}---`,
          ),
        );
      }, COMMAND_TIMEOUT_MS);
      child.on("error", (err) => {
        clearTimeout(timer);
        reject(new Error(`could not run ${command}: ${err.message} (Debian package python3-glanceclient)`));
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        resolve({ command, code, signal, stdout, stderr });
      });
    });
    if (process.env.GLANCECLIENT_TRANSCRIPT) console.log(transcript(result));
    return result;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** glance, which must exit 0; its stdout. */
export async function glanceOk(url: string, token: string, ...args: string[]): Promise<string> {
  const r = await glance(url, token, ...args);
  assert.equal(r.code, 0, `expected exit 0\n${transcript(r)}`);
  return r.stdout;
}

/** A field of the Property/Value table glanceclient prints (image-create, image-show). */
export function field(stdout: string, name: string): string | undefined {
  return new RegExp(`^\\|\\s*${name}\\s*\\|\\s*(.*?)\\s*\\|\\s*$`, "m").exec(stdout)?.[1];
}
