// oslo.log's options the node honours: where lines go (file, directory, standard error, syslog) and their date format.
import { badDateFormat, DEFAULT_DATE_FORMAT } from "../log_format.ts";
import type { Decl } from "./kinds.ts";

/** [DEFAULT] log_file, log_dir, use_stderr, use_syslog, syslog_log_facility, log_date_format, as oslo.log reads them. */
export const LOG_OPTIONS = {
  logFile: {
    flag: "log-file",
    ini: ["DEFAULT", "log_file"],
    kind: "string",
    use: "serve",
    help: "append log lines to this file instead of standard output (relative to log_dir if set); reopened on SIGHUP",
  },
  logDir: {
    flag: "log-dir",
    ini: ["DEFAULT", "log_dir"],
    kind: "string",
    use: "serve",
    help: "directory of log_file; alone, lines go to LOG_DIR/glance-cache-node.log",
  },
  useStderr: {
    flag: "use-stderr",
    ini: ["DEFAULT", "use_stderr"],
    kind: "bool",
    default: false,
    use: "serve",
    help: "log to standard error too (instead of standard output when there is no log file)",
  },
  useSyslog: {
    flag: "use-syslog",
    ini: ["DEFAULT", "use_syslog"],
    kind: "bool",
    default: false,
    use: "serve",
    help: "send log lines to the local syslog (/dev/log) too, through util-linux's logger",
  },
  syslogLogFacility: {
    flag: "syslog-log-facility",
    ini: ["DEFAULT", "syslog_log_facility"],
    kind: "string",
    default: "LOG_USER",
    use: "serve",
    check: (v, name) =>
      /^(LOG_)?(USER|DAEMON|LOCAL[0-7])$/i.test(v)
        ? undefined
        : `${name}: not a facility (LOG_USER, LOG_LOCAL0...): ${v}`,
    help: "syslog facility with use_syslog",
  },
  logDateFormat: {
    flag: "log-date-format",
    ini: ["DEFAULT", "log_date_format"],
    kind: "string",
    default: DEFAULT_DATE_FORMAT,
    check: (v, name) => {
      const bad = badDateFormat(v);
      return bad ? `${name}: ${bad}: ${v}` : undefined;
    },
    help: "Python strftime format of a text line's date (UTC; milliseconds follow)",
  },
} as const satisfies Record<string, Decl>;
