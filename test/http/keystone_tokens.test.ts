// Token validation against a fake Keystone on loopback: single flight, refusals remembered, timeouts, 503 when unreachable,
// and tokens validated before accepted from memory while Keystone cannot be reached.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { KeystoneClient, type KeystoneOptions } from "../../src/auth/keystone.ts";
import { start, waitFor } from "../helpers/helpers.ts";
import { runCli } from "../helpers/cli_process.ts";
import { Gate } from "../helpers/gate.ts";
import { serveLoopback } from "../helpers/loopback.ts";

const t = suite("keystone");

/**
 * A fake Keystone v3: "good" is valid (once the gate opens), "other" too, "brief" for a second from its first
 * validation; anything else (or a token in `revoked`) is not; "hang" never answers. `down` makes it answer 503.
 */
async function fakeKeystone() {
  const validations = new Map<string, number>();
  const state = { down: false, revoked: new Set<string>(), briefExpiry: 0, serviceExpiry: "2999-01-01T00:00:00Z" };
  const open = new Gate();
  const hung = new Gate(); // opened only when the fake closes, so the server can stop
  let issued = 0;
  const server = await serveLoopback(async (request) => {
    const url = new URL(request.url);
    if (url.pathname !== "/v3/auth/tokens") return new Response("", { status: 404 });
    if (state.down) {
      const subject = request.headers.get("x-subject-token") ?? "(service)";
      validations.set(subject, (validations.get(subject) ?? 0) + 1);
      return new Response("Service Unavailable", { status: 503 });
    }
    if (request.method === "POST") {
      issued++;
      return Response.json(
        {
          token: {
            expires_at: state.serviceExpiry,
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
    if (!["good", "other", "brief"].includes(subject) || state.revoked.has(subject)) {
      return Response.json({ error: { code: 404 } }, { status: 404 });
    }
    if (subject === "good") await open.pass();
    if (subject === "brief") state.briefExpiry ||= Date.now() + 1000;
    return Response.json({
      token: {
        expires_at: subject === "brief" ? new Date(state.briefExpiry).toISOString() : "2999-01-01T00:00:00Z",
        user: { id: "u1", name: "user" },
        project: { id: "p1" },
        roles: [{ name: "admin" }],
      },
    });
  });
  return {
    ...server,
    validations,
    state,
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

/** GET /v2/cache with `token`: its status, and its error text when not 200. */
async function asking(node: Awaited<ReturnType<typeof start>>, token: string) {
  const res = await node.req("/v2/cache", { as: { "X-Auth-Token": token } });
  return { status: res.status, text: await res.text() };
}

t(
  "Keystone answering 503: a token validated before still works, a new or expired one is 503; back: revoked is 401",
  async () => {
    const ks = await fakeKeystone();
    ks.open();
    const lines: string[] = [];
    const node = await start({ auth: "keystone", keystone: options(ks.url), log: (l) => lines.push(l) });
    const asked = (token: string) => ks.validations.get(token) ?? 0;
    try {
      assert.equal((await asking(node, "good")).status, 200);
      assert.equal((await asking(node, "brief")).status, 200);
      assert.equal(asked("good"), 1);
      ks.state.down = true;

      // Keystone is asked first (token_cache_time 0), fails, and the memory answers.
      assert.equal((await asking(node, "good")).status, 200);
      assert.equal(asked("good"), 2, "Keystone was asked, and its failure sent the node to memory");
      assert.equal((await asking(node, "good")).status, 200);
      assert.equal(asked("good"), 3);

      const fresh = await asking(node, "other");
      assert.equal(fresh.status, 503, "a token never seen: 503, never 200 nor 401");
      assert.match(fresh.text, /identity service \(Keystone\) is unreachable/);
      assert.equal(asked("other"), 1, "the new token was put to Keystone");

      // The brief token's own expiry passes during the outage (waiting for the clock, not for a race).
      await waitFor("the brief token's expiry", () => Promise.resolve(Date.now() > ks.state.briefExpiry));
      assert.equal((await asking(node, "brief")).status, 503, "an expired remembered token is 503");

      const status = await (await node.req("/v2/x-cache-node/status", { as: { "X-Auth-Token": "good" } })).json();
      assert.equal(status.keystone.reachable, false);
      assert.equal(status.keystone.authenticated_from_memory, 3, "two on /v2/cache, one for this document");
      assert.equal(typeof status.keystone.down_since, "number");
      const metrics = await (await node.req("/metrics", { as: { "X-Auth-Token": "good" } })).text();
      assert.match(metrics, /^glance_cache_keystone_tokens_from_memory_total 4$/m);
      assert.match(metrics, /^glance_cache_keystone_up 0$/m);
      assert.equal(lines.filter((l) => / WARNING keystone .*Keystone is unreachable/.test(l)).length, 1, "one line");
      const cli = await runCli(["status"], { OS_IMAGE_URL: node.url, OS_AUTH_TOKEN: "good" });
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /^Keystone: UNREACHABLE since \S+: \d+ requests let in on remembered tokens$/m);

      // Keystone back, and it has revoked "good" meanwhile: its answer wins at once, and the token is forgotten.
      ks.state.revoked.add("good");
      ks.state.down = false;
      assert.equal((await asking(node, "good")).status, 401);
      assert.equal((await asking(node, "other")).status, 200);
      assert.equal(lines.filter((l) => / INFO keystone .*Keystone answers again/.test(l)).length, 1);
      ks.state.down = true;
      assert.equal((await asking(node, "good")).status, 401, "still refused: Keystone's refusal is remembered");
      assert.equal((await asking(node, "other")).status, 200, "the token validated after the outage is remembered");
    } finally {
      await node.close();
      await ks.close();
    }
  },
);

t(
  "Keystone gone (connection refused): the token validated before works, a revoked one after the negative cache is 503",
  async () => {
    const ks = await fakeKeystone();
    ks.open();
    const node = await start({ auth: "keystone", keystone: options(ks.url, { negativeCacheTime: 0 }) });
    try {
      assert.equal((await asking(node, "good")).status, 200);
      assert.equal((await asking(node, "bogus")).status, 401);
      await ks.close();
      assert.equal((await asking(node, "good")).status, 200, "remembered");
      assert.equal((await asking(node, "other")).status, 503, "never seen");
      assert.equal((await asking(node, "bogus")).status, 503, "refused before, not remembered: 503, not 200");
      const status = await (await node.req("/v2/x-cache-node/status", { as: { "X-Auth-Token": "good" } })).json();
      assert.equal(status.keystone.reachable, false);
    } finally {
      await node.close();
    }
  },
);

t("the node's own token is reused until its expiry while Keystone is down, then renewed when it answers", async () => {
  const ks = await fakeKeystone();
  ks.open();
  const client = new KeystoneClient(options(ks.url));
  try {
    // Valid for 30 s more: inside the minute before expiry, so every call tries to renew it.
    ks.state.serviceExpiry = new Date(Date.now() + 30_000).toISOString();
    assert.equal(await client.serviceToken(), "service-token");
    ks.state.down = true;
    assert.equal(await client.serviceToken(), "service-token");
    assert.equal(ks.validations.get("(service)"), 1, "a renewal was tried, and failed");
    assert.equal(client.outage.reachable, false);
    ks.state.down = false;
    assert.equal(await client.serviceToken(), "service-token");
    assert.equal(ks.issued(), 2, "renewed once Keystone answers");
    assert.equal(client.outage.reachable, true);
  } finally {
    await ks.close();
  }
});

t.run();
