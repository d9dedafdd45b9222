import { Type } from 'typebox';

/**
 * The one `from`/`to` time of every route that takes one (usage, usage summary, audit, request
 * log, breaker history, usage breakdown and their CSV exports): an ISO 8601 date, optionally with
 * a time (hours 00-23, minutes and seconds 00-59) and an offset.
 */
const pattern =
  '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])(T([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d(\\.\\d{1,9})?)?(Z|[+-]([01]\\d|2[0-3]):?[0-5]\\d)?)?$';

/**
 * The instants every database the admin reads can take as a parameter: PGlite (local mode) sends
 * a Date as its `toISOString()`, and Postgres has no year 0000 ("date/time field value out of
 * range", a 500) and no six-digit `+010000` years. So the instant, in UTC, lies in 0001-9999.
 */
const earliest = Date.parse('0001-01-01T00:00:00.000Z');
const latest = Date.parse('9999-12-31T23:59:59.999Z');

const leap = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
const shortMonths = [4, 6, 9, 11];
function daysIn(year: number, month: number): number {
  if (month === 2) return leap(year) ? 29 : 28;
  return shortMonths.includes(month) ? 30 : 31;
}

/**
 * A day that exists (JavaScript reads 2023-02-30 as March 2, Postgres refuses it) and an instant
 * in the range above. The pattern has already checked the shape.
 */
export function isHoldableTime(value: string): boolean {
  const [year = 0, month = 0, day = 0] = value.slice(0, 10).split('-').map(Number);
  if (day > daysIn(year, month)) return false;
  const at = Date.parse(value);
  return !Number.isNaN(at) && at >= earliest && at <= latest;
}

/** The problem a refused time gets, after its query path (`querystring/from: …`). */
export const holdableTimeMessage = 'must be a real date and time from 0001-01-01T00:00Z to 9999-12-31T23:59:59.999Z';

export const isoTime = Type.Refine(Type.String({ maxLength: 40, pattern }), isHoldableTime, () => holdableTimeMessage);
