import { describe, expect, it } from 'vitest';
import { grantsFor, oidcOptionsFrom, parseRoleRules } from '@ccproxy/admin';

/** The group → role table and the SSO settings: every mistake named at start, nothing granted by a typo. */
describe('group → role table', () => {
  it('parses admin, viewer and team-admin entries and adds up several groups', () => {
    const { rules, problems } = parseRoleRules(' ops=admin ; team-a-leads=team-admin:team-a,team-c ;audit=viewer;');
    expect(problems).toEqual([]);
    expect(grantsFor(rules, ['ops', 'audit'])).toEqual({ role: 'admin', grants: { read: 'all', write: 'all' } });
    expect(grantsFor(rules, ['team-a-leads'])).toEqual({
      role: 'team-admin',
      grants: { read: ['team-a', 'team-c'], write: ['team-a', 'team-c'] },
    });
    expect(grantsFor(rules, ['team-a-leads', 'audit'])).toEqual({
      role: 'team-admin',
      grants: { read: 'all', write: ['team-a', 'team-c'] },
    });
    expect(grantsFor(rules, ['audit'])).toEqual({ role: 'viewer', grants: { read: 'all', write: [] } });
    expect(grantsFor(rules, ['someone-else'])).toBeUndefined();
  });

  it('maps developer groups to the self-service role, which any other role of the person outranks', () => {
    const { rules, problems } = parseRoleRules('devs=developer;audit=viewer;leads=team-admin:team-a;ops=admin');
    expect(problems).toEqual([]);
    expect(grantsFor(rules, ['devs'])).toEqual({ role: 'developer', grants: { read: [], write: [] } });
    expect(grantsFor(rules, ['devs', 'audit'])?.role).toBe('viewer');
    expect(grantsFor(rules, ['devs', 'leads'])?.role).toBe('team-admin');
    expect(grantsFor(rules, ['devs', 'ops'])?.role).toBe('admin');
    expect(parseRoleRules('devs=developer:team-a').problems).toEqual([
      '"devs=developer:team-a": developer takes no namespaces',
    ]);
    expect(grantsFor(rules, [])).toBeUndefined();
  });

  it('names every malformed entry instead of granting or dropping silently', () => {
    const { rules, problems } = parseRoleRules(
      'ops=root;=admin;team=team-admin;team2=team-admin:Team_A;audit=viewer:team-a;nothing',
    );
    expect(rules).toEqual([]);
    expect(problems).toHaveLength(6);
    expect(problems.join('\n')).toContain(
      '"ops=root": role must be admin, team-admin:<namespaces>, viewer or developer',
    );
    expect(problems.join('\n')).toContain('"team2=team-admin:Team_A": team-admin needs namespaces');
    expect(problems.join('\n')).toContain('"audit=viewer:team-a": viewer takes no namespaces');
  });
});

describe('SSO settings', () => {
  const base = {
    adminOidcIssuerUrl: 'https://login.example.com',
    adminOidcClientId: 'ccproxy-admin',
    adminOidcRedirectUrl: 'https://admin.example.com/admin/auth/oidc/callback',
    adminOidcScopes: 'openid email',
    adminOidcGroupsClaim: 'groups',
    adminOidcRoles: 'ops=admin',
  };
  it('is off without an issuer, and complete with one', () => {
    expect(oidcOptionsFrom({ adminOidcScopes: 'openid', adminOidcGroupsClaim: 'groups' })).toEqual({ problems: [] });
    const { oidc, problems } = oidcOptionsFrom(base);
    expect(problems).toEqual([]);
    expect(oidc).toMatchObject({ issuerUrl: 'https://login.example.com', roles: [{ group: 'ops', role: 'admin' }] });
  });

  it('refuses a half configuration, an empty role table and plain http off loopback', () => {
    const { problems } = oidcOptionsFrom({
      ...base,
      adminOidcIssuerUrl: 'http://login.example.com',
      adminOidcClientId: undefined,
      adminOidcRedirectUrl: undefined,
      adminOidcRoles: undefined,
    });
    expect(problems).toEqual([
      'CCPROXY_ADMIN_OIDC_ISSUER_URL must be https (http only on loopback)',
      'CCPROXY_ADMIN_OIDC_CLIENT_ID is required with CCPROXY_ADMIN_OIDC_ISSUER_URL',
      'CCPROXY_ADMIN_OIDC_REDIRECT_URL is required with CCPROXY_ADMIN_OIDC_ISSUER_URL',
      'CCPROXY_ADMIN_OIDC_ROLES is required with CCPROXY_ADMIN_OIDC_ISSUER_URL (nobody could sign in)',
    ]);
    expect(oidcOptionsFrom({ ...base, adminOidcIssuerUrl: 'http://127.0.0.1:9000' }).problems).toEqual([]);
    expect(oidcOptionsFrom({ ...base, adminOidcRoles: 'ops=superuser' }).problems).toEqual([
      'CCPROXY_ADMIN_OIDC_ROLES: "ops=superuser": role must be admin, team-admin:<namespaces>, viewer or developer',
    ]);
  });
});
