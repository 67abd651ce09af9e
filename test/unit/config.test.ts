// Configuration: glance-api.conf-style files, environment and flags, and policy.yaml rules.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { makeIdentity } from "../../src/auth/identity.ts";
import { Policy } from "../../src/auth/policy.ts";
import { envName } from "../../src/config/kinds.ts";
import { ConfigError, declarations, parseConfig } from "../../src/config/parse.ts";
import { tempDir } from "../helpers/helpers.ts";

const t = suite("config");

async function confFile(text: string): Promise<string> {
  const path = join(await tempDir(), "glance-api.conf");
  await writeFile(path, text);
  return path;
}

const parse = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseConfig(argv, env);
  assert.ok(r !== "help");
  return r;
};

const FULL = `
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9393
image_cache_dir = /var/lib/glance/image-cache
image_cache_max_size = 1073741824
image_cache_stall_time = 3600
workers = 1
debug = true
auth_strategy = keystone
public_endpoint = https://images.example.com/image
cert_file = /etc/glance/ssl/node.pem
key_file = /etc/glance/ssl/node.key
ca_file = /etc/glance/ssl/ca.pem

[keystone_authtoken]
auth_url = http://127.0.0.1:5000/v3
www_authenticate_uri = http://keystone.example:5000
username = glance-cache
password = secret
project_name = service
user_domain_name = Default
project_domain_name = Default
token_cache_time = 30
auth_type = password
http_connect_timeout = 5
cafile = /etc/ssl/keystone-ca.pem
insecure = true
region_name = RegionOne
interface = internal
service_token_roles = service, nova
service_token_roles_required = true
memcached_servers = 127.0.0.1:11211,[::1]:11212
memcache_security_strategy = ENCRYPT
memcache_secret_key = shared-secret

[glance_cache_node]
upstream_url = http://127.0.0.1:9292
metadata_cache_time = 2
upstream_timeout = 20
upstream_stall_timeout = 15

[oslo_policy]
policy_file = /etc/glance/policy.yaml
`;

t("a glance-api.conf-style file sets Glance's options and ours", async () => {
  const { command, config } = parse(["--config-file", await confFile(FULL)]);
  assert.equal(command, "serve");
  assert.equal(config.port, 9393);
  assert.equal(config.cacheDir, "/var/lib/glance/image-cache");
  assert.equal(config.maxSize, 1073741824);
  assert.equal(config.stallTime, 3600);
  assert.equal(config.auth, "keystone");
  assert.deepEqual(config.upstream, {
    url: "http://127.0.0.1:9292",
    metadataCacheTime: 2,
    timeout: 20,
    stallTimeout: 15,
    serveCachedWhenDown: true,
    maxOutage: 0,
  });
  assert.equal(config.publicEndpoint, "https://images.example.com/image");
  assert.equal(config.policyFile, "/etc/glance/policy.yaml");
  assert.deepEqual([config.certFile, config.keyFile, config.caFile], [
    "/etc/glance/ssl/node.pem",
    "/etc/glance/ssl/node.key",
    "/etc/glance/ssl/ca.pem",
  ]);
  assert.deepEqual(config.keystone, {
    authUrl: "http://127.0.0.1:5000/v3",
    wwwAuthenticateUri: "http://keystone.example:5000",
    username: "glance-cache",
    password: "secret",
    projectName: "service",
    userDomainName: "Default",
    projectDomainName: "Default",
    tokenCacheTime: 30,
    timeout: 5,
    cafile: "/etc/ssl/keystone-ca.pem",
    insecure: true,
    regionName: "RegionOne",
    interface: "internal",
    serviceTokenRoles: "service, nova",
    serviceTokenRolesRequired: true,
    memcachedServers: "127.0.0.1:11211,[::1]:11212",
    memcacheSecurityStrategy: "ENCRYPT",
    memcacheSecretKey: "shared-secret",
  });
});

t("upstream timeouts and public_endpoint: defaults, flags, environment, bad values", async () => {
  const { config } = parse([]);
  assert.equal(config.upstream, undefined);
  assert.equal(config.publicEndpoint, undefined);
  const flags = parse(["--upstream-url", "http://up:9292", "--public-endpoint", "http://node.example:9292"], {
    GLANCE_CACHE_UPSTREAM_STALL_TIMEOUT: "9",
  }).config;
  assert.deepEqual(flags.upstream, {
    url: "http://up:9292",
    metadataCacheTime: 5,
    timeout: 60,
    stallTimeout: 9,
    serveCachedWhenDown: true,
    maxOutage: 0,
  });
  assert.equal(parse(["--upstream-url", "http://up", "--upstream-timeout", "7"]).config.upstream?.timeout, 7);
  assert.equal(flags.publicEndpoint, "http://node.example:9292");
  assert.throws(() => parse(["--upstream-timeout", "0"]), /upstream_timeout.*at least 1/);
  assert.throws(() => parse(["--public-endpoint", "node.example"]), /public_endpoint.*not an http/);
  assert.throws(
    () => parse(["--config-file", "/dev/null"], { GLANCE_CACHE_UPSTREAM_STALL_TIMEOUT: "soon" }),
    /upstream_stall_timeout/,
  );
});

t("flags win over the environment, which wins over the file", async () => {
  const file = await confFile("[DEFAULT]\nbind_port = 1111\nimage_cache_max_size = 5\n");
  const { config } = parse(["--config-file", file, "--port", "3333"], {
    GLANCE_CACHE_PORT: "2222",
    GLANCE_CACHE_IMAGE_CACHE_MAX_SIZE: "7",
  });
  assert.equal(config.port, 3333);
  assert.equal(config.maxSize, 7);
  assert.equal(parse([], { GLANCE_CACHE_CONFIG_FILE: file }).config.port, 1111);
});

t("environment variables: GLANCE_CACHE_ and the flag; an old name still read, with a warning; the new one wins", () => {
  const fresh = parse([], { GLANCE_CACHE_IMAGE_CACHE_MAX_SIZE: "7", GLANCE_CACHE_CACHE_DIR: "/tmp/c" });
  assert.equal(fresh.config.maxSize, 7);
  assert.equal(fresh.config.cacheDir, "/tmp/c");
  assert.deepEqual(fresh.warnings, []);

  const old = parse([], { GLANCE_CACHE_MAX_SIZE: "8", GLANCE_CACHE_DIR: "/tmp/d" });
  assert.equal(old.config.maxSize, 8);
  assert.equal(old.config.cacheDir, "/tmp/d");
  assert.deepEqual(old.warnings, [
    "GLANCE_CACHE_DIR is an old name: use GLANCE_CACHE_CACHE_DIR (the old one is still read, for now)",
    "GLANCE_CACHE_MAX_SIZE is an old name: use GLANCE_CACHE_IMAGE_CACHE_MAX_SIZE (the old one is still read, for now)",
  ]);

  const both = parse([], { GLANCE_CACHE_MAX_SIZE: "8", GLANCE_CACHE_IMAGE_CACHE_MAX_SIZE: "9" });
  assert.equal(both.config.maxSize, 9);
  assert.deepEqual(both.warnings, [
    "GLANCE_CACHE_MAX_SIZE is an old name, ignored: GLANCE_CACHE_IMAGE_CACHE_MAX_SIZE is set and wins",
  ]);
  // A flag still wins over either.
  assert.equal(parse(["--image-cache-max-size", "3"], { GLANCE_CACHE_MAX_SIZE: "8" }).config.maxSize, 3);

  // Every variable follows the rule, from its flag.
  for (const d of declarations()) {
    if (!d.flag || d.flag === "help") continue;
    assert.equal(envName(d), `GLANCE_CACHE_${d.flag.toUpperCase().replaceAll("-", "_")}`);
  }
});

t(
  "foreign keys are ignored and listed; unknown keys of [glance_cache_node] are refused with the closest name",
  async () => {
    const file = await confFile(
      "[DEFAULT]\nbind_port = 9292\nimage_cache_max_sise = 5\ntransport_url = rabbit://x\n" +
        "[keystone_authtoken]\nuser_name = x\n[bogus]\na = 1\n",
    );
    const { ignored } = parse(["--config-file", file]);
    assert.deepEqual(ignored, [
      "[DEFAULT] image_cache_max_sise (did you mean image_cache_max_size?)",
      "[DEFAULT] transport_url",
      "[keystone_authtoken] user_name (did you mean username?)",
      "[bogus] a",
    ]);
    const typo = await confFile("[DEFAULT]\nbind_port = 9292\n\n[glance_cache_node]\nupstream_ulr = http://g:9292\n");
    assert.throws(() => parse(["--config-file", typo]), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(
        err.message,
        /line 5: \[glance_cache_node\] upstream_ulr: unknown option \(did you mean upstream_url\?\)/,
      );
      return true;
    });
    const section = await confFile("[glance_cache_nod]\ndata_dir = /x\n");
    assert.throws(
      () => parse(["--config-file", section]),
      /line 2: \[glance_cache_nod\] data_dir: unknown section \(did you mean \[glance_cache_node\]\?\)/,
    );
  },
);

t("a value the node cannot take names the file and its line", async () => {
  const file = await confFile("[DEFAULT]\ntransport_url = rabbit://x\n\n[DEFAULT]\nbind_port = abc\n");
  assert.throws(
    () => parse(["--config-file", file]),
    new RegExp(`config file ${file} line 5: .*bind_port.*not a non-negative integer`),
  );
});

t("malformed values are reported with the option's name", async () => {
  const cases: [string, RegExp][] = [
    ["[DEFAULT]\nbind_port = abc\n", /bind_port.*not a non-negative integer/],
    ["[DEFAULT]\nbind_port = 70000\n", /not a port/],
    ["[DEFAULT]\nimage_cache_max_size = 10G\n", /image_cache_max_size/],
    ["[DEFAULT]\nworkers = 4\n", /workers = 4/],
    ["[DEFAULT]\nauth_strategy = magic\n", /must be noauth, headers or keystone/],
    ["[DEFAULT]\nauth_strategy = keystone\n", /needs a \[keystone_authtoken\] section/],
    ["[keystone_authtoken]\nauth_url = http://x\n", /username is required/],
    ["[glance_cache_node]\nupstream_url = ftp://x\n", /not an http\(s\) URL/],
    [
      "[keystone_authtoken]\nauth_url = http://k\nusername = u\npassword = p\nproject_name = s\nmemcache_security_strategy = MAC\n",
      /memcache_security_strategy needs memcache_secret_key/,
    ],
    ["[keystone_authtoken]\nmemcache_security_strategy = SIGN\n", /must be None, MAC or ENCRYPT/],
  ];
  for (const [text, expected] of cases) {
    const file = await confFile(text);
    assert.throws(() => parse(["--config-file", file]), expected, text);
  }
  assert.throws(() => parse(["--config-file", "/nonexistent/glance-api.conf"]), /config file \/nonexistent/);
  assert.throws(() => parse(["--bogus-flag"]), ConfigError);
  assert.throws(() => parse(["--host", "0.0.0.0"]), /refusing to listen on 0.0.0.0/);
  assert.equal(parse(["--host", "0.0.0.0", "--force-noauth"]).config.forceNoauth, true);
});

t("the file is read in oslo.config's dialect: # inside a value, continuations, quotes, last value wins", async () => {
  const file = await confFile(`# a comment at the start of a line
[keystone_authtoken]
auth_url = http://127.0.0.1:5000/v3
username = glance-cache
password = abc#123 ;still the password
project_name: service
project_name = "the service"

[DEFAULT]
bind_port = 1
bind_port = 9494
;another comment
`);
  const { config } = parse(["--config-file", file]);
  assert.equal(config.keystone?.password, "abc#123 ;still the password");
  assert.equal(config.keystone?.projectName, "the service");
  assert.equal(config.port, 9494);
});

t("oslo.config dialect: no dotted-section nesting, continuation lines, bad lines named", async () => {
  const { parseOsloConfig } = await import("../../src/config/oslo_file.ts");
  // The maps are prototype-free: compare their contents as plain JSON.
  const parsed = (text: string) => JSON.parse(JSON.stringify(parseOsloConfig(text)));
  assert.deepEqual(parsed("[a.b]\nx = 1\n"), { "a.b": { x: "1" } });
  assert.deepEqual(parsed("[s]\nk = first\n  second\n\tthird\n\nj = 'q'\n"), {
    s: { k: "first\nsecond\nthird", j: "q" },
  });
  assert.deepEqual(parsed("[s]\nurl = http://h:5000/v3\nk: v = w\n"), {
    s: { url: "http://h:5000/v3", k: "v = w" },
  });
  assert.throws(() => parseOsloConfig("k = v\n"), /line 1: an option outside any \[section\]/);
  assert.throws(() => parseOsloConfig("[s\n"), /line 1: a section header without its closing bracket/);
  assert.throws(() => parseOsloConfig("[s]\njunk\n"), /line 2: neither a section/);
  assert.throws(() => parseOsloConfig("  indented\n"), /continuation line/);
  assert.throws(() => parseOsloConfig("[s]\n= v\n"), /line 2: a value without a key/);
  // ini's arrays are not oslo.config's: `key[]` is no option name.
  assert.throws(() => parseOsloConfig("[s]\nk[] = 1\n"), /line 2: a key that is not a plain option name/);
  // The file's own errors stop the node with the file's name.
  const bad = await confFile("[DEFAULT]\nbind_port 9292\n");
  assert.throws(() => parse(["--config-file", bad]), /config file .*line 2: neither a section/);
  // ini's dotted nesting is not an option group of ours: named as unknown.
  const dotted = await confFile("[glance_cache_node.sub]\nx = 1\n");
  assert.throws(() => parse(["--config-file", dotted]), /\[glance_cache_node\.sub\] x: unknown section/);
});

t("config file: [__proto__], [constructor], [prototype] and __proto__ keys are refused, nothing polluted", async () => {
  const { parseOsloConfig } = await import("../../src/config/oslo_file.ts");
  const polluted = () => (({}) as Record<string, unknown>).force_noauth;
  const cases: [string, RegExp][] = [
    ["[DEFAULT]\nbind_port = 1\n\n[__proto__]\nforce_noauth = true\n", /line 4: a section name that is not/],
    ["[constructor]\nforce_noauth = true\n", /line 1: a section name that is not/],
    ["[prototype]\nforce_noauth = true\n", /line 1: a section name that is not/],
    ["[DEFAULT]\n__proto__ = x\n", /line 2: a key that is not a plain option name/],
    ["[DEFAULT]\nconstructor = x\n", /line 2: a key that is not a plain option name/],
    ['[glance_cache_node]\n__proto__: {"force_noauth": true}\n', /line 2: a key that is not/],
  ];
  for (const [text, error] of cases) {
    assert.throws(() => parseOsloConfig(text), error, text);
    assert.equal(polluted(), undefined, text);
    // Through the command line too: the node does not start, and names the file and the line.
    const file = await confFile(text);
    assert.throws(() => parse(["--config-file", file]), (err: Error) => {
      assert.match(err.message, /config file .*line \d+: /);
      return true;
    });
    assert.equal(polluted(), undefined, text);
  }
  assert.equal(Object.getPrototypeOf(parseOsloConfig("[s]\nk = v\n")), null);
  assert.equal(Object.getPrototypeOf(parseOsloConfig("[s]\nk = v\n").s), null);
  // An ordinary file, with the names Glance's files use, still parses.
  const ok = await confFile("[DEFAULT]\nbind_port = 9494\n\n[glance_cache_node]\nforce_noauth = false\n");
  const { config } = parse(["--config-file", ok]);
  assert.equal(config.port, 9494);
  assert.equal(config.forceNoauth, false);
  assert.equal(parse(["--config-file", await confFile(FULL)]).config.port, 9393);
});

t("isLoopback: only real loopback addresses", async () => {
  const { isLoopback } = await import("../../src/auth/addresses.ts");
  for (
    const yes of [
      "127.0.0.1",
      "127.1.2.3",
      "127.255.255.255",
      "::1",
      "0:0:0:0:0:0:0:1",
      "[::1]",
      "localhost",
      "::ffff:127.0.0.1",
    ]
  ) {
    assert.equal(isLoopback(yes), true, yes);
  }
  for (
    const no of [
      "127.evil.example",
      "127.0.0.1.evil.example",
      "127.1",
      "0.0.0.0",
      "::",
      "10.0.0.1",
      "128.0.0.1",
      "::2",
      "::ffff:10.0.0.1",
      "127.0.0.256",
      "localhost.evil",
      "",
    ]
  ) {
    assert.equal(isLoopback(no), false, no);
  }
  assert.throws(() => parse(["--host", "127.evil.example"]), /refusing to listen on 127.evil.example/);
});

t("trusted proxies, test tokens, public metrics and limits: flags, environment, file; defaults", async () => {
  const d = parse([]).config;
  assert.equal(d.trustedProxies, undefined);
  assert.equal(d.insecureTestTokens, false);
  assert.equal(d.publicMetrics, false);
  assert.equal(d.maxRequestBodySize, 65536);
  assert.equal(d.imageSizeCap, 1099511627776);
  const file = await confFile(
    "[DEFAULT]\nimage_size_cap = 1000\n[oslo_middleware]\nmax_request_body_size = 2000\n[glance_cache_node]\ntrusted_proxies = 10.0.0.0/8, fd00::/8\ninsecure_test_tokens = true\npublic_metrics = true\n",
  );
  const c = parse(["--config-file", file]).config;
  assert.deepEqual(c.trustedProxies, ["10.0.0.0/8", "fd00::/8"]);
  assert.equal(c.insecureTestTokens, true);
  assert.equal(c.publicMetrics, true);
  assert.equal(c.maxRequestBodySize, 2000);
  assert.equal(c.imageSizeCap, 1000);
  assert.deepEqual(parse([], { GLANCE_CACHE_TRUSTED_PROXIES: "192.0.2.1" }).config.trustedProxies, [
    "192.0.2.1",
  ]);
  assert.deepEqual(parse(["--trusted-proxies", "::ffff:10.1.0.0/112"]).config.trustedProxies, [
    "::ffff:10.1.0.0/112",
  ]);
  for (const bad of ["10.0.0.0/33", "fd00::/129", "10.0.0", "proxy.example", "10.0.0.0/8/8"]) {
    assert.throws(() => parse(["--trusted-proxies", bad]), /--trusted-proxies/, bad);
  }
});

t("headers mode off loopback needs trusted proxies", () => {
  assert.throws(
    () => parse(["--auth", "headers", "--host", "0.0.0.0"]),
    /refusing to listen on 0.0.0.0 without --trusted-proxies/,
  );
  assert.equal(
    parse(["--auth", "headers", "--host", "0.0.0.0", "--trusted-proxies", "10.0.0.5"]).config.auth,
    "headers",
  );
  assert.equal(parse(["--auth", "headers", "--host", "::1"]).config.trustedProxies, undefined);
});

t("commands", () => {
  assert.equal(parse(["prune"]).command, "prune");
  assert.equal(parse(["clean", "--data-dir", "/x"]).command, "clean");
  assert.throws(() => parse(["explode"]), /unknown command/);
});

t("policy.yaml: Glance's cache rules in oslo.policy's syntax; other rules left to upstream", async () => {
  const path = join(await tempDir(), "policy.yaml");
  await writeFile(
    path,
    '"cache_list": "role:admin or role:cache_reader"\n"cache_image": ""\n"get_image": "rule:default"\n',
  );
  const policy = await Policy.fromFile(path);
  const reader = makeIdentity("u", "p", ["cache_reader"]);
  const member = makeIdentity("u", "p", ["member"]);
  policy.enforce("cache_list", reader);
  assert.throws(() => policy.enforce("cache_list", member), /cache_list/);
  policy.enforce("cache_image", member);
  assert.throws(() => policy.enforce("cache_delete", reader), /cache_delete/); // default role:admin
  await writeFile(path, '"cache_delete": "rule:something_complicated"\n');
  await assert.rejects(
    Policy.fromFile(path),
    /rule "cache_delete" refers to rule:something_complicated, which is not defined/,
  );
});

t("the cache queue bound: default 1000, from the file, the environment or the flag", async () => {
  assert.equal(parse([]).config.maxQueue, 1000);
  const file = await confFile("[glance_cache_node]\nmax_queue = 50\n");
  assert.equal(parse(["--config-file", file]).config.maxQueue, 50);
  assert.equal(parse(["--config-file", file], { GLANCE_CACHE_IMAGE_CACHE_MAX_QUEUE: "60" }).config.maxQueue, 60);
  assert.equal(parse(["--config-file", file, "--image-cache-max-queue", "70"]).config.maxQueue, 70);
  assert.throws(() => parse(["--image-cache-max-queue", "-1"]), ConfigError);
});

t(
  "verify_hash: os_hash_value by default, checksum from the file, the environment or the flag; nothing else",
  async () => {
    assert.equal(parse([]).config.verifyHash, "os_hash_value");
    const file = await confFile("[glance_cache_node]\nverify_hash = checksum\n");
    assert.equal(parse(["--config-file", file]).config.verifyHash, "checksum");
    assert.equal(
      parse(["--config-file", file], { GLANCE_CACHE_VERIFY_HASH: "os_hash_value" }).config.verifyHash,
      "os_hash_value",
    );
    assert.equal(parse(["--verify-hash", "checksum"]).config.verifyHash, "checksum");
    assert.throws(
      () => parse(["--verify-hash", "sha1"]),
      (err: Error) => err instanceof ConfigError && /verify-hash.*os_hash_value or checksum/.test(err.message),
    );
  },
);

t("docs/configuration.md's option tables are the declarations' (else regenerate them)", async () => {
  const { DOCS_PATH, optionDocs, REGENERATE, withOptionDocs } = await import("../../src/config/docs_table.ts");
  const page = await readFile(DOCS_PATH, "utf8");
  assert.ok(
    page === withOptionDocs(page),
    `docs/configuration.md disagrees with src/config/options.ts: run ${REGENERATE}`,
  );
  assert.ok(page.includes(optionDocs()));
});

t("each flag, variable and file key belongs to one declaration", async () => {
  const { declarations } = await import("../../src/config/parse.ts");
  const { envName, iniKeys } = await import("../../src/config/kinds.ts");
  const names = declarations().flatMap((d) => [
    ...(d.flag ? [`--${d.flag}`] : []),
    ...(envName(d) ? [envName(d)!] : []),
    ...(d.oldEnv ? [d.oldEnv] : []),
    ...iniKeys(d).map(([section, key]) => `[${section}] ${key}`),
  ]);
  assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), []);
});

t.run();
