// Policy rules by Glance's names (cache_list, cache_image, cache_delete, cache_clean, cache_prune, list_cached_nodes), in oslo.policy's simple syntax.
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { notAuthorized } from "../errors.ts";
import type { Identity } from "./identity.ts";

export type CacheRule = "cache_list" | "cache_image" | "cache_delete" | "cache_clean" | "cache_prune" | "list_cached_nodes";
export const CACHE_RULES: CacheRule[] = ["cache_list", "cache_image", "cache_delete", "cache_clean", "cache_prune", "list_cached_nodes"];

/** Rules as written: "" or "@" (anyone), "!" (no one), "role:X", "project_id:X", "is_admin:True", joined with "or". */
export type PolicyRules = Record<CacheRule, string>;

export const DEFAULT_POLICY: PolicyRules = {
  cache_list: "role:admin",
  cache_image: "role:admin",
  cache_delete: "role:admin",
  cache_clean: "role:admin",
  cache_prune: "role:admin",
  list_cached_nodes: "role:admin",
};

type Check = (who: Identity) => boolean;

export class PolicyError extends Error {}

export function compileRule(rule: string): Check {
  const text = rule.trim();
  if (text === "" || text === "@") return () => true;
  if (text === "!") return () => false;
  const alternatives = text.split(/\s+or\s+/).map((alt): Check => {
    const m = /^\(?\s*([a-z_]+):(.+?)\s*\)?$/.exec(alt.trim());
    if (!m) throw new PolicyError(`unsupported policy rule: ${JSON.stringify(rule)}`);
    const [, kind, value] = m;
    if (kind === "role") return (who) => who.roles.includes(value.toLowerCase());
    if (kind === "project_id") return (who) => who.projectId === value;
    if (kind === "is_admin") return (who) => who.isAdmin === (value.toLowerCase() === "true");
    throw new PolicyError(`unsupported policy check ${kind}: in ${JSON.stringify(rule)}`);
  });
  return (who) => alternatives.some((check) => check(who));
}

export class Policy {
  private readonly checks: Record<CacheRule, Check>;

  constructor(rules: Partial<PolicyRules> = {}) {
    const merged = { ...DEFAULT_POLICY, ...rules };
    this.checks = Object.fromEntries(CACHE_RULES.map((r) => [r, compileRule(merged[r])])) as Record<CacheRule, Check>;
  }

  enforce(rule: CacheRule, who: Identity): void {
    if (!this.checks[rule](who)) throw notAuthorized(rule);
  }

  /**
   * Reads a policy.yaml (or JSON) file. Glance's other rules may be present (they are upstream's
   * business) and are left alone; a cache rule that cannot be understood is an error.
   */
  static async fromFile(path: string): Promise<Policy> {
    const doc = parseYaml(await readFile(path, "utf8")) ?? {};
    if (typeof doc !== "object" || Array.isArray(doc)) throw new PolicyError(`${path}: not a mapping of rule names to rules`);
    const rules: Partial<PolicyRules> = {};
    for (const name of CACHE_RULES) {
      const value = (doc as Record<string, unknown>)[name];
      if (value === undefined) continue;
      if (typeof value !== "string") throw new PolicyError(`${path}: ${name} must be a string`);
      rules[name] = value;
    }
    try {
      return new Policy(rules);
    } catch (err) {
      throw new PolicyError(`${path}: ${(err as Error).message}`);
    }
  }
}
