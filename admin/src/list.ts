import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TProperties } from 'typebox';
import { dnsLabelPattern, dnsSubdomainPattern } from '@ccproxy/operator';
import { badRequest } from './errors.ts';

/**
 * Lists take `_sort`, `_order`, `_start`, `_end` (end exclusive) plus filters as flat query
 * parameters, and answer with the page and `Content-Range: <resource> <start>-<end>/<total>`.
 * ra-data-simple-rest itself sends `sort=["f","ASC"]`, `range=[0,24]` (inclusive) and
 * `filter={...}` as JSON; `registerSimpleRestQuery` translates that form into the flat one
 * before validation, so both reach the same schema and the same precise 400s.
 */
export const listQuery = <P extends TProperties>(filters: P, sortable: readonly string[]) =>
  Type.Object(
    {
      // The fields the list sorts by, so a wrong one is refused by the schema (and the document says which).
      _sort: Type.Optional(Type.Union(sortable.map((field) => Type.Literal(field)))),
      _order: Type.Optional(Type.Union([Type.Literal('ASC'), Type.Literal('DESC')])),
      _start: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
      _end: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 25 }),
      id: Type.Optional(
        Type.Union([Type.String({ maxLength: 600 }), Type.Array(Type.String({ maxLength: 600 }), { maxItems: 500 })]),
      ),
      q: Type.Optional(Type.String({ maxLength: 200 })),
      ...filters,
    },
    { additionalProperties: false },
  );

export interface ListQuery {
  _sort?: string;
  _order?: 'ASC' | 'DESC';
  _start: number;
  _end: number;
  id?: string | string[];
  q?: string;
}

export function registerSimpleRestQuery(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    // Before validation the query is whatever the URL said: read it as plain strings and arrays.
    const raw = request.query;
    if (typeof raw !== 'object' || raw === null || request.method !== 'GET' || !isList(request)) return;
    const query: Record<string, unknown> = Object.fromEntries(Object.entries(raw));
    if (!('sort' in query || 'range' in query || 'filter' in query)) return;
    const { sort, range, filter, ...rest } = query;
    const flat: Record<string, unknown> = { ...rest };
    if (sort !== undefined) {
      const [field, order] = parseJson('sort', sort, isPair);
      merge(flat, 'sort', { _sort: field, _order: order });
    }
    if (range !== undefined) {
      const [start, end] = parseJson('range', range, isIntegerPair);
      merge(flat, 'range', { _start: start, _end: end + 1 });
    } else if (filter !== undefined && !('_end' in flat)) {
      // getMany sends ids and no range: all of them, not a first page.
      flat._end = 1_000_000;
    }
    if (filter !== undefined) merge(flat, 'filter', filterOf(filter));
    request.query = flat;
  });
}

/** A list route: its query schema pages (listQuery); a detail route's `filter` stays an unknown parameter. */
const isList = (request: FastifyRequest) =>
  (request.routeOptions.schema?.querystring as { properties?: Record<string, unknown> } | undefined)?.properties
    ?._start !== undefined;

const pagingKeys = ['_start', '_end', '_sort', '_order'];

/** `filter` holds filters only: paging or sorting in it would override `range`, e.g. `{"_end":1000000}`. */
function filterOf(raw: unknown): Record<string, unknown> {
  const filter = parseJson('filter', raw, isRecord);
  const paging = Object.keys(filter).filter((key) => pagingKeys.includes(key));
  if (paging.length > 0)
    throw badRequest(`filter must not hold ${paging.join(', ')}; page and sort with range and sort`, [
      `querystring/filter: holds ${paging.join(', ')}`,
    ]);
  return filter;
}

/**
 * Adds what one JSON parameter says to the flat query; a flat parameter it would silently
 * override (`range=[0,24]&_start=5`) is a 400 naming both, unless they agree.
 */
function merge(flat: Record<string, unknown>, from: string, values: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(values)) {
    if (key in flat && !sameValue(flat[key], value))
      throw badRequest(`${from} and ${key} disagree; send one of them`, [
        `querystring/${key}: ${JSON.stringify(flat[key])} disagrees with ${from} (${JSON.stringify(value)})`,
      ]);
    flat[key] = value;
  }
}

/** The flat parameter is still the URL's text (or texts, when repeated); the JSON one is typed. */
const sameValue = (flat: unknown, parsed: unknown) =>
  Array.isArray(parsed) || Array.isArray(flat)
    ? JSON.stringify([flat].flat().map(String)) === JSON.stringify([parsed].flat().map(String))
    : String(flat) === String(parsed);

const isPair = (value: unknown): value is [unknown, unknown] => Array.isArray(value) && value.length === 2;
const isIntegerPair = (value: unknown): value is [number, number] => isPair(value) && value.every(Number.isInteger);
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function parseJson<T>(name: string, raw: unknown, ok: (value: unknown) => value is T): T {
  let value: unknown;
  try {
    value = JSON.parse(String(raw));
  } catch {
    throw badRequest(`${name} must be JSON`, [`querystring/${name}: not JSON`]);
  }
  if (!ok(value)) throw badRequest(`${name} has the wrong shape`, [`querystring/${name}: wrong shape`]);
  return value;
}

/** Sorts, pages and sends; rows are the (small) set of one kind of resource. */
export function sendPage<T extends Record<string, unknown>>(
  reply: FastifyReply,
  resource: string,
  rows: T[],
  query: ListQuery,
  sortable: readonly string[],
): T[] {
  if (query._end < query._start)
    throw badRequest('_end must not be less than _start', ['querystring/_end: must be >= _start']);
  let selected = rows;
  if (query.id !== undefined) {
    const ids = new Set(Array.isArray(query.id) ? query.id : [query.id]);
    selected = selected.filter((row) => ids.has(String(row.id)));
  }
  if (query.q !== undefined && query.q.trim() !== '') selected = selected.filter(matchesText(query.q));
  if (query._sort !== undefined) {
    if (!sortable.includes(query._sort))
      throw badRequest(`cannot sort by ${query._sort}`, [`querystring/_sort: must be one of ${sortable.join(', ')}`]);
    const field = query._sort;
    const direction = query._order === 'DESC' ? -1 : 1;
    selected = [...selected].sort((a, b) => compare(a[field], b[field]) * direction);
  }
  const page = selected.slice(query._start, query._end);
  const last = page.length === 0 ? query._start : query._start + page.length - 1;
  reply.header('Content-Range', `${resource} ${query._start}-${last}/${selected.length}`);
  return page;
}

/**
 * The one free-text rule of every list (the request log applies the same rule in SQL): each word
 * of `q` must be a case-insensitive substring of one of the row's own text or number values. The
 * row's serialised JSON, which this replaces, matched field names ("ready", "status" matched every
 * row) and the escaped form of values (a quote or backslash matched nothing).
 */
export function matchesText(q: string): (row: Record<string, unknown>) => boolean {
  const words = q.toLowerCase().trim().split(/\s+/);
  return (row) => {
    const values = Object.values(row)
      .filter((value) => typeof value === 'string' || typeof value === 'number')
      .map((value) => String(value).toLowerCase());
    return words.every((word) => values.some((value) => value.includes(word)));
  };
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a ?? '').localeCompare(String(b ?? ''));
}

/** react-admin ids are strings; ours are `namespace/name`, URL-encoded in paths. */
export const idOf = (namespace: string, name: string) => `${namespace}/${name}`;

export const idParams = Type.Object(
  {
    id: Type.String({
      minLength: 3,
      maxLength: 320,
      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
    }),
  },
  { additionalProperties: false },
);

export function splitId(id: string): { namespace: string; name: string } {
  const [namespace = '', name = ''] = id.split('/', 2);
  return { namespace, name };
}

export const dnsLabel = Type.String({ minLength: 1, maxLength: 63, pattern: dnsLabelPattern });
export const dnsName = Type.String({ minLength: 1, maxLength: 200, pattern: dnsSubdomainPattern });

/**
 * `<base>-<suffix>` as a DNS subdomain name of at most `max` characters. The base is cut to fit,
 * and a cut that ends in `.` or `-` is trimmed back: `a.-1f2e` is not a name (each dot-separated
 * part must begin and end with a letter or digit), so a user named `aaa….bbb` could never issue one.
 */
export function derivedName(base: string, suffix: string, max = 253): string {
  const kept = base.slice(0, Math.max(1, max - suffix.length - 1)).replace(/[.-]+$/, '');
  return `${kept}-${suffix}`;
}

/** A page read in SQL holds at most this many rows; more is what the CSV exports are for. */
export const maxPage = 1000;

/** The page a list asks of a table paged in SQL (request log, breaker history, audit trail, sessions): checked, then its bounds and order. */
export function pageOf(query: { _start: number; _end: number; _sort?: string; _order?: 'ASC' | 'DESC' }): {
  start: number;
  end: number;
  sort?: string;
  order?: 'ASC' | 'DESC';
} {
  if (query._end < query._start)
    throw badRequest('_end must not be less than _start', ['querystring/_end: must be >= _start']);
  if (query._end - query._start > maxPage)
    throw badRequest(`a page holds at most ${maxPage} rows; use the CSV export for more`, [
      `querystring/_end: at most ${maxPage} after _start`,
    ]);
  return {
    start: query._start,
    end: query._end,
    ...(query._sort === undefined ? {} : { sort: query._sort }),
    ...(query._order === undefined ? {} : { order: query._order }),
  };
}

/** Sends a page read in SQL: `Content-Range: <resource> <first>-<last>/<total>`. */
export function sendSqlPage<T>(reply: FastifyReply, resource: string, start: number, rows: T[], total: number): T[] {
  const last = rows.length === 0 ? start : start + rows.length - 1;
  reply.header('Content-Range', `${resource} ${start}-${last}/${total}`);
  return rows;
}
