import { badRequest, FhirError, notSupported } from '../outcome';
import type { Bound, Condition, Prefix, RangeMatch, SearchPlan } from './plan';
import type { SearchParamRegistry } from './registry';
import { referenceKeys } from './extract';
import { bucketKey, dateRange, type TimeRange, normalizeString, tokenCodeKey, tokenSystemCodeKey, tokenSystemKey } from './values';

/** Parameters of the result, not of the match: read by the interaction layer. */
export const RESULT_PARAMS = new Set(['_count', '_cursor', '_format', '_pretty', '_total']);
/** Parameters of the spec this server does not handle yet: unknown to it, so reported or refused. */
const MAX_VALUES = 100;
const MAX_PARAMS = 60;
const PREFIXES: Prefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

export interface ParsedSearch {
  plan: SearchPlan;
  /** parameters ignored under lenient handling */
  ignored: string[];
}

export interface ParseOptions {
  strict: boolean;
  defaultCount: number;
  maxCount: number;
  baseUrl?: string;
}

/** Splits a parameter value on unescaped commas and removes the escapes of `\,` `\|` `\$` `\\`. */
export function splitValues(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && i + 1 < value.length) {
      cur += value[i] + value[i + 1];
      i++;
    } else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Splits on the first unescaped `|` then unescapes both sides. */
function splitToken(v: string): [string | undefined, string] {
  for (let i = 0; i < v.length; i++) {
    if (v[i] === '\\') i++;
    else if (v[i] === '|') return [unescape(v.slice(0, i)), unescape(v.slice(i + 1))];
  }
  return [undefined, unescape(v)];
}

const unescape = (v: string) => v.replace(/\\([,|$\\])/g, '$1');

export function parseCount(raw: string | undefined, opts: { defaultCount: number; maxCount: number }): number {
  if (raw === undefined) return opts.defaultCount;
  if (!/^\d+$/.test(raw)) throw badRequest(`_count must be a non-negative integer, got "${raw}"`);
  return Math.min(Number(raw), opts.maxCount);
}

/** The bounds a target range [low, high] must meet for `prefix` against the search range. */
export function rangeMatch(prefix: Prefix, search: TimeRange, now = Date.now()): RangeMatch {
  const { low: sl, high: sh } = search;
  const b = (on: Bound['on'], op: Bound['op'], value: number): Bound => ({ on, op, value });
  const one = (...bounds: Bound[]): RangeMatch => [{ bounds }];
  switch (prefix) {
    case 'eq':
      return [{ bounds: [b('low', '>=', sl), b('high', '<=', sh)], within: bucketKey(search) }];
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
    case 'ap': {
      // "approximately": the search range widened by 10% of its distance from now, and at least a day
      const margin = Math.max(0.1 * Math.abs(now - sl), 86400000);
      return one(b('high', '>=', sl - margin), b('low', '<=', sh + margin));
    }
  }
}

function parseDate(param: string, raw: string): RangeMatch {
  let prefix: Prefix = 'eq';
  let v = raw;
  const p = raw.slice(0, 2) as Prefix;
  if (PREFIXES.includes(p) && /^[a-z]{2}\d/.test(raw)) {
    prefix = p;
    v = raw.slice(2);
  }
  const range = dateRange(v);
  if (!range) throw badRequest(`Search parameter ${param}: "${raw}" is not a date (expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.sss]][Z|±hh:mm]]]])`);
  return rangeMatch(prefix, range);
}

function tokenKeysOf(raw: string): string[] {
  const [system, code] = splitToken(raw);
  if (system === undefined) return [tokenCodeKey(code)];
  if (code === '') return system === '' ? [] : [tokenSystemKey(system)];
  return [tokenSystemCodeKey(system, code)];
}

/** Parses a type-level query into a search plan. */
export function parseSearch(registry: SearchParamRegistry, type: string, params: [string, string][], opts: ParseOptions): ParsedSearch {
  const conditions: Condition[] = [];
  const ignored: string[] = [];
  let count = opts.defaultCount;
  let total: SearchPlan['total'] = 'accurate';
  let cursor: SearchPlan['cursor'];
  if (params.length > MAX_PARAMS) throw badRequest(`Too many search parameters (${params.length}); at most ${MAX_PARAMS}`);

  const unknown = (name: string, why: string) => {
    if (opts.strict) throw new FhirError(400, 'not-supported', `${why} (Prefer: handling=strict)`);
    ignored.push(name);
  };

  for (const [name, rawValue] of params) {
    if (RESULT_PARAMS.has(name)) {
      if (name === '_count') count = parseCount(rawValue, opts);
      else if (name === '_total') {
        if (!['none', 'estimate', 'accurate'].includes(rawValue)) throw badRequest(`_total must be none, estimate or accurate, got "${rawValue}"`);
        total = rawValue === 'none' ? 'none' : 'accurate';
      } else if (name === '_cursor') {
        const m = /^(next|prev):(.+)$/.exec(rawValue);
        if (!m) throw badRequest('_cursor is not a paging position this server issued');
        cursor = { direction: m[1] as 'next' | 'prev', position: m[2] };
      }
      continue;
    }
    const [code, modifier, ...rest] = name.split(':');
    if (rest.length > 0) throw badRequest(`Search parameter "${name}" has more than one modifier`);
    const values = splitValues(rawValue);
    if (values.length > MAX_VALUES) throw badRequest(`Search parameter ${name} has ${values.length} values; at most ${MAX_VALUES}`);
    if (values.some((v) => v === '')) {
      if (modifier !== 'missing') {
        // An empty value is no criterion at all (spec: ignored), but a dangling comma is a mistake.
        if (rawValue === '') continue;
        throw badRequest(`Search parameter ${name} has an empty value in "${rawValue}"`);
      }
    }

    if (code === '_has' || name.startsWith('_has:')) throw notSupported(400, `Reverse chaining (_has) is not supported by this server yet`);
    if (code.includes('.')) {
      const head = code.split('.')[0];
      if (registry.get(type, head)?.type === 'reference') throw notSupported(400, `Chained search (${code}) is not supported by this server yet`);
      unknown(name, `Unknown search parameter "${code}" for ${type}`);
      continue;
    }

    if (code === '_id') {
      if (modifier) throw badRequest(`Modifier :${modifier} is not supported on _id`);
      conditions.push({ kind: 'id', ids: values.map(unescape) });
      continue;
    }
    if (code === '_lastUpdated') {
      if (modifier) throw badRequest(`Modifier :${modifier} is not supported on _lastUpdated`);
      const match = values.flatMap((v) => parseDate(code, v));
      conditions.push({ kind: 'lastUpdated', match });
      continue;
    }

    const def = registry.get(type, code);
    if (!def) {
      unknown(name, `Unknown search parameter "${code}" for ${type}`);
      continue;
    }

    if (modifier === 'missing') {
      if (values.length !== 1 || !['true', 'false'].includes(values[0])) throw badRequest(`${name} takes true or false`);
      conditions.push({ kind: 'missing', param: code, index: def.type, missing: values[0] === 'true' });
      continue;
    }

    switch (def.type) {
      case 'token':
        if (modifier) throw badRequest(`Modifier :${modifier} is not supported on token parameter ${code}`);
        conditions.push({ kind: 'token', param: code, keys: values.flatMap(tokenKeysOf) });
        break;
      case 'string': {
        if (modifier && modifier !== 'exact' && modifier !== 'contains') throw badRequest(`Modifier :${modifier} is not supported on string parameter ${code}`);
        const mode = (modifier ?? 'prefix') as 'prefix' | 'exact' | 'contains';
        const vs = values.map(unescape).map((v) => (mode === 'exact' ? v : normalizeString(v)));
        conditions.push({ kind: 'string', param: code, mode, values: vs });
        break;
      }
      case 'reference': {
        let targetType: string | undefined;
        if (modifier) {
          if (!def.targets.includes(modifier)) throw badRequest(`Modifier :${modifier} is not a target type of reference parameter ${code} (targets: ${def.targets.join(', ')})`);
          targetType = modifier;
        }
        const keys = values.map(unescape).map((v) => {
          if (targetType && !v.includes('/')) return `${targetType}/${v}`;
          const k = referenceKeys(v, opts.baseUrl)[0];
          if (k === undefined) throw badRequest(`Search parameter ${code}: "${v}" is not a reference`);
          return k;
        });
        conditions.push({ kind: 'reference', param: code, keys });
        break;
      }
      case 'date':
        if (modifier) throw badRequest(`Modifier :${modifier} is not supported on date parameter ${code}`);
        conditions.push({ kind: 'date', param: code, match: values.flatMap((v) => parseDate(code, v)) });
        break;
    }
  }
  return { plan: { type, conditions, count, cursor, total }, ignored };
}
