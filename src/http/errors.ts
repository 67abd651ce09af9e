// Glance-format HTTP errors: the status line, message and body shape webob renders, chosen by Accept.
import { DomainError, type ErrorKind } from "../errors.ts";

export {
  badInput as badRequest,
  conflict,
  forbidden,
  imageNotFound,
  notAuthorized,
  notFound,
  UNAUTHORIZED_MESSAGE,
} from "../errors.ts";

/** How each domain error reaches the client. */
const STATUS_OF: Record<ErrorKind, number> = {
  bad_input: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  upstream_failed: 502,
  unavailable: 503,
};

/** A refusal with an HTTP status that no DomainError kind names (415, 416), rendered with its headers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  413: "Request Entity Too Large",
  415: "Unsupported Media Type",
  416: "Requested Range Not Satisfiable",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

type Flavor = "text/html" | "application/json" | "text/plain";

/** webob offers text/html then application/json; no Accept header at all means plain text. */
export function negotiate(accept: string | null): Flavor {
  if (!accept) return "text/plain";
  const ranges = accept.split(",").map((part) => {
    const [type, ...params] = part.trim().toLowerCase().split(";");
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    return { type: type.trim(), q: Number.isFinite(q) ? q : 0 };
  });
  let best: Flavor = "text/plain";
  let bestQ = 0;
  for (const offer of ["text/html", "application/json"] as const) {
    const q = qualityOf(offer, ranges);
    if (q > bestQ) [best, bestQ] = [offer, q];
  }
  return best;
}

function qualityOf(offer: string, ranges: { type: string; q: number }[]): number {
  const [major] = offer.split("/");
  const exact = ranges.find((r) => r.type === offer);
  if (exact) return exact.q;
  const wild = ranges.find((r) => r.type === `${major}/*`);
  if (wild) return wild.q;
  return ranges.find((r) => r.type === "*/*")?.q ?? 0;
}

const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** An error response as webob renders Glance's: the status line, message and body in the flavor Accept picks. */
export function errorResponse(
  status: number,
  message: string,
  accept: string | null,
  extraHeaders: Record<string, string> = {},
): Response {
  const statusLine = `${status} ${TITLES[status] ?? "Error"}`;
  const flavor = negotiate(accept);
  let body: string;
  if (flavor === "application/json") {
    body = JSON.stringify({
      message: `${message}<br /><br />\n\n\n`,
      code: statusLine,
      title: TITLES[status] ?? "Error",
    });
  } else if (flavor === "text/html") {
    body = `<html>\n <head>\n  <title>${statusLine}</title>\n </head>\n <body>\n  <h1>${statusLine}</h1>\n  ${
      escapeHtml(message)
    }<br /><br />\n\n\n\n </body>\n</html>`;
  } else {
    body = `${statusLine}\n\n${message}\n\n   `;
  }
  const contentType = flavor === "application/json" ? flavor : `${flavor}; charset=UTF-8`;
  return new Response(body, { status, headers: { "Content-Type": contentType, ...extraHeaders } });
}

/** The response to whatever a handler threw: HttpError and DomainError as the client's error, else a logged 500. */
export function renderError(err: unknown, request: Request): Response {
  const accept = request.headers.get("accept");
  if (err instanceof HttpError) return errorResponse(err.status, err.message, accept, err.headers);
  if (err instanceof DomainError) {
    const headers: Record<string, string> = err.challenge ? { "WWW-Authenticate": err.challenge } : {};
    return errorResponse(STATUS_OF[err.kind], err.message, accept, headers);
  }
  console.error("internal error:", err);
  return errorResponse(
    500,
    "The server has either erred or is incapable of performing the requested operation.",
    accept,
  );
}
