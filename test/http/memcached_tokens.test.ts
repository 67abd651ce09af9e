// memcached_servers: a token one node validated is not validated again by another node sharing the memcached;
// memcached gone, each node asks Keystone (one warning), never refuses for it.
// test-needs: memcached
import assert from "node:assert/strict";
import { suite } from "uvu";
import { Memcached } from "../../src/auth/memcached.ts";
import { start } from "../helpers/helpers.ts";
import { fakeKeystone, fakeKeystoneOptions } from "../helpers/fake_keystone.ts";
import { startMemcached } from "../helpers/memcached.ts";

const t = suite("memcached tokens");

const status = async (node: Awaited<ReturnType<typeof start>>, token: string) => {
  const res = await node.req("/v2/cache", { as: { "X-Auth-Token": token } });
  await res.arrayBuffer();
  return res.status;
};

t("the memcached client: set with a time to live, get, a miss, values with CRLF and UTF-8 inside", async () => {
  const mc = await startMemcached();
  const client = new Memcached(mc.servers);
  try {
    assert.equal(await client.get("absent"), undefined);
    assert.equal(await client.set("k", "a\r\nEND\r\nb é", 60), true);
    const [one, two, none] = await Promise.all([client.get("k"), client.get("k"), client.get("nope")]);
    assert.deepEqual([one, two, none], ["a\r\nEND\r\nb é", "a\r\nEND\r\nb é", undefined]);
  } finally {
    client.close();
    await mc.stop();
  }
});

t("two nodes, one memcached: the second node takes the first's validation; Keystone is asked once", async () => {
  const mc = await startMemcached();
  const ks = await fakeKeystone({ user: ["admin"] });
  const keystone = fakeKeystoneOptions(ks.url, { tokenCacheTime: 60, memcachedServers: mc.servers });
  const first = await start({ auth: "keystone", keystone });
  const second = await start({ auth: "keystone", keystone });
  const alone = await start({ auth: "keystone", keystone: { ...keystone, memcachedServers: undefined } });
  try {
    assert.equal(await status(first, "user"), 200);
    assert.equal(ks.asked("user"), 1);
    assert.equal(await status(second, "user"), 200);
    assert.equal(ks.asked("user"), 1, "the second node did not ask Keystone");
    assert.equal(await status(second, "bogus"), 401);
    assert.equal(await status(first, "bogus"), 401);
    assert.equal(ks.asked("bogus"), 2, "refusals are not shared: each node asks");
    assert.equal(await status(alone, "user"), 200);
    assert.equal(ks.asked("user"), 2, "a node without memcached_servers asks Keystone itself");
  } finally {
    await first.close();
    await second.close();
    await alone.close();
    await ks.close();
    await mc.stop();
  }
});

t(
  "memcache_security_strategy MAC and ENCRYPT: shared with the same secret only; a planted value is not believed",
  async () => {
    const mc = await startMemcached();
    const ks = await fakeKeystone({ user: ["admin"] });
    const plain = new Memcached(mc.servers);
    try {
      for (const strategy of ["MAC", "ENCRYPT"]) {
        const keystone = (secret: string) =>
          fakeKeystoneOptions(ks.url, {
            tokenCacheTime: 60,
            memcachedServers: mc.servers,
            memcacheSecurityStrategy: strategy,
            memcacheSecretKey: secret,
          });
        const token = `user-${strategy}`;
        ks.tokens.set(token, ["admin"]);
        const a = await start({ auth: "keystone", keystone: keystone("s3cret") });
        const b = await start({ auth: "keystone", keystone: keystone("s3cret") });
        const other = await start({ auth: "keystone", keystone: keystone("another") });
        try {
          assert.equal(await status(a, token), 200);
          assert.equal(await status(b, token), 200);
          assert.equal(ks.asked(token), 1, `${strategy}: the same secret shares`);
          assert.equal(await status(other, token), 200);
          assert.equal(ks.asked(token), 2, `${strategy}: another secret does not`);
        } finally {
          await a.close();
          await b.close();
          await other.close();
        }
      }
      // Without the secret a writer cannot plant an identity: an unsigned value under a plain node's key is
      // believed by that plain node only, never by a MAC node (whose keys it cannot even compute).
      const { createHash } = await import("node:crypto");
      const planted = JSON.stringify({
        userId: "intruder",
        projectId: "p1",
        roles: ["admin"],
        expires: Date.now() + 60_000,
      });
      await plain.set(`glance-cache-node/token/${createHash("sha256").update("forged").digest("hex")}`, planted, 60);
      const mac = await start({
        auth: "keystone",
        keystone: fakeKeystoneOptions(ks.url, {
          tokenCacheTime: 60,
          memcachedServers: mc.servers,
          memcacheSecurityStrategy: "MAC",
          memcacheSecretKey: "s3cret",
        }),
      });
      try {
        assert.equal(await status(mac, "forged"), 401);
        assert.equal(ks.asked("forged"), 1, "Keystone decided");
      } finally {
        await mac.close();
      }
    } finally {
      plain.close();
      await ks.close();
      await mc.stop();
    }
  },
);

t("memcached gone: the node asks Keystone, with one warning, and never refuses a good token for it", async () => {
  const mc = await startMemcached();
  const servers = mc.servers;
  await mc.stop();
  const ks = await fakeKeystone({ user: ["admin"], other: ["admin"] });
  const lines: string[] = [];
  const node = await start({
    auth: "keystone",
    keystone: fakeKeystoneOptions(ks.url, { tokenCacheTime: 60, memcachedServers: servers }),
    log: (l) => lines.push(l),
  });
  try {
    assert.equal(await status(node, "user"), 200);
    assert.equal(await status(node, "other"), 200);
    assert.equal(ks.asked("user") + ks.asked("other"), 2);
    assert.equal(lines.filter((l) => /WARNING keystone .*memcached_servers: /.test(l)).length, 1, lines.join("\n"));
  } finally {
    await node.close();
    await ks.close();
  }
});

t.run();
