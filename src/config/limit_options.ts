// The options that bound what clients may hold: connections, time to send headers, uploads in progress and their stalls.
import type { Decl } from "./kinds.ts";

const atLeast = (min: number, unit = "") => (n: number, name: string) =>
  n < min ? `${name}: must be at least ${min}${unit}` : undefined;

/** Bounds on the server's connections (read by the program's server, use "serve"; docs/deployment.md). */
export const CONNECTION_LIMITS = {
  headersTimeout: {
    flag: "headers-timeout",
    ini: ["glance_cache_node", "headers_timeout"],
    kind: "count",
    default: 60,
    check: atLeast(1, " second"),
    use: "serve",
    help: "seconds a client has to send a request's headers, then its connection is closed (Node; see deployment.md)",
  },
  maxConnections: {
    flag: "max-connections",
    ini: ["glance_cache_node", "max_connections"],
    kind: "count",
    default: 1000,
    check: atLeast(1),
    use: "serve",
    help: "open client connections; a request on one beyond gets 503 and its connection is closed (Node)",
  },
} as const satisfies Record<string, Decl>;

/** Bounds on image uploads into the embedded store (src/images/upload_limits.ts). */
export const UPLOAD_LIMITS = {
  maxUploads: {
    flag: "max-uploads",
    ini: ["glance_cache_node", "max_uploads"],
    kind: "count",
    default: 16,
    check: atLeast(1),
    help: "image uploads into the embedded store in progress at once; one more gets 413",
  },
  maxUploadsPerProject: {
    flag: "max-uploads-per-project",
    ini: ["glance_cache_node", "max_uploads_per_project"],
    kind: "count",
    default: 4,
    check: atLeast(1),
    help: "uploads in progress at once per project (as Glance's image_count_uploading limit); one more gets 413",
  },
  uploadStallTimeout: {
    flag: "upload-stall-timeout",
    ini: ["glance_cache_node", "upload_stall_timeout"],
    kind: "count",
    default: 60,
    check: atLeast(1, " second"),
    help: "seconds an upload may send no byte before it is aborted (the image goes back to queued)",
  },
} as const satisfies Record<string, Decl>;

/** Bandwidth limits (src/streams/throttle.ts; changeable at run time: PUT /v2/x-cache-node/bandwidth). */
export const BANDWIDTH_LIMITS = {
  upstreamBandwidthLimit: {
    flag: "upstream-bandwidth-limit",
    ini: ["glance_cache_node", "upstream_bandwidth_limit"],
    kind: "count",
    default: 0,
    help: "bytes/s shared by every read of image data from the upstream Glance (fills and uncached downloads); " +
      "0: no limit. Downloads from the cache are never throttled",
  },
  peerBandwidthLimit: {
    flag: "peer-bandwidth-limit",
    ini: ["glance_cache_node", "peer_bandwidth_limit"],
    kind: "count",
    default: 0,
    help: "bytes/s this node serves to its fleet's peers, all together; 0: no limit",
  },
} as const satisfies Record<string, Decl>;
