import { isObj } from './model';

/** How values compare with what a profile fixes: exactly (fixed[x]), or as a pattern (pattern[x]). */

/** Equality of a value with a fixed value; canonicals match when one side has no |version. */
export function equalValue(v: unknown, fixed: unknown, type: string): boolean {
  if (v === fixed) return true;
  if (type === 'Canonical' && typeof v === 'string' && typeof fixed === 'string') {
    if (v.indexOf('|') < 0 && fixed.indexOf('|') < 0) return false;
    const [a, av] = v.split('|');
    const [b, bv] = fixed.split('|');
    return a === b && (av === undefined || bv === undefined || av === bv);
  }
  return deepEqual(v, fixed);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** FHIR pattern semantics: every property of the pattern is in the value; arrays: each pattern item matches some value item. */
export function contains(pattern: unknown, value: unknown): boolean {
  if (Array.isArray(pattern)) {
    const vs = Array.isArray(value) ? value : [value];
    return pattern.every((p) => vs.some((v) => contains(p, v)));
  }
  if (isObj(pattern)) {
    if (Array.isArray(value)) return value.some((v) => contains(pattern, v));
    if (!isObj(value)) return false;
    for (const k in pattern) if (!contains(pattern[k], value[k])) return false;
    return true;
  }
  if (Array.isArray(value)) return value.some((v) => contains(pattern, v));
  return pattern === value;
}
