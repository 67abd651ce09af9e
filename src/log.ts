// Log lines: oslo.log-like readable text by default, JSON lines with use_json; debug lines only with debug.
import process from "node:process";
import { DEFAULT_DATE_FORMAT, strftime } from "./log_format.ts";
import { currentRequest } from "./request_context.ts";

/** oslo.log's level names, as written on each line. */
export type Level = "DEBUG" | "INFO" | "WARNING" | "ERROR";
/** A line's key=value pairs (JSON members with use_json); undefined values are left out. */
export type Fields = Record<string, string | number | boolean | null | undefined>;

/** The request a line belongs to, when there is one (oslo's "[request_id user project]"). */
export interface LineContext {
  requestId?: string;
  userId?: string;
  projectId?: string | null;
}

/** How a Logger writes: the [DEFAULT] debug and use_json options, and where to. */
export interface LoggerOptions {
  /** [DEFAULT] debug: DEBUG lines are written too (default: INFO and above). */
  debug?: boolean;
  /** [DEFAULT] use_json: one JSON object per line instead of text. */
  json?: boolean;
  /** [DEFAULT] log_date_format: Python strftime directives for a text line's date, in UTC (milliseconds follow). */
  dateFormat?: string;
  /** Where each finished line goes (default: standard output); `level` lets a sink such as syslog grade it. */
  write?: (line: string, level: Level) => void;
}

/** The node's log: one Logger per app, shared by its parts, each under its own name (access, cache, fleet...). */
export class Logger {
  /** Whether DEBUG lines are written: code may skip building one otherwise. */
  readonly debugEnabled: boolean;
  private readonly json: boolean;
  private readonly write: (line: string, level: Level) => void;
  private readonly dateFormat: string;

  constructor(opts: LoggerOptions = {}) {
    this.debugEnabled = opts.debug ?? false;
    this.json = opts.json ?? false;
    this.dateFormat = opts.dateFormat ?? DEFAULT_DATE_FORMAT;
    this.write = opts.write ?? ((line) => process.stdout.write(`${line}\n`));
  }

  /** Writes one line under logger `name`, in the request `ctx` if given; a DEBUG line only with debug. */
  log(level: Level, name: string, message: string, fields: Fields = {}, ctx?: LineContext): void {
    if (level === "DEBUG" && !this.debugEnabled) return;
    const now = new Date();
    if (this.json) {
      const line: Record<string, unknown> = { time: now.toISOString(), level, logger: name, message };
      if (ctx?.requestId) line.request_id = ctx.requestId;
      if (ctx?.userId) line.user_id = ctx.userId;
      if (ctx?.projectId) line.project_id = ctx.projectId;
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) line[k] = v;
      this.write(JSON.stringify(line), level);
      return;
    }
    const stamp = `${strftime(this.dateFormat, now)}.${String(now.getUTCMilliseconds()).padStart(3, "0")}`;
    const where = ctx?.requestId ? `[${[ctx.requestId, ctx.userId ?? "-", ctx.projectId ?? "-"].join(" ")}]` : "[-]";
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(" ");
    this.write(`${stamp} ${process.pid} ${level} ${name} ${where} ${message}${extra ? ` ${extra}` : ""}`, level);
  }

  /** A plain `(msg) => void` for code that logs free text (the cache), at one level under one name, in the current request. */
  textSink(name: string, level: Level = "INFO"): (msg: string) => void {
    return (msg) => this.log(level, name, msg, {}, currentRequest());
  }
}

function formatValue(v: Fields[string]): string {
  if (typeof v === "string") return v === "" || /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return String(v);
}
