// Domain errors: what went wrong, in the core's terms; src/http/errors.ts renders each in Glance's format.

/** What went wrong; src/http/errors.ts gives each its HTTP status (bad_input 400 ... unavailable 503). */
export type ErrorKind =
  | "bad_input"
  | "unauthenticated"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "too_large"
  | "upstream_failed"
  | "unavailable";

/** An error for the client to see: its kind picks the status, its message is shown as is (anything else is a 500). */
export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** For unauthenticated: where a client gets a token (rendered as WWW-Authenticate). */
    readonly challenge?: string,
  ) {
    super(message);
  }
}

/** webob's 401 text, which Glance answers every unauthenticated request with. */
export const UNAUTHORIZED_MESSAGE =
  "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.";

/** The request is malformed or carries a value Glance refuses (400). */
export const badInput = (msg: string) => new DomainError("bad_input", msg);
/** The caller may not do this (403). */
export const forbidden = (msg: string) => new DomainError("forbidden", msg);
/** No such resource, or none the caller may see (404); Glance's message by default. */
export const notFound = (msg = "The resource could not be found.") => new DomainError("not_found", msg);
/** The resource's state does not allow this now (409). */
export const conflict = (msg: string) => new DomainError("conflict", msg);
/** A body over its limit (413). */
export const tooLarge = (msg: string) => new DomainError("too_large", msg);
/** Glance's 404 for an image id the caller cannot see or that does not exist. */
export const imageNotFound = (id: string) => notFound(`Image ${id} not found.`);
/** Glance's 403 for a policy rule that refused the caller; `action` is the rule's name. */
export const notAuthorized = (action: string) => forbidden(`You are not authorized to complete ${action} action.`);
/** No valid credentials (401 with webob's text); `challenge` is sent as WWW-Authenticate. */
export const unauthenticated = (challenge?: string) =>
  new DomainError("unauthenticated", UNAUTHORIZED_MESSAGE, challenge);
/** The upstream Glance could not be reached, stalled or answered wrongly (502). */
export const upstreamFailed = (msg: string) => new DomainError("upstream_failed", msg);
/** A service the node needs (Keystone, the fleet database) cannot answer now (503). */
export const unavailable = (msg: string) => new DomainError("unavailable", msg);
