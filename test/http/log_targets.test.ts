// The program's log targets, from glance-api.conf as oslo.log reads them: use_stderr, log_dir, log_file reopened on
// SIGHUP, and the one start-up line naming the options of the file the node ignores.
import assert from "node:assert/strict";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { suite } from "uvu";
import { tempDir, waitFor } from "../helpers/helpers.ts";
import { type Cli, programCommand, spawnCli } from "../helpers/cli_process.ts";
import { freePort } from "../../support/processes.ts";

const t = suite("log targets");

/** The node as a process on a free port over a new data directory, with `conf` as its glance-api.conf. */
async function program(conf: string, args: string[] = []): Promise<{ cli: Cli; url: string; dir: string }> {
  const dir = await tempDir();
  const port = await freePort();
  writeFileSync(join(dir, "glance-api.conf"), conf);
  const cli = spawnCli(
    ["--config-file", join(dir, "glance-api.conf"), "--port", String(port), "--data-dir", join(dir, "data"), ...args],
    {},
    programCommand(),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor("the node answers", async () => {
    if (cli.child.exitCode !== null) throw new Error(`the node exited: ${cli.stderr()}`);
    return await fetch(`${url}/versions`).then((r) => r.ok, () => false);
  }, 20_000);
  return { cli, url, dir };
}

async function stop(cli: Cli): Promise<void> {
  cli.child.kill("SIGTERM");
  await cli.exit;
}

t("use_stderr: every line on standard error, none on standard output", async () => {
  const { cli, url } = await program("[DEFAULT]\nuse_stderr = true\ntransport_url = rabbit://x\n");
  try {
    await (await fetch(`${url}/v2/cache`)).arrayBuffer();
    await waitFor("the access line", async () => cli.stderr().includes("GET /v2/cache"));
    assert.match(
      cli.stderr(),
      /INFO config \[-\] ignored options of glance-api\.conf the node does not use: \[DEFAULT\] transport_url\n/,
    );
    assert.match(cli.stderr(), /INFO node \[-\] glance cache node listening on/);
    assert.equal(cli.stdout(), "");
  } finally {
    await stop(cli);
  }
});

t(
  "log_dir alone: lines appended to LOG_DIR/glance-cache-node.log; SIGHUP reopens it after logrotate moves it",
  async () => {
    const logs = await tempDir();
    const path = join(logs, "glance-cache-node.log");
    const { cli, url } = await program(`[DEFAULT]\nlog_dir = ${logs}\nlog_date_format = %d/%m/%Y %H:%M:%S\n`);
    try {
      await waitFor(
        "the listening line in the file",
        async () => existsSync(path) && readFileSync(path, "utf8").includes("listening on"),
      );
      assert.match(
        readFileSync(path, "utf8"),
        /^\d\d\/\d\d\/\d{4} \d\d:\d\d:\d\d\.\d{3} \d+ INFO node \[-\] glance cache node listening/m,
      );
      assert.doesNotMatch(readFileSync(path, "utf8"), /ignored options/, "nothing ignored, no line");
      renameSync(path, `${path}.1`);
      // process.kill: Deno's ChildProcess.kill sends one signal only, and the test still has to stop the node.
      process.kill(cli.child.pid!, "SIGHUP");
      await waitFor("a new file", async () => existsSync(path));
      await (await fetch(`${url}/v2/cache`)).arrayBuffer();
      await waitFor(
        "the access line in the new file",
        async () => readFileSync(path, "utf8").includes("GET /v2/cache"),
      );
      assert.doesNotMatch(readFileSync(`${path}.1`, "utf8"), /GET \/v2\/cache/);
      assert.equal(cli.stdout(), "", "nothing on standard output with a log file");
    } finally {
      await stop(cli);
    }
  },
);

t.run();
