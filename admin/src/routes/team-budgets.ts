import { Type } from 'typebox';
import { budgetSpec, multiLine, teamBudgetName } from '@ccproxy/operator';
import { dnsLabel, idParams, listQuery, sendPage, splitId } from '../list.ts';
import type { RoutePlugin } from '../route-deps.ts';
import { loadOr404 } from '../store/resource-ops.ts';
import { teamBudgetView } from './views.ts';

/**
 * Team budgets: the one TeamBudget of a namespace (always named `team`), so a team is created
 * by naming its namespace; its id is `namespace/team` like every other resource's.
 */
const teamFields = {
  description: Type.Optional(multiLine({ maxLength: 2000 })),
};
const createTeamBudget = Type.Object(
  { namespace: dnsLabel, ...teamFields, budget: budgetSpec },
  { additionalProperties: false },
);
/** `resourceVersion` is the one read: a stale one gets 409. */
const updateTeamBudget = Type.Object(
  { resourceVersion: Type.String({ minLength: 1, maxLength: 100 }), ...teamFields, budget: Type.Optional(budgetSpec) },
  { additionalProperties: false },
);
const sortable = ['id', 'namespace', 'ready', 'status', 'state'] as const;
const teamBudgetQuery = listQuery(
  { namespace: Type.Optional(dnsLabel), state: Type.Optional(Type.String({ maxLength: 20 })) },
  sortable,
);

export const teamBudgetRoutes: RoutePlugin = async (app, { store }) => {
  const tags = ['team budgets'];

  app.get('/admin/api/team-budgets', { schema: { tags, querystring: teamBudgetQuery } }, async (request, reply) => {
    const { query } = request;
    const rows = (await store.list('TeamBudget'))
      .map(teamBudgetView)
      .filter(
        (team) =>
          (query.namespace === undefined || team.namespace === query.namespace) &&
          (query.state === undefined || team.state === query.state),
      );
    return sendPage(reply, 'team-budgets', rows, query, sortable);
  });

  app.get('/admin/api/team-budgets/:id', { schema: { tags, params: idParams } }, async (request) =>
    teamBudgetView(await loadOr404(store, 'TeamBudget', splitId(request.params.id))),
  );

  app.post('/admin/api/team-budgets', { schema: { tags, body: createTeamBudget } }, async (request, reply) => {
    const { body } = request;
    // The body names no resource (its name is always `team`): the audit row names it from here.
    request.auditTarget = { kind: 'TeamBudget', namespace: body.namespace, name: teamBudgetName };
    const created = await store.create('TeamBudget', body.namespace, teamBudgetName, {
      description: body.description ?? '',
      budget: body.budget,
    });
    return reply.code(201).send(teamBudgetView(created));
  });

  app.put(
    '/admin/api/team-budgets/:id',
    { schema: { tags, params: idParams, body: updateTeamBudget } },
    async (request) => {
      const current = await loadOr404(store, 'TeamBudget', splitId(request.params.id));
      const { resourceVersion, ...changes } = request.body;
      const spec = {
        description: changes.description ?? current.spec.description,
        budget: changes.budget ?? current.spec.budget,
      };
      return teamBudgetView(await store.update('TeamBudget', current.namespace, current.name, spec, resourceVersion));
    },
  );

  app.delete('/admin/api/team-budgets/:id', { schema: { tags, params: idParams } }, async (request) => {
    const team = await loadOr404(store, 'TeamBudget', splitId(request.params.id));
    await store.delete('TeamBudget', team.namespace, team.name);
    return teamBudgetView(team);
  });
};
