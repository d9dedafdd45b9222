import type { OidcOptions } from './oidc.ts';
import { parseRoleRules } from './access/roles.ts';

export interface OidcSettings {
  adminOidcIssuerUrl?: string | undefined;
  adminOidcClientId?: string | undefined;
  adminOidcClientSecret?: string | undefined;
  adminOidcRedirectUrl?: string | undefined;
  adminOidcScopes: string;
  adminOidcGroupsClaim: string;
  adminOidcRoles?: string | undefined;
}

const loopback = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The single sign-on settings, checked at start (`ccproxy admin` and `ccproxy local`): every
 * problem is named, so a half-configured SSO is refused rather than half working.
 */
export function oidcOptionsFrom(settings: OidcSettings): { oidc?: OidcOptions; problems: string[] } {
  if (settings.adminOidcIssuerUrl === undefined) return { problems: [] };
  const problems: string[] = [];
  const issuer = new URL(settings.adminOidcIssuerUrl);
  if (issuer.protocol !== 'https:' && !loopback.has(issuer.hostname))
    problems.push('CCPROXY_ADMIN_OIDC_ISSUER_URL must be https (http only on loopback)');
  if (settings.adminOidcClientId === undefined)
    problems.push('CCPROXY_ADMIN_OIDC_CLIENT_ID is required with CCPROXY_ADMIN_OIDC_ISSUER_URL');
  if (settings.adminOidcRedirectUrl === undefined)
    problems.push('CCPROXY_ADMIN_OIDC_REDIRECT_URL is required with CCPROXY_ADMIN_OIDC_ISSUER_URL');
  const { rules, problems: roleProblems } = parseRoleRules(settings.adminOidcRoles ?? '');
  problems.push(...roleProblems.map((problem) => `CCPROXY_ADMIN_OIDC_ROLES: ${problem}`));
  if (rules.length === 0 && roleProblems.length === 0)
    problems.push('CCPROXY_ADMIN_OIDC_ROLES is required with CCPROXY_ADMIN_OIDC_ISSUER_URL (nobody could sign in)');
  if (problems.length > 0) return { problems };
  return {
    problems,
    oidc: {
      issuerUrl: settings.adminOidcIssuerUrl,
      clientId: settings.adminOidcClientId as string,
      ...(settings.adminOidcClientSecret === undefined ? {} : { clientSecret: settings.adminOidcClientSecret }),
      redirectUrl: settings.adminOidcRedirectUrl as string,
      scopes: settings.adminOidcScopes,
      groupsClaim: settings.adminOidcGroupsClaim,
      roles: rules,
    },
  };
}
