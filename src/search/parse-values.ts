import { badRequest } from '../outcome';
import { referenceKeys } from './extract';
import type { Bound, Condition, IndexKind, Prefix, RangeMatch } from './plan';
import type { IndexedType } from './registry';
import {
  bucketKey,
  canonicalQualifier,
  dateRange,
  decimalsOf,
  roundingKey,
  subParam,
  type TimeRange,
  tokenCodeKey,
  tokenSystemCodeKey,
  tokenSystemPrefix,
  UCUM,
  ucumCanonical,
  unitCodeQualifier,
  unitSystemCodeQualifier,
} from './values';

/** The values of search parameters, parsed into plan conditions: dates, numbers, quantities, tokens, references, uris, positions. */

const PREFIXES: Prefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

/** Splits a parameter value on unescaped `sep` (`,` between values, `$` between composite parts). */
export function splitValues(value: string, sep = ','): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && i + 1 < value.length) {
      cur += value[i] + value[i + 1];
      i++;
    } else if (c === sep) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Splits on unescaped `|` then unescapes every part. */
export function splitBars(v: string): string[] {
  return splitValues(v, '|').map(unescape);
}

export const unescape = (v: string) => v.replace(/\\([,|$\\])/g, '$1');

export function parseCount(raw: string | undefined, opts: { defaultCount: number; maxCount: number }): number {
  if (raw === undefined) return opts.defaultCount;
  if (!/^\d+$/.test(raw)) throw badRequest(`_count must be a non-negative integer, got "${raw}"`);
  return Math.min(Number(raw), opts.maxCount);
}

export const b = (on: Bound['on'], op: Bound['op'], value: number): Bound => ({ on, op, value });

/** The bounds a stored range [low, high] must meet for `prefix` against the search range [sl, sh]. */
export function rangeMatch(prefix: Prefix, search: TimeRange, within: string | undefined, margin: number): RangeMatch {
  const { low: sl, high: sh } = search;
  const one = (...bounds: Bound[]): RangeMatch => [{ bounds }];
  switch (prefix) {
    case 'eq':
      return [{ bounds: [b('low', '>=', sl), b('high', '<=', sh)], within }];
    case 'ne':
      return [{ bounds: [b('low', '<', sl)] }, { bounds: [b('high', '>', sh)] }];
    case 'gt':
      return one(b('high', '>', sh));
    case 'lt':
      return one(b('low', '<', sl));
    case 'ge':
      return one(b('high', '>=', sl));
    case 'le':
      return one(b('low', '<=', sh));
    case 'sa':
      return one(b('low', '>', sh));
    case 'eb':
      return one(b('high', '<', sl));
    case 'ap':
      return one(b('high', '>=', sl - margin), b('low', '<=', sh + margin));
  }
}

export function splitPrefix(raw: string): [Prefix, string] {
  const p = raw.slice(0, 2) as Prefix;
  if (PREFIXES.includes(p) && /^[a-z]{2}[-+.\d]/.test(raw)) return [p, raw.slice(2)];
  return ['eq', raw];
}

export function parseDate(param: string, raw: string): RangeMatch {
  const [prefix, v] = splitPrefix(raw);
  const range = dateRange(v);
  if (!range) throw badRequest(`Search parameter ${param}: "${raw}" is not a date (expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.sss]][Z|±hh:mm]]]])`);
  // "approximately": 10% of the distance from now, and at least a day
  const margin = Math.max(0.1 * Math.abs(Date.now() - range.low), 86400000);
  return rangeMatch(prefix, range, bucketKey(range), margin);
}

export const NUMBER_RE = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

/** A number with the implicit range of its precision: 1.5 is [1.45, 1.55). */
export function numberRange(param: string, raw: string): { prefix: Prefix; range: TimeRange; value: number; decimals: number } {
  const [prefix, v] = splitPrefix(raw);
  if (!NUMBER_RE.test(v)) throw badRequest(`Search parameter ${param}: "${raw}" is not a number`);
  const value = Number(v);
  const decimals = decimalsOf(v);
  const half = 0.5 * 10 ** -decimals;
  // [low, high): the upper end is excluded, so `high` is the largest double below value + half
  return { prefix, value, decimals, range: { low: value - half, high: nextDown(value + half) } };
}

export function nextDown(x: number): number {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const bits = buf.getBigInt64(0);
  buf.setBigInt64(0, x > 0 ? bits - 1n : x < 0 ? bits + 1n : -1n);
  return buf.getFloat64(0);
}

export function parseNumber(param: string, raw: string): RangeMatch {
  const { prefix, value, decimals, range } = numberRange(param, raw);
  if (prefix === 'gt' || prefix === 'lt' || prefix === 'ge' || prefix === 'le' || prefix === 'sa' || prefix === 'eb') {
    // Against a point, a comparison uses the value as written.
    const op = { gt: '>', sa: '>', lt: '<', eb: '<', ge: '>=', le: '<=' }[prefix] as Bound['op'];
    return [{ bounds: [b('low', op, value)] }];
  }
  return rangeMatch(prefix, range, roundingKey(value, decimals), Math.abs(value) * 0.1);
}

/** `[prefix]value|system|code`: the derived parameter of the unit, and the range in its units. */
export function parseQuantity(param: string, raw: string): Condition {
  const parts = splitValues(raw, '|');
  if (parts.length !== 1 && parts.length !== 3) throw badRequest(`Search parameter ${param}: "${raw}" is not a quantity ([prefix]number|system|code)`);
  const [numberPart, system, code] = [parts[0], parts[1] ? unescape(parts[1]) : '', parts[2] ? unescape(parts[2]) : ''];
  if (!code) {
    if (system) throw badRequest(`Search parameter ${param}: a unit system needs a unit code`);
    return { kind: 'range', param, match: parseNumber(param, numberPart) };
  }
  if (system === UCUM) {
    const { prefix, value, range } = numberRange(param, numberPart);
    const lo = ucumCanonical(range.low, code);
    const hi = ucumCanonical(range.high, code);
    const point = ucumCanonical(value, code);
    if (!lo || !hi || !point) throw badRequest(`Search parameter ${param}: "${code}" is not a UCUM unit this server can compare`);
    const derived = subParam(param, canonicalQualifier(point.units));
    const canonicalRange = { low: Math.min(lo.value, hi.value), high: Math.max(lo.value, hi.value) };
    const ops = { gt: '>', sa: '>', lt: '<', eb: '<', ge: '>=', le: '<=' } as const;
    if (prefix in ops) return { kind: 'range', param: derived, match: [{ bounds: [b('low', ops[prefix as keyof typeof ops], point.value)] }] };
    return { kind: 'range', param: derived, match: rangeMatch(prefix, canonicalRange, undefined, Math.abs(point.value) * 0.1) };
  }
  const derived = subParam(param, system ? unitSystemCodeQualifier(system, code) : unitCodeQualifier(code));
  return { kind: 'range', param: derived, match: parseNumber(param, numberPart) };
}

/** The key of a token value, or the prefix of the keys of a system for `system|`. */
export function tokenValue(raw: string): { key?: string; prefix?: string } {
  const parts = splitValues(raw, '|');
  if (parts.length === 1) return { key: tokenCodeKey(unescape(parts[0])) };
  const [system, code] = [unescape(parts[0]), unescape(parts.slice(1).join('|'))];
  if (code === '') return system === '' ? {} : { prefix: tokenSystemPrefix(system) };
  return { key: tokenSystemCodeKey(system, code) };
}

export function tokenKeysOf(raw: string): string[] {
  const v = tokenValue(raw);
  if (v.prefix) throw badRequest(`"${raw}": a system alone is not supported here; give system|code`);
  return v.key ? [v.key] : [];
}

/** Token values as one condition: exact keys, and key prefixes for `system|`. */
export function tokenCondition(param: string, raws: string[], not = false): Condition {
  const vs = raws.map(tokenValue);
  const keys = vs.flatMap((v) => (v.key ? [v.key] : []));
  const prefixes = vs.flatMap((v) => (v.prefix ? [v.prefix] : []));
  const parts: Condition[] = [];
  if (keys.length || !prefixes.length) parts.push({ kind: 'key', param, keys, not });
  if (prefixes.length) parts.push({ kind: 'keyPrefix', param, prefixes, not });
  if (parts.length === 1) return parts[0];
  return not ? { kind: 'all', conditions: parts } : { kind: 'any', conditions: parts };
}

export function referenceKeyOf(param: string, raw: string, targetType: string | undefined, baseUrl?: string): string {
  const v = unescape(raw);
  if (targetType && !v.includes('/')) return `${targetType}/${v}`;
  const k = referenceKeys(v, baseUrl)[0];
  if (k === undefined) throw badRequest(`Search parameter ${param}: "${v}" is not a reference`);
  if (targetType && !k.startsWith(`${targetType}/`)) throw badRequest(`Search parameter ${param}:${targetType}: "${v}" is not a ${targetType} reference`);
  return k;
}

/** Every ancestor of a URI, itself included: what `:above` matches. */
export function uriAncestors(uri: string): string[] {
  const out = [uri];
  let u = uri;
  for (let i = u.lastIndexOf('/'); i > 0 && !u.slice(0, i).endsWith('/') && !u.slice(0, i).endsWith(':'); i = u.lastIndexOf('/')) {
    u = u.slice(0, i);
    out.push(u);
  }
  return out;
}

export const KM_PER_UNIT: Record<string, number> = { km: 1, m: 0.001, mi: 1.609344, '[mi_i]': 1.609344, '[mi_us]': 1.609347 };

/**
 * `near=latitude|longitude|distance|units` (distance 1 km when absent): positions within the
 * box that bounds that distance in latitude and longitude (as HAPI FHIR does).
 */
export function nearCondition(param: string, raw: string): Condition {
  const [latS, lonS, distS, unitS] = splitBars(raw);
  const lat = Number(latS);
  const lon = Number(lonS);
  const dist = distS ? Number(distS) : 1;
  const unit = unitS || 'km';
  if (!NUMBER_RE.test(latS ?? '') || !NUMBER_RE.test(lonS ?? '') || Math.abs(lat) > 90 || Math.abs(lon) > 180) throw badRequest(`${param} takes latitude|longitude|distance|units, got "${raw}"`);
  if (!(dist >= 0) || !(unit in KM_PER_UNIT)) throw badRequest(`${param}: the distance must be a non-negative number in km, m or mi (UCUM), got "${distS}|${unitS}"`);
  const km = dist * KM_PER_UNIT[unit];
  const dLat = km / 111.32;
  const cos = Math.cos((lat * Math.PI) / 180);
  const dLon = cos < 1e-6 ? 180 : km / (111.32 * cos);
  const between = (p: string, lo: number, hi: number): Condition => ({ kind: 'range', param: subParam(param, p), match: [{ bounds: [b('low', '>=', lo), b('low', '<=', hi)] }] });
  return { kind: 'all', conditions: [between('lat', lat - dLat, lat + dLat), between('lon', lon - dLon, lon + dLon)] };
}

export const indexKindOf = (type: IndexedType): IndexKind =>
  type === 'string' ? 'string' : type === 'date' || type === 'number' || type === 'quantity' ? 'range' : 'key';

export const anyOf = (conditions: Condition[]): Condition => (conditions.length === 1 ? conditions[0] : { kind: 'any', conditions });

