import type { IndexEntries } from '../../search/extract';
import { containingBuckets, numberBuckets, SUB } from '../../search/values';

/**
 * Index entries live in per-parameter fields of a resource's document, so each query condition is a
 * plain condition on one (multikey) field:
 *   k.<param>: exact keys (tokens, references, uris)
 *   s.<param>: normalized strings     se.<param>: strings as written
 *   dl.<param> / dh.<param>: low / high ends of ranges (dates, numbers, quantities)
 *   w.<param>: buckets that wholly contain a range (calendar buckets of dates, roundings of numbers), for eq
 *   oa.<param> / od.<param>: the value the resource sorts by, ascending (smallest) and descending (largest)
 * Parameter names are encoded (`.` and `$` cannot appear in field names).
 */
const encode = (param: string) => param.replace(/\./g, '\uff0e').replace(/\$/g, '\uff04');

/** The field of a parameter's entries of one kind (`k`, `s`, ...). */
export const field = (prefix: string, param: string) => `${prefix}.${encode(param)}`;

/** The fields of a document that hold these index entries. */
export function indexFields(index: IndexEntries): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const add = (f: string, param: string, value: unknown) => (((out[f] ??= {})[encode(param)] as unknown[] | undefined) ?? ((out[f][encode(param)] = []) as unknown[])).push(value);
  const sortBy = (param: string, asc: unknown, desc: unknown) => {
    if (param.includes(SUB)) return;
    const p = encode(param);
    const a = (out.oa ??= {});
    const d = (out.od ??= {});
    if (a[p] === undefined || (asc as number) < (a[p] as number)) a[p] = asc;
    if (d[p] === undefined || (desc as number) > (d[p] as number)) d[p] = desc;
  };
  for (const e of index.keys) {
    add('k', e.param, e.key);
    sortBy(e.param, e.key, e.key);
  }
  for (const e of index.strings) {
    add('s', e.param, e.norm);
    add('se', e.param, e.exact);
    sortBy(e.param, e.norm, e.norm);
  }
  for (const e of index.ranges) {
    add('dl', e.param, e.low);
    add('dh', e.param, e.high);
    for (const key of e.kind === 'date' ? containingBuckets(e.low, e.high) : numberBuckets(e.low)) add('w', e.param, key);
    sortBy(e.param, e.low, e.high);
  }
  return out;
}

/** The value at a dotted field path of a document; null where there is none. */
export const valueAt = (doc: Record<string, unknown>, path: string): unknown =>
  path.split('.').reduce<unknown>((o, p) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[p] : undefined), doc) ?? null;
