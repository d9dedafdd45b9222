import { multiLineForbidden, multiLinePattern, singleLineForbidden } from '@ccproxy/operator';

type Schema = Record<string, unknown> | undefined;

// The characters the resource schemas' single-/multi-line patterns refuse (operator/src/resources.ts).
const controls = new RegExp(`[${singleLineForbidden}]`, 'u');
const controlsButNewline = new RegExp(`[${multiLineForbidden}]`, 'u');
const maxProblems = 20;

/**
 * The one text rule of the API, applied by the validator to every string of every body, query and
 * path (object keys too) before the schema check: no C0 control, DEL, C1 control or lone UTF-16
 * surrogate anywhere, and a line feed only where the schema is multi-line text (a description).
 * A NUL would otherwise reach Postgres (which cannot store it: a permanent reconcile error), and
 * the rest corrupt logs, YAML and terminals. The resource schemas refuse the same, so a resource
 * written past the admin (kubectl, the manifests folder) is refused too.
 */
export function textProblems(schema: unknown, value: unknown, path: string): string[] {
  const problems: string[] = [];
  walk(schema as Schema, value, path, problems);
  return problems;
}

function walk(schema: Schema, value: unknown, path: string, problems: string[]): void {
  if (problems.length >= maxProblems) return;
  if (typeof value === 'string') {
    const problem = textProblem(value, allowsNewline(schema));
    if (problem !== undefined) problems.push(`${path}: ${problem}`);
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => walk(itemsOf(schema), item, `${path}/${index}`, problems));
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const keyProblem = textProblem(key, false);
      if (keyProblem !== undefined) problems.push(`${path}: key ${JSON.stringify(key)} ${keyProblem}`);
      walk(propertyOf(schema, key), item, `${path}/${key}`, problems);
    }
  }
}

export function textProblem(text: string, newlineAllowed: boolean): string | undefined {
  const match = (newlineAllowed ? controlsButNewline : controls).exec(text);
  if (match !== null) return `must not contain control characters (found ${codePoint(match[0])})`;
  if (!text.isWellFormed()) return 'must not contain lone UTF-16 surrogates';
  return undefined;
}

const codePoint = (char: string) => `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;

/** A string schema that is multi-line text, or a union with one. */
function allowsNewline(schema: Schema): boolean {
  if (schema === undefined) return false;
  if (schema.pattern === multiLinePattern) return true;
  return options(schema).some((option) => allowsNewline(option));
}

function itemsOf(schema: Schema): Schema {
  if (schema === undefined) return undefined;
  if (schema.items !== undefined) return schema.items as Schema;
  return options(schema)
    .map(itemsOf)
    .find((items) => items !== undefined);
}

function propertyOf(schema: Schema, key: string): Schema {
  if (schema === undefined) return undefined;
  const property = (schema.properties as Record<string, Schema> | undefined)?.[key];
  if (property !== undefined) return property;
  const patterns = schema.patternProperties as Record<string, Schema> | undefined;
  if (patterns !== undefined) return Object.values(patterns)[0];
  return options(schema)
    .map((option) => propertyOf(option, key))
    .find((found) => found !== undefined);
}

const options = (schema: NonNullable<Schema>) => (schema.anyOf ?? schema.oneOf ?? []) as Schema[];
