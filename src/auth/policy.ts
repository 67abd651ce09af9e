// Policy rules by Glance's names (cache_list, cache_image, cache_delete, ...) and our extensions' in oslo.policy's rule language.
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { notAuthorized } from "../errors.ts";
import type { Image } from "../images/image.ts";
import type { Identity } from "./identity.ts";
import { type Check, compileRule, type Creds, PolicyError, type Target } from "./policy_rules.ts";

export { PolicyError };

/** The policy rules the node enforces, by Glance's names. */
export type CacheRule =
  | "cache_list"
  | "cache_image"
  | "cache_delete"
  | "cache_clean"
  | "cache_prune"
  | "list_cached_nodes"
  | "create_temp_url"
  | "pin_image"
  | "unpin_image"
  | "list_pins"
  | "fleet_ready"
  | "bandwidth_get"
  | "bandwidth_set";
/** Every CacheRule: each is compiled when a Policy is built, so a broken one fails at startup. */
export const CACHE_RULES: CacheRule[] = [
  "cache_list",
  "cache_image",
  "cache_delete",
  "cache_clean",
  "cache_prune",
  "list_cached_nodes",
  "create_temp_url",
  "pin_image",
  "unpin_image",
  "list_pins",
  "fleet_ready",
  "bandwidth_get",
  "bandwidth_set",
];

/**
 * Rules as oslo.policy writes them: "" or "@" (anyone), "!" (no one), role:X, rule:NAME, generic checks (is_admin:True,
 * 'public':%(visibility)s) with and, or, not, parentheses; or lists of lists ([["a", "b"], ["c"]]: (a and b) or c).
 */
export type RuleText = string | string[][];
/** A policy file's content: every CacheRule, and whatever other rules they refer to. */
export type PolicyRules = Record<CacheRule, string> & Record<string, RuleText>;

/** Glance's defaults for the rules the node enforces, and the base rules they may refer to. */
export const DEFAULT_POLICY: PolicyRules = {
  default: "",
  context_is_admin: "role:admin",
  manage_image_cache: "role:admin",
  cache_list: "role:admin",
  cache_image: "role:admin",
  cache_delete: "role:admin",
  cache_clean: "role:admin",
  cache_prune: "role:admin",
  list_cached_nodes: "role:admin",
  create_temp_url: "role:admin",
  pin_image: "role:admin",
  unpin_image: "role:admin",
  list_pins: "role:admin",
  fleet_ready: "role:admin",
  bandwidth_get: "role:admin",
  bandwidth_set: "role:admin",
};

/** What oslo.policy sees of a Glance image as the target: its attributes, with project_id as the owner. */
export function imageTarget(image: Image): Target {
  const { properties, ...core } = image;
  return { ...properties, ...core, project_id: image.owner };
}

/**
 * The node's policy: Glance's defaults overlaid with the operator's rules, compiled when built: an unparsable rule,
 * a missing reference or a cycle is a PolicyError naming it; rules neither enforced nor referred to are left alone.
 */
export class Policy {
  private readonly checks = new Map<string, Check>();

  constructor(rules: Partial<Record<string, RuleText>> = {}) {
    const merged: Record<string, unknown> = { ...DEFAULT_POLICY, ...rules };
    const visiting: string[] = [];
    const compile = (name: string, from?: string) => {
      if (this.checks.has(name)) return;
      if (visiting.includes(name)) {
        throw new PolicyError(
          `rule ${JSON.stringify(name)} refers to itself: ${
            [...visiting.slice(visiting.indexOf(name)), name].join(" -> ")
          }`,
        );
      }
      if (!(name in merged)) {
        throw new PolicyError(`rule ${JSON.stringify(from)} refers to rule:${name}, which is not defined`);
      }
      const refs = new Set<string>();
      let check: Check;
      try {
        check = compileRule(merged[name], refs);
      } catch (err) {
        if (!(err instanceof PolicyError)) throw err;
        throw new PolicyError(`rule ${JSON.stringify(name)} (${JSON.stringify(merged[name])}): ${err.message}`);
      }
      visiting.push(name);
      for (const ref of refs) compile(ref, name);
      visiting.pop();
      this.checks.set(name, check);
    };
    for (const name of [...CACHE_RULES, "context_is_admin"]) compile(name);
  }

  /** oslo's creds for an identity; is_admin is what context_is_admin says of the caller, as in Glance. */
  private creds(who: Identity): Creds {
    const base: Creds = {
      user_id: who.userId,
      project_id: who.projectId,
      tenant: who.projectId,
      roles: who.roles,
      is_admin: who.isAdmin,
    };
    base.is_admin = this.checks.get("context_is_admin")!(base, base, this.checks);
    return base;
  }

  /** Whether `who` may do `rule`, to `target` if given (imageTarget of the image). */
  allows(rule: CacheRule, who: Identity, target: Target = {}): boolean {
    // A temp URL's caller may read one image's data and nothing else, whatever the rules say.
    if (who.tempUrlImage !== undefined) return false;
    return this.checks.get(rule)!(target, this.creds(who), this.checks);
  }

  /** As allows, but a refusal throws notAuthorized (Glance's 403 naming the rule). */
  enforce(rule: CacheRule, who: Identity, target: Target = {}): void {
    if (!this.allows(rule, who, target)) throw notAuthorized(rule);
  }

  /** Reads a policy.yaml (or policy.json) file: a mapping of rule names to rules. */
  static async fromFile(path: string): Promise<Policy> {
    const doc = parseYaml(await readFile(path, "utf8")) ?? {};
    if (typeof doc !== "object" || Array.isArray(doc)) {
      throw new PolicyError(`${path}: not a mapping of rule names to rules`);
    }
    try {
      return new Policy(doc as Record<string, RuleText>);
    } catch (err) {
      throw new PolicyError(`${path}: ${(err as Error).message}`);
    }
  }
}
