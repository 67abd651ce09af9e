// The upstream Glance's options: where it is, how long the node waits for it, and what it does while it is away.
import type { Group } from "./kinds.ts";

const atLeastOneSecond = (n: number, name: string) => n < 1 ? `${name}: must be at least 1 second` : undefined;

/** In front of an existing Glance: present when upstream_url is given (see docs/deployment.md). */
export const UPSTREAM = {
  when: "url",
  fields: {
    url: {
      flag: "upstream-url",
      ini: ["glance_cache_node", "upstream_url"],
      kind: "url",
      required: true,
      help: "an existing Glance to cache for (default: the embedded store)",
    },
    metadataCacheTime: {
      flag: "metadata-cache-time",
      ini: ["glance_cache_node", "metadata_cache_time"],
      kind: "count",
      default: 5,
      help: "seconds upstream image metadata is reused",
    },
    timeout: {
      flag: "upstream-timeout",
      ini: ["glance_cache_node", "upstream_timeout"],
      kind: "count",
      default: 60,
      check: atLeastOneSecond,
      help: "seconds to the upstream's response headers (connecting included)",
    },
    stallTimeout: {
      flag: "upstream-stall-timeout",
      ini: ["glance_cache_node", "upstream_stall_timeout"],
      kind: "count",
      default: 60,
      check: atLeastOneSecond,
      help: "seconds an upstream transfer may go without a byte",
    },
    serveCachedWhenDown: {
      flag: "serve-cached-when-upstream-down",
      ini: ["glance_cache_node", "serve_cached_when_upstream_down"],
      kind: "bool",
      default: true,
      help:
        "while the upstream cannot be reached, serve cached images from their kept records (an image deleted centrally meanwhile is served until the link returns)",
    },
    maxOutage: {
      flag: "max-upstream-outage",
      ini: ["glance_cache_node", "max_upstream_outage"],
      kind: "count",
      default: 0,
      help: "seconds of upstream outage after which even cached images answer 503 (0: no bound)",
    },
  },
} as const satisfies Group;
