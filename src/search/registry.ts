import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4';
import type { SearchParameter } from 'fhir/r4';
import { r4ResourceTypes, r4SearchParameters, r4StructureDefinitions } from '../r4';

/** Parameter types the index and the search plans handle. */
export const INDEXED_TYPES = ['token', 'string', 'reference', 'date', 'number', 'quantity', 'uri', 'composite', 'special'] as const;
export type IndexedType = (typeof INDEXED_TYPES)[number];

/** A node that a SearchParameter expression selected, with its FHIR data type. */
export interface PathNode {
  data: unknown;
  fhirNodeDataType?: string;
  path?: string;
}

export interface CompositeComponent {
  type: Exclude<IndexedType, 'composite'>;
  evaluate(node: PathNode): PathNode[];
}

export interface SearchParamDef {
  code: string;
  type: IndexedType;
  url: string;
  description?: string;
  /** The part of the expression that applies to this resource type. */
  expression: string;
  /** Resource types a reference parameter may point to. */
  targets: string[];
  /** For composites: the components, in order. */
  components?: CompositeComponent[];
  /** false while a $reindex has not yet indexed every resource for it: indexed on writes, not yet searchable */
  searchable: boolean;
  evaluate(resource: unknown): PathNode[];
}

/** Splits an expression on the `|` operators that are not nested inside parentheses or quotes. */
export function splitUnion(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (c === "'" && expression[i - 1] !== '\\') quoted = !quoted;
    else if (quoted) continue;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) {
      parts.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expression.slice(start).trim());
  return parts.filter((p) => p.length > 0);
}

/** Whether a part of a union applies to `type`: it starts with that type, a base type, or no type at all (French packages write `address.line`). */
function appliesTo(part: string, type: string): boolean {
  const head = part.replace(/^\(+/, '');
  const first = /^([A-Z][A-Za-z]+)(\.|$)/.exec(head)?.[1];
  if (!first || !r4ResourceTypes().has(first)) return true;
  return first === type;
}

/**
 * `resolve()` needs the referenced resource; at index time we only know the reference text,
 * so `resolve() is Patient` becomes a test of the reference's type segment.
 */
function withoutResolve(expression: string): string {
  return expression.replace(/resolve\(\)\s+is\s+(\w+)/g, (_m, t: string) => `reference.matches('(^|/)${t}/[A-Za-z0-9.-]+(/_history/.+)?$')`);
}

type Compiled = (r: unknown) => PathNode[];
const compileCache = new Map<string, Compiled>();

/**
 * Most SearchParameter expressions are paths (`Patient.name`, `Patient.contact.name`), possibly
 * to one type of a choice element (`(Observation.effective as dateTime)`) or filtered on a property
 * (`Patient.telecom.where(system='phone')`, `Observation.subject.where(resolve() is Patient)` once
 * rewritten): walking the JSON gives the same nodes as fhirpath.js (typed from the R4 definitions)
 * at a fraction of the cost of every write. Anything else goes through fhirpath.js.
 */
const PATH = '[A-Z][A-Za-z]+(?:\\.[a-z][A-Za-z0-9]*)+';
const FAST_FORMS: [RegExp, (m: RegExpExecArray) => { path: string; as?: string; where?: (v: unknown) => boolean }][] = [
  [new RegExp(`^(${PATH})$`), (m) => ({ path: m[1] })],
  [new RegExp(`^\\((${PATH}) as ([A-Za-z]+)\\)$`), (m) => ({ path: m[1], as: m[2] })],
  [new RegExp(`^(${PATH})\\.as\\(([A-Za-z]+)\\)$`), (m) => ({ path: m[1], as: m[2] })],
  [new RegExp(`^(${PATH})\\.where\\(([a-z][A-Za-z]*) ?= ?'([^'\\\\]*)'\\)$`), (m) => ({ path: m[1], where: (v) => (v as Record<string, unknown>)[m[2]] === m[3] })],
  [
    new RegExp(`^(${PATH})\\.where\\(reference\\.matches\\('([^'\\\\]*)'\\)\\)$`),
    (m) => {
      const re = new RegExp(m[2]);
      return { path: m[1], where: (v) => typeof (v as { reference?: unknown }).reference === 'string' && re.test((v as { reference: string }).reference) };
    },
  ],
];

function fastPath(expression: string): Compiled | undefined {
  let form: { path: string; as?: string; where?: (v: unknown) => boolean } | undefined;
  for (const [re, f] of FAST_FORMS) {
    const m = re.exec(expression);
    if (m) {
      form = f(m);
      break;
    }
  }
  if (!form) return undefined;
  const [root, ...names] = form.path.split('.');
  const types = r4ElementTypes();
  let context = root;
  let type: string | undefined;
  let path = root;
  for (let i = 0; i < names.length; i++) {
    const last = i === names.length - 1;
    path = `${context}.${names[i]}`;
    if (last && form.as) {
      // one type of a choice element: its JSON name carries the type (effective[x] as dateTime: effectiveDateTime)
      if (!types.get(`${path}[x]`)?.split(' ').includes(form.as)) return undefined;
      names[i] = `${names[i]}${form.as[0].toUpperCase()}${form.as.slice(1)}`;
      type = form.as;
      break;
    }
    type = types.get(path);
    if (!type || type.includes(' ') || type.startsWith('http:')) return undefined;
    context = type === 'BackboneElement' || type === 'Element' ? path : type;
  }
  const nodePath = type === 'BackboneElement' || type === 'Element' ? path : type!;
  const dataType = type!;
  const where = form.where;
  return (resource) => {
    const rt = (resource as { resourceType?: unknown })?.resourceType;
    if (rt !== root && root !== 'Resource' && root !== 'DomainResource') return [];
    let values: unknown[] = [resource];
    for (const name of names) {
      const next: unknown[] = [];
      for (const v of values) {
        const x = (v as Record<string, unknown>)[name];
        if (Array.isArray(x)) {
          for (const y of x) if (y !== null && y !== undefined) next.push(y);
        } else if (x !== null && x !== undefined) next.push(x);
      }
      values = next;
    }
    if (where) values = values.filter((v) => typeof v === 'object' && where(v));
    return values.map((data) => ({ data, fhirNodeDataType: dataType, path: nodePath }));
  };
}

/** The type of each element of the R4 resources and data types (`Patient.name` → HumanName; a choice element: its types, space-separated). */
let elementTypes: Map<string, string> | undefined;
function r4ElementTypes(): Map<string, string> {
  if (!elementTypes) {
    elementTypes = new Map();
    for (const sd of r4StructureDefinitions()) {
      if (sd.derivation === 'constraint' || (sd.kind !== 'resource' && sd.kind !== 'complex-type')) continue;
      for (const e of sd.snapshot?.element ?? []) {
        if (e.contentReference || !e.type?.length) continue;
        // one type, or the types of a choice element (`Observation.effective[x]` → "dateTime Period Timing instant")
        if (e.path.endsWith('[x]') || e.type.length === 1) elementTypes.set(e.path, e.type.map((t) => t.code).join(' '));
      }
    }
  }
  return elementTypes;
}

/** A union of expressions, each part walked as a plain path where it is one (unless `plain` is false: fhirpath.js for all). */
function compileUnion(parts: string[], plain: boolean): Compiled {
  const fns = parts.map((p) => (plain ? fastPath(p) : undefined) ?? compile(p));
  return fns.length === 1 ? fns[0] : (r) => fns.flatMap((fn) => fn(r));
}

function compile(expression: string, base?: string): Compiled {
  const key = `${base ?? ''}\u0000${expression}`;
  let fn = compileCache.get(key);
  if (!fn) {
    const path = base ? { base, expression } : expression;
    fn = fhirpath.compile(path as string, r4model, { resolveInternalTypes: false }) as unknown as Compiled;
    compileCache.set(key, fn);
  }
  return fn;
}

/** The search parameters of each resource type, compiled once per type on first use. */
export class SearchParamRegistry {
  private readonly byType = new Map<string, Map<string, SearchParamDef>>();
  private readonly sources: { sp: SearchParameter; searchable: boolean }[] = [];
  private readonly byUrl = new Map<string, SearchParameter>();
  /** changes whenever the parameters change (the CapabilityStatement is cached on it) */
  version = 0;

  /** `plainPaths: false` evaluates every expression with fhirpath.js (to hold the plain-path walk against it). */
  constructor(extra: SearchParameter[] = [], private readonly options: { plainPaths?: boolean } = {}) {
    this.add([...r4SearchParameters(), ...extra]);
  }

  /** Adds SearchParameters (a later one with the same code and base wins); types recompile on next use. */
  add(params: SearchParameter[], searchable = true): void {
    for (const sp of params) {
      if (sp.url) this.byUrl.set(sp.url, sp);
      this.sources.push({ sp, searchable });
    }
    this.byType.clear();
    this.version++;
  }

  /** Makes parameters added as not searchable (by url) searchable. */
  activate(urls: string[]): void {
    for (const s of this.sources) if (s.sp.url && urls.includes(s.sp.url)) s.searchable = true;
    this.byType.clear();
    this.version++;
  }

  /** Why a SearchParameter resource cannot be used here, or undefined when it can. */
  problem(sp: SearchParameter): string | undefined {
    if (!sp.code || !sp.url || !sp.type || !sp.expression) return 'it needs url, code, type and expression';
    if (!(INDEXED_TYPES as readonly string[]).includes(sp.type) || sp.type === 'special') return `type ${sp.type} is not supported`;
    const bases = (sp.base ?? []) as string[];
    if (bases.length === 0) return 'it has no base';
    for (const b of bases) if (b !== 'Resource' && b !== 'DomainResource' && !r4ResourceTypes().has(b)) return `base ${b} is not a resource type`;
    const shadowed = bases.find((b) => this.get(b, sp.code!)?.url && this.get(b, sp.code!)!.url !== sp.url);
    if (shadowed) return `${shadowed} already has a search parameter "${sp.code}"`;
    try {
      compile(withoutResolve(sp.expression));
    } catch (e) {
      return `its expression does not compile: ${(e as Error).message.split('\n')[0]}`;
    }
    return undefined;
  }

  /** Every indexed parameter of a type, by code. */
  forType(type: string): Map<string, SearchParamDef> {
    let defs = this.byType.get(type);
    if (!defs) {
      defs = this.compileType(type);
      this.byType.set(type, defs);
    }
    return defs;
  }

  get(type: string, code: string): SearchParamDef | undefined {
    return this.forType(type).get(code);
  }

  private compileType(type: string): Map<string, SearchParamDef> {
    const defs = new Map<string, SearchParamDef>();
    if (!r4ResourceTypes().has(type)) return defs;
    for (const { sp, searchable } of this.sources) {
      const def = this.compileParam(sp, type, searchable);
      if (def) defs.set(def.code, def);
    }
    return defs;
  }

  private compileParam(sp: SearchParameter, type: string, searchable: boolean): SearchParamDef | undefined {
    if (!(INDEXED_TYPES as readonly string[]).includes(sp.type) || !sp.expression) return undefined;
    // the one special parameter of R4 this server implements: Location.near
    if (sp.type === 'special' && sp.code !== 'near') return undefined;
    const bases = (sp.base ?? []) as string[];
    if (!bases.includes(type) && !bases.includes('Resource') && !bases.includes('DomainResource')) return undefined;
    // _id and _lastUpdated are columns of the store, not index entries.
    if (sp.code === '_id' || sp.code === '_lastUpdated') return undefined;
    const parts = splitUnion(sp.expression).filter((p) => appliesTo(p, type));
    if (parts.length === 0) return undefined;
    const expression = withoutResolve(parts.join(' | '));
    try {
      const fn = compileUnion(parts.map(withoutResolve), this.options.plainPaths ?? true);
      let components: CompositeComponent[] | undefined;
      if (sp.type === 'composite') {
        components = (sp.component ?? []).map((c) => {
          const t = this.byUrl.get(c.definition)?.type;
          if (!t || t === 'composite' || t === 'special' || !(INDEXED_TYPES as readonly string[]).includes(t)) throw new Error('component type unknown');
          return { type: t as CompositeComponent['type'], evaluate: (node: PathNode) => compile(withoutResolve(c.expression), node.path ?? type)(node.data) };
        });
        // Every component but the last is matched exactly (it names the entry the last one belongs to).
        if (components.length < 2 || components.slice(0, -1).some((c) => !['token', 'reference', 'uri'].includes(c.type))) return undefined;
      }
      return {
        code: sp.code!,
        type: sp.type as IndexedType,
        url: sp.url!,
        description: sp.description,
        expression,
        targets: (sp.target as string[] | undefined) ?? [],
        components,
        searchable,
        evaluate: fn,
      };
    } catch {
      return undefined; // An expression fhirpath cannot compile is left out of the index and of the CapabilityStatement.
    }
  }
}
