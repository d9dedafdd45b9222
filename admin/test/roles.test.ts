import { describe, expect, it } from 'vitest';
import { grantsFor, oidcOptionsFrom, parseRoleRules, selfServiceFor } from '@ccproxy/admin';

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
    expect(grantsFor(rules, [])).toBeUndefined();
  });

  it('scopes a developer entry to the namespaces whose ProxyUsers may link to the person', () => {
    const { rules, problems } = parseRoleRules(
      'devs-a=developer:team-a,team-c;devs-b=developer:team-b;all=developer;leads=team-admin:team-x',
    );
    expect(problems).toEqual([]);
    expect(selfServiceFor(rules, ['devs-a'])).toEqual({
      selfService: true,
      selfServiceNamespaces: ['team-a', 'team-c'],
    });
    expect(selfServiceFor(rules, ['devs-a', 'devs-b'])).toEqual({
      selfService: true,
      selfServiceNamespaces: ['team-a', 'team-b', 'team-c'],
    });
    // One unscoped developer entry trusts every namespace.
    expect(selfServiceFor(rules, ['devs-b', 'all'])).toEqual({ selfService: true, selfServiceNamespaces: 'all' });
    expect(selfServiceFor(rules, ['leads'])).toEqual({ selfService: false, selfServiceNamespaces: [] });
    // A developer's namespaces grant nothing in the admin: the role stays developer, with no grants.
    expect(grantsFor(rules, ['devs-a'])).toEqual({ role: 'developer', grants: { read: [], write: [] } });
    expect(grantsFor(rules, ['devs-a', 'leads'])).toEqual({
      role: 'team-admin',
      grants: { read: ['team-x'], write: ['team-x'] },
    });
    expect(
      parseRoleRules('devs=developer:Team_A;d2=developer:;d3=developer:team-a:team-b;t=team-admin:team-a:').problems,
    ).toEqual([
      '"devs=developer:Team_A": developer needs namespaces (DNS labels, comma-separated)',
      '"d2=developer:": developer needs namespaces (DNS labels, comma-separated)',
      '"d3=developer:team-a:team-b": developer needs namespaces (DNS labels, comma-separated)',
      '"t=team-admin:team-a:": team-admin needs namespaces (DNS labels, comma-separated)',
    ]);
    // Entries are separated by `;`: a line break is named, not read as part of a group.
    expect(parseRoleRules('ops=admin\ndevs=developer')).toEqual({
      rules: [],
      problems: ['"ops=admin\\ndevs=developer": expected group=role, entries separated by ;'],
    });
  });

  it('names every malformed entry instead of granting or dropping silently', () => {
    const { rules, problems } = parseRoleRules(
      'ops=root;=admin;team=team-admin;team2=team-admin:Team_A;audit=viewer:team-a;nothing',
    );
    expect(rules).toEqual([]);
    expect(problems).toHaveLength(6);
    expect(problems.join('\n')).toContain(
      '"ops=root": role must be admin, team-admin:<namespaces>, viewer or developer[:<namespaces>]',
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
      'CCPROXY_ADMIN_OIDC_ROLES: "ops=superuser": role must be admin, team-admin:<namespaces>, viewer or developer[:<namespaces>]',
    ]);
  });
});
