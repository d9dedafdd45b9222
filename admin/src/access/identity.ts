/**
 * Who is signed in and what they may do; carried in the session token (auth.ts), decided from
 * the identity provider's groups (roles.ts) or, for the break-glass password, always `admin`.
 */
export type Role = 'admin' | 'team-admin' | 'viewer' | 'developer';
export const roles: readonly Role[] = ['admin', 'team-admin', 'viewer', 'developer'];

/** Namespaces a session may read and change: every namespace (`'all'`) or exactly these. */
export interface Grants {
  read: 'all' | string[];
  write: 'all' | string[];
}

export interface Identity {
  method: 'oidc' | 'break-glass';
  /** The OIDC subject (`sub`), or the break-glass user name. */
  sub: string;
  email: string | null;
  /** The issuer's `email_verified` claim: only a verified email may link to a ProxyUser (self-service). */
  emailVerified: boolean;
  name: string | null;
  role: Role;
  grants: Grants;
  /** In a `developer` group: may manage the keys of the ProxyUser linked to them (self-service), whatever the role. */
  selfService: boolean;
  /** Where a ProxyUser's `spec.identity` may link to this person: every namespace or these (roles.ts). */
  selfServiceNamespaces: 'all' | string[];
}

export const adminGrants: Grants = { read: 'all', write: 'all' };

/** May this session do `mode` in `namespace`? (`null`: a request naming no namespace.) */
export function allows(grants: Grants, mode: 'read' | 'write', namespace: string | null): boolean {
  const scope = grants[mode];
  if (scope === 'all') return true;
  return namespace !== null && scope.includes(namespace);
}
