// Who is calling: the Identity every handler sees, and the Authenticator interface each auth mode implements.

export interface Identity {
  userId: string;
  projectId: string | null;
  roles: string[];
  isAdmin: boolean;
  /** The caller's Keystone token, passed on to an upstream Glance so that it decides visibility. */
  token?: string;
}

/** Resolves a request to an identity, or throws an unauthenticated DomainError (401). One per auth mode. */
export interface Authenticator {
  authenticate(request: Request): Promise<Identity>;
}

export function makeIdentity(userId: string, projectId: string | null, roles: string[], token?: string): Identity {
  const normalized = roles.map((r) => r.trim().toLowerCase()).filter(Boolean);
  return { userId, projectId, roles: normalized, isAdmin: normalized.includes("admin"), token };
}
