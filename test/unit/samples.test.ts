// etc/glance-cache-node.conf.sample and etc/policy.yaml.sample are what the declarations generate, and mean the defaults.
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { parse as parseYaml } from "yaml";
import { CACHE_RULES, DEFAULT_POLICY, Policy } from "../../src/auth/policy.ts";
import { iniKeys } from "../../src/config/kinds.ts";
import { declarations, parseConfig } from "../../src/config/parse.ts";
import { configSample, policyYamlSample, REGENERATE_SAMPLES, SAMPLE_PATHS } from "../../src/config/sample.ts";
import { tempDir } from "../helpers/helpers.ts";

const t = suite("samples");

/** The sample's sections, each with its commented `#key = value` lines as key to value. */
function sampleKeys(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let section = "";
  for (const line of text.split("\n")) {
    const header = /^\[(.+)\]$/.exec(line);
    if (header) sections.set(section = header[1], new Map());
    const option = /^#(\w+) =(?: (.*))?$/.exec(line);
    if (option && section) sections.get(section)!.set(option[1], option[2] ?? "");
  }
  return sections;
}

t("etc/glance-cache-node.conf.sample is what the declarations generate (else regenerate it)", async () => {
  const committed = await readFile(SAMPLE_PATHS.config, "utf8");
  assert.ok(
    committed === configSample(),
    `etc/glance-cache-node.conf.sample disagrees with src/config/options.ts: run ${REGENERATE_SAMPLES}`,
  );
});

t("etc/policy.yaml.sample is what the rules generate (else regenerate it)", async () => {
  const committed = await readFile(SAMPLE_PATHS.policy, "utf8");
  assert.ok(
    committed === policyYamlSample(),
    `etc/policy.yaml.sample disagrees with src/auth/policy.ts: run ${REGENERATE_SAMPLES}`,
  );
});

t("every file key of every declaration is in the configuration sample, under its section", () => {
  const sample = sampleKeys(configSample());
  const missing = declarations().flatMap((d) => iniKeys(d).filter(([s, k]) => !sample.get(s)?.has(k)));
  assert.deepEqual(missing, []);
  for (const d of declarations()) {
    const [first] = iniKeys(d);
    if (first && "default" in d && d.default !== undefined) {
      assert.equal(sample.get(first[0])!.get(first[1]), String(d.default), `[${first[0]}] ${first[1]}'s default`);
    }
  }
});

t("the configuration sample with its defaults uncommented reads as no file at all", async () => {
  const dir = await tempDir("gcn-sample-");
  try {
    // [keystone_authtoken] needs its required keys once it holds one: its keys stay commented, its header stays
    let section = "";
    const uncommented = configSample().split("\n").map((line) => {
      section = /^\[(.+)\]$/.exec(line)?.[1] ?? section;
      const option = /^#(\w+ = .+)$/.exec(line);
      return option && !option[1].endsWith("<None>") && section !== "keystone_authtoken" ? option[1] : line;
    }).join("\n");
    assert.notEqual(uncommented, configSample());
    const path = join(dir, "glance-api.conf");
    await writeFile(path, uncommented);
    assert.deepEqual(parseConfig(["--config-file", path], {}), parseConfig([], {}));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

t("the configuration sample as it is, every key commented out, reads as no file at all", async () => {
  const dir = await tempDir("gcn-sample-");
  try {
    const path = join(dir, "glance-api.conf");
    await writeFile(path, configSample());
    assert.deepEqual(parseConfig(["--config-file", path], {}), parseConfig([], {}));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

t("the policy sample uncommented is DEFAULT_POLICY, every enforced rule in it, and a policy the node accepts", () => {
  const text = policyYamlSample().split("\n").map((line) => line.replace(/^#(".*": .*)$/, "$1")).join("\n");
  const rules = parseYaml(text) as Record<string, string>;
  assert.deepEqual(rules, DEFAULT_POLICY);
  for (const rule of CACHE_RULES) assert.ok(rule in rules, rule);
  new Policy(rules);
});

t.run();
