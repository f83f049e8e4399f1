import type { ClientSession, Db, Filter } from 'mongodb';
import type { Bound, Condition, RangeMatch, SearchPlan } from '../../search/plan';
import { QueryTooCostlyError } from '../errors';
import { reading } from './deployment';
import { field, valueAt } from './fields';
import type { AnyDoc } from './schema';

/**
 * Query translation: the conditions of a search plan as a MongoDB filter over the index fields
 * (fields.ts). Chains and `_has` run in two steps (FerretDB has no `$lookup`): the inner query's ids
 * become an `$in` of the outer one.
 */

/** How many ids a chain or _has may carry from one step to the next before it is refused as too broad. */
const MAX_STEP_IDS = 10000;

/** Documents of contained resources carry `cn`: their container (`Type/id`); the others have none. */
const CONTAINED_FILTER = { false: { cn: { $exists: false } }, true: { cn: { $exists: true } }, both: {} } as const;

const MISSING_FIELD = { key: 'k', string: 's', range: 'dl' } as const;

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const OPS: Record<Bound['op'], string> = { '<': '$lt', '<=': '$lte', '>': '$gt', '>=': '$gte' };

/**
 * A range test without $elemMatch (FerretDB v1 lacks it): a single bound is a plain condition on
 * the low or high ends; "inside this bucket" (eq) is one key of `w`. The only tests left with two
 * uncorrelated bounds are `ap`, and `eq` on a quantity compared in UCUM canonical units: exact
 * for a parameter with one value per resource, approximate when a resource has several.
 */
function rangeFilter(match: RangeMatch, single: (b: Bound) => Filter<AnyDoc>, within?: (key: string) => Filter<AnyDoc>): Filter<AnyDoc> {
  const alternatives = match.map((a) => (a.within && within ? within(a.within) : a.bounds.length === 1 ? single(a.bounds[0]) : { $and: a.bounds.map(single) }));
  return alternatives.length === 1 ? alternatives[0] : { $or: alternatives };
}

/** The filter of the live resources of `type` that meet the conditions; chains and _has run their inner step first. */
export async function filterOf(db: Db, type: string, conditions: Condition[], session?: ClientSession, contained: SearchPlan['contained'] = 'false'): Promise<Filter<AnyDoc>> {
  const parts = await Promise.all(conditions.map((c) => conditionFilter(db, type, c, session)));
  const base = { d: false, ...CONTAINED_FILTER[contained ?? 'false'] };
  return parts.length ? { $and: [base, ...parts] } : base;
}

async function conditionFilter(db: Db, type: string, c: Condition, session?: ClientSession): Promise<Filter<AnyDoc>> {
  switch (c.kind) {
    case 'id':
      return { _id: { [c.not ? '$nin' : '$in']: c.ids } };
    case 'lastUpdated':
      return rangeFilter(c.match, (b) => ({ lu: { [OPS[b.op]]: b.value } }));
    case 'key':
      return { [field('k', c.param)]: { [c.not ? '$nin' : '$in']: c.keys } };
    case 'keyPrefix': {
      const re = `^(?:${c.prefixes.map(escapeRegex).join('|')})`;
      return { [field('k', c.param)]: c.not ? { $not: new RegExp(re) } : { $regex: re } };
    }
    case 'string': {
      if (c.mode === 'exact') return { [field('se', c.param)]: { $in: c.values } };
      const f = field('s', c.param);
      const alts = c.values.map((v) => ({ [f]: { $regex: c.mode === 'contains' ? escapeRegex(v) : `^${escapeRegex(v)}` } }));
      return alts.length === 1 ? alts[0] : { $or: alts };
    }
    case 'range':
      return rangeFilter(
        c.match,
        (b) => ({ [field(b.on === 'low' ? 'dl' : 'dh', c.param)]: { [OPS[b.op]]: b.value } }),
        (key) => ({ [field('w', c.param)]: key }),
      );
    case 'missing':
      return { [field(MISSING_FIELD[c.index], c.param)]: { $exists: !c.missing } };
    case 'any':
      return { $or: await Promise.all(c.conditions.map((x) => conditionFilter(db, type, x, session))) };
    case 'all':
      return { $and: await Promise.all(c.conditions.map((x) => conditionFilter(db, type, x, session))) };
    case 'chain':
      return chainFilter(db, c, session);
    case 'has':
      return hasFilter(db, type, c, session);
  }
}

/** The resources whose reference parameter points to a target that meets the inner conditions. */
async function chainFilter(db: Db, c: Extract<Condition, { kind: 'chain' }>, session?: ClientSession): Promise<Filter<AnyDoc>> {
  const targetType = c.targetTypes[0];
  const inner = await filterOf(db, targetType, c.conditions, session);
  const ids = await db.collection<AnyDoc>(targetType).find(inner, { ...reading(session), projection: { _id: 1 } }).limit(MAX_STEP_IDS + 1).toArray();
  if (ids.length > MAX_STEP_IDS) throw new QueryTooCostlyError(`The chain through ${c.param} matches more than ${MAX_STEP_IDS} ${targetType} resources; narrow it`);
  return { [field('k', c.param)]: { $in: ids.map((d) => `${targetType}/${d._id}`) } };
}

/** The resources of `type` that the source resources meeting the inner conditions point to. */
async function hasFilter(db: Db, type: string, c: Extract<Condition, { kind: 'has' }>, session?: ClientSession): Promise<Filter<AnyDoc>> {
  const inner = await filterOf(db, c.sourceType, c.conditions, session);
  const f = field('k', c.param);
  const docs = await db.collection<AnyDoc>(c.sourceType).find(inner, { ...reading(session), projection: { [f]: 1 } }).limit(MAX_STEP_IDS + 1).toArray();
  if (docs.length > MAX_STEP_IDS) throw new QueryTooCostlyError(`_has:${c.sourceType}:${c.param} matches more than ${MAX_STEP_IDS} resources; narrow it`);
  const ids = new Set<string>();
  for (const d of docs) for (const k of (valueAt(d, f) as string[] | null) ?? []) if (k.startsWith(`${type}/`)) ids.add(k.slice(type.length + 1));
  return { _id: { $in: [...ids] } };
}
