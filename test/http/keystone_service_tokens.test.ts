// keystonemiddleware's options the node honours: X-Service-Token checked (service_token_roles, service_token_roles_required),
// and interface and region_name choosing the catalog's identity endpoint that validates tokens.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { start } from "../helpers/helpers.ts";
import { fakeKeystone, fakeKeystoneOptions } from "../helpers/fake_keystone.ts";

const t = suite("keystone service tokens");

t(
  "X-Service-Token: not valid is 401; without a service role 401 when required, else accepted with a warning",
  async () => {
    const ks = await fakeKeystone({ user: ["admin"], nova: ["service"], plain: ["member"] });
    const lines: string[] = [];
    const lenient = await start({ auth: "keystone", keystone: fakeKeystoneOptions(ks.url), log: (l) => lines.push(l) });
    const strict = await start({
      auth: "keystone",
      keystone: fakeKeystoneOptions(ks.url, { serviceTokenRolesRequired: true, serviceTokenRoles: "admin, service" }),
    });
    const status = async (node: typeof strict, service?: string) => {
      const headers: Record<string, string> = { "X-Auth-Token": "user" };
      if (service) headers["X-Service-Token"] = service;
      const res = await node.req("/v2/cache", { as: headers });
      await res.arrayBuffer();
      return res.status;
    };
    try {
      for (const node of [lenient, strict]) {
        assert.equal(await status(node), 200, "no service token: the user's alone");
        assert.equal(await status(node, "bogus"), 401, "a service token Keystone does not know");
        assert.equal(await status(node, "nova"), 200, "a service token with the service role");
      }
      assert.equal(await status(strict, "plain"), 401, "service_token_roles_required: a token without the roles");
      assert.equal(lines.filter((l) => l.includes("lacks every role")).length, 0);
      assert.equal(await status(lenient, "plain"), 200, "not required: accepted");
      assert.ok(
        lines.some((l) =>
          /WARNING keystone .*a service token of user user-plain lacks every role of service_token_roles \(service\)/
            .test(l)
        ),
        lines.join("\n"),
      );
    } finally {
      await lenient.close();
      await strict.close();
      await ks.close();
    }
  },
);

t("interface and region_name: tokens are validated at that identity endpoint of the node's catalog", async () => {
  const ks = await fakeKeystone({ user: ["admin"] });
  const lines: string[] = [];
  const cases = [
    { opts: {}, prefix: "", what: "neither: auth_url" },
    { opts: { interface: "internal" as const, regionName: "RegionTwo" }, prefix: "/internal", what: "internal" },
    { opts: { interface: "public" as const }, prefix: "", what: "public" },
    { opts: { regionName: "RegionTwo" }, prefix: "/internal", what: "the region's" },
    { opts: { regionName: "Nowhere" }, prefix: "", what: "none in the catalog: auth_url, with a warning" },
  ];
  try {
    for (const { opts, prefix, what } of cases) {
      ks.validations.clear();
      const node = await start({
        auth: "keystone",
        keystone: fakeKeystoneOptions(ks.url, opts),
        log: (l) => lines.push(l),
      });
      try {
        const res = await node.req("/v2/cache", { as: { "X-Auth-Token": "user" } });
        await res.arrayBuffer();
        assert.equal(res.status, 200, what);
        assert.deepEqual([...ks.validations], [[`${prefix} user`, 1]], what);
      } finally {
        await node.close();
      }
    }
    assert.ok(
      lines.some((l) => /WARNING keystone .*no any identity endpoint in region Nowhere/.test(l)),
      lines.join("\n"),
    );
  } finally {
    await ks.close();
  }
});

t.run();
