import { Type } from 'typebox';
import type { Ref } from '@ccproxy/core';
import { badRequest } from '../errors.ts';
import { splitId } from '../list.ts';
import { isoTime } from '../iso-time.ts';

/**
 * Query parameters the observation routes (request log, breaker history, usage breakdown, their
 * CSV exports) share, and their one translation into the filters core/src/db reads with.
 */

export const refId = Type.String({
  maxLength: 320,
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
});

export const timeRange = { from: Type.Optional(isoTime), to: Type.Optional(isoTime) };
export const ownerFilters = { userId: Type.Optional(refId), accessKeyId: Type.Optional(refId) };

const defaultSpanMs = 7 * 86_400_000;

/** from/to as ms; to defaults to now, from to a week before `to`; from after to is a 400 naming from. */
export function rangeOf(
  query: { from?: string; to?: string },
  defaultSpan = defaultSpanMs,
): { from: number; to: number } {
  const to = query.to === undefined ? Date.now() : Date.parse(query.to);
  const from = query.from === undefined ? to - defaultSpan : Date.parse(query.from);
  if (Number.isNaN(from) || Number.isNaN(to))
    throw badRequest('from/to must be ISO 8601 times', [
      `querystring/${Number.isNaN(from) ? 'from' : 'to'}: not a valid time`,
    ]);
  if (from > to) throw badRequest('from must not be after to', ['querystring/from: after to']);
  return { from, to };
}

const refOf = (id: string | undefined): Ref | undefined => (id === undefined ? undefined : splitId(id));

/** The user and key filters as refs (absent ones left out, for exactOptionalPropertyTypes). */
export function ownersOf(query: { userId?: string; accessKeyId?: string }): { user?: Ref; accessKey?: Ref } {
  const user = refOf(query.userId);
  const accessKey = refOf(query.accessKeyId);
  return { ...(user === undefined ? {} : { user }), ...(accessKey === undefined ? {} : { accessKey }) };
}

/** Micro-USD → USD as a number with six decimals (CSV and UI). */
export const usd = (micro: number | null) => (micro === null ? null : Math.round(micro) / 1_000_000);

/** A CSV download, documented as text/csv (not JSON). */
export const csvAnswer = (description: string) => ({
  description,
  content: { 'text/csv': { schema: Type.String() } },
});
