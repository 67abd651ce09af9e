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
