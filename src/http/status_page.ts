// GET /status (the HTML status page, public: it holds no data) and GET /v2/x-cache-node/status (node facts, cache_list).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { statfs } from "node:fs/promises";
import type { Identity } from "../auth/identity.ts";
import type { Policy } from "../auth/policy.ts";
import type { ImageCache } from "../cache/image_cache.ts";
import { json } from "./responses.ts";
import { STATUS_PAGE_HTML, STATUS_PAGE_SCRIPT, STATUS_PAGE_STYLE } from "./status_page_html.ts";

export const NODE_STATUS_PATH = "/v2/x-cache-node/status";

export interface StatusDeps {
  cache: ImageCache;
  policy: Policy;
  /** Where images come from: the embedded store, or the upstream Glance's URL. */
  upstreamUrl: string | undefined;
}

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

export function statusApi({ cache, policy, upstreamUrl }: StatusDeps) {
  const startedAt = Date.now() / 1000;
  return {
    page(): Response {
      return new Response(STATUS_PAGE_HTML, { headers: PAGE_HEADERS });
    },

    async node(who: Identity): Promise<Response> {
      policy.enforce("cache_list", who);
      const disk = await statfs(cache.layout.root);
      const now = Date.now() / 1000;
      return json({
        version: VERSION,
        started_at: startedAt,
        uptime: now - startedAt,
        source: upstreamUrl ? { type: "upstream", url: upstreamUrl } : { type: "embedded" },
        cache: {
          size: cache.index.totalSize,
          max_size: cache.maxSize,
          cached: cache.index.list().length,
          queued: cache.waiting().length,
          caching: cache.filling().length,
        },
        disk: { free: disk.bavail * disk.bsize, total: disk.blocks * disk.bsize },
        // The fleet fills this in when there is one; the page hides its section while it is null.
        fleet: null,
      });
    },
  };
}
