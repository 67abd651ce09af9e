// etc/policy.yaml.sample's text, from DEFAULT_POLICY, as oslopolicy-sample-generator writes Glance's.
import { DEFAULT_POLICY } from "./policy.ts";

/** What a rule guards, for the sample: a description and the calls it is checked on ("METHOD path"). */
export interface RuleDoc {
  description: string;
  operations: string[];
}

/** One entry per rule of DEFAULT_POLICY; the sample refuses to build without it, so a new rule gets documented. */
export const RULE_DOCS: Record<string, RuleDoc> = {
  default: {
    description: "Defines the rule used for rules that are neither in the policy file nor defaults of the node.",
    operations: [],
  },
  context_is_admin: {
    description: "Defines the rule for the is_admin:True check; an admin also sees whether images it " +
      "cannot see are cached.",
    operations: [],
  },
  manage_image_cache: {
    description: "Manage image cache (Glance's rule: kept for policy files that refer to it; the node " +
      "checks the finer rules below).",
    operations: [],
  },
  cache_list: {
    description: "List cache status; also the node's status, its metrics (unless public_metrics) and the " +
      "fleet's jobs, nodes and view.",
    operations: [
      "GET  /v2/cache",
      "GET  /v2/x-cache-node/status",
      "GET  /metrics",
      "GET  /v2/x-fleet/jobs",
      "GET  /v2/x-fleet/jobs/{job_id}",
      "GET  /v2/x-fleet/view",
      "GET  /v2/x-fleet/nodes",
    ],
  },
  cache_image: {
    description: "Queue image for caching, on this node or on the fleet's nodes.",
    operations: ["PUT  /v2/cache/{image_id}", "POST  /v2/x-fleet/jobs (action cache)"],
  },
  cache_delete: {
    description: "Delete image(s) from cache and/or queue; retire a node from the fleet.",
    operations: [
      "DELETE  /v2/cache",
      "DELETE  /v2/cache/{image_id}",
      "POST  /v2/x-fleet/jobs (action clear)",
      "DELETE  /v2/x-fleet/nodes/{node_id}",
    ],
  },
  cache_clean: {
    description: "Remove incomplete and invalid files from the cache.",
    operations: ["POST  /v2/cache/clean", "POST  /v2/x-fleet/jobs (action clean)"],
  },
  cache_prune: {
    description: "Prune the cache down to its maximum size, least recently used first.",
    operations: ["POST  /v2/cache/prune", "POST  /v2/x-fleet/jobs (action prune)"],
  },
  pin_image: {
    description: "Pin an image: it is cached now if it is not, and no eviction, prune or idle pass removes it.",
    operations: ["PUT  /v2/x-cache-node/pins/{image_id}", "POST  /v2/x-fleet/jobs (action pin)"],
  },
  unpin_image: {
    description: "Unpin an image: eviction may remove it again.",
    operations: ["DELETE  /v2/x-cache-node/pins/{image_id}", "POST  /v2/x-fleet/jobs (action unpin)"],
  },
  list_pins: {
    description: "List the pinned images and whether each is cached.",
    operations: ["GET  /v2/x-cache-node/pins"],
  },
  fleet_ready: {
    description: "Whether an image is cached on every alive node of the fleet, or of one site.",
    operations: ["GET  /v2/x-fleet/ready"],
  },
  bandwidth_get: {
    description: "Read the node's bandwidth limits (upstream reads, serving peers).",
    operations: ["GET  /v2/x-cache-node/bandwidth"],
  },
  bandwidth_set: {
    description: "Change the node's bandwidth limits at run time (upstream reads, serving peers).",
    operations: ["PUT  /v2/x-cache-node/bandwidth"],
  },
  list_cached_nodes: {
    description: "List the fleet nodes that hold an image in their cache.",
    operations: ["GET  /v2/cache/nodes/{image_id}"],
  },
  create_temp_url: {
    description: "Mint a temporary URL that downloads an image without a token (the caller must also be " +
      "able to see and download the image). Anyone holding the URL can read the image until it expires.",
    operations: ["POST  /v2/x-cache-node/temp-urls"],
  },
};

/** Python's textwrap.wrap(text, 70) with "# " before every line, as oslo's generators comment help text. */
export function commentWrap(text: string, width = 70): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "#";
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      if (line !== "#" && line.length + 1 + word.length > width) {
        lines.push(line);
        line = "#";
      }
      line += " " + word;
    }
    lines.push(line);
  }
  return lines;
}

/** The policy file a fresh install could start from: every rule, commented out at its default. */
export function policySample(header: string[]): string {
  const out = [...header, ""];
  for (const [name, rule] of Object.entries(DEFAULT_POLICY)) {
    const doc = RULE_DOCS[name];
    if (!doc) throw new Error(`src/auth/policy_sample.ts: RULE_DOCS has no entry for rule ${name}`);
    out.push(...commentWrap(doc.description));
    for (const op of doc.operations) out.push(`# ${op}`);
    if (doc.operations.length) out.push("# Intended scope(s): project");
    out.push(`#${JSON.stringify(name)}: ${JSON.stringify(rule)}`, "");
  }
  return out.join("\n");
}
