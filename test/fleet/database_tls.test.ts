// The fleet database over TLS: PyMySQL's ssl_ca (and friends) in the URL, against a MariaDB that refuses plain connections.
// test-needs: mariadb openssl
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { suite } from "uvu";
import { openPool } from "../../src/fleet/database.ts";
import { freePort } from "../../support/processes.ts";
import { makeCerts, type TestCerts } from "../helpers/certs.ts";
import { startOnPort } from "../helpers/fleet_helpers.ts";
import { type MariaDb, startMariaDb } from "../helpers/mariadb.ts";

const t = suite<{ certs: TestCerts; db: MariaDb }>("fleet database tls", {} as never);
t.before(async (ctx) => {
  ctx.certs = await makeCerts();
  ctx.db = await startMariaDb("glance_fleet", { tls: ctx.certs });
});
t.after(async ({ certs, db }) => {
  await db.close();
  await rm(certs.dir, { recursive: true, force: true });
});

/** The TLS cipher of a connection of the pool the URL opens ("" on a plain one), or the error connecting gave. */
async function cipherOver(url: string): Promise<string | Error> {
  const pool = openPool(url);
  try {
    const [rows] = await pool.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
    return (rows as { Value: string }[])[0].Value;
  } catch (err) {
    return err as Error;
  } finally {
    await pool.end().catch(() => {});
  }
}

t(
  "ssl_ca in the URL connects over TLS; without it the server refuses, and a CA it does not know fails",
  async (ctx) => {
    const { db, certs } = ctx;
    const withCa = await cipherOver(`${db.url}?charset=utf8&ssl_ca=${encodeURIComponent(certs.caFile)}`);
    assert.ok(typeof withCa === "string" && withCa.length > 0, `a TLS cipher: ${withCa}`);
    const plain = await cipherOver(db.url);
    // MariaDB refuses it at login: the same user, without a password, that TLS let in just above.
    assert.ok(plain instanceof Error, "a plain connection is refused");
    assert.match(plain.message, /secure transport|Access denied/i);
    // TLS on without the test CA: the server's certificate is verified against the runtime's CAs, and fails.
    const unknownCa = await cipherOver(`${db.url}?ssl=true`);
    assert.ok(unknownCa instanceof Error, "an unverified server is refused");
    assert.match(unknownCa.message, /certificate/i);
    // Not verifying is possible, by an explicit choice only.
    const unverified = await cipherOver(`${db.url}?ssl=true&ssl_verify_cert=false`);
    assert.ok(typeof unverified === "string" && unverified.length > 0, `${unverified}`);
  },
);

t("a fleet node joins through a mysql+pymysql URL with ssl_ca", async ({ db, certs }) => {
  const port = await freePort();
  const databaseUrl = `${
    db.url.replace("mysql://", "mysql+pymysql://")
  }?charset=utf8&ssl_ca=${certs.caFile}&ssl_verify_identity=true`;
  const node = await startOnPort(port, {
    auth: "noauth",
    fleet: { databaseUrl, selfUrl: `http://127.0.0.1:${port}` },
  });
  try {
    const res = await node.req("/v2/x-fleet/nodes");
    assert.equal(res.status, 200);
    const body = JSON.stringify(await res.json());
    assert.ok(body.includes(`http://127.0.0.1:${port}`), body);
  } finally {
    await node.close();
  }
  await assert.rejects(
    startOnPort(port, { auth: "noauth", fleet: { databaseUrl: db.url, selfUrl: `http://127.0.0.1:${port}` } }),
    /fleet database .*(secure transport|Access denied)/i,
  );
});

t.run();
