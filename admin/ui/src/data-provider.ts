import type { DataProvider, RaRecord } from 'react-admin';
import simpleRestProvider from 'ra-data-simple-rest';
import { apiUrl, httpClient } from './providers.ts';

/** What each resource's PUT accepts: the API refuses unknown keys, so the rest is dropped here. */
const editable: Record<string, readonly string[]> = {
  users: ['resourceVersion', 'displayName', 'description', 'suspended', 'budget', 'rateLimits'],
  'access-keys': ['resourceVersion', 'routing', 'revoked', 'bedrock', 'budget', 'rateLimits'],
  'bedrock-keys': ['apiKey'],
  'team-budgets': ['resourceVersion', 'description', 'budget'],
};

export interface ModelMapRow {
  from?: string;
  to?: string;
}
/** The Bedrock settings as the forms hold them: the model map as rows (a form edits lists, not records). */
export interface BedrockForm {
  region?: string | null;
  api?: string;
  model?: string | null;
}

const blank = (value: string | null | undefined) => value === undefined || value === null || value.trim() === '';

/**
 * Form → API: empty region and model mean "not set" (the proxy's default region; no default
 * model), not an empty string the schema would refuse; rows become the modelMap record.
 */
export function bedrockFromForm(
  bedrock: BedrockForm | null | undefined,
  rows: ModelMapRow[] | undefined,
): Record<string, unknown> {
  const modelMap = Object.fromEntries(
    (rows ?? []).filter((row) => !blank(row.from) || !blank(row.to)).map((row) => [row.from ?? '', row.to ?? '']),
  );
  return {
    ...(blank(bedrock?.region) ? {} : { region: bedrock?.region?.trim() }),
    // Not set stays not set: the BedrockKey's API, else InvokeModel, decides (README, "Bedrock API").
    ...(blank(bedrock?.api) ? {} : { api: bedrock?.api }),
    ...(blank(bedrock?.model) ? {} : { model: bedrock?.model?.trim() }),
    modelMap,
  };
}

/** API → form: the modelMap record as rows. */
function modelMapRowsOf(record: RaRecord): ModelMapRow[] {
  const map = (record.bedrock as { modelMap?: Record<string, string> } | null)?.modelMap ?? {};
  return Object.entries(map).map(([from, to]) => ({ from, to }));
}

const base = simpleRestProvider(apiUrl, httpClient);

/** Form data of an access key (issue or edit) → the API's body fields. */
function accessKeyBody(data: Record<string, unknown>): Record<string, unknown> {
  const { modelMapRows, bedrock, ...rest } = data;
  return { ...rest, bedrock: bedrockFromForm(bedrock as BedrockForm, modelMapRows as ModelMapRow[]) };
}

/** UI resource → API path, where they differ (a resource name cannot hold a slash). */
const apiPath: Record<string, string> = { 'usage-breakdown': 'usage/breakdown' };

export const dataProvider: DataProvider = {
  ...base,
  getList(resource, params) {
    return base.getList(apiPath[resource] ?? resource, params);
  },
  async getOne(resource, params) {
    const result = await base.getOne(resource, params);
    if (resource === 'access-keys') Object.assign(result.data, { modelMapRows: modelMapRowsOf(result.data) });
    return result;
  },
  update(resource, params) {
    const fields = editable[resource] ?? [];
    const source = resource === 'access-keys' ? accessKeyBody(params.data as Record<string, unknown>) : params.data;
    const data = Object.fromEntries(
      Object.entries(source as Record<string, unknown>).filter(
        ([key, value]) => fields.includes(key) && value !== null && value !== undefined,
      ),
    );
    // Cleared caps are left out; a budget or limit set with nothing left is removed (null).
    for (const key of ['budget', 'rateLimits'] as const) if (key in data) data[key] = withoutEmpty(data[key]) ?? null;
    // A team budget is the resource itself: cleared of every cap it is empty, not removed.
    if (resource === 'team-budgets') data.budget ??= {};
    return base.update(resource, { ...params, data });
  },
  create(resource, params) {
    const data = params.data as Record<string, unknown>;
    if (resource === 'access-keys') {
      // The user is picked by id (`namespace/name`); the key lives in the user's namespace.
      const { userId, name, routing } = data as { userId: string; name: string; routing?: string };
      const [namespace = '', user = ''] = userId.split('/', 2);
      const body = accessKeyBody({ bedrock: data.bedrock, modelMapRows: data.modelMapRows });
      return base.create(resource, { ...params, data: { namespace, name, user, routing, ...body } });
    }
    if (resource === 'bedrock-keys') {
      // The form picks an access key by id (`namespace/name`); the Bedrock key lives beside it.
      const { accessKeyId, name, apiKey, api } = data as {
        accessKeyId: string;
        name: string;
        apiKey: string;
        api?: string | null;
      };
      const [namespace = '', accessKey = ''] = accessKeyId.split('/', 2);
      // An unset default API stays unset (the access key's own, else InvokeModel, decides).
      const chosen = blank(api) ? {} : { api };
      return base.create(resource, { ...params, data: { namespace, name, accessKey, apiKey, ...chosen } });
    }
    if (resource === 'team-budgets')
      return base.create(resource, { ...params, data: { ...data, budget: withoutEmpty(data.budget) ?? {} } });
    return base.create(resource, params);
  },
};

/** The value without null, undefined or empty-string leaves and without objects left empty; undefined if nothing is left. */
function withoutEmpty(value: unknown): unknown {
  if (value === null || value === undefined || value === '') return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) return value;
  const kept = Object.entries(value as Record<string, unknown>)
    .map(([key, inner]) => [key, withoutEmpty(inner)] as const)
    .filter(([, inner]) => inner !== undefined);
  return kept.length === 0 ? undefined : Object.fromEntries(kept);
}
