import { AdminError } from '../errors.ts';
import type { ResourceStore, StoredResource } from '../store/resource-store.ts';
import type { Identity } from './identity.ts';

/**
 * The one rule linking a signed-in person to the ProxyUser whose keys they manage themselves:
 * the ProxyUser's `spec.identity`, written by an admin or team admin (GitOps or the admin), never
 * by the person. It matches on
 * - `subject`: the ID token's `sub`, which the issuer guarantees unique and never reassigned
 *   (OIDC Core §2), checked in a token whose signature, issuer and audience were verified
 *   (oidc.ts) and carried in our own signed session — so nobody can claim another's;
 * - else `email`, only when the issuer said `email_verified: true` (an unverified email is
 *   whatever the person typed at the issuer), compared case-insensitively.
 * Only ProxyUsers in the namespaces the person's developer entries trust are read
 * (`group=developer:ns1,ns2`, roles.ts): a claim written anywhere else neither links nor blocks.
 * Exactly one ProxyUser must match: none, or two (an ambiguous link), is a 403 naming why, never
 * a guess. The link is read on every request, so unlinking takes effect at once.
 */
export async function linkedUser(store: ResourceStore, identity: Identity): Promise<StoredResource<'ProxyUser'>> {
  const who = identity.email ?? identity.sub;
  if (identity.method !== 'oidc')
    throw refused(identity, 'signs in with the break-glass password: self-service needs single sign-on');
  if (!identity.selfService)
    throw refused(identity, 'is in no developer group (CCPROXY_ADMIN_OIDC_ROLES): My keys is for developer groups');
  // In a developer group, the trusted namespaces are 'all' or some (roles.ts selfServiceFor): never none.
  const trusted = identity.selfServiceNamespaces;
  const email = identity.emailVerified ? identity.email?.toLowerCase() : undefined;
  const matches = (await store.list('ProxyUser')).filter(({ namespace, spec }) => {
    if (trusted !== 'all' && !trusted.includes(namespace)) return false;
    const link = spec.identity;
    if (link?.subject !== undefined) return link.subject === identity.sub;
    return link?.email !== undefined && email !== undefined && link.email.toLowerCase() === email;
  });
  const [user, other] = matches;
  if (user === undefined)
    throw refused(
      identity,
      `has no ProxyUser linked to it (spec.identity.subject "${identity.sub}"${email === undefined ? '' : ` or spec.identity.email "${email}"`}${trusted === 'all' ? '' : ` in ${trusted.length === 1 ? 'namespace' : 'namespaces'} ${trusted.join(', ')}`}); ask your team admin to link ${who}`,
    );
  if (other !== undefined)
    throw refused(
      identity,
      `is linked to several ProxyUsers (${matches.map((m) => `${m.namespace}/${m.name}`).join(', ')}); ask your team admin to keep one`,
    );
  return user;
}

function refused(identity: Identity, why: string): AdminError {
  return new AdminError('ADM_FORBIDDEN', `${identity.email ?? identity.sub} ${why}.`);
}
