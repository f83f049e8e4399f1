import type { ClientSession, Collection, Document, Filter } from 'mongodb';
import type { SearchPlan, SortKey } from '../../search/plan';
import { decodeCursor, encodeCursor, keysetPage } from '../common/paging';
import { InvalidCursorError } from '../errors';
import { reading } from './deployment';
import { field, valueAt } from './fields';
import type { AnyDoc } from './schema';

/** A key documents are sorted by: a field path and its direction. */
export interface SortPath {
  path: string;
  descending: boolean;
}

/** The sort field of a plan's sort key. */
export function sortField(k: SortKey): string {
  if (k.index === 'id') return '_id';
  if (k.index === 'lastUpdated') return 'lu';
  return field(k.descending ? 'od' : 'oa', k.param);
}

/** The comparison of sort values in MongoDB's order (missing/null lowest, numbers before strings). */
function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return String(a) < String(b) ? -1 : 1;
}

/** The documents after `position` in the scan's order: one key deciding at a time; null (missing) is the lowest value. */
function keysetFilter(all: SortPath[], position: unknown[], backwards: boolean): Filter<AnyDoc> {
  const after = (k: SortPath, v: unknown): Filter<AnyDoc> => {
    const forward = k.descending === backwards; // ascending order of the scan
    if (v === null) return forward ? { [k.path]: { $ne: null } } : { _id: { $exists: false } };
    return forward ? { [k.path]: { $gt: v } } : { $or: [{ [k.path]: { $lt: v } }, { [k.path]: null }] };
  };
  return { $or: all.map((k, i) => ({ $and: [...all.slice(0, i).map((kk, j) => ({ [kk.path]: position[j] })), after(k, position[i])] })) };
}

/**
 * Keyset paging (see common/paging.ts): documents sorted by `keys`, then `_id`. Several collections
 * (a system-level search) are each queried from the position and their documents merged.
 */
export async function pageDocs(
  sources: { col: Collection<AnyDoc>; filter: Filter<AnyDoc>; type?: string }[],
  keys: SortPath[],
  count: number,
  cursor: SearchPlan['cursor'],
  session?: ClientSession,
): Promise<{ docs: (Document & { _type?: string })[]; next?: string; prev?: string }> {
  const backwards = cursor?.direction === 'prev';
  // _id breaks ties, in the direction of the last key
  const all = [...keys, { path: '_id', descending: keys.length > 0 && keys[keys.length - 1].descending }];
  let keyset: Filter<AnyDoc> | undefined;
  if (cursor) {
    const position = decodeCursor(cursor.position, all.length);
    if (typeof position[position.length - 1] !== 'string') throw new InvalidCursorError('The paging position is not one this server issued for this search');
    keyset = keysetFilter(all, position, backwards);
  }
  const sort: Record<string, 1 | -1> = {};
  for (const k of all) sort[k.path] = k.descending !== backwards ? -1 : 1;
  const found: (Document & { _type?: string })[] = [];
  for (const src of sources) {
    const f = (keyset ? { $and: [src.filter, keyset] } : src.filter) as Filter<AnyDoc>;
    const docs = await src.col.find(f, reading(session)).sort(sort).limit(count + 1).toArray();
    for (const d of docs) found.push(Object.assign(d, { _type: src.type }));
  }
  const cmp = (a: Document, b: Document) => {
    for (const k of all) {
      const c = compareValues(valueAt(a, k.path), valueAt(b, k.path));
      if (c !== 0) return k.descending !== backwards ? -c : c;
    }
    return 0;
  };
  if (sources.length > 1) found.sort(cmp);
  const { rows, next, prev } = keysetPage(found, count, cursor, (d) => encodeCursor(all.map((k) => valueAt(d, k.path))));
  return { docs: rows, next, prev };
}
