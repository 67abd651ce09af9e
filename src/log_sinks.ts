// Where the program's log lines go, as oslo.log decides: a file (log_file, log_dir), standard error, syslog, or standard output.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import process from "node:process";
import type { Level } from "./log.ts";

/** The program's name in log_dir and syslog, as oslo.log takes the binary's. */
export const PROGRAM = "glance-cache-node";

/** oslo.log's options about where lines go. */
export interface LogTargets {
  logFile?: string;
  logDir?: string;
  useStderr?: boolean;
  useSyslog?: boolean;
  syslogLogFacility?: string;
  /** The syslog socket (default /dev/log; tests give their own). */
  syslogSocket?: string;
}

/** oslo.log's rule: log_dir/log_file, log_file alone, log_dir/<program>.log, or no file. */
export function logPath(t: LogTargets): string | undefined {
  if (t.logFile && t.logDir) return isAbsolute(t.logFile) ? t.logFile : join(t.logDir, t.logFile);
  if (t.logFile) return t.logFile;
  if (t.logDir) return join(t.logDir, `${PROGRAM}.log`);
  return undefined;
}

const SEVERITY: Record<Level, number> = { ERROR: 3, WARNING: 4, INFO: 6, DEBUG: 7 };
const FACILITY: Record<string, number> = { USER: 1, DAEMON: 3 };
for (let i = 0; i < 8; i++) FACILITY[`LOCAL${i}`] = 16 + i;

/** syslog's priority of a line: facility * 8 + severity (RFC 5424). */
export function syslogPriority(facility: string, level: Level): number {
  return (FACILITY[facility.toUpperCase().replace(/^LOG_/, "")] ?? 1) * 8 + SEVERITY[level];
}

/** The program's log sinks: `write` sends a line everywhere configured; `reopen` (SIGHUP) opens the file afresh. */
export class LogSinks {
  private fd: number | undefined;
  private syslog: ChildProcess | undefined;
  /** The file lines are appended to, if any. */
  readonly path: string | undefined;

  constructor(private readonly t: LogTargets) {
    this.path = logPath(t);
    try {
      if (this.path) this.fd = openSync(this.path, "a");
    } catch (err) {
      throw new Error(`log_file ${this.path}: ${(err as Error).message}`);
    }
    if (t.useSyslog) this.startSyslog();
  }

  /** Writes one line to each sink; a line at ERROR or WARNING is never lost to a sink failing. */
  write(line: string, level: Level): void {
    if (this.fd !== undefined) writeSync(this.fd, `${line}\n`);
    if (this.t.useStderr) process.stderr.write(`${line}\n`);
    else if (this.fd === undefined) process.stdout.write(`${line}\n`);
    if (this.syslog?.stdin?.writable) {
      const priority = syslogPriority(this.t.syslogLogFacility ?? "LOG_USER", level);
      this.syslog.stdin.write(`<${priority}>${line}\n`);
    }
  }

  /** Closes and reopens the log file (after logrotate moved it away). */
  reopen(): void {
    if (!this.path) return;
    const fd = openSync(this.path, "a");
    const old = this.fd;
    this.fd = fd;
    if (old !== undefined) closeSync(old);
  }

  /** Closes the file and ends the syslog writer. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.syslog?.stdin?.end();
  }

  /**
   * Syslog through util-linux's logger, one process reading our lines: neither Node nor Deno can send a Unix
   * datagram (what /dev/log takes) with the same API. Each line carries its own priority (--prio-prefix).
   */
  private startSyslog(): void {
    const socket = this.t.syslogSocket ?? "/dev/log";
    const child = spawn("logger", ["--prio-prefix", "--socket", socket, "--tag", PROGRAM, `--id=${process.pid}`], {
      stdio: ["pipe", "ignore", "inherit"],
    });
    child.on("error", (err) => {
      this.syslog = undefined;
      process.stderr.write(`use_syslog: cannot start logger (util-linux) for ${socket}: ${err.message}\n`);
    });
    child.on("exit", () => (this.syslog = undefined));
    child.stdin?.on("error", () => (this.syslog = undefined));
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    this.syslog = child;
  }
}
