import type { PathNode, SearchParamDef, SearchParamRegistry } from './registry';
import {
  canonicalQualifier,
  dateRange,
  MAX_TIME,
  MIN_TIME,
  normalizeString,
  SEP,
  subParam,
  tokenKeys,
  UCUM,
  ucumCanonical,
  unitCodeQualifier,
  unitSystemCodeQualifier,
} from './values';

export interface StringEntry {
  param: string;
  /** normalizeString() of the value, for the default and :contains searches */
  norm: string;
  /** the value as written, for :exact */
  exact: string;
}
/** An exact key: token keys, references, uris. */
export interface KeyEntry {
  param: string;
  key: string;
}
/** A closed range: dates (epoch ms) and numbers (low = high). */
export interface RangeEntry {
  param: string;
  low: number;
  high: number;
  kind: 'date' | 'number';
}

/** A contained resource, indexed as a resource of its own for `_contained` searches. */
export interface ContainedEntry {
  type: string;
  /** its local id (`#cid` in the container) */
  cid: string;
  json: string;
  index: IndexEntries;
}

/** What a resource contributes to the search index: computed when it is written, stored beside it. */
export interface IndexEntries {
  keys: KeyEntry[];
  strings: StringEntry[];
  ranges: RangeEntry[];
  contained?: ContainedEntry[];
}

export const emptyIndex = (): IndexEntries => ({ keys: [], strings: [], ranges: [] });

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

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
    else for (const x of arr(v)) if (typeof x === 'string') out.push(x);
  }
  return out;
}

/** Token keys of an element, and the texts `:text` searches (CodeableConcept.text, Coding.display). */
function tokensOf(data: unknown, dataType: string | undefined): { keys: string[]; texts: string[] } {
  if (typeof data === 'boolean') return { keys: tokenKeys(undefined, String(data)), texts: [] };
  if (typeof data === 'string') return { keys: tokenKeys(undefined, data), texts: [] };
  if (!isObj(data)) return { keys: [], texts: [] };
  switch (dataType) {
    case 'CodeableConcept': {
      const codings = arr(data.coding).filter(isObj);
      return {
        keys: codings.flatMap((c) => tokenKeys(str(c.system), str(c.code))),
        texts: [str(data.text), ...codings.map((c) => str(c.display))].filter((t): t is string => !!t),
      };
    }
    case 'Identifier': {
      const keys = tokenKeys(str(data.system), str(data.value));
      const value = str(data.value);
      // :of-type keys: type system | type code | value
      if (value && isObj(data.type)) for (const c of arr(data.type.coding).filter(isObj)) if (str(c.code)) keys.push(`o${SEP}${str(c.system) ?? ''}${SEP}${c.code}${SEP}${value}`);
      return { keys, texts: isObj(data.type) && str(data.type.text) ? [data.type.text as string] : [] };
    }
    case 'ContactPoint':
      return { keys: tokenKeys(str(data.system), str(data.value)), texts: [] };
    default:
      // Coding, and any other element that carries system and code
      return { keys: tokenKeys(str(data.system), str(data.code) ?? str(data.value)), texts: str(data.display) ? [data.display as string] : [] };
  }
}

/**
 * A reference's key: `Type/id` for a resource of this server (relative, or absolute under its base,
 * version dropped), else its text. A search by bare id (`subject=123`) asks for the keys of the
 * parameter's target types, so the bare id is not indexed.
 */
export function referenceKeys(reference: string, baseUrl?: string): string[] {
  let ref = reference;
  if (baseUrl && ref.startsWith(`${baseUrl}/`)) ref = ref.slice(baseUrl.length + 1);
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9.-]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
  if (m) return [`${m[1]}/${m[2]}`];
  if (ref.startsWith('#')) return []; // a contained resource: not searchable by reference
  return [ref];
}

function referencesOf(data: unknown, baseUrl?: string): { keys: string[]; identifiers: string[] } {
  if (typeof data === 'string') return { keys: referenceKeys(data, baseUrl), identifiers: [] }; // canonical, uri
  if (!isObj(data)) return { keys: [], identifiers: [] };
  const keys = typeof data.reference === 'string' ? referenceKeys(data.reference, baseUrl) : [];
  const identifiers = isObj(data.identifier) ? tokenKeys(str(data.identifier.system), str(data.identifier.value)) : [];
  return { keys, identifiers };
}

function datesOf(data: unknown, dataType: string | undefined): { low: number; high: number }[] {
  if (typeof data === 'string') {
    const r = dateRange(data);
    return r ? [{ low: r.low, high: r.high }] : [];
  }
  if (!isObj(data)) return [];
  if (dataType === 'Timing') {
    const out = arr(data.event).flatMap((e) => datesOf(e, 'dateTime'));
    const repeat = isObj(data.repeat) ? data.repeat : undefined;
    if (repeat && isObj(repeat.boundsPeriod)) out.push(...datesOf(repeat.boundsPeriod, 'Period'));
    return out;
  }
  if (dataType === 'Period' || 'start' in data || 'end' in data) {
    const start = str(data.start) ? dateRange(data.start as string) : undefined;
    const end = str(data.end) ? dateRange(data.end as string) : undefined;
    if (!start && !end) return [];
    return [{ low: start ? start.low : MIN_TIME, high: end ? end.high : MAX_TIME }];
  }
  return [];
}

function numberOf(data: unknown): number | undefined {
  if (typeof data === 'number' && Number.isFinite(data)) return data;
  // fhirpath hands decimals over as its own decimal type, which keeps the text as written
  if (isObj(data) && typeof data.asStr === 'string') return numberOf(data.asStr);
  if (typeof data === 'string' && /^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(data)) return Number(data);
  return undefined;
}

/** A quantity is an entry in any unit, and entries per unit code, system|code and UCUM canonical units. */
function quantityEntries(param: string, data: unknown): { param: string; value: number }[] {
  if (!isObj(data)) {
    const n = numberOf(data);
    return n === undefined ? [] : [{ param, value: n }];
  }
  const value = numberOf(data.value);
  if (value === undefined) return [];
  const out = [{ param, value }];
  const system = str(data.system);
  const code = str(data.code);
  const unit = str(data.unit);
  if (code) out.push({ param: subParam(param, unitCodeQualifier(code)), value });
  if (unit && unit !== code) out.push({ param: subParam(param, unitCodeQualifier(unit)), value });
  if (system && code) out.push({ param: subParam(param, unitSystemCodeQualifier(system, code)), value });
  if (system === UCUM && code) {
    const canonical = ucumCanonical(value, code);
    if (canonical) out.push({ param: subParam(param, canonicalQualifier(canonical.units)), value: canonical.value });
  }
  return out;
}

/** Collects entries without duplicates. */
class Collector {
  readonly index = emptyIndex();
  private readonly seen = new Set<string>();
  key(param: string, key: string) {
    if (this.once(`k${param}\0${key}`)) this.index.keys.push({ param, key });
  }
  string(param: string, s: string) {
    const norm = normalizeString(s);
    if (norm && this.once(`s${param}\0${s}`)) this.index.strings.push({ param, norm, exact: s });
  }
  range(param: string, low: number, high: number, kind: RangeEntry['kind']) {
    if (this.once(`r${param}\0${low}\0${high}`)) this.index.ranges.push({ param, low, high, kind });
  }
  private once(id: string): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    return true;
  }
}

type NodeType = Exclude<SearchParamDef['type'], 'composite'>;

/** Adds the entries of one node for a parameter (or derived parameter) name. */
function addNode(out: Collector, param: string, type: NodeType, data: unknown, dataType: string | undefined, baseUrl?: string) {
  switch (type) {
    case 'token': {
      const { keys, texts } = tokensOf(data, dataType);
      for (const key of keys) out.key(param, key);
      for (const t of texts) out.string(subParam(param, 'text'), t);
      break;
    }
    case 'string':
      for (const s of stringsOf(data, dataType)) out.string(param, s);
      break;
    case 'reference': {
      const { keys, identifiers } = referencesOf(data, baseUrl);
      for (const key of keys) out.key(param, key);
      for (const key of identifiers) out.key(subParam(param, 'identifier'), key);
      break;
    }
    case 'uri':
      if (typeof data === 'string' && data) out.key(param, data);
      break;
    case 'date':
      for (const r of datesOf(data, dataType)) out.range(param, r.low, r.high, 'date');
      break;
    case 'number': {
      const n = numberOf(data);
      if (n !== undefined) out.range(param, n, n, 'number');
      break;
    }
    case 'quantity':
      for (const q of quantityEntries(param, data)) out.range(q.param, q.value, q.value, 'number');
      break;
    case 'special': {
      // near: Location.position, as latitude and longitude
      const lat = isObj(data) ? numberOf(data.latitude) : undefined;
      const lon = isObj(data) ? numberOf(data.longitude) : undefined;
      if (lat !== undefined && lon !== undefined) {
        out.range(subParam(param, 'lat'), lat, lat, 'number');
        out.range(subParam(param, 'lon'), lon, lon, 'number');
      }
      break;
    }
  }
}

/** The exact keys a leading composite component contributes to the derived parameter name. */
function componentKeys(type: NodeType, node: PathNode, baseUrl?: string): string[] {
  if (type === 'token') return tokensOf(node.data, node.fhirNodeDataType).keys;
  if (type === 'reference') return referencesOf(node.data, baseUrl).keys;
  return typeof node.data === 'string' ? [node.data] : [];
}

/** Paths give nodes with their FHIR type; computed values (e.g. a boolean from `exists()`) come bare. */
function asNode(n: unknown): PathNode {
  const isNode = typeof n === 'object' && n !== null && 'data' in n && 'path' in n;
  return isNode ? (n as PathNode) : { data: n };
}

function addComposite(out: Collector, def: SearchParamDef, node: PathNode, baseUrl?: string) {
  const comps = def.components!;
  let qualifiers = [''];
  for (const comp of comps.slice(0, -1)) {
    const keys = comp.evaluate(node).map(asNode).flatMap((n) => componentKeys(comp.type, n, baseUrl));
    qualifiers = qualifiers.flatMap((q) => keys.map((k) => (q ? `${q}${SEP}${SEP}${k}` : k)));
    if (qualifiers.length === 0) return;
  }
  const last = comps[comps.length - 1];
  for (const n of last.evaluate(node).map(asNode)) {
    for (const q of qualifiers) addNode(out, subParam(def.code, q), last.type, n.data, n.fhirNodeDataType, baseUrl);
  }
}

/**
 * Evaluates every indexed SearchParameter of the resource's type and returns its normalized entries;
 * with `only`, just those parameters (by code) and no contained resources.
 */
export function extractIndex(registry: SearchParamRegistry, resource: { resourceType: string }, baseUrl?: string, only?: ReadonlySet<string>): IndexEntries {
  const index = indexOf(registry, resource, baseUrl, only);
  const contained = (resource as { contained?: unknown }).contained;
  if (Array.isArray(contained) && !only) {
    index.contained = contained
      .filter((c): c is { resourceType: string; id: string } => isObj(c) && typeof c.resourceType === 'string' && typeof c.id === 'string')
      .map((c) => ({ type: c.resourceType, cid: c.id, json: JSON.stringify(c), index: indexOf(registry, c, baseUrl) }));
  }
  return index;
}

function indexOf(registry: SearchParamRegistry, resource: { resourceType: string }, baseUrl?: string, only?: ReadonlySet<string>): IndexEntries {
  const out = new Collector();
  for (const def of registry.forType(resource.resourceType).values()) {
    if (only && !only.has(def.code)) continue;
    let nodes;
    try {
      nodes = def.evaluate(resource).map(asNode);
      for (const node of nodes) {
        if (def.type === 'composite') addComposite(out, def, node, baseUrl);
        else addNode(out, def.code, def.type, node.data, node.fhirNodeDataType, baseUrl);
      }
    } catch {
      continue; // An expression that fails on unusual content indexes nothing for that resource.
    }
  }
  return out.index;
}
