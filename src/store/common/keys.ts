import type { IndexEntries } from '../../search/extract';
import type { UniqueKeys } from '../types';

/** The least string above every string that starts with `prefix`: `key >= prefix AND key < prefixEnd(prefix)`. */
export function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** The unique keys an index holds under `specs` (see UniqueKeys). */
export function uniqueKeysOf(specs: readonly UniqueKeys[], type: string, index: IndexEntries | undefined): { param: string; key: string }[] {
  if (!index) return [];
  const out: { param: string; key: string }[] = [];
  for (const spec of specs) {
    if (spec.type !== type) continue;
    for (const k of index.keys) if (k.param === spec.param && spec.prefixes.some((p) => k.key.startsWith(p))) out.push({ param: k.param, key: k.key });
  }
  return out;
}
