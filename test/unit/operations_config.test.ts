// The operator's options: [DEFAULT] debug and use_json, [healthcheck] min_free_percent and disable_by_file_path.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { ConfigError, parseConfig } from "../../src/config/parse.ts";
import { tempDir } from "../helpers/helpers.ts";

const t = suite("operations config");

async function confFile(text: string): Promise<string> {
  const path = join(await tempDir(), "glance-api.conf");
  await writeFile(path, text);
  return path;
}

function config(argv: string[], env: Record<string, string> = {}) {
  const r = parseConfig(argv, env);
  assert.ok(r !== "help");
  return r.config;
}

t("defaults: INFO text lines, 5% free space, no disable file", () => {
  const c = config([]);
  assert.deepEqual([c.debug, c.logJson, c.healthcheck.minFreePercent, c.healthcheck.disableByFilePath], [
    false,
    false,
    5,
    undefined,
  ]);
});

t("from glance-api.conf, overridden by the environment, overridden by flags", async () => {
  const file = await confFile(
    "[DEFAULT]\ndebug = true\nuse_json = true\n[healthcheck]\nmin_free_percent = 10\ndisable_by_file_path = /run/gcn/off\ndetailed = false\n",
  );
  const c = config(["--config-file", file]);
  assert.deepEqual([c.debug, c.logJson, c.healthcheck.minFreePercent, c.healthcheck.disableByFilePath], [
    true,
    true,
    10,
    "/run/gcn/off",
  ]);
  const e = config(["--config-file", file], {
    GLANCE_CACHE_USE_JSON: "false",
    GLANCE_CACHE_HEALTHCHECK_MIN_FREE_PERCENT: "2",
  });
  assert.deepEqual([e.logJson, e.healthcheck.minFreePercent], [false, 2]);
  const f = config(["--config-file", file, "--healthcheck-min-free-percent", "0"], {
    GLANCE_CACHE_HEALTHCHECK_MIN_FREE_PERCENT: "2",
  });
  assert.equal(f.healthcheck.minFreePercent, 0);
});

t("a percentage above 100 or not a number is refused with the option's name", () => {
  assert.throws(
    () => config(["--healthcheck-min-free-percent", "101"]),
    (e: unknown) => e instanceof ConfigError && /min_free_percent.*at most 100/.test(e.message),
  );
  assert.throws(
    () => config([], { GLANCE_CACHE_DEBUG: "maybe" }),
    (e: unknown) => e instanceof ConfigError && /\[DEFAULT\] debug/.test(e.message),
  );
});

t.run();
