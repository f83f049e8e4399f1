import type { Issue } from '../outcome';

/**
 * What R4's JSON format forbids and a JSON schema does not say: empty arrays, empty objects, empty
 * strings, null values, and null array items, except in a primitive array aligned with its `_name`
 * array, where a null stands for a value that has only an id or extensions (`given: ["a", null]`
 * with `_given: [null, {...}]`): the other array must then hold something at that index, and both
 * arrays have the same length. `toExpression` turns a JSON pointer into FHIRPath.
 */
export function jsonShapeIssues(resource: Record<string, unknown>, toExpression: (pointer: string[]) => string): Issue[] {
  const issues: Issue[] = [];
  // the JSON pointer of the value being looked at, as a stack
  const pointer: string[] = [];
  const refuse = (what: string) => {
    const expression = toExpression(pointer);
    issues.push({ severity: 'error', code: 'structure', diagnostics: `${expression}: ${what} (not allowed in FHIR JSON)`, expression: [expression] });
  };
  /** a value that is not an array (arrays are walked with the object holding them) */
  const walk = (value: unknown): void => {
    if (value === null) return refuse('a null value');
    if (typeof value !== 'object') {
      if (value === '') refuse('an empty string');
      return;
    }
    const obj = value as Record<string, unknown>;
    let empty = true;
    for (const key in obj) {
      empty = false;
      const v = obj[key];
      pointer.push(key);
      if (Array.isArray(v)) walkArray(v, obj, key);
      else walk(v);
      pointer.pop();
    }
    if (empty) refuse('an empty object');
  };
  /** `items` is obj[key] */
  const walkArray = (items: unknown[], obj: Record<string, unknown>, key: string): void => {
    if (items.length === 0) return refuse('an empty array');
    const underscore = key.charCodeAt(0) === 95;
    // the aligned array, looked up only where it matters: for a null, and from the (rarer) _name side for the lengths
    let pair = underscore ? alignedWith(obj, key) : undefined;
    if (pair && pair.length !== items.length) refuse(`${pair.length} values where ${key} has ${items.length} items (aligned arrays have the same length)`);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      pointer.push(String(i));
      if (item === null) {
        pair ??= alignedWith(obj, key);
        if (!pair || pair[i] === null || pair[i] === undefined) refuse('a null item with nothing at the same index of its aligned array');
      } else if (Array.isArray(item)) refuse('an array inside an array');
      else if (typeof item === 'object') walk(item);
      else if (item === '') refuse('an empty string');
      pointer.pop();
    }
  };
  walk(resource);
  return issues;
}

/** The array aligned with obj[key]: `_given` for `given`, `given` for `_given`. */
function alignedWith(obj: Record<string, unknown>, key: string): unknown[] | undefined {
  const other = obj[key.charCodeAt(0) === 95 ? key.slice(1) : `_${key}`];
  return Array.isArray(other) ? other : undefined;
}
