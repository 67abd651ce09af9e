// The glance-cache CLI spawned in a pipe, on the runtime running the test: its output and exit status.
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { CURRENT_RUNTIME, denoBinary, nodeBinary } from "../../support/processes.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** The CLI on the runtime running this file. */
export function cliCommand(): [string, string[]] {
  return CURRENT_RUNTIME === "deno"
    ? [denoBinary(), ["run", "-A", "cli.ts"]]
    : [nodeBinary(), ["--import", "tsx", "cli.ts"]];
}

/** The node's program (mod.ts) on the runtime running this file: spawnCli(args, env, programCommand()). */
export function programCommand(): [string, string[]] {
  return CURRENT_RUNTIME === "deno"
    ? [denoBinary(), ["run", "-A", "mod.ts"]]
    : [nodeBinary(), ["--import", "tsx", "mod.ts"]];
}

/** A running CLI: its process, what it has printed so far, and its exit status once it ends. */
export interface Cli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number>;
}

/** A clean environment (PATH, HOME, NO_COLOR) plus `env`: nothing of the test runner's OS_* leaks in. */
export function spawnCli(args: string[], env: Record<string, string> = {}, command = cliCommand()): Cli {
  const [bin, pre] = command;
  const child = spawn(bin, [...pre, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  const exit = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** spawnCli, awaited: the exit status and both outputs once the CLI has exited. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  command = cliCommand(),
): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = spawnCli(args, env, command);
  const code = await run.exit;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}
