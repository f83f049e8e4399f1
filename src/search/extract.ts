import type { SearchParamDef, SearchParamRegistry } from './registry';
import { dateRange, MAX_TIME, MIN_TIME, normalizeString, tokenKeys } from './values';

export interface StringEntry {
  param: string;
  /** normalizeString() of the value, for the default and :contains searches */
  norm: string;
  /** the value as written, for :exact */
  exact: string;
}
export interface KeyEntry {
  param: string;
  key: string;
}
export interface DateEntry {
  param: string;
  low: number;
  high: number;
}

/** What a resource contributes to the search index: computed when it is written, stored beside it. */
export interface IndexEntries {
  tokens: KeyEntry[];
  strings: StringEntry[];
  references: KeyEntry[];
  dates: DateEntry[];
}

export const emptyIndex = (): IndexEntries => ({ tokens: [], strings: [], references: [], dates: [] });

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

const HUMAN_NAME_PARTS = ['text', 'family', 'given', 'prefix', 'suffix'];
const ADDRESS_PARTS = ['text', 'line', 'city', 'district', 'state', 'postalCode', 'country'];

function stringsOf(data: unknown, dataType: string | undefined): string[] {
  if (typeof data === 'string') return [data];
  if (!isObj(data)) return [];
  const parts = dataType === 'HumanName' ? HUMAN_NAME_PARTS : dataType === 'Address' ? ADDRESS_PARTS : Object.keys(data);
  const out: string[] = [];
  for (const p of parts) {
    const v = data[p];
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') out.push(x);
  }
  return out;
}

function tokensOf(data: unknown, dataType: string | undefined): string[] {
  if (typeof data === 'boolean') return tokenKeys(undefined, String(data));
  if (typeof data === 'string') return tokenKeys(undefined, data);
  if (!isObj(data)) return [];
  switch (dataType) {
    case 'CodeableConcept': {
      const codings = Array.isArray(data.coding) ? data.coding : [];
      return codings.flatMap((c) => (isObj(c) ? tokenKeys(str(c.system), str(c.code)) : []));
    }
    case 'Identifier':
    case 'ContactPoint':
      return tokenKeys(str(data.system), str(data.value));
    default:
      // Coding, and any other element that carries system and code
      return tokenKeys(str(data.system), str(data.code) ?? str(data.value));
  }
}

/** A reference gives its literal text and, for a relative `Type/id`, the bare id as well (for `subject=123`). */
export function referenceKeys(reference: string, baseUrl?: string): string[] {
  let ref = reference;
  if (baseUrl && ref.startsWith(`${baseUrl}/`)) ref = ref.slice(baseUrl.length + 1);
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9.-]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
  if (m) return [`${m[1]}/${m[2]}`, m[2]];
  if (ref.startsWith('#')) return []; // a contained resource: not searchable by reference
  return [ref];
}

function referencesOf(data: unknown, baseUrl?: string): string[] {
  if (typeof data === 'string') return referenceKeys(data, baseUrl); // canonical, uri
  if (isObj(data) && typeof data.reference === 'string') return referenceKeys(data.reference, baseUrl);
  return [];
}

function datesOf(data: unknown, dataType: string | undefined): { low: number; high: number }[] {
  if (typeof data === 'string') {
    const r = dateRange(data);
    return r ? [r] : [];
  }
  if (!isObj(data)) return [];
  if (dataType === 'Period' || 'start' in data || 'end' in data) {
    const start = str(data.start) ? dateRange(data.start as string) : undefined;
    const end = str(data.end) ? dateRange(data.end as string) : undefined;
    if (!start && !end) return [];
    return [{ low: start ? start.low : MIN_TIME, high: end ? end.high : MAX_TIME }];
  }
  if (dataType === 'Timing') {
    const out = (Array.isArray(data.event) ? data.event : []).flatMap((e) => datesOf(e, 'dateTime'));
    const repeat = isObj(data.repeat) ? data.repeat : undefined;
    if (repeat && isObj(repeat.boundsPeriod)) out.push(...datesOf(repeat.boundsPeriod, 'Period'));
    return out;
  }
  return [];
}

function addUnique<T extends { param: string }>(list: T[], seen: Set<string>, entry: T, id: string) {
  if (seen.has(id)) return;
  seen.add(id);
  list.push(entry);
}

/** Evaluates every indexed SearchParameter of the resource's type and returns its normalized entries. */
export function extractIndex(registry: SearchParamRegistry, resource: { resourceType: string }, baseUrl?: string): IndexEntries {
  const index = emptyIndex();
  const seen = new Set<string>();
  for (const def of registry.forType(resource.resourceType).values()) {
    let nodes;
    try {
      nodes = def.evaluate(resource);
    } catch {
      continue; // An expression that fails on unusual content indexes nothing for that resource.
    }
    for (const node of nodes) {
      // Paths give nodes with their FHIR type; computed values (e.g. a boolean from `exists()`) come bare.
      const isNode = typeof node === 'object' && node !== null && 'data' in node && 'path' in node;
      addNode(index, seen, def, isNode ? node.data : node, isNode ? node.fhirNodeDataType : undefined, baseUrl);
    }
  }
  return index;
}

function addNode(index: IndexEntries, seen: Set<string>, def: SearchParamDef, data: unknown, dataType: string | undefined, baseUrl?: string) {
  const p = def.code;
  switch (def.type) {
    case 'token':
      for (const key of tokensOf(data, dataType)) addUnique(index.tokens, seen, { param: p, key }, `t${p}\0${key}`);
      break;
    case 'string':
      for (const s of stringsOf(data, dataType)) {
        const norm = normalizeString(s);
        if (norm) addUnique(index.strings, seen, { param: p, norm, exact: s }, `s${p}\0${s}`);
      }
      break;
    case 'reference':
      for (const key of referencesOf(data, baseUrl)) addUnique(index.references, seen, { param: p, key }, `r${p}\0${key}`);
      break;
    case 'date':
      for (const r of datesOf(data, dataType)) addUnique(index.dates, seen, { param: p, low: r.low, high: r.high }, `d${p}\0${r.low}\0${r.high}`);
      break;
  }
}
