import { createHmac, randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import type { AdminSessionRow } from '@ccproxy/core';
import { AdminError } from './errors.ts';
import { adminGrants, type Identity } from './access/identity.ts';
import { grantsFor, selfServiceFor, type RoleRule } from './access/roles.ts';
import type { SessionRecords } from './session-records.ts';

const issuer = 'ccproxy-admin';
/**
 * Sessions are issued for `ccproxy-admin-api/4`, the first audience whose tokens are only a
 * reference to a row of admin_sessions (no identity, role or grants inside). Earlier releases
 * refuse this audience, so a rollback asks people to sign in again rather than honouring a
 * token whose revocation that release could not see; tokens of earlier audiences have no row
 * and are refused here for the same reason (sign in again once after the upgrade).
 */
const audience = 'ccproxy-admin-api/4';

export interface SessionOptions {
  key: Uint8Array;
  seconds: number;
  records: SessionRecords;
  /** The break-glass user and what names its password now (its hash, or `credentialId`): a session signed in with another ends. */
  username: string;
  credential: string;
  /** The group → role table now (undefined without single sign-on): read on every request. */
  roles: readonly RoleRule[] | undefined;
}

/** What a verified request carries besides its identity. */
export interface SessionClaims {
  sub: string;
  jti: string;
  exp: number;
}

/** Issues and checks sessions; one per app, shared by the password login and single sign-on. */
export interface Sessions {
  readonly seconds: number;
  /** Records the session (shared by every replica) and signs its token; `groups` are the issuer's, for SSO. */
  issue(identity: Identity, groups: readonly string[]): Promise<{ token: string; expiresAt: Date }>;
  /** The session's claims and the identity it has now; throws 401 (or 503: database unreachable). */
  authenticate(token: string): Promise<{ session: SessionClaims; identity: Identity }>;
}

export function createSessions(options: SessionOptions): Sessions {
  const credential = fingerprint(options.key, options.username, options.credential);
  return {
    seconds: options.seconds,
    async issue(identity, groups) {
      const id = randomUUID();
      const expiresAt = new Date(Date.now() + options.seconds * 1000);
      await options.records.record({
        id,
        subject: identity.sub,
        method: identity.method,
        email: identity.email,
        emailVerified: identity.emailVerified,
        name: identity.name,
        groups: [...groups],
        roleAtLogin: identity.role,
        credential: identity.method === 'break-glass' ? credential : null,
        expiresAt,
      });
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(identity.sub)
        .setIssuer(issuer)
        .setAudience(audience)
        .setJti(id)
        .setIssuedAt()
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .sign(options.key);
      return { token, expiresAt };
    },
    async authenticate(token) {
      const session = await verified(token, options.key);
      const row = await options.records.current(session.jti);
      if (row === undefined || row.subject !== session.sub)
        throw unauthorized('Session unknown (signed before sessions were recorded, or elsewhere): log in again.');
      if (row.revokedAt !== null) throw unauthorized('Session ended (logged out, or ended by an admin): log in again.');
      if (Date.parse(row.expiresAt) <= Date.now()) throw unauthorized('Session expired: log in again.');
      return { session, identity: identityNow(row, options, credential) };
    },
  };
}

async function verified(token: string, key: Uint8Array): Promise<SessionClaims> {
  try {
    const { payload } = await jwtVerify(token, key, { issuer, audience, algorithms: ['HS256'] });
    if (typeof payload.jti !== 'string' || typeof payload.exp !== 'number' || typeof payload.sub !== 'string')
      throw new Error('incomplete token');
    return { sub: payload.sub, jti: payload.jti, exp: payload.exp };
  } catch {
    throw unauthorized('Session expired or invalid: log in again.');
  }
}

/**
 * The identity a session has on this request: break-glass is `admin` while the password it
 * signed in with is still the configured one; single sign-on maps the groups recorded at
 * sign-in through the role table this process runs with, so a changed table reaches every
 * session at the next request (a group that no longer maps to a role ends the session).
 */
function identityNow(row: AdminSessionRow, options: SessionOptions, credential: string): Identity {
  const known = { sub: row.subject, email: row.email, emailVerified: row.emailVerified, name: row.name };
  if (row.method === 'break-glass') {
    if (row.credential !== credential || row.subject !== options.username)
      throw unauthorized('The break-glass password changed since this session began: log in again.');
    return { ...known, method: 'break-glass', role: 'admin', grants: adminGrants, ...noSelfService };
  }
  if (options.roles === undefined) throw unauthorized('Single sign-on is no longer configured: log in again.');
  const granted = grantsFor(options.roles, row.groups);
  if (granted === undefined)
    throw unauthorized(
      `Your groups [${row.groups.join(', ')}] no longer map to an admin role (CCPROXY_ADMIN_OIDC_ROLES): session ended.`,
    );
  return { ...known, method: 'oidc', ...granted, ...selfServiceFor(options.roles, row.groups) };
}

const noSelfService = { selfService: false, selfServiceNamespaces: [] };

/**
 * Names the password a break-glass session signed in with, keyed by the session secret so the
 * stored value says nothing of the password to whoever reads the table.
 */
function fingerprint(key: Uint8Array, username: string, credential: string): string {
  return createHmac('sha256', key).update(`${username}\n${credential}`).digest('hex').slice(0, 32);
}

const unauthorized = (message: string) => new AdminError('ADM_UNAUTHORIZED', message);
