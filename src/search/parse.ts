import { r4ResourceTypes } from '../r4';
import { badRequest, FhirError, notSupported } from '../outcome';
import type { Bound, Condition, Include, IndexKind, Prefix, RangeMatch, SearchPlan, SortKey } from './plan';
import type { IndexedType, SearchParamDef, SearchParamRegistry } from './registry';
import { referenceKeys } from './extract';
import {
  bucketKey,
  canonicalQualifier,
  dateRange,
  decimalsOf,
  normalizeString,
  roundingKey,
  SEP,
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

/** Parameters that shape the result rather than select it; read here or by the interaction layer. */
export const RESULT_PARAMS = new Set(['_count', '_cursor', '_format', '_pretty', '_total', '_sort', '_include', '_revinclude', '_summary', '_elements', '_contained', '_containedType']);
const MAX_VALUES = 100;
const MAX_PARAMS = 60;
const MAX_CHAIN_DEPTH = 4;
const PREFIXES: Prefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

export type Summary = 'true' | 'text' | 'data' | 'count' | 'false';

export interface ParsedSearch {
  plan: SearchPlan;
  includes: Include[];
  summary?: Summary;
  elements?: string[];
  /** with `_contained`: return the contained resources that match (default) or their containers */
  containedType: 'contained' | 'container';
  /** parameters ignored under lenient handling */
  ignored: string[];
}

export interface ParseOptions {
  strict: boolean;
  defaultCount: number;
  maxCount: number;
  baseUrl?: string;
  /** the codes of a value set; throws a FhirError when it cannot be expanded completely */
  expandValueSet?: (url: string) => { system: string; code: string }[];
  /** the codes a code subsumes (below) or is subsumed by (above), itself included; throws a FhirError when the hierarchy is not known */
  subsumption?: (system: string, code: string, direction: 'above' | 'below') => string[];
}

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
function splitBars(v: string): string[] {
  return splitValues(v, '|').map(unescape);
}

const unescape = (v: string) => v.replace(/\\([,|$\\])/g, '$1');

export function parseCount(raw: string | undefined, opts: { defaultCount: number; maxCount: number }): number {
  if (raw === undefined) return opts.defaultCount;
  if (!/^\d+$/.test(raw)) throw badRequest(`_count must be a non-negative integer, got "${raw}"`);
  return Math.min(Number(raw), opts.maxCount);
}

const b = (on: Bound['on'], op: Bound['op'], value: number): Bound => ({ on, op, value });

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

function splitPrefix(raw: string): [Prefix, string] {
  const p = raw.slice(0, 2) as Prefix;
  if (PREFIXES.includes(p) && /^[a-z]{2}[-+.\d]/.test(raw)) return [p, raw.slice(2)];
  return ['eq', raw];
}

function parseDate(param: string, raw: string): RangeMatch {
  const [prefix, v] = splitPrefix(raw);
  const range = dateRange(v);
  if (!range) throw badRequest(`Search parameter ${param}: "${raw}" is not a date (expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.sss]][Z|±hh:mm]]]])`);
  // "approximately": 10% of the distance from now, and at least a day
  const margin = Math.max(0.1 * Math.abs(Date.now() - range.low), 86400000);
  return rangeMatch(prefix, range, bucketKey(range), margin);
}

const NUMBER_RE = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

/** A number with the implicit range of its precision: 1.5 is [1.45, 1.55). */
function numberRange(param: string, raw: string): { prefix: Prefix; range: TimeRange; value: number; decimals: number } {
  const [prefix, v] = splitPrefix(raw);
  if (!NUMBER_RE.test(v)) throw badRequest(`Search parameter ${param}: "${raw}" is not a number`);
  const value = Number(v);
  const decimals = decimalsOf(v);
  const half = 0.5 * 10 ** -decimals;
  // [low, high): the upper end is excluded, so `high` is the largest double below value + half
  return { prefix, value, decimals, range: { low: value - half, high: nextDown(value + half) } };
}

function nextDown(x: number): number {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const bits = buf.getBigInt64(0);
  buf.setBigInt64(0, x > 0 ? bits - 1n : x < 0 ? bits + 1n : -1n);
  return buf.getFloat64(0);
}

function parseNumber(param: string, raw: string): RangeMatch {
  const { prefix, value, decimals, range } = numberRange(param, raw);
  if (prefix === 'gt' || prefix === 'lt' || prefix === 'ge' || prefix === 'le' || prefix === 'sa' || prefix === 'eb') {
    // Against a point, a comparison uses the value as written.
    const op = { gt: '>', sa: '>', lt: '<', eb: '<', ge: '>=', le: '<=' }[prefix] as Bound['op'];
    return [{ bounds: [b('low', op, value)] }];
  }
  return rangeMatch(prefix, range, roundingKey(value, decimals), Math.abs(value) * 0.1);
}

/** `[prefix]value|system|code`: the derived parameter of the unit, and the range in its units. */
function parseQuantity(param: string, raw: string): Condition {
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
function tokenValue(raw: string): { key?: string; prefix?: string } {
  const parts = splitValues(raw, '|');
  if (parts.length === 1) return { key: tokenCodeKey(unescape(parts[0])) };
  const [system, code] = [unescape(parts[0]), unescape(parts.slice(1).join('|'))];
  if (code === '') return system === '' ? {} : { prefix: tokenSystemPrefix(system) };
  return { key: tokenSystemCodeKey(system, code) };
}

function tokenKeysOf(raw: string): string[] {
  const v = tokenValue(raw);
  if (v.prefix) throw badRequest(`"${raw}": a system alone is not supported here; give system|code`);
  return v.key ? [v.key] : [];
}

/** Token values as one condition: exact keys, and key prefixes for `system|`. */
function tokenCondition(param: string, raws: string[], not = false): Condition {
  const vs = raws.map(tokenValue);
  const keys = vs.flatMap((v) => (v.key ? [v.key] : []));
  const prefixes = vs.flatMap((v) => (v.prefix ? [v.prefix] : []));
  const parts: Condition[] = [];
  if (keys.length || !prefixes.length) parts.push({ kind: 'key', param, keys, not });
  if (prefixes.length) parts.push({ kind: 'keyPrefix', param, prefixes, not });
  if (parts.length === 1) return parts[0];
  return not ? { kind: 'all', conditions: parts } : { kind: 'any', conditions: parts };
}

function referenceKeyOf(param: string, raw: string, targetType: string | undefined, baseUrl?: string): string {
  const v = unescape(raw);
  if (targetType && !v.includes('/')) return `${targetType}/${v}`;
  const k = referenceKeys(v, baseUrl)[0];
  if (k === undefined) throw badRequest(`Search parameter ${param}: "${v}" is not a reference`);
  if (targetType && !k.startsWith(`${targetType}/`)) throw badRequest(`Search parameter ${param}:${targetType}: "${v}" is not a ${targetType} reference`);
  return k;
}

/** Every ancestor of a URI, itself included: what `:above` matches. */
function uriAncestors(uri: string): string[] {
  const out = [uri];
  let u = uri;
  for (let i = u.lastIndexOf('/'); i > 0 && !u.slice(0, i).endsWith('/') && !u.slice(0, i).endsWith(':'); i = u.lastIndexOf('/')) {
    u = u.slice(0, i);
    out.push(u);
  }
  return out;
}

const KM_PER_UNIT: Record<string, number> = { km: 1, m: 0.001, mi: 1.609344, '[mi_i]': 1.609344, '[mi_us]': 1.609347 };

/**
 * `near=latitude|longitude|distance|units` (distance 1 km when absent): positions within the
 * box that bounds that distance in latitude and longitude (as HAPI FHIR does).
 */
function nearCondition(param: string, raw: string): Condition {
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

const anyOf = (conditions: Condition[]): Condition => (conditions.length === 1 ? conditions[0] : { kind: 'any', conditions });

/** Parses queries of one resource type; `strict` refuses what lenient handling ignores. */
export class SearchParser {
  readonly ignored: string[] = [];

  constructor(
    private readonly registry: SearchParamRegistry,
    private readonly opts: ParseOptions,
  ) {}

  /** A parameter that queries may use: known, and not waiting for a $reindex. */
  private def(type: string, code: string): SearchParamDef | undefined {
    const d = this.registry.get(type, code);
    return d?.searchable ? d : undefined;
  }

  private unknown(name: string, why: string): null {
    if (this.opts.strict) throw new FhirError(400, 'not-supported', `${why} (Prefer: handling=strict)`);
    this.ignored.push(name);
    return null;
  }

  /** The condition of one `name=value` pair, or null when lenient handling ignores it. */
  condition(type: string, name: string, rawValue: string, depth = 0): Condition | null {
    if (depth > MAX_CHAIN_DEPTH) throw badRequest(`Chains and _has may nest at most ${MAX_CHAIN_DEPTH} levels`);
    if (name.startsWith('_has:') || name === '_has') return this.has(type, name, rawValue, depth);
    const dot = name.indexOf('.');
    if (dot > 0) return this.chain(type, name.slice(0, dot), name.slice(dot + 1), rawValue, depth);

    const [code, modifier, ...rest] = name.split(':');
    if (rest.length > 0) throw badRequest(`Search parameter "${name}" has more than one modifier`);
    const values = splitValues(rawValue);
    if (values.length > MAX_VALUES) throw badRequest(`Search parameter ${name} has ${values.length} values; at most ${MAX_VALUES}`);
    if (values.some((v) => v === '')) throw badRequest(`Search parameter ${name} has an empty value in "${rawValue}"`);

    if (code === '_id') {
      if (modifier && modifier !== 'not' && modifier !== 'missing') throw badRequest(`Modifier :${modifier} is not supported on _id`);
      if (modifier === 'missing') return values[0] === 'true' ? { kind: 'id', ids: [] } : null;
      return { kind: 'id', ids: values.map(unescape), not: modifier === 'not' };
    }
    if (code === '_lastUpdated') {
      if (modifier) throw badRequest(`Modifier :${modifier} is not supported on _lastUpdated`);
      return { kind: 'lastUpdated', match: values.flatMap((v) => parseDate(code, v)) };
    }
    const def = this.def(type, code);
    if (!def) return this.unknown(name, `Unknown search parameter "${code}" for ${type}`);
    if (def.type === 'special' && modifier) throw badRequest(`Modifier :${modifier} is not supported on ${code}`);
    if (modifier === 'missing') {
      if (values.length !== 1 || !['true', 'false'].includes(values[0])) throw badRequest(`${name} takes true or false`);
      return { kind: 'missing', param: code, index: def.type === 'composite' ? 'range' : indexKindOf(def.type), missing: values[0] === 'true' };
    }
    return this.valueCondition(def, modifier, values);
  }

  private valueCondition(def: SearchParamDef, modifier: string | undefined, values: string[]): Condition {
    const code = def.code;
    const refuse = () => badRequest(`Modifier :${modifier} is not supported on ${def.type} parameter ${code}`);
    switch (def.type) {
      case 'token': {
        if (!modifier || modifier === 'not') return tokenCondition(code, values, modifier === 'not');
        if (modifier === 'text') return { kind: 'string', param: subParam(code, 'text'), mode: 'prefix', values: values.map((v) => normalizeString(unescape(v))) };
        if (modifier === 'of-type') {
          const keys = values.map((v) => {
            const parts = splitBars(v);
            if (parts.length !== 3 || !parts[1] || !parts[2]) throw badRequest(`${code}:of-type takes type-system|type-code|value, got "${v}"`);
            return `o${SEP}${parts[0]}${SEP}${parts[1]}${SEP}${parts[2]}`;
          });
          return { kind: 'key', param: code, keys };
        }
        if (modifier === 'above' || modifier === 'below') {
          if (!this.opts.subsumption) throw notSupported(400, `:${modifier} needs code system hierarchies, which this server does not offer`);
          const keys = values.flatMap((v) => {
            const parts = splitBars(v);
            if (parts.length !== 2 || !parts[0] || !parts[1]) throw badRequest(`${code}:${modifier} takes system|code, got "${v}"`);
            return this.opts.subsumption!(parts[0], parts[1], modifier).map((c) => tokenSystemCodeKey(parts[0], c));
          });
          return { kind: 'key', param: code, keys };
        }
        if (modifier === 'in' || modifier === 'not-in') {
          if (!this.opts.expandValueSet) throw notSupported(400, `:${modifier} needs value set expansion, which this server does not offer`);
          // A `code` element carries no system: its code alone is in the value set when the code is.
          const keys = values.flatMap((v) => this.opts.expandValueSet!(unescape(v)).flatMap((c) => [tokenSystemCodeKey(c.system, c.code), tokenSystemCodeKey('', c.code)]));
          return { kind: 'key', param: code, keys, not: modifier === 'not-in' };
        }
        throw refuse();
      }
      case 'string': {
        if (modifier && modifier !== 'exact' && modifier !== 'contains') throw refuse();
        const mode = (modifier ?? 'prefix') as 'prefix' | 'exact' | 'contains';
        return { kind: 'string', param: code, mode, values: values.map(unescape).map((v) => (mode === 'exact' ? v : normalizeString(v))) };
      }
      case 'reference': {
        if (modifier === 'identifier') return tokenCondition(subParam(code, 'identifier'), values);
        if (modifier && !def.targets.includes(modifier)) throw badRequest(`Modifier :${modifier} is not a target type of reference parameter ${code} (targets: ${def.targets.join(', ')})`);
        // a bare id (`subject=123`) names a resource of any of the parameter's target types
        const targets = def.targets.length ? def.targets : [...r4ResourceTypes()];
        const keys = values.flatMap((v) => (!modifier && !unescape(v).includes('/') ? targets.map((t) => referenceKeyOf(code, v, t, this.opts.baseUrl)) : [referenceKeyOf(code, v, modifier, this.opts.baseUrl)]));
        return { kind: 'key', param: code, keys };
      }
      case 'uri': {
        if (!modifier) return { kind: 'key', param: code, keys: values.map(unescape) };
        if (modifier === 'below') return { kind: 'keyPrefix', param: code, prefixes: values.map(unescape) };
        if (modifier === 'above') return { kind: 'key', param: code, keys: values.map(unescape).flatMap(uriAncestors) };
        throw refuse();
      }
      case 'date':
        if (modifier) throw refuse();
        return { kind: 'range', param: code, match: values.flatMap((v) => parseDate(code, v)) };
      case 'number':
        if (modifier) throw refuse();
        return { kind: 'range', param: code, match: values.flatMap((v) => parseNumber(code, v)) };
      case 'quantity':
        if (modifier) throw refuse();
        return anyOf(values.map((v) => parseQuantity(code, v)));
      case 'composite':
        if (modifier) throw refuse();
        return anyOf(values.map((v) => this.compositeValue(def, v)));
      case 'special':
        if (modifier) throw refuse();
        return anyOf(values.map((v) => nearCondition(code, v)));
    }
  }

  private compositeValue(def: SearchParamDef, raw: string): Condition {
    const comps = def.components!;
    const parts = splitValues(raw, '$');
    if (parts.length !== comps.length) throw badRequest(`Search parameter ${def.code} takes ${comps.length} parts separated by $, got "${raw}"`);
    let qualifiers = [''];
    comps.slice(0, -1).forEach((comp, i) => {
      const keys = comp.type === 'token' ? tokenKeysOf(parts[i]) : comp.type === 'reference' ? [referenceKeyOf(def.code, parts[i], undefined, this.opts.baseUrl)] : [unescape(parts[i])];
      qualifiers = qualifiers.flatMap((q) => keys.map((k) => (q ? `${q}${SEP}${SEP}${k}` : k)));
    });
    const last = comps[comps.length - 1];
    const lastRaw = parts[parts.length - 1];
    return anyOf(
      qualifiers.map((q) => {
        const derived: SearchParamDef = { ...def, code: subParam(def.code, q), type: last.type, components: undefined };
        return this.valueCondition(derived, undefined, [lastRaw]);
      }),
    );
  }

  /** `subject:Patient.name=x`: the reference points to a resource that meets the rest of the name. */
  private chain(type: string, head: string, rest: string, rawValue: string, depth: number): Condition | null {
    const [code, targetType] = head.split(':');
    const def = this.def(type, code);
    if (!def) return this.unknown(`${head}.${rest}`, `Unknown search parameter "${code}" for ${type}`);
    if (def.type !== 'reference') throw badRequest(`${code} is a ${def.type} parameter: only reference parameters can be chained`);
    if (targetType && !def.targets.includes(targetType)) throw badRequest(`${targetType} is not a target type of ${code} (targets: ${def.targets.join(', ')})`);
    const candidates = targetType ? [targetType] : def.targets;
    const restCode = rest.split(/[.:]/)[0];
    const types = candidates.filter((t) => restCode === '_id' || restCode === '_lastUpdated' || rest.startsWith('_has:') || this.def(t, restCode));
    if (types.length === 0) return this.unknown(`${head}.${rest}`, `None of the targets of ${code} (${candidates.join(', ')}) has a search parameter "${restCode}"`);
    if (types.length > 1 && !targetType) {
      // one chain per target type, or-ed
      const conditions = types.map((t) => this.condition(t, rest, rawValue, depth + 1)).filter((c): c is Condition => c !== null);
      return anyOf(conditions.map((c, i) => ({ kind: 'chain', param: code, targetTypes: [types[i]], conditions: [c] })));
    }
    const inner = this.condition(types[0], rest, rawValue, depth + 1);
    return inner && { kind: 'chain', param: code, targetTypes: types, conditions: [inner] };
  }

  /** `_has:Observation:patient:code=x`: an Observation that meets `code=x` points here through `patient`. */
  private has(type: string, name: string, rawValue: string, depth: number): Condition | null {
    const [, sourceType, param, ...rest] = name.split(':');
    if (!sourceType || !param || rest.length === 0) throw badRequest(`_has takes _has:[type]:[reference parameter]:[parameter], got "${name}"`);
    if (!this.def(sourceType, param) && !this.opts.strict) {
      /* fall through to the checks below for a precise message */
    }
    const def = this.def(sourceType, param);
    if (!def) throw badRequest(`_has: ${sourceType} has no search parameter "${param}"`);
    if (def.type !== 'reference') throw badRequest(`_has: ${sourceType}.${param} is not a reference parameter`);
    if (def.targets.length > 0 && !def.targets.includes(type)) throw badRequest(`_has: ${sourceType}.${param} does not point to ${type}`);
    const inner = this.condition(sourceType, rest.join(':'), rawValue, depth + 1);
    return inner && { kind: 'has', sourceType, param, conditions: [inner] };
  }

  sortKeys(type: string, raw: string): SortKey[] {
    return raw.split(',').map((part) => {
      const descending = part.startsWith('-');
      const code = descending ? part.slice(1) : part;
      if (code === '_id') return { param: code, index: 'id', descending };
      if (code === '_lastUpdated') return { param: code, index: 'lastUpdated', descending };
      const def = this.def(type, code);
      if (!def) throw badRequest(`_sort: unknown search parameter "${code}" for ${type}`);
      if (def.type === 'composite' || def.type === 'special') throw badRequest(`_sort: ${def.type} parameter ${code} cannot be sorted on`);
      return { param: code, index: indexKindOf(def.type), descending };
    });
  }

  include(type: string, name: string, raw: string): Include[] {
    const [kind, modifier] = name.split(':');
    const reverse = kind === '_revinclude';
    if (modifier && modifier !== 'iterate' && modifier !== 'recurse') throw badRequest(`${kind}:${modifier} is not supported (only :iterate)`);
    const iterate = !!modifier;
    if (raw === '*') return [{ reverse, sourceType: reverse ? '*' : type, param: '*', iterate }];
    const [sourceType, param, targetType, ...more] = raw.split(':');
    if (!sourceType || !param || more.length > 0) throw badRequest(`${kind} takes [type]:[parameter](:[target type]), got "${raw}"`);
    if (!reverse && !iterate && sourceType !== type) throw badRequest(`_include=${raw}: the source type must be ${type} (or use _include:iterate)`);
    if (param !== '*') {
      const def = this.def(sourceType, param);
      if (!def || def.type !== 'reference') throw badRequest(`${kind}=${raw}: ${sourceType} has no reference parameter "${param}"`);
      if (targetType && !def.targets.includes(targetType)) throw badRequest(`${kind}=${raw}: ${targetType} is not a target of ${sourceType}.${param}`);
    }
    return [{ reverse, sourceType, param, targetType, iterate }];
  }
}

/** Parses a type-level query into a search plan. */
export function parseSearch(registry: SearchParamRegistry, type: string, params: [string, string][], opts: ParseOptions): ParsedSearch {
  if (params.length > MAX_PARAMS) throw badRequest(`Too many search parameters (${params.length}); at most ${MAX_PARAMS}`);
  const parser = new SearchParser(registry, opts);
  const conditions: Condition[] = [];
  const includes: Include[] = [];
  let count = opts.defaultCount;
  let total: SearchPlan['total'] | undefined;
  let cursor: SearchPlan['cursor'];
  let sort: SortKey[] = [];
  let summary: Summary | undefined;
  let elements: string[] | undefined;
  let contained: SearchPlan['contained'] = 'false';
  let containedType: ParsedSearch['containedType'] = 'contained';

  for (const [name, rawValue] of params) {
    const base = name.split(':')[0];
    if (RESULT_PARAMS.has(base)) {
      switch (base) {
        case '_count':
          count = parseCount(rawValue, opts);
          break;
        case '_total':
          if (!['none', 'estimate', 'accurate'].includes(rawValue)) throw badRequest(`_total must be none, estimate or accurate, got "${rawValue}"`);
          total = rawValue as SearchPlan['total'];
          break;
        case '_cursor': {
          const m = /^(next|prev):(.+)$/.exec(rawValue);
          if (!m) throw badRequest('_cursor is not a paging position this server issued');
          cursor = { direction: m[1] as 'next' | 'prev', position: m[2] };
          break;
        }
        case '_sort':
          sort = parser.sortKeys(type, rawValue);
          break;
        case '_include':
        case '_revinclude':
          includes.push(...parser.include(type, name, rawValue));
          break;
        case '_summary':
          if (!['true', 'text', 'data', 'count', 'false'].includes(rawValue)) throw badRequest(`_summary must be true, text, data, count or false, got "${rawValue}"`);
          summary = rawValue as Summary;
          break;
        case '_elements':
          elements = rawValue
            .split(',')
            .map((e) => e.trim())
            .filter(Boolean);
          break;
        case '_contained':
          if (rawValue !== 'true' && rawValue !== 'false' && rawValue !== 'both') throw badRequest(`_contained must be true, false or both, got "${rawValue}"`);
          contained = rawValue;
          break;
        case '_containedType':
          if (rawValue !== 'container' && rawValue !== 'contained') throw badRequest(`_containedType must be container or contained, got "${rawValue}"`);
          containedType = rawValue;
          break;
      }
      continue;
    }
    if (rawValue === '' && !name.includes(':missing')) continue; // an empty value is no criterion (spec: ignored)
    const c = parser.condition(type, name, rawValue);
    if (c) conditions.push(c);
  }
  if (summary === 'count') count = 0;
  // a count is made when asked for: _total, or a page of nothing (_count=0, _summary=count) which asks for nothing else
  total ??= count === 0 ? 'accurate' : 'none';
  return { plan: { scopes: [{ type, conditions }], sort, count, cursor, total, contained }, includes, summary, elements, containedType, ignored: parser.ignored };
}
