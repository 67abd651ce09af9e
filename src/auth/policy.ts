// Policy rules by Glance's names; the cache API defaults to the admin role as in Glance Zed.
import { notAuthorized } from "../http/errors.ts";
import type { Identity } from "./identity.ts";

export type CacheRule = "cache_list" | "cache_image" | "cache_delete";

/** A rule is a role the caller must hold; "" allows everyone. */
export type PolicyRules = Record<CacheRule, string>;

export const DEFAULT_POLICY: PolicyRules = {
  cache_list: "admin",
  cache_image: "admin",
  cache_delete: "admin",
};

export function enforce(rules: PolicyRules, rule: CacheRule, who: Identity): void {
  const role = rules[rule];
  if (role === "" || who.roles.includes(role)) return;
  throw notAuthorized(rule);
}
