// Token validation against a fake Keystone on loopback: single flight, refusals remembered, timeouts, 503 when unreachable.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { KeystoneClient, type KeystoneOptions } from "../../src/auth/keystone.ts";
import { start } from "../helpers/helpers.ts";
import { Gate } from "../helpers/gate.ts";
import { serveLoopback } from "../helpers/loopback.ts";

const t = suite("keystone");

/** A fake Keystone v3: "good" is valid (once the gate opens), anything else is not; "hang" never answers. */
async function fakeKeystone() {
  const validations = new Map<string, number>();
  const open = new Gate();
  const hung = new Gate(); // opened only when the fake closes, so the server can stop
  let issued = 0;
  const server = await serveLoopback(async (request) => {
    const url = new URL(request.url);
    if (url.pathname !== "/v3/auth/tokens") return new Response("", { status: 404 });
    if (request.method === "POST") {
      issued++;
      return Response.json(
        {
          token: {
            expires_at: "2999-01-01T00:00:00Z",
            user: { id: "svc", name: "svc" },
            project: { id: "service" },
            roles: [{ name: "admin" }],
          },
        },
        { status: 201, headers: { "X-Subject-Token": "service-token" } },
      );
    }
    const subject = request.headers.get("x-subject-token") ?? "";
    validations.set(subject, (validations.get(subject) ?? 0) + 1);
    if (subject === "hang") await hung.pass();
    if (subject === "own-token-refused") return Response.json({ error: { code: 401 } }, { status: 401 }); // as if ours were revoked
    if (subject !== "good") return Response.json({ error: { code: 404 } }, { status: 404 });
    await open.pass();
    return Response.json({
      token: {
        expires_at: "2999-01-01T00:00:00Z",
        user: { id: "u1", name: "user" },
        project: { id: "p1" },
        roles: [{ name: "admin" }],
      },
    });
  });
  return {
    ...server,
    validations,
    open: open.open,
    issued: () => issued,
    close() {
      hung.open();
      open.open();
      return server.close();
    },
  };
}

const options = (url: string, more: Partial<KeystoneOptions> = {}): KeystoneOptions => ({
  authUrl: `${url}/v3`,
  username: "svc",
  password: "pw",
  projectName: "service",
  userDomainName: "Default",
  projectDomainName: "Default",
  tokenCacheTime: 0,
  timeout: 1,
  ...more,
});

t("concurrent validations of one token ask Keystone once", async () => {
  const ks = await fakeKeystone();
  try {
    const client = new KeystoneClient(options(ks.url));
    const all = Promise.all(Array.from({ length: 5 }, () => client.validate("good")));
    ks.open();
    const identities = await all;
    for (const identity of identities) assert.equal(identity?.userId, "u1");
    assert.equal(ks.validations.get("good"), 1);
    assert.equal(ks.issued(), 1, "the node's own token was issued once too");
  } finally {
    await ks.close();
  }
});

t("a bogus token is refused from memory for a while: Keystone is asked once", async () => {
  const ks = await fakeKeystone();
  try {
    const client = new KeystoneClient(options(ks.url, { negativeCacheTime: 10 }));
    assert.equal(await client.validate("bogus"), undefined);
    assert.equal(await client.validate("bogus"), undefined);
    assert.equal(ks.validations.get("bogus"), 1);
    const forgetful = new KeystoneClient(options(ks.url, { negativeCacheTime: 0 }));
    assert.equal(await forgetful.validate("bogus"), undefined);
    assert.equal(await forgetful.validate("bogus"), undefined);
    assert.equal(ks.validations.get("bogus"), 3, "with no negative cache time, asked each time");
  } finally {
    await ks.close();
  }
});

t("through the node: a bogus token is 401 twice with one validation; a good one is 200", async () => {
  const ks = await fakeKeystone();
  const node = await start({ auth: "keystone", keystone: options(ks.url) });
  try {
    for (let i = 0; i < 2; i++) {
      assert.equal((await node.req("/v2/cache", { as: { "X-Auth-Token": "bogus" } })).status, 401);
    }
    assert.equal(ks.validations.get("bogus"), 1);
    ks.open();
    assert.equal((await node.req("/v2/cache", { as: { "X-Auth-Token": "good" } })).status, 200);
  } finally {
    await node.close();
    await ks.close();
  }
});

t("Keystone unreachable, hung, or refusing the node's own credentials or token: 503, not 500", async () => {
  const gone = await serveLoopback(() => new Response(""));
  await gone.close(); // nothing listens there any more
  const ks = await fakeKeystone();
  const refusing = await serveLoopback(() => Response.json({ error: {} }, { status: 401 }));
  const cases: [string, string][] = [[gone.url, "good"], [ks.url, "hang"], [refusing.url, "good"], [
    ks.url,
    "own-token-refused",
  ]];
  try {
    for (const [url, token] of cases) {
      const node = await start({ auth: "keystone", keystone: options(url) });
      try {
        const res = await node.req("/v2/cache", { as: { "X-Auth-Token": token } });
        assert.equal(res.status, 503, `${url} ${token}`);
        assert.match(await res.text(), /Keystone/);
      } finally {
        await node.close();
      }
    }
    assert.equal(ks.validations.get("hang"), 1, "the hung validation reached Keystone and was given up on");
    assert.equal(ks.validations.get("own-token-refused"), 2, "one retry with a new token of its own");
  } finally {
    await ks.close();
    await refusing.close();
  }
});

t.run();
