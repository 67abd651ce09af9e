// Our fleet extension (/v2/x-fleet/...): fan-out jobs, the fleet view, the node list and retirement; and the peer data endpoint.
import type { Identity } from "../auth/identity.ts";
import { imageTarget, type Policy } from "../auth/policy.ts";
import type { ClearTarget, ImageCache } from "../cache/image_cache.ts";
import type { Fleet } from "../fleet/fleet.ts";
import { type JobWindow, jobWindow } from "../fleet/fan_out.ts";
import { JOB_ACTIONS, JOB_KINDS, type JobAction } from "../fleet/job_kinds.ts";
import { PEER_AUTH_HEADER, peerRead, peerRecordRead, peerTokenValid } from "../fleet/peer_auth.ts";
import { isImageId } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { DomainError, imageNotFound, unavailable } from "../errors.ts";
import { queueableImage, refuseBody } from "./cache_routes.ts";
import { readLimitedJsonObject } from "./request_body.ts";
import { type Bandwidth, throttled } from "../streams/throttle.ts";
import { badRequest, conflict, forbidden, notFound } from "./errors.ts";
import { empty, json, param } from "./responses.ts";
import { type Routes, routes } from "./router.ts";

/** What the fleet routes need. */
export interface FleetApiDeps {
  fleet: Fleet | undefined;
  cache: ImageCache;
  source: ImageSource;
  policy: Policy;
  /** Largest JSON request body, bytes (as for every other JSON body). */
  maxRequestBodySize: number;
  /** peer_bandwidth_limit: everything this node serves to peers shares it. */
  peerBandwidth?: Bandwidth;
}

/** Images per page of the fleet view. */
const VIEW_PAGE = 100;
const VIEW_PAGE_MAX = 1000;
const NOT_ENABLED = "The fleet is not enabled on this node (no [glance_cache_node] fleet_database_url)";

/** A database failure is the fleet being unavailable (503), not an internal error; the node itself goes on. */
export async function fleetDb<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof DomainError) throw err;
    throw unavailable(`The fleet database is unavailable: ${err instanceof Error ? err.message : err}`);
  }
}

/** The fleet extension's handlers; without a fleet each answers 409 (after its policy check). */
export function fleetApi({ fleet, cache, source, policy, maxRequestBodySize, peerBandwidth }: FleetApiDeps) {
  const need = (): Fleet => {
    if (!fleet) throw conflict(NOT_ENABLED);
    return fleet;
  };
  /** A job caching an active image the caller may see on the chosen nodes; its id. */
  const cacheJob = async (f: Fleet, id: string, where: Where, who: Identity, win?: JobWindow): Promise<string> => {
    await queueableImage(source, policy, id, who);
    return fleetDb(f.fanOut({ action: "cache", imageId: id, clearTarget: null, ...win }, where, who.userId));
  };
  const jobCreated = async (f: Fleet, jobId: string): Promise<Response> =>
    json(await fleetDb(f.job(jobId)), 202, { Location: `/v2/x-fleet/jobs/${jobId}` });
  return {
    /**
     * POST /v2/x-fleet/jobs -> 202 the job. Body: {"image_id", "site"?, "nodes"?: [url]} caches an image;
     * {"action": "clean" | "prune" | "clear", "target"?: "cache" | "queue" (clear), "site"?, "nodes"?} acts on caches.
     * Any job may carry a window: "not_before" and "deadline", unix seconds.
     */
    async createJob(who: Identity, request: Request): Promise<Response> {
      const f = need();
      const body = await readLimitedJsonObject(request, maxRequestBodySize);
      const { image_id: id, site, nodes, action = "cache", target } = body;
      const fields = ["action", "image_id", "site", "nodes", "target", "not_before", "deadline"];
      const extra = Object.keys(body).filter((k) => !fields.includes(k));
      if (extra.length) throw badRequest(`Unknown field(s): ${extra.join(", ")}`);
      if (typeof action !== "string" || !JOB_ACTIONS.includes(action as JobAction)) {
        throw badRequest(`action must be one of ${JOB_ACTIONS.join(", ")}`);
      }
      if (site !== undefined && (typeof site !== "string" || site.length > 64)) {
        throw badRequest("site must be a string");
      }
      if (
        nodes !== undefined && (!Array.isArray(nodes) || !nodes.length || !nodes.every((n) => typeof n === "string"))
      ) {
        throw badRequest("nodes must be a non-empty list of node URLs");
      }
      if (target !== undefined && (action !== "clear" || !["cache", "queue", ""].includes(target as string))) {
        throw badRequest("target is for action clear, and must be 'cache', 'queue' or empty string");
      }
      const where = { site: site as string | undefined, nodes: nodes as string[] | undefined };
      const win = jobWindow(body.not_before, body.deadline, (f.opts.now ?? Date.now)());
      let jobId: string;
      if (action === "cache") {
        if (typeof id !== "string") throw badRequest("image_id is required");
        jobId = await cacheJob(f, id, where, who, win);
      } else if (JOB_KINDS[action as JobAction].takesImage) {
        // pin, unpin: an image the caller may see, and the kind's rule checked against it.
        if (typeof id !== "string") throw badRequest("image_id is required");
        const image = isImageId(id) ? await source.find(id, who) : undefined;
        if (!image) throw imageNotFound(id);
        policy.enforce(JOB_KINDS[action as JobAction].rule, who, imageTarget(image));
        jobId = await fleetDb(
          f.fanOut({ action: action as JobAction, imageId: id, clearTarget: null, ...win }, where, who.userId),
        );
      } else {
        if (id !== undefined) throw badRequest(`image_id is not taken by action ${action}`);
        policy.enforce(JOB_KINDS[action as JobAction].rule, who);
        const clearTarget = action === "clear" ? ((target || "both") as ClearTarget) : null;
        const spec = { action: action as JobAction, imageId: null, clearTarget, ...win };
        jobId = await fleetDb(f.fanOut(spec, where, who.userId));
      }
      return jobCreated(f, jobId);
    },

    /**
     * PUT /v2/cache/{id}?fleet=all | site:NAME | node:URL (repeatable): the same cache job as POST /v2/x-fleet/jobs,
     * 202 with the job and its Location. Checked as nodes/{id} is: the policy first, then 409 without a fleet.
     */
    async queueOnFleet(id: string, who: Identity, request: Request): Promise<Response> {
      if (!fleet) {
        policy.enforce("cache_image", who);
        throw conflict(NOT_ENABLED);
      }
      const f = fleet;
      const where = fleetOption(new URL(request.url).searchParams.getAll("fleet"));
      await refuseBody(request);
      return jobCreated(f, await cacheJob(f, id, where, who));
    },

    /** GET /v2/x-fleet/jobs[?limit=N]: the newest jobs (20 by default, at most 1000) with target counts by state. */
    async jobs(who: Identity, request: Request): Promise<Response> {
      policy.enforce("cache_list", who);
      const f = need();
      const limitText = new URL(request.url).searchParams.get("limit") ?? "20";
      const limit = Number(limitText);
      if (!/^\d{1,4}$/.test(limitText) || limit < 1 || limit > 1000) {
        throw badRequest("limit must be between 1 and 1000");
      }
      return json({ jobs: await fleetDb(f.jobs.list(limit)) });
    },

    async job(id: string, who: Identity): Promise<Response> {
      policy.enforce("cache_list", who);
      const job = /^[0-9a-f-]{36}$/.test(id) ? await fleetDb(need().job(id)) : undefined;
      if (!job) throw notFound(`Fleet job ${id} not found.`);
      return json(job);
    },

    /** GET /v2/x-fleet/view[?image_id=...][?limit=N&marker=<image id>]: per node, and per image (paged by image id). */
    async view(who: Identity, request: Request): Promise<Response> {
      policy.enforce("cache_list", who);
      const f = need();
      const params = new URL(request.url).searchParams;
      const imageId = params.get("image_id") ?? undefined;
      const marker = params.get("marker") ?? undefined;
      const limitText = params.get("limit") ?? String(VIEW_PAGE);
      if (imageId !== undefined && !isImageId(imageId)) throw badRequest("image_id is not an image id");
      if (marker !== undefined && !isImageId(marker)) throw badRequest("marker is not an image id");
      const limit = Number(limitText);
      if (!/^\d{1,6}$/.test(limitText) || limit < 1 || limit > VIEW_PAGE_MAX) {
        throw badRequest(`limit must be between 1 and ${VIEW_PAGE_MAX}`);
      }
      const [nodes, page] = await fleetDb(Promise.all([f.nodes(), f.images({ imageId, marker, limit })]));
      const body: Record<string, unknown> = { self: f.url, nodes, images: page.images };
      if (page.next) body.next = `/v2/x-fleet/view?limit=${limit}&marker=${page.next}`;
      return json(body);
    },

    async nodes(who: Identity): Promise<Response> {
      policy.enforce("cache_list", who);
      return json({ nodes: await fleetDb(need().nodes()) });
    },

    /** DELETE /v2/x-fleet/nodes/{node_id}: retires the node; its shared rows and job parts go. */
    async retire(nodeId: string, who: Identity): Promise<Response> {
      policy.enforce("cache_delete", who);
      const f = need();
      if (!/^\d{1,15}$/.test(nodeId) || !(await fleetDb(f.registry.retire(Number(nodeId))))) {
        throw notFound(`Fleet node ${nodeId} not found.`);
      }
      return empty(204);
    },

    /**
     * GET /x-fleet/peer/images/{id}, for peers holding the fleet secret only: a committed image's bytes,
     * or those of a fill in progress as they land (verified before the last byte, as any download).
     */
    async peer(id: string, request: Request): Promise<Response> {
      const secret = fleet?.opts.secret;
      if (!fleet || !secret || !isImageId(id)) throw notFound();
      // Signed for this node's own fleet URL and this method and path: a token seen elsewhere is no use here.
      const signed = { ...peerRead(fleet.url, id), method: request.method };
      if (!peerTokenValid(secret, signed, request.headers.get(PEER_AUTH_HEADER))) {
        throw forbidden("Peer authentication failed.");
      }
      const headers = (size: number) => ({
        "Content-Type": "application/octet-stream",
        "Content-Length": String(size),
      });
      const read = await cache.readForPeer(id, () => !fleet.readingFromPeer(id));
      const stream = read && (peerBandwidth ? throttled(read.stream, peerBandwidth) : read.stream);
      if (read) return new Response(stream, { headers: headers(read.size) });
      throw notFound(`Image ${id} is not cached here.`);
    },

    /** GET /x-fleet/peer/images/{id}/record, for peers holding the fleet secret only: a cached image's kept record. */
    peerRecord(id: string, request: Request): Response {
      const secret = fleet?.opts.secret;
      if (!fleet || !secret || !isImageId(id)) throw notFound();
      const signed = { ...peerRecordRead(fleet.url, id), method: request.method };
      if (!peerTokenValid(secret, signed, request.headers.get(PEER_AUTH_HEADER))) {
        throw forbidden("Peer authentication failed.");
      }
      const record = cache.isCached(id) ? cache.kept.get(id) : undefined;
      if (!record) throw notFound(`Image ${id} has no kept record here.`);
      return json(record);
    },
  };
}

interface Where {
  site?: string;
  nodes?: string[];
}

/** PUT's fan-out option: `all`, `site:NAME`, or one `node:URL` per node. */
export function fleetOption(values: string[]): Where {
  const bad = () => badRequest("fleet must be 'all', 'site:NAME', or one or more 'node:URL'");
  if (values.length === 1 && values[0] === "all") return {};
  if (values.length === 1 && values[0].startsWith("site:")) {
    const site = values[0].slice(5);
    if (site.length > 64) throw bad();
    return { site };
  }
  if (!values.length || !values.every((v) => v.startsWith("node:") && v.length > 5)) throw bad();
  return { nodes: values.map((v) => v.slice(5)) };
}

/** Where peers read images from each other: signed with the fleet secret, not by a caller's identity. */
export const PEER_PREFIX = "/x-fleet/peer/images/";

/**
 * The fleet extension's router: /v2/x-fleet/..., the peer reads, and PUT /v2/cache/{id}?fleet=... (without
 * ?fleet= that PUT is Glance's, and this router passes it on to the cache routes).
 */
export function fleetRoutes(deps: FleetApiDeps): Routes {
  const api = fleetApi(deps);
  return routes()
    .put(
      "/v2/cache/:id",
      (r) => new URL(r.url).searchParams.has("fleet") ? api.queueOnFleet(param(r, "id"), r.identity, r) : undefined,
    )
    .post("/v2/x-fleet/jobs", (r) => api.createJob(r.identity, r))
    .get("/v2/x-fleet/jobs", (r) => api.jobs(r.identity, r))
    .get("/v2/x-fleet/jobs/:id", (r) => api.job(param(r, "id"), r.identity))
    .get("/v2/x-fleet/view", (r) => api.view(r.identity, r))
    .get("/v2/x-fleet/nodes", (r) => api.nodes(r.identity))
    .delete("/v2/x-fleet/nodes/:id", (r) => api.retire(param(r, "id"), r.identity))
    .get(`${PEER_PREFIX}:id`, (r) => api.peer(param(r, "id"), r))
    .get(`${PEER_PREFIX}:id/record`, (r) => api.peerRecord(param(r, "id"), r));
}
