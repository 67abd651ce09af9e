// GET /status (the HTML status page, public: it holds no data) and GET /v2/x-cache-node/status (node facts, cache_list).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { statfs } from "node:fs/promises";
import type { Identity } from "../auth/identity.ts";
import type { Policy } from "../auth/policy.ts";
import type { KeystoneClient } from "../auth/keystone.ts";
import type { ImageCache } from "../cache/image_cache.ts";
import type { Fleet } from "../fleet/fleet.ts";
import type { OutageView } from "../images/upstream_outage.ts";
import type { Bandwidths } from "../streams/throttle.ts";
import type { Activity } from "./activity.ts";
import { cacheListing } from "./cache_listing.ts";
import { json } from "./responses.ts";
import { STATUS_PAGE_STYLE, statusPageHtml } from "./status_page_html.ts";
import { STATUS_PAGE_SCRIPT } from "./status_page_script.ts";

/** The node's status document, read by the status page and `glance-cache status`. */
export const NODE_STATUS_PATH = "/v2/x-cache-node/status";

/** What the status page and the status document need. */
export interface StatusDeps {
  cache: ImageCache;
  policy: Policy;
  /** Where images come from: the embedded store, or the upstream Glance's URL. */
  upstreamUrl: string | undefined;
  /** The fleet this node belongs to, if any. */
  fleet?: Fleet;
  /** The Keystone client (auth keystone): its reachability goes in the document. */
  keystone?: KeystoneClient;
  /** The upstream's link, in front of a Glance. */
  outage?: { view(): OutageView };
  /** The auth mode ("noauth", "headers", "keystone"; "custom" for an embedder's): the page shows no token box in noauth. */
  auth: string;
  /** An image's name as the node knows it (its source's knownName), for the listing's ids. */
  knownName?: (id: string) => string | undefined;
  /** The last hour of downloads, per minute. */
  activity?: Activity;
  /** The node's bandwidth limits (streams/throttle.ts). */
  bandwidth?: Bandwidths;
}

/** Images in the status document's fleet part: the first page of the fleet view, kept small for a page polled every 2 s. */
export const STATUS_FLEET_IMAGES = 20;

const VERSION: string = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version;

// The page runs only its own inline script and style and talks only to this origin: a token typed into it cannot leave it.
const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
const PAGE_HEADERS = {
  "Content-Type": "text/html; charset=UTF-8",
  "Content-Security-Policy": [
    "default-src 'none'",
    `script-src ${sha256(STATUS_PAGE_SCRIPT)}`,
    `style-src ${sha256(STATUS_PAGE_STYLE)}`,
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
  "Cache-Control": "no-store",
  "Referrer-Policy": "no-referrer",
  "X-Content-Type-Options": "nosniff",
};

/** The status page (public: the page holds no data) and the node's status document (cache_list rule). */
export function statusApi(
  { cache, policy, upstreamUrl, fleet, keystone, outage, auth, knownName, activity, bandwidth }: StatusDeps,
) {
  const startedAt = Date.now() / 1000;
  const html = statusPageHtml(auth !== "noauth");
  return {
    page(): Response {
      return new Response(html, { headers: PAGE_HEADERS });
    },

    async node(who: Identity): Promise<Response> {
      policy.enforce("cache_list", who);
      const disk = await statfs(cache.directories().root);
      const totals = cache.totals();
      const now = Date.now() / 1000;
      return json({
        version: VERSION,
        started_at: startedAt,
        uptime: now - startedAt,
        auth,
        source: upstreamUrl
          ? { type: "upstream", url: upstreamUrl, link: linkPart(cache, outage) }
          : { type: "embedded" },
        cache: {
          size: totals.cachedBytes,
          max_size: cache.maxSize,
          cached: totals.cachedImages,
          queued: totals.waitingImages,
          caching: totals.fillingImages,
          used: totals.usedBytes,
          readers: totals.openReaders,
          pins: cache.pinned().map(({ image_id, pinned_at, size, cached }) => ({ image_id, pinned_at, size, cached })),
        },
        disk: { free: disk.bavail * disk.bsize, total: disk.blocks * disk.bsize },
        // The limits in force (bytes/s, 0: none) and what passed under them (GET/PUT /v2/x-cache-node/bandwidth).
        bandwidth: bandwidth
          ? {
            upstream: { limit: bandwidth.upstream.rate, bytes: bandwidth.upstream.totals.bytes },
            peer: { limit: bandwidth.peer.rate, bytes: bandwidth.peer.totals.bytes },
          }
          : null,
        keystone: keystone ? keystonePart(keystone) : null,
        // Names of the listed images the node knows (GET /v2/cache keeps Glance's shape, without names).
        names: knownName ? namesOf(cache, knownName) : {},
        // Downloads of the last hour, per minute, oldest first: the page's chart.
        activity: activity?.lastHour() ?? [],
        // null for a node alone; the page hides its section then.
        fleet: fleet ? await fleetPart(fleet) : null,
      });
    },
  };
}

/** The upstream's link: up or down, since when, and what the kept records served. */
function linkPart(cache: ImageCache, outage: { view(): OutageView } | undefined) {
  if (!outage) return undefined;
  const v = outage.view();
  return {
    state: v.down ? "down" : "up",
    down_since: v.downSince,
    last_answer_seconds: v.secondsSinceAnswer,
    serving_cached: v.servingCached,
    kept_answers: v.keptAnswers,
    kept_records: cache.kept.count,
  };
}

/**
 * The fleet as the status page shows it: every node, and the first images of the fleet view (`more`
 * says there are others: GET /v2/x-fleet/view pages through them). The node's own status does not
 * depend on the database: while it is away, `error` says so and the rest is empty.
 */
async function fleetPart(fleet: Fleet) {
  const base = { self: fleet.url, site: fleet.site, node_id: fleet.nodeId, database_up: fleet.databaseUp };
  try {
    const [nodes, page] = await Promise.all([fleet.nodes(), fleet.images({ limit: STATUS_FLEET_IMAGES })]);
    return { ...base, nodes, images: page.images, more: page.next !== undefined, error: null };
  } catch (err) {
    return {
      ...base,
      database_up: false,
      nodes: [],
      images: {},
      more: false,
      error: `The fleet database is unavailable: ${(err as Error).message}`,
    };
  }
}

/** id -> name of every cached, filling or queued image whose name the node knows. */
function namesOf(cache: ImageCache, knownName: (id: string) => string | undefined): Record<string, string> {
  const listing = cacheListing(cache);
  const ids = [
    ...listing.cached_images.map((c) => c.image_id),
    ...Object.keys(listing.caching_images),
    ...listing.queued_images,
  ];
  const names: Record<string, string> = {};
  for (const id of ids) {
    const name = knownName(id);
    if (name) names[id] = name;
  }
  return names;
}

/** Keystone as the node last saw it (auth keystone); null in the other auth modes. */
function keystonePart(keystone: KeystoneClient) {
  const o = keystone.outage;
  return {
    url: keystone.v3,
    reachable: o.reachable,
    down_since: o.downSince === null ? null : o.downSince / 1000,
    last_answer: o.lastAnswer === null ? null : o.lastAnswer / 1000,
    remembered_tokens: keystone.rememberedTokens,
    authenticated_from_memory: o.fromMemory,
  };
}
