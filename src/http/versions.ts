// GET / and GET /versions: the API versions we speak, with v2.14 (the cache API) that glanceclient looks for
// and v2.18 (POST /v2/cache/clean and /v2/cache/prune, GET /v2/cache/nodes/{image_id}).

const VERSIONS: [string, string][] = [
  ["v2.18", "CURRENT"],
  ["v2.17", "SUPPORTED"],
  ["v2.16", "SUPPORTED"],
  ["v2.15", "SUPPORTED"],
  ["v2.14", "SUPPORTED"],
  ["v2.9", "SUPPORTED"],
  ["v2.7", "SUPPORTED"],
  ["v2.6", "SUPPORTED"],
  ["v2.5", "SUPPORTED"],
  ["v2.4", "SUPPORTED"],
  ["v2.3", "SUPPORTED"],
  ["v2.2", "SUPPORTED"],
  ["v2.1", "SUPPORTED"],
  ["v2.0", "SUPPORTED"],
];

/** Links point at publicEndpoint ([DEFAULT] public_endpoint) when set, else at the request's origin (Glance does the same). */
export function versionsDocument(request: Request, publicEndpoint?: string) {
  const href = `${(publicEndpoint ?? new URL(request.url).origin).replace(/\/+$/, "")}/v2/`;
  return {
    versions: VERSIONS.map(([id, status]) => ({ id, status, links: [{ rel: "self", href }] })),
  };
}
