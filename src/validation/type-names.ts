import type { Sd } from './definitions';
import { BASE, type Json, type Obj } from './model';

/**
 * The R4 names that JSON keys are made of: a choice element is written as its name plus a type
 * suffix (`valueQuantity`, `_valueString`). Read from the base definitions, to find the type of a
 * choice key, a choice element's value in an object, and the FHIRPath of a JSON pointer.
 */
export class TypeNames {
  /** type suffix as written in a choice key (`Quantity`, `DateTime`) → type code (`Quantity`, `dateTime`) */
  private readonly bySuffix = new Map<string, string>();
  /** names of the choice elements of R4 (`value`, `effective`, `onset`...) */
  private readonly choiceNames = new Set<string>();

  constructor(sds: Iterable<Sd>) {
    for (const sd of sds) {
      if (sd.url === BASE + sd.type && sd.derivation !== 'constraint') {
        this.bySuffix.set(sd.type[0].toUpperCase() + sd.type.slice(1), sd.type);
        for (const e of sd.elements) if (e.path.endsWith('[x]')) this.choiceNames.add(e.path.slice(e.path.lastIndexOf('.') + 1, -3));
      }
    }
  }

  /** The type a choice key's suffix names (`Quantity` → Quantity, `DateTime` → dateTime), if any. */
  typeOfSuffix(suffix: string): string | undefined {
    return this.bySuffix.get(suffix);
  }

  /** FHIRPath of a JSON pointer into a resource: `Observation.value.ofType(Quantity)`, `Patient.name[0].given[1]`. */
  expressionOf(resourceType: string, pointer: string[]): string {
    let out = resourceType;
    for (const seg of pointer) {
      if (/^\d+$/.test(seg)) {
        out += `[${seg}]`;
        continue;
      }
      const name = seg.replace(/^_/, '');
      const type = this.choiceType(name);
      out += type ? `.${type.name}.ofType(${type.type})` : `.${name}`;
    }
    return out;
  }

  private choiceType(key: string): { name: string; type: string } | undefined {
    for (let i = key.length - 1; i > 0; i--) {
      const c = key.charCodeAt(i);
      if (c >= 65 && c <= 90) {
        const prefix = key.slice(0, i);
        const type = this.bySuffix.get(key.slice(i));
        if (type && this.choiceNames.has(prefix)) return { name: prefix, type };
      }
    }
    return undefined;
  }

  /** A property of a JSON object by its FHIR name; a choice element by its name without the type suffix. */
  member(c: Obj, name: string): Json {
    const x = c[name];
    if (x !== undefined) return x;
    for (const key in c) if (key.length > name.length && key.startsWith(name) && this.bySuffix.has(key.slice(name.length))) return c[key];
    return undefined;
  }
}

/** Is `k` a JSON key of the choice element `name` (name + type, or _name + type)? */
export function choiceKeyMatches(k: string, name: string): boolean {
  const off = k.charCodeAt(0) === 95 ? 1 : 0;
  return k.length > name.length + off && k.startsWith(name, off);
}

/** Is there a key for the choice element `name` (name + type, or _name + type)? */
export function hasChoiceKey(keys: string[], name: string): boolean {
  for (let i = 0; i < keys.length; i++) if (choiceKeyMatches(keys[i], name)) return true;
  return false;
}
