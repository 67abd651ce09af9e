// Policy files in oslo.policy's rule language: operators, rule: references, generic checks, and refusals at start.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { makeIdentity } from "../../src/auth/identity.ts";
import { CACHE_RULES, Policy, PolicyError } from "../../src/auth/policy.ts";
import { tempUrlIdentity } from "../../src/auth/temp_url.ts";
import { tempDir } from "../helpers/helpers.ts";

const t = suite("policy");

const admin = makeIdentity("a", "adminproj", ["admin"]);
const member = makeIdentity("m", "p1", ["member", "reader"]);
const reader = makeIdentity("r", "p1", ["reader"]);
const other = makeIdentity("o", "p2", ["member"]);
const operator = makeIdentity("op", "ops", ["cache_operator"]);

async function policyFile(name: string, text: string): Promise<Policy> {
  const path = join(await tempDir(), name);
  await writeFile(path, text);
  return Policy.fromFile(path);
}

t("Glance's defaults: role:admin for every cache rule", () => {
  const p = new Policy();
  for (const rule of ["cache_list", "cache_image", "cache_delete"] as const) {
    assert.equal(p.allows(rule, admin), true);
    assert.equal(p.allows(rule, member), false);
  }
});

t("and binds tighter than or; not; parentheses; case-insensitive keywords", () => {
  const p = new Policy({
    cache_list: "role:admin or role:member and role:reader",
    cache_image: "(role:admin or role:member) AND not role:reader",
    cache_delete: "not (role:member or role:reader)",
  });
  assert.equal(p.allows("cache_list", admin), true);
  assert.equal(p.allows("cache_list", member), true); // member and reader
  assert.equal(p.allows("cache_list", reader), false);
  assert.equal(p.allows("cache_list", other), false);
  assert.equal(p.allows("cache_image", other), true);
  assert.equal(p.allows("cache_image", member), false);
  assert.equal(p.allows("cache_delete", admin), true);
  assert.equal(p.allows("cache_delete", reader), false);
});

t("@, !, empty and the old list-of-lists form", () => {
  const p = new Policy({
    cache_list: "@",
    cache_image: "!",
    cache_delete: [["role:member", "project_id:p1"], ["role:admin"]],
  });
  assert.equal(p.allows("cache_list", other), true);
  assert.equal(p.allows("cache_image", admin), false);
  assert.equal(p.allows("cache_delete", member), true);
  assert.equal(p.allows("cache_delete", other), false);
  assert.equal(p.allows("cache_delete", admin), true);
  assert.equal(new Policy({ cache_list: "" }).allows("cache_list", other), true);
  assert.equal(new Policy({ cache_list: [] as never }).allows("cache_list", other), true);
});

t("list-of-lists as oslo.policy reads it: an empty inner list is skipped, and [[]] allows no one", () => {
  const p = new Policy({
    cache_list: [[]] as never,
    cache_image: [[], ["role:admin"]] as never,
    cache_delete: [[], []] as never,
  });
  for (const who of [admin, member, other]) assert.equal(p.allows("cache_list", who), false);
  assert.equal(p.allows("cache_image", admin), true);
  assert.equal(p.allows("cache_image", member), false);
  assert.equal(p.allows("cache_delete", admin), false);
});

t("generic checks with %(...)s substitutions from the target, literals and is_admin", () => {
  const p = new Policy({
    cache_image: "role:admin or (role:member and project_id:%(project_id)s)",
    cache_delete: "'public':%(visibility)s or user_id:%(created_by)s",
    cache_list: "is_admin:True",
  });
  const image = { project_id: "p1", visibility: "private", created_by: "nobody" };
  assert.equal(p.allows("cache_image", member, image), true);
  assert.equal(p.allows("cache_image", other, image), false);
  assert.equal(p.allows("cache_image", other, {}), false); // a missing key fails the check
  assert.equal(p.allows("cache_delete", other, { visibility: "public" }), true);
  assert.equal(p.allows("cache_delete", other, { visibility: "private", created_by: "o" }), true);
  assert.equal(p.allows("cache_delete", other, { visibility: "private", created_by: "x" }), false);
  assert.equal(p.allows("cache_list", admin), true);
  assert.equal(p.allows("cache_list", member), false);
});

t("rule: references, to the file's rules and Glance's (context_is_admin, default, manage_image_cache)", async () => {
  const p = await policyFile(
    "policy.yaml",
    `
"context_is_admin": "role:admin or role:cloud_admin"
"cache_ops": "role:cache_operator"
"cache_list": "rule:context_is_admin or rule:cache_ops"
"cache_image": "rule:manage_image_cache"
"cache_delete": "rule:default"
"get_image": "role:reader and (project_id:%(project_id)s or 'public':%(visibility)s)"
`,
  );
  assert.equal(p.allows("cache_list", operator), true);
  assert.equal(p.allows("cache_list", makeIdentity("c", "x", ["cloud_admin"])), true);
  assert.equal(p.allows("cache_list", member), false);
  assert.equal(p.allows("cache_image", admin), true); // Glance's manage_image_cache: role:admin
  assert.equal(p.allows("cache_image", operator), false);
  assert.equal(p.allows("cache_delete", other), true); // Glance's default: ""
  // is_admin follows context_is_admin, as in Glance's request context
  const q = new Policy({ context_is_admin: "role:cloud_admin", cache_list: "is_admin:True" });
  assert.equal(q.allows("cache_list", makeIdentity("c", "x", ["cloud_admin"])), true);
  assert.equal(q.allows("cache_list", admin), false);
});

t("a JSON policy file works too", async () => {
  const p = await policyFile("policy.json", '{"cache_list": "role:member", "cache_image": "rule:cache_list"}');
  assert.equal(p.allows("cache_image", other), true);
  assert.equal(p.allows("cache_delete", other), false);
});

t("rules we do not understand stop the node at start, naming the rule", async () => {
  const cases: [string, RegExp][] = [
    ['"cache_list": "role:admin and"', /rule "cache_list".*ends where a check was expected/],
    ['"cache_list": "(role:admin or role:member"', /rule "cache_list".*parenthesis is not closed/],
    ['"cache_list": "role:admin)"', /rule "cache_list".*unexpected "\)"/],
    ['"cache_list": "role:admin role:member"', /rule "cache_list".*unexpected "role:member"/],
    ['"cache_image": "admin"', /rule "cache_image".*not a check: "admin"/],
    ['"cache_image": "http://policy.example/check"', /rule "cache_image".*http: checks/],
    ['"cache_delete": "rule:nowhere"', /rule "cache_delete" refers to rule:nowhere, which is not defined/],
    ['"cache_delete": "rule:a"\n"a": "rule:b or role:admin"\n"b": "rule:a"', /refers to itself: a -> b -> a/],
    ['"cache_list": "rule:cache_list"', /refers to itself: cache_list -> cache_list/],
    ['"cache_image": "rule:bad"\n"bad": "role:admin or or"', /rule "bad"/],
    ['"cache_list": 42', /rule "cache_list".*must be a string/],
  ];
  for (const [text, expected] of cases) {
    await assert.rejects(policyFile("policy.yaml", text), (err: Error) => {
      assert.ok(err instanceof PolicyError, text);
      assert.match(err.message, expected, text);
      return true;
    });
  }
  // A broken rule the node never evaluates is upstream's business.
  const p = await policyFile("policy.yaml", '"add_image": "http://x"\n"cache_list": "role:member"');
  assert.equal(p.allows("cache_list", member), true);
});

t("a temp URL's caller is refused every rule, even one that allows anyone", () => {
  const open = new Policy(Object.fromEntries(CACHE_RULES.map((r) => [r, ""])));
  assert.equal(open.allows("cache_list", member), true);
  for (const rule of CACHE_RULES) assert.equal(open.allows(rule, tempUrlIdentity("x")), false, rule);
  assert.equal(new Policy().allows("create_temp_url", admin), true);
  assert.equal(new Policy().allows("create_temp_url", member), false);
});

t.run();
