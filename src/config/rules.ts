// Rules across options: what one option's value demands of others (a single option's checks sit in its declaration).
import { isLoopback } from "../auth/addresses.ts";
import { ConfigError, describe, HTTP_URL } from "./kinds.ts";
import { OPTIONS } from "./options.ts";
import type { NodeConfig } from "./types.ts";

/** Refuses a configuration whose options contradict each other; returns it with the fleet's URL normalised. */
export function checkRules(config: NodeConfig): NodeConfig {
  const fleet = config.fleet;
  if (fleet) {
    // As Glance's centralized_db driver: a node of a shared cache must say how it is reached.
    const selfUrl = describe(OPTIONS.fleet.fields.selfUrl);
    if (!fleet.selfUrl) throw new ConfigError(`a fleet database needs ${selfUrl}, this node's own URL`);
    // Checked only in a fleet: a node alone never uses it.
    if (!HTTP_URL.test(fleet.selfUrl)) {
      throw new ConfigError(`${selfUrl}: not an http(s) URL: ${fleet.selfUrl}`);
    }
    if (fleet.pollInterval < 1 || fleet.heartbeatInterval < 1) {
      throw new ConfigError("fleet poll and heartbeat intervals must be at least 1 second");
    }
    fleet.selfUrl = fleet.selfUrl.replace(/\/+$/, "");
  }
  if (config.auth === "noauth" && !isLoopback(config.host) && !config.forceNoauth) {
    throw new ConfigError(
      `auth noauth makes every caller an admin: refusing to listen on ${config.host} (set --force-noauth)`,
    );
  }
  const ks = config.keystone;
  if (ks && !/^(none)?$/i.test(ks.memcacheSecurityStrategy ?? "") && !ks.memcacheSecretKey) {
    // As keystonemiddleware: a strategy without its secret is a configuration error.
    throw new ConfigError("[keystone_authtoken] memcache_security_strategy needs memcache_secret_key");
  }
  if (config.auth === "keystone" && !config.keystone) {
    throw new ConfigError("auth keystone needs a [keystone_authtoken] section in the config file");
  }
  if (config.auth === "headers" && !isLoopback(config.host) && !config.trustedProxies?.length) {
    throw new ConfigError(
      `auth headers believes identity headers only from trusted proxies: refusing to listen on ${config.host} without ${
        describe(OPTIONS.trustedProxies)
      }`,
    );
  }
  return config;
}
