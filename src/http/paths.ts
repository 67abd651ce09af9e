// Strict routing: the router sees the path Glance routes (decoded as WSGI does, dot segments kept as ids), or,
// for an empty segment, a trailing slash or an encoded slash, the request is Glance's 404.

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

const isDot = (segment: string) => segment === "." || segment === "..";

/**
 * URL parsing resolves "." and ".." segments, which Glance takes as ids. Such a segment travels to the router
 * as "%2F" + itself: a slash no real segment can hold (encoded slashes are refused), which param() takes off.
 */
const DOT_MARK = "%2F";

/** The id of a route parameter as Glance sees it, given the decoded parameter. */
export function unmarkDotSegment(decoded: string): string {
  return decoded.startsWith("/") && isDot(decoded.slice(1)) ? decoded.slice(1) : decoded;
}

/**
 * The request to route: the request itself when the router's view of its path (URL parsing) is the path as
 * received; a copy whose dot segments are marked when they are the only difference; undefined when Glance
 * would route no such path (empty segment, trailing slash, encoded slash) and the answer is 404.
 */
export function routingRequest(request: Request, rawPath?: string): Request | undefined {
  const received = receivedPath(request, rawPath);
  // WSGI would decode an encoded slash into a separator and route the result: never route such a path.
  if (/%2f/i.test(received)) return undefined;
  const glance = decodePath(received);
  if (glance === "/") return request;
  const segments = glance.split("/");
  if (segments[0] !== "" || segments.slice(1).some((s) => s === "")) return undefined;
  const url = new URL(request.url);
  const routed = url.pathname.split("/").map(decodePath);
  if (routed.length === segments.length && routed.every((s, i) => s === segments[i])) return request;
  if (!segments.some(isDot)) return undefined;
  url.pathname = segments.map((s) => (isDot(s) ? DOT_MARK + s : encodeURIComponent(s))).join("/");
  const hasBody = request.body !== null;
  return new Request(url, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    ...(hasBody ? { duplex: "half" } : {}),
  } as RequestInit);
}
