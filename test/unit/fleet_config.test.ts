// Fleet configuration: Glance's option names ([database] connection, [DEFAULT] worker_self_reference_url) and ours.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { ConfigError, parseConfig } from "../../src/config/parse.ts";
import { connectionOptions, parseHosts, redact } from "../../src/fleet/database.ts";
import { isMemberError, isRetryable } from "../../src/fleet/sql.ts";
import { tempDir } from "../helpers/helpers.ts";

const t = suite("fleet config");

async function configWith(text: string) {
  const path = join(await tempDir(), "glance-api.conf");
  await writeFile(path, text);
  const r = parseConfig(["--config-file", path], {});
  assert.ok(r !== "help");
  return r.config;
}

t("Glance's [database] connection and worker_self_reference_url make a fleet node", async () => {
  const config = await configWith(`
[DEFAULT]
worker_self_reference_url = http://10.0.0.5:9292/
image_cache_driver = centralized_db
[database]
connection = mysql+pymysql://glance:s%40cret@db.example:3307/glance?charset=utf8
[glance_cache_node]
site = edge-1
fleet_secret = abc
`);
  assert.deepEqual(config.fleet, {
    databaseUrl: "mysql+pymysql://glance:s%40cret@db.example:3307/glance?charset=utf8",
    selfUrl: "http://10.0.0.5:9292",
    site: "edge-1",
    secret: "abc",
    pollInterval: 2,
    heartbeatInterval: 10,
    databaseHosts: undefined,
  });
  const conn = connectionOptions(config.fleet!.databaseUrl);
  assert.deepEqual([conn.host, conn.port, conn.user, conn.password, conn.database], [
    "db.example",
    3307,
    "glance",
    "s@cret",
    "glance",
  ]);
  assert.equal(redact(config.fleet!.databaseUrl), "mysql+pymysql://glance:***@db.example:3307/glance?charset=utf8");
});

t("docs/fleet.md's example configuration is read as written", async () => {
  const { readFileSync } = await import("node:fs");
  const text = readFileSync(new URL("../../docs/fleet.md", import.meta.url), "utf8");
  const section = text.slice(text.search(/^## (Fleet|Configuration)/m));
  const ini = /```ini\n([\s\S]*?)```/.exec(section)![1];
  const config = await configWith(ini);
  assert.deepEqual(config.fleet, {
    databaseUrl: "mysql+pymysql://glance:secret@db.example/glance_fleet?charset=utf8",
    selfUrl: "http://10.0.0.5:9292",
    site: "edge-1",
    secret: "long-random-string",
    pollInterval: 2,
    heartbeatInterval: 10,
    databaseHosts: undefined,
  });
});

t("fleet_database_url wins over [database] connection; without either the node is alone", async () => {
  const config = await configWith(`
[DEFAULT]
worker_self_reference_url = http://n1:9292
[database]
connection = mysql+pymysql://a@h/one
[glance_cache_node]
fleet_database_url = mysql://b@h/two
fleet_poll_interval = 5
`);
  assert.equal(config.fleet?.databaseUrl, "mysql://b@h/two");
  assert.equal(config.fleet?.pollInterval, 5);
  assert.equal((await configWith("[DEFAULT]\nbind_port = 9292\n")).fleet, undefined);
});

t(
  "with Glance's sqlite or xattr cache driver, [database] connection is Glance's own: ignored, the node alone",
  async () => {
    for (const driver of ["sqlite", "xattr"]) {
      const path = join(await tempDir(), "glance-api.conf");
      await writeFile(
        path,
        `[DEFAULT]\nimage_cache_driver = ${driver}\n[database]\nconnection = mysql+pymysql://a@h/glance\n`,
      );
      const r = parseConfig(["--config-file", path], {});
      assert.ok(r !== "help");
      assert.equal(r.config.fleet, undefined, driver);
      assert.deepEqual(r.ignored, ["[database] connection"]);
    }
    await assert.rejects(
      configWith("[DEFAULT]\nimage_cache_driver = redis\n"),
      /image_cache_driver = redis: not one of/,
    );
  },
);

t("a fleet without worker_self_reference_url, or on another database, is refused", async () => {
  await assert.rejects(
    configWith("[database]\nconnection = mysql+pymysql://a@h/db\n"),
    (e: Error) => e instanceof ConfigError && /worker_self_reference_url/.test(e.message),
  );
  await assert.rejects(
    configWith(
      "[DEFAULT]\nworker_self_reference_url = http://n1\n[database]\nconnection = sqlite:////var/lib/glance/glance.sqlite\n",
    ),
    (e: Error) => e instanceof ConfigError && /only MariaDB/.test(e.message),
  );
  await assert.rejects(
    configWith("[DEFAULT]\nworker_self_reference_url = n1:9292\n[database]\nconnection = mysql://a@h/db\n"),
    (e: Error) => e instanceof ConfigError && /not an http/.test(e.message),
  );
  assert.throws(() => connectionOptions("mysql://a@h/"), /names no database/);
});

t("PyMySQL's TLS options in the URL become mysql2's ssl: files read, verification on unless turned off", async () => {
  const dir = await tempDir();
  const file = async (name: string) => {
    await writeFile(join(dir, name), `PEM ${name}`);
    return join(dir, name);
  };
  const [ca, cert, key] = [await file("ca.pem"), await file("client.pem"), await file("client.key")];
  const base = "mysql+pymysql://glance:pw@db.example/glance?charset=utf8";
  const ssl = (query: string) => connectionOptions(`${base}&${query}`).ssl;
  assert.equal(connectionOptions(base).ssl, undefined, "no ssl_* option: a plain connection");
  assert.deepEqual(ssl(`ssl_ca=${ca}`), { ca: "PEM ca.pem", rejectUnauthorized: true, verifyIdentity: true });
  assert.deepEqual(ssl(`ssl_ca=${ca}&ssl_cert=${cert}&ssl_key=${key}&ssl_check_hostname=false`), {
    ca: "PEM ca.pem",
    cert: "PEM client.pem",
    key: "PEM client.key",
    rejectUnauthorized: true,
    verifyIdentity: false,
  });
  assert.deepEqual(ssl(`ssl_ca=${ca}&ssl_verify_identity=false`), {
    ca: "PEM ca.pem",
    rejectUnauthorized: true,
    verifyIdentity: false,
  });
  assert.deepEqual(ssl("ssl=true"), { rejectUnauthorized: true, verifyIdentity: true }, "the runtime's CAs");
  assert.deepEqual(ssl("ssl=1&ssl_verify_cert=false"), { rejectUnauthorized: false, verifyIdentity: false });
  assert.deepEqual(ssl("ssl_mode=REQUIRED"), { rejectUnauthorized: false, verifyIdentity: false });
  assert.deepEqual(ssl(`ssl_mode=verify_ca&ssl_ca=${ca}`), {
    ca: "PEM ca.pem",
    rejectUnauthorized: true,
    verifyIdentity: false,
  });
  assert.deepEqual(ssl("ssl_cipher=ECDHE-RSA-AES256-GCM-SHA384&ssl_mode=VERIFY_IDENTITY"), {
    ciphers: "ECDHE-RSA-AES256-GCM-SHA384",
    rejectUnauthorized: true,
    verifyIdentity: true,
  });
  for (const off of [`ssl_disabled=true&ssl_ca=${ca}`, "ssl=false", "ssl_mode=DISABLED"]) {
    assert.equal(ssl(off), undefined, off);
  }
  const refused: [string, RegExp][] = [
    ["ssl_capath=/etc/ssl/certs", /ssl_capath: not a TLS option/],
    [`ssl_ca=${join(dir, "missing.pem")}`, /ssl_ca .*missing\.pem/],
    [`ssl_ca=${ca}&ssl_cert=${cert}`, /ssl_cert and ssl_key go together/],
    ["ssl_verify_cert=maybe", /ssl_verify_cert=maybe: not true or false/],
    ["ssl_mode=PREFERRED", /ssl_mode=PREFERRED: use one of/],
  ];
  for (const [query, message] of refused) {
    assert.throws(() => ssl(query), (err: Error) => {
      assert.match(err.message, message);
      assert.match(err.message, /^fleet database mysql\+pymysql:\/\/glance:\*\*\*@/, "the password hidden");
      return true;
    });
  }
});

t("fleet_database_hosts: more members after the URL's host, each once, in order; a bad list is refused", async () => {
  const config = await configWith(`
[DEFAULT]
worker_self_reference_url = http://10.0.0.5:9292
[database]
connection = mysql+pymysql://glance:x@db1:3306/glance
[glance_cache_node]
fleet_database_hosts = db2:3307, db1:3306,[fd00::3], db3
`);
  const first = connectionOptions(config.fleet!.databaseUrl);
  assert.deepEqual(parseHosts(config.fleet!.databaseHosts, { host: first.host!, port: first.port! }), [
    { host: "db1", port: 3306 },
    { host: "db2", port: 3307 },
    { host: "fd00::3", port: 3306 },
    { host: "db3", port: 3306 },
  ]);
  await assert.rejects(
    configWith(
      "[DEFAULT]\nworker_self_reference_url = http://a\n[database]\nconnection = mysql://a@h/db\n" +
        "[glance_cache_node]\nfleet_database_hosts = db2:port\n",
    ),
    /fleet_database_hosts.*host or host:port/,
  );
});

t("which database errors run again, and which move to another member", () => {
  assert.equal(isRetryable({ errno: 1213, code: "ER_LOCK_DEADLOCK" }), true);
  assert.equal(isMemberError({ errno: 1213 }), false);
  assert.equal(isMemberError({ errno: 1047, code: "ER_UNKNOWN_COM_ERROR" }), true);
  assert.equal(isMemberError({ code: "ECONNREFUSED" }), true);
  assert.equal(isRetryable({ errno: 1062, code: "ER_DUP_ENTRY" }), false);
});

t.run();
