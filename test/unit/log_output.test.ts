// oslo.log's options: log_date_format (Python strftime), where lines go (log_file, log_dir, use_stderr, syslog), reopening.
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { suite } from "uvu";
import { Logger } from "../../src/log.ts";
import { badDateFormat, strftime } from "../../src/log_format.ts";
import { logPath, LogSinks, syslogPriority } from "../../src/log_sinks.ts";
import { tempDir, waitFor } from "../helpers/helpers.ts";

const t = suite("log output");
const WHEN = new Date(Date.UTC(2026, 2, 7, 14, 5, 9, 42)); // Saturday 7 March 2026, 14:05:09.042 UTC

t("log_date_format: Python's strftime directives, in UTC", () => {
  assert.equal(strftime("%Y-%m-%d %H:%M:%S", WHEN), "2026-03-07 14:05:09");
  assert.equal(
    strftime("%d/%b/%Y:%I:%M %p %a %A %B %j %y %z %Z %%", WHEN),
    "07/Mar/2026:02:05 PM Sat Saturday March 066 26 +0000 UTC %",
  );
  assert.equal(strftime("%F %T|%e|%c", WHEN), "2026-03-07 14:05:09| 7|Sat Mar  7 14:05:09 2026");
  assert.equal(badDateFormat("%Y-%m-%d"), undefined);
  assert.match(badDateFormat("%Y %Q")!, /%Q is not a supported strftime directive/);
  assert.match(badDateFormat("%H:%")!, /lone %/);
});

t("log_date_format: a text line's date as the format says, milliseconds after it; refused when unknown", async () => {
  const lines: string[] = [];
  const logger = new Logger({ dateFormat: "%d/%m/%Y %H.%M.%S", write: (line) => lines.push(line) });
  logger.log("INFO", "test", "hello");
  assert.match(lines[0], /^\d\d\/\d\d\/\d{4} \d\d\.\d\d\.\d\d\.\d{3} \d+ INFO test \[-\] hello$/);
  const { parseConfig } = await import("../../src/config/parse.ts");
  assert.throws(() => parseConfig(["--log-date-format", "%Y %Q"], {}), /log_date_format.*%Q is not a supported/);
  const parsed = parseConfig([], { GLANCE_CACHE_LOG_DATE_FORMAT: "%H:%M" });
  assert.ok(parsed !== "help");
  assert.equal(parsed.config.logDateFormat, "%H:%M");
});

t("log_file and log_dir: oslo.log's rule for the path", () => {
  assert.equal(logPath({}), undefined);
  assert.equal(logPath({ logFile: "/var/log/a.log" }), "/var/log/a.log");
  assert.equal(logPath({ logFile: "a.log", logDir: "/var/log/glance" }), "/var/log/glance/a.log");
  assert.equal(logPath({ logFile: "/elsewhere/a.log", logDir: "/var/log/glance" }), "/elsewhere/a.log");
  assert.equal(logPath({ logDir: "/var/log/glance" }), "/var/log/glance/glance-cache-node.log");
});

t("log_file: appended to, never truncated; reopen() (SIGHUP) starts a new file after logrotate moved it", async () => {
  const dir = await tempDir();
  const path = join(dir, "node.log");
  writeFileSync(path, "an earlier line\n");
  const sinks = new LogSinks({ logFile: "node.log", logDir: dir });
  try {
    sinks.write("first", "INFO");
    assert.equal(readFileSync(path, "utf8"), "an earlier line\nfirst\n");
    renameSync(path, `${path}.1`);
    sinks.write("second", "INFO"); // still to the moved file, as with any open file
    sinks.reopen();
    sinks.write("third", "WARNING");
    assert.equal(readFileSync(`${path}.1`, "utf8"), "an earlier line\nfirst\nsecond\n");
    assert.equal(readFileSync(path, "utf8"), "third\n");
  } finally {
    sinks.close();
  }
});

t(
  "use_syslog: each line reaches the syslog socket with its facility and severity, tagged with the program",
  async () => {
    assert.equal(syslogPriority("LOG_USER", "INFO"), 14);
    assert.equal(syslogPriority("LOG_LOCAL3", "ERROR"), 19 * 8 + 3);
    const socket = join(await tempDir(), "log.sock");
    let received = "";
    // logger tries a datagram socket, then a stream one: a stream listener stands for /dev/log here.
    const server = createServer((c) => c.setEncoding("utf8").on("data", (s: string) => (received += s)));
    server.listen(socket);
    await once(server, "listening");
    const sinks = new LogSinks({
      useSyslog: true,
      syslogLogFacility: "LOG_LOCAL0",
      syslogSocket: socket,
      logFile: join(await tempDir(), "f.log"),
    });
    try {
      sinks.write("a line at INFO", "INFO");
      sinks.write("a line at ERROR", "ERROR");
      await waitFor("both lines at the socket", async () => received.includes("a line at ERROR"));
      assert.match(received, /<134>.* glance-cache-node\[\d+\]: a line at INFO/);
      assert.match(received, /<131>.* glance-cache-node\[\d+\]: a line at ERROR/);
    } finally {
      sinks.close();
      server.close();
    }
  },
);

t.run();
