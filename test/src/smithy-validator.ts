import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Traits {
  'smithy.api#required'?: object;
  'smithy.api#length'?: { min?: number; max?: number };
  'smithy.api#range'?: { min?: number; max?: number };
  'smithy.api#pattern'?: string;
  'smithy.api#enumValue'?: string;
  'smithy.api#httpLabel'?: object;
  'smithy.api#httpHeader'?: string;
  'smithy.api#httpQuery'?: string;
  'smithy.api#httpPayload'?: object;
  [trait: string]: unknown;
}
interface Member {
  target: string;
  traits?: Traits;
}
interface Shape {
  type: string;
  members?: Record<string, Member>;
  member?: Member;
  key?: Member;
  value?: Member;
  traits?: Traits;
}

/** Vendored with its provenance and licence (test/fixtures/bedrock-runtime/README.md). */
const modelPath = fileURLToPath(new URL('../fixtures/bedrock-runtime/bedrock-runtime.smithy.json', import.meta.url));
const prelude: Readonly<Record<string, string>> = {
  'smithy.api#String': 'string',
  'smithy.api#Integer': 'integer',
  'smithy.api#Long': 'long',
  'smithy.api#Float': 'float',
  'smithy.api#Double': 'double',
  'smithy.api#Boolean': 'boolean',
  'smithy.api#Blob': 'blob',
  'smithy.api#Document': 'document',
  'smithy.api#Timestamp': 'timestamp',
  'smithy.api#Unit': 'structure',
  'smithy.api#PrimitiveInteger': 'integer',
  'smithy.api#PrimitiveBoolean': 'boolean',
};

/**
 * Validates JSON values against the Bedrock Runtime Smithy model (test/fixtures/bedrock-runtime), the way the
 * service does: unknown members, required members, exactly-one-member unions, enums, string
 * patterns and lengths, numeric ranges, list and map bounds. HTTP-bound members (labels,
 * headers, query) are not part of a JSON body and are skipped.
 */
export class SmithyValidator {
  readonly #shapes: Record<string, Shape>;

  constructor(path = modelPath) {
    this.#shapes = (JSON.parse(readFileSync(path, 'utf8')) as { shapes: Record<string, Shape> }).shapes;
  }

  validate(shapeId: string, value: unknown): string[] {
    const problems: string[] = [];
    this.#check(`com.amazonaws.bedrockruntime#${shapeId}`, {}, value, '', problems);
    return problems;
  }

  /**
   * The HTTP-bound members of an operation's input (path labels and headers), checked against
   * their shapes; a payload blob (`httpPayload`) is checked for its length. For operations whose
   * body is not a JSON structure (InvokeModel's is the model's own document).
   */
  validateHttp(
    shapeId: string,
    http: { labels: Record<string, string>; headers: Record<string, string | string[] | undefined>; payload: Buffer },
  ): string[] {
    const problems: string[] = [];
    const shape = this.#shapes[`com.amazonaws.bedrockruntime#${shapeId}`];
    for (const [name, member] of Object.entries(shape?.members ?? {})) {
      const traits = member.traits ?? {};
      const header = traits['smithy.api#httpHeader'];
      const raw =
        traits['smithy.api#httpLabel'] !== undefined
          ? http.labels[name]
          : header !== undefined
            ? http.headers[header.toLowerCase()]
            : undefined;
      const value = Array.isArray(raw) ? raw.join(',') : raw;
      if (traits['smithy.api#httpPayload'] !== undefined) {
        checkLength(http.payload.length, this.#shapes[member.target]?.traits ?? {}, (message) =>
          problems.push(`/${name}: ${message}`),
        );
        continue;
      }
      if (value === undefined) {
        if (traits['smithy.api#required'] !== undefined) problems.push(`/${name}: missing required member ${name}`);
        continue;
      }
      this.#check(member.target, traits, value, `/${name}`, problems);
    }
    return problems;
  }

  #check(target: string, memberTraits: Traits, value: unknown, path: string, problems: string[]): void {
    const shape: Shape = this.#shapes[target] ?? { type: prelude[target] ?? 'document' };
    const traits: Traits = { ...shape.traits, ...memberTraits };
    const at = path === '' ? '/' : path;
    const fail = (message: string) => problems.push(`${at}: ${message}`);
    switch (shape.type) {
      case 'structure':
        return this.#structure(shape, value, path, problems, fail);
      case 'union':
        return this.#union(shape, value, path, problems, fail);
      case 'list':
        if (!Array.isArray(value)) return void fail('expected a list');
        checkLength(value.length, traits, fail);
        value.forEach((item, index) =>
          this.#check(shape.member?.target ?? '', shape.member?.traits ?? {}, item, `${path}/${index}`, problems),
        );
        return;
      case 'map':
        if (!isObject(value)) return void fail('expected a map');
        checkLength(Object.keys(value).length, traits, fail);
        for (const [key, item] of Object.entries(value)) {
          this.#check(
            shape.key?.target ?? 'smithy.api#String',
            shape.key?.traits ?? {},
            key,
            `${path}/${key}(key)`,
            problems,
          );
          this.#check(shape.value?.target ?? '', shape.value?.traits ?? {}, item, `${path}/${key}`, problems);
        }
        return;
      case 'enum': {
        const allowed = Object.values(shape.members ?? {}).map((member) => member.traits?.['smithy.api#enumValue']);
        if (!allowed.includes(value as string)) fail(`${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
        return;
      }
      case 'string':
        if (typeof value !== 'string') return void fail('expected a string');
        checkLength([...value].length, traits, fail);
        if (traits['smithy.api#pattern'] !== undefined && !new RegExp(traits['smithy.api#pattern'], 'u').test(value))
          fail(`does not match ${traits['smithy.api#pattern']}`);
        return;
      case 'blob':
        if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return void fail('expected base64');
        checkLength(Buffer.from(value, 'base64').length, traits, fail);
        return;
      case 'integer':
      case 'long':
      case 'float':
      case 'double': {
        const integral = shape.type === 'integer' || shape.type === 'long';
        if (typeof value !== 'number' || (integral && !Number.isInteger(value)))
          return void fail(`expected ${integral ? 'an integer' : 'a number'}`);
        const range = traits['smithy.api#range'];
        if (range?.min !== undefined && value < range.min) fail(`must be ≥ ${range.min}`);
        if (range?.max !== undefined && value > range.max) fail(`must be ≤ ${range.max}`);
        return;
      }
      case 'boolean':
        if (typeof value !== 'boolean') fail('expected a boolean');
        return;
      default:
        return;
    }
  }

  #structure(shape: Shape, value: unknown, path: string, problems: string[], fail: (message: string) => void): void {
    if (!isObject(value)) return void fail('expected an object');
    const members = shape.members ?? {};
    for (const key of Object.keys(value))
      if (!(key in members) || isHttpBound(members[key] as Member)) fail(`unknown member ${key}`);
    for (const [name, member] of Object.entries(members)) {
      if (isHttpBound(member)) continue;
      if (value[name] === undefined || value[name] === null) {
        if (member.traits?.['smithy.api#required'] !== undefined) fail(`missing required member ${name}`);
        continue;
      }
      this.#check(member.target, member.traits ?? {}, value[name], `${path}/${name}`, problems);
    }
  }

  #union(shape: Shape, value: unknown, path: string, problems: string[], fail: (message: string) => void): void {
    if (!isObject(value)) return void fail('expected a union object');
    const set = Object.keys(value).filter((key) => value[key] !== undefined && value[key] !== null);
    if (set.length !== 1)
      return void fail(`a union must have exactly one member set, has ${set.length} (${set.join(', ')})`);
    const name = set[0] as string;
    const member = shape.members?.[name];
    if (member === undefined) return void fail(`unknown union member ${name}`);
    this.#check(member.target, member.traits ?? {}, value[name], `${path}/${name}`, problems);
  }
}

function isHttpBound(member: Member): boolean {
  const traits = member.traits ?? {};
  return (
    traits['smithy.api#httpLabel'] !== undefined ||
    traits['smithy.api#httpHeader'] !== undefined ||
    traits['smithy.api#httpQuery'] !== undefined
  );
}

function checkLength(length: number, traits: Traits, fail: (message: string) => void): void {
  const bounds = traits['smithy.api#length'];
  if (bounds?.min !== undefined && length < bounds.min) fail(`length ${length} < ${bounds.min}`);
  if (bounds?.max !== undefined && length > bounds.max) fail(`length ${length} > ${bounds.max}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
