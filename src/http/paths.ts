// Strict routing: a request is routed only if the router sees the path Glance would route (no resolved dot
// segments, no empty segment or trailing slash, no %2F inside an id); anything else is Glance's 404.

/** The path of the request target as received: rawPath from the adapter, else request.url as a string (not parsed). */
function receivedPath(request: Request, rawPath: string | undefined): string {
  if (rawPath !== undefined) return rawPath.replace(/[?#].*$/s, "");
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*([^?#]*)/s.exec(request.url);
  return m?.[1] || "/";
}

/** Percent-decoding as WSGI does it (the whole path at once, so %2F becomes a separator); bad escapes stay. */
function decodePath(path: string): string {
  return path.replace(/(%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

/** Whether the router's view of the path (its URL parsing) is the path as received, segment for segment. */
export function isStrictPath(request: Request, rawPath?: string): boolean {
  const glance = decodePath(receivedPath(request, rawPath));
  if (glance === "/") return true;
  const segments = glance.split("/");
  if (segments[0] !== "" || segments.slice(1).some((s) => s === "")) return false;
  const routed = new URL(request.url).pathname.split("/").map(decodePath);
  return routed.length === segments.length && routed.every((s, i) => s === segments[i]);
}
