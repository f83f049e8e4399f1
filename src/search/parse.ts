import { r4ResourceTypes } from '../r4';
import { badRequest, FhirError, notSupported } from '../outcome';
import type { Condition, Include, SearchPlan, SortKey } from './plan';
import type { SearchParamDef, SearchParamRegistry } from './registry';
import { anyOf, indexKindOf, nearCondition, parseCount, parseDate, parseNumber, parseQuantity, referenceKeyOf, splitBars, splitValues, tokenCondition, tokenKeysOf, unescape, uriAncestors } from './parse-values';

export { indexKindOf, parseCount, rangeMatch, splitValues } from './parse-values';
import { normalizeString, SEP, subParam, tokenSystemCodeKey } from './values';

/** Parameters that shape the result rather than select it; read here or by the interaction layer. */
export const RESULT_PARAMS = new Set(['_count', '_cursor', '_format', '_pretty', '_total', '_sort', '_include', '_revinclude', '_summary', '_elements', '_contained', '_containedType']);
const MAX_VALUES = 100;
const MAX_PARAMS = 60;
const MAX_CHAIN_DEPTH = 4;

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
