// AppOptions, what createApp takes: the declared option fields (derived) and the hooks only an embedder can give.
import type { Authenticator } from "../auth/identity.ts";
import type { Policy, PolicyRules } from "../auth/policy.ts";
import type { FillHooks } from "../cache/fill.ts";
import type { ImageSource } from "../images/source.ts";
import type { Level } from "../log.ts";
import type { OptionFields } from "./types.ts";

/** What only code can give: objects instead of option values, test hooks, and fields a file does not set. */
export interface AppHooks {
  /** An option's mode (see src/config/options.ts), or an Authenticator used as it is. */
  auth?: OptionFields["auth"] | Authenticator;
  /** Rules for cache_list, cache_image, cache_delete (default role:admin), or a Policy read from policy.yaml. */
  policy?: Partial<PolicyRules> | Policy;
  /** [keystone_authtoken], plus how long (s) a token Keystone refused stays refused (default 10). */
  keystone?: NonNullable<OptionFields["keystone"]> & { negativeCacheTime?: number };
  /** The fleet's options, plus the seconds without a heartbeat after which a node is stale. */
  fleet?: NonNullable<OptionFields["fleet"]> & { staleAfter?: number };
  /** /healthcheck's options, plus how long (s) a result is reused (default 2). */
  healthcheck?: OptionFields["healthcheck"] & { cacheSeconds?: number };
  /** Where the cache reads images from, given the configured source (fault injection in tests). */
  cacheSource?: (source: ImageSource) => ImageSource;
  /** Test hooks that hold a fill at a point of its life (races driven deterministically). */
  cacheHooks?: FillHooks;
  /** Where log lines go, one string per line with its level (default: standard output; the program: src/log_sinks.ts). */
  log?: (line: string, level: Level) => void;
}

/**
 * What createApp takes. The option fields come from the option table (src/config/options.ts: one declaration
 * per option gives its flag, variable, file key, default and help); only dataDir is required.
 */
export type AppOptions = Omit<OptionFields, keyof AppHooks> & AppHooks;
