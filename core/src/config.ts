import { Type, type Static, type TObject, type TSchema } from 'typebox';
import { Value } from 'typebox/value';

/**
 * Configuration comes from the environment. A config schema maps each property to the
 * environment variable that sets it (`env`), so the schema is also the documentation of the
 * contract. `loadConfig` converts strings to the declared types, applies defaults and reports
 * every problem at once.
 */
export interface EnvField<T extends TSchema = TSchema> {
  readonly env: string;
  readonly schema: T;
  readonly description: string;
  /** Never echo the value back in an error message (keys, passwords, URLs with credentials). */
  readonly secret: boolean;
}

export type EnvFields = Record<string, EnvField>;
export type ConfigOf<F extends EnvFields> = { readonly [K in keyof F]: Static<F[K]['schema']> };

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function envField<T extends TSchema>(
  env: string,
  schema: T,
  description: string,
  options: { secret?: boolean } = {},
): EnvField<T> {
  return { env, schema, description, secret: options.secret ?? false };
}

export function loadConfig<F extends EnvFields>(
  fields: F,
  env: Readonly<Record<string, string | undefined>>,
): ConfigOf<F> {
  const problems: string[] = [];
  const result: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(fields)) {
    const raw = env[field.env];
    const input = raw === undefined || raw === '' ? undefined : raw;
    const value = input === undefined ? Value.Default(field.schema, undefined) : Value.Convert(field.schema, input);
    if (value === undefined && !isOptional(field.schema)) {
      problems.push(`${field.env} is required (${field.description})`);
      continue;
    }
    if (value !== undefined && !Value.Check(field.schema, value)) {
      const [first] = Value.Errors(field.schema, value);
      const shown = field.secret ? '(value hidden)' : JSON.stringify(raw);
      problems.push(`${field.env}=${shown} is invalid: ${first?.message ?? 'wrong type'} (${field.description})`);
      continue;
    }
    result[key] = value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return result as ConfigOf<F>;
}

function isOptional(schema: TSchema): boolean {
  return Type.IsOptional(schema) || 'default' in schema;
}

/** JSON schema of the environment contract (for Helm's values schema and the docs). */
export function describeConfig(fields: EnvFields): TObject {
  const properties: Record<string, TSchema> = {};
  for (const field of Object.values(fields))
    properties[field.env] = { ...field.schema, description: field.description };
  return Type.Object(properties);
}
