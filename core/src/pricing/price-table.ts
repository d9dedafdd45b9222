import { readFileSync } from 'node:fs';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { ConfigError } from '../config.ts';
import { defaultPriceTable } from './default-prices.ts';

const usdPerMTok = Type.Number({ minimum: 0, maximum: 100_000 });
const rates = {
  input: usdPerMTok,
  output: usdPerMTok,
  cacheRead: usdPerMTok,
  cacheWrite5m: usdPerMTok,
  cacheWrite1h: usdPerMTok,
};
const PriceEntrySchema = Type.Object(
  {
    family: Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{0,99}$', description: 'normalised model id prefix' }),
    from: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'first day (UTC) the prices apply' }),
    ...rates,
    regionalPremium: Type.Optional(Type.Boolean()),
    longContext: Type.Optional(Type.Object({ aboveInputTokens: Type.Integer({ minimum: 1 }), ...rates })),
  },
  { additionalProperties: false },
);
export const PriceTableFileSchema = Type.Object(
  {
    effectiveDate: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }),
    source: Type.Optional(Type.String({ maxLength: 500 })),
    /** Replace the built-in entries instead of adding to them. */
    replace: Type.Optional(Type.Boolean()),
    bedrockRegionalMultiplier: Type.Optional(Type.Number({ minimum: 1, maximum: 10 })),
    entries: Type.Array(PriceEntrySchema, { maxItems: 1000 }),
  },
  { additionalProperties: false },
);
export type PriceEntry = Static<typeof PriceEntrySchema>;
export type PriceTableFile = Static<typeof PriceTableFileSchema>;
export type TokenRates = Pick<PriceEntry, keyof typeof rates>;

/** A loaded table: entries ordered so that the first match is the one that applies. */
export interface PriceTable {
  readonly effectiveDate: string;
  readonly sources: readonly string[];
  readonly bedrockRegionalMultiplier: number;
  readonly entries: readonly (PriceEntry & { readonly overridden: boolean })[];
}

/** The tokens of one request, as metered. */
export interface PricedUsage {
  provider: 'plan' | 'bedrock';
  /** The model that served the request (Anthropic or Bedrock id, any spelling). */
  model: string | null;
  /** ms since epoch: prices in effect on that day apply. */
  occurredAt: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

/**
 * Bedrock ids (`us.anthropic.claude-sonnet-4-5-20250929-v1:0`, ARNs of inference profiles) and
 * Anthropic ids (`claude-sonnet-4-5-20250929`, aliases) come down to one family spelling.
 */
export function normaliseModelId(id: string): string {
  return id
    .toLowerCase()
    .replace(/^arn:[^/]*\//, '')
    .replace(/^(global|us|us-gov|eu|apac|jp|au|ca)\./, '')
    .replace(/^anthropic\./, '')
    .replace(/\[[^\]]*\]$/, '')
    .replace(/-v\d+(:\d+)?$/, '')
    .replace(/[-@]\d{8}$/, '')
    .replace(/-latest$/, '');
}

/** Builds the table from the built-in entries and an override file (validated, every problem named). */
export function buildPriceTable(override?: PriceTableFile): PriceTable {
  const own = (override?.entries ?? []).map((entry) => ({ ...entry, overridden: true }));
  const builtIn = override?.replace ? [] : defaultPriceTable.entries.map((entry) => ({ ...entry, overridden: false }));
  // Longest family first, then the latest `from`, then an override before a built-in entry.
  const entries = [...own, ...builtIn].sort(
    (a, b) =>
      b.family.length - a.family.length || b.from.localeCompare(a.from) || Number(b.overridden) - Number(a.overridden),
  );
  return {
    effectiveDate: override?.effectiveDate ?? defaultPriceTable.effectiveDate,
    sources: [override?.source, override?.replace ? undefined : defaultPriceTable.source].filter(
      (source): source is string => source !== undefined,
    ),
    bedrockRegionalMultiplier: override?.bedrockRegionalMultiplier ?? defaultPriceTable.bedrockRegionalMultiplier ?? 1,
    entries,
  };
}

/** Reads CCPROXY_PRICE_TABLE_FILE (JSON); a bad file stops the process with the field named. */
export function loadPriceTable(path: string | undefined): PriceTable {
  if (path === undefined || path === '') return buildPriceTable();
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError([`CCPROXY_PRICE_TABLE_FILE=${path} cannot be read as JSON: ${(error as Error).message}`]);
  }
  if (!Value.Check(PriceTableFileSchema, parsed)) {
    const problems = [...Value.Errors(PriceTableFileSchema, parsed)]
      .slice(0, 10)
      .map((error) => `CCPROXY_PRICE_TABLE_FILE ${error.instancePath || '/'}: ${error.message}`);
    throw new ConfigError(problems);
  }
  return buildPriceTable(parsed);
}

/**
 * The entry that prices `model` on the day `at`, or undefined when the table has none. The family
 * must be the whole normalised id (`-0` aliases included): an unknown version such as
 * `claude-sonnet-4-9` stays unpriced and visible rather than billed at `claude-sonnet-4`'s rate.
 */
export function priceEntryFor(table: PriceTable, model: string, at: number): PriceTable['entries'][number] | undefined {
  // Every metered request is priced (usage store, budgets, the spend metric): the lookup — seven
  // regular expressions, a date string and a scan of the table — is done once per model and UTC
  // day, not per request. The memo is the table's own and bounded (model ids come from upstreams).
  const dayIndex = Math.floor(at / 86_400_000);
  let memo = lookups.get(table);
  if (memo === undefined) lookups.set(table, (memo = new Map()));
  const hit = memo.get(model);
  if (hit !== undefined && hit.dayIndex === dayIndex) return hit.entry;
  const id = normaliseModelId(model);
  const day = new Date(at).toISOString().slice(0, 10);
  const entry = table.entries.find((e) => (id === e.family || id === `${e.family}-0`) && e.from <= day);
  if (memo.size >= maxMemoModels) memo.clear();
  memo.set(model, { dayIndex, entry });
  return entry;
}

type Lookup = { dayIndex: number; entry: PriceTable['entries'][number] | undefined };
const lookups = new WeakMap<PriceTable, Map<string, Lookup>>();
const maxMemoModels = 1000;

/**
 * The request's cost in micro-USD (tokens × USD per million tokens is exactly micro-USD), or
 * undefined when its model is not in the table: an unpriced request is shown as such, never as 0.
 * Cache writes are priced at the 5-minute rate: the metered usage does not split them by TTL.
 */
export function costMicroUsd(table: PriceTable, usage: PricedUsage): number | undefined {
  if (usage.model === null) return undefined;
  const entry = priceEntryFor(table, usage.model, usage.occurredAt);
  if (entry === undefined) return undefined;
  const promptTokens = usage.inputTokens + usage.cacheReadTokens + usage.cacheCreationTokens;
  const prices: TokenRates =
    entry.longContext !== undefined && promptTokens > entry.longContext.aboveInputTokens ? entry.longContext : entry;
  const regional =
    usage.provider === 'bedrock' && entry.regionalPremium === true && !/^global\./i.test(usage.model)
      ? table.bedrockRegionalMultiplier
      : 1;
  const micro =
    usage.inputTokens * prices.input +
    usage.outputTokens * prices.output +
    usage.cacheReadTokens * prices.cacheRead +
    usage.cacheCreationTokens * prices.cacheWrite5m;
  return Math.round(micro * regional);
}
