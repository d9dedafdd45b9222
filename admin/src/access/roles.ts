import type { Grants, Role } from './identity.ts';

/**
 * The group → role table (CCPROXY_ADMIN_OIDC_ROLES): entries separated by `;`, each
 * `group=admin`, `group=viewer`, `group=team-admin:ns1,ns2`, `group=developer` or
 * `group=developer:ns1,ns2`. A person in several groups gets the union: `admin` anywhere wins;
 * `viewer` reads everything; each `team-admin` entry adds its namespaces to what they read and
 * change; `developer` alone is the self-service role (their own keys only, through the ProxyUser
 * linked to their identity; the other roles may use self-service too when linked). A developer
 * entry with namespaces trusts links (`spec.identity`) only from ProxyUsers there: whoever may
 * write ProxyUsers in another namespace can then neither take the person's self-service over nor
 * block it with a second claim. Groups the table does not name give nothing.
 */
export interface RoleRule {
  group: string;
  role: Role;
  namespaces: string[];
}

const namespacePattern = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Parses the table; every problem is named (a typo must not silently grant or drop a role). */
export function parseRoleRules(text: string): { rules: RoleRule[]; problems: string[] } {
  const rules: RoleRule[] = [];
  const problems: string[] = [];
  for (const raw of text.split(';')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const equals = entry.lastIndexOf('=');
    const group = entry.slice(0, equals).trim();
    const value = entry.slice(equals + 1);
    const colon = value.indexOf(':');
    const role = colon === -1 ? value : value.slice(0, colon);
    const scope = colon === -1 ? undefined : value.slice(colon + 1);
    // Entries are separated by `;` only: a line break (or any control character) is a typo, never part of a group.
    // eslint-disable-next-line no-control-regex -- control characters are what this refuses
    if (equals <= 0 || group === '' || /[\u0000-\u001f\u007f]/.test(entry)) {
      problems.push(`${JSON.stringify(entry)}: expected group=role, entries separated by ;`);
      continue;
    }
    if (role === 'admin' || role === 'viewer' || (role === 'developer' && scope === undefined)) {
      if (scope !== undefined) problems.push(`"${entry}": ${role} takes no namespaces`);
      else rules.push({ group, role, namespaces: [] });
      continue;
    }
    if (role !== 'team-admin' && role !== 'developer') {
      problems.push(`"${entry}": role must be admin, team-admin:<namespaces>, viewer or developer[:<namespaces>]`);
      continue;
    }
    const namespaces = (scope ?? '').split(',').map((namespace) => namespace.trim());
    const bad = namespaces.filter((namespace) => !namespacePattern.test(namespace));
    if (bad.length > 0 || namespaces.length === 0)
      problems.push(`"${entry}": ${role} needs namespaces (DNS labels, comma-separated)`);
    else rules.push({ group, role, namespaces });
  }
  return { rules, problems };
}

/** The role and grants of someone in `groups`; undefined when no rule names any of them. */
export function grantsFor(
  rules: readonly RoleRule[],
  groups: readonly string[],
): { role: Role; grants: Grants } | undefined {
  const matched = rules.filter((rule) => groups.includes(rule.group));
  if (matched.length === 0) return undefined;
  if (matched.some((rule) => rule.role === 'admin')) return { role: 'admin', grants: { read: 'all', write: 'all' } };
  const teams = [
    ...new Set(matched.filter((rule) => rule.role === 'team-admin').flatMap((rule) => rule.namespaces)),
  ].sort();
  const viewer = matched.some((rule) => rule.role === 'viewer');
  // Only developer rules: no namespace grants at all; the self-service routes decide (self-service.ts).
  if (teams.length === 0 && !viewer) return { role: 'developer', grants: { read: [], write: [] } };
  if (teams.length === 0) return { role: 'viewer', grants: { read: 'all', write: [] } };
  return { role: 'team-admin', grants: { read: viewer ? 'all' : teams, write: teams } };
}

/**
 * Self-service, next to whatever role the person has: whether any of `groups` is a developer
 * group, and the namespaces whose ProxyUsers may link to the person (`'all'` when one of their
 * developer entries names none).
 */
export function selfServiceFor(
  rules: readonly RoleRule[],
  groups: readonly string[],
): { selfService: boolean; selfServiceNamespaces: 'all' | string[] } {
  const matched = rules.filter((rule) => rule.role === 'developer' && groups.includes(rule.group));
  if (matched.some((rule) => rule.namespaces.length === 0)) return { selfService: true, selfServiceNamespaces: 'all' };
  const namespaces = [...new Set(matched.flatMap((rule) => rule.namespaces))].sort();
  return { selfService: matched.length > 0, selfServiceNamespaces: namespaces };
}

/** Groups from a claim: an array of strings, or one string (some issuers send a single group so). */
export function groupsOf(claim: unknown): string[] {
  if (Array.isArray(claim)) return claim.filter((group): group is string => typeof group === 'string');
  return typeof claim === 'string' ? [claim] : [];
}
