// Domain errors: what went wrong, in the core's terms; src/http/errors.ts renders each in Glance's format.

export type ErrorKind =
  | "bad_input"
  | "unauthenticated"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "too_large"
  | "upstream_failed"
  | "unavailable";

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

export const UNAUTHORIZED_MESSAGE =
  "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.";

export const badInput = (msg: string) => new DomainError("bad_input", msg);
export const forbidden = (msg: string) => new DomainError("forbidden", msg);
export const notFound = (msg = "The resource could not be found.") => new DomainError("not_found", msg);
export const conflict = (msg: string) => new DomainError("conflict", msg);
export const tooLarge = (msg: string) => new DomainError("too_large", msg);
export const imageNotFound = (id: string) => notFound(`Image ${id} not found.`);
export const notAuthorized = (action: string) => forbidden(`You are not authorized to complete ${action} action.`);
export const unauthenticated = (challenge?: string) =>
  new DomainError("unauthenticated", UNAUTHORIZED_MESSAGE, challenge);
export const upstreamFailed = (msg: string) => new DomainError("upstream_failed", msg);
export const unavailable = (msg: string) => new DomainError("unavailable", msg);
