import type { IndexEntries } from './extract';
import { SUB } from './values';
import type { Bound, Condition, RangeMatch, Scope } from './plan';

/**
 * Whether one resource meets search-plan conditions, judged from its index entries in memory: the
 * same meaning as the engines' translations (src/store), for the one resource that is at hand (a
 * version being shown or written), never to scan resources. Chains and `_has` look at other
 * resources, so they are asked of the store through `lookup`.
 */
export interface Candidate {
  type: string;
  id: string;
  lastUpdated: number;
  index: IndexEntries;
}

/** The ids among `ids` of the live resources of `scope` (`ids` undefined: any id), as the store answers it. */
export type ScopeLookup = (scope: Scope, ids?: string[]) => Promise<string[]>;

function holds(b: Bound, low: number, high: number): boolean {
  const v = b.on === 'low' ? low : high;
  switch (b.op) {
    case '<':
      return v < b.value;
    case '<=':
      return v <= b.value;
    case '>':
      return v > b.value;
    case '>=':
      return v >= b.value;
  }
}

const inRange = (match: RangeMatch, low: number, high: number) => match.some((alt) => alt.bounds.every((b) => holds(b, low, high)));

/** The `Type/id` references a resource holds in a reference parameter. */
function referencesIn(index: IndexEntries, param: string, type?: string): string[] {
  return index.keys.filter((k) => k.param === param && /^[A-Z][A-Za-z]+\/[^/]+$/.test(k.key) && (!type || k.key.startsWith(`${type}/`))).map((k) => k.key);
}

export async function matchesAll(conditions: Condition[], r: Candidate, lookup: ScopeLookup): Promise<boolean> {
  for (const c of conditions) if (!(await matches(c, r, lookup))) return false;
  return true;
}

export async function matches(c: Condition, r: Candidate, lookup: ScopeLookup): Promise<boolean> {
  switch (c.kind) {
    case 'id':
      return c.ids.includes(r.id) !== !!c.not;
    case 'lastUpdated':
      return inRange(c.match, r.lastUpdated, r.lastUpdated);
    case 'key': {
      const keys = new Set(c.keys);
      return r.index.keys.some((k) => k.param === c.param && keys.has(k.key)) !== !!c.not;
    }
    case 'keyPrefix':
      return r.index.keys.some((k) => k.param === c.param && c.prefixes.some((p) => k.key.startsWith(p))) !== !!c.not;
    case 'string':
      return r.index.strings.some(
        (s) =>
          s.param === c.param &&
          c.values.some((v) => (c.mode === 'exact' ? s.exact === v : c.mode === 'contains' ? s.norm.includes(v) : s.norm.startsWith(v))),
      );
    case 'range':
      return r.index.ranges.some((e) => e.param === c.param && inRange(c.match, e.low, e.high));
    case 'missing': {
      const entries = c.index === 'key' ? r.index.keys : c.index === 'string' ? r.index.strings : r.index.ranges;
      return entries.some((e) => e.param === c.param) !== c.missing;
    }
    case 'any':
      for (const x of c.conditions) if (await matches(x, r, lookup)) return true;
      return false;
    case 'all':
      return matchesAll(c.conditions, r, lookup);
    case 'chain': {
      for (const type of c.targetTypes) {
        const refs = referencesIn(r.index, c.param, type);
        if (refs.length && (await lookup({ type, conditions: c.conditions }, refs.map((ref) => ref.slice(type.length + 1)))).length) return true;
      }
      return false;
    }
    case 'has':
      return (await lookup({ type: c.sourceType, conditions: [...c.conditions, { kind: 'key', param: c.param, keys: [`${r.type}/${r.id}`] }] })).length > 0;
  }
}

/** The parameters (by code) whose index entries decide `conditions` for a resource. */
export function paramsOf(conditions: Condition[], into = new Set<string>()): Set<string> {
  for (const c of conditions) {
    if (c.kind === 'any' || c.kind === 'all') paramsOf(c.conditions, into);
    else if ('param' in c && c.kind !== 'has') into.add(c.param.split(SUB)[0]);
  }
  return into;
}
