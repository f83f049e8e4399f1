import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4';
import type { SearchParameter } from 'fhir/r4';
import { r4ResourceTypes, r4SearchParameters } from '../r4';

/** Parameter types the index and the search plans handle. */
export const INDEXED_TYPES = ['token', 'string', 'reference', 'date', 'number', 'quantity', 'uri', 'composite'] as const;
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

function appliesTo(part: string, type: string): boolean {
  const head = part.replace(/^\(+/, '');
  return head.startsWith(`${type}.`) || head === type || head.startsWith('Resource.') || head.startsWith('DomainResource.');
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
  private sources: SearchParameter[];
  private readonly byUrl = new Map<string, SearchParameter>();

  constructor(extra: SearchParameter[] = []) {
    this.sources = [];
    this.add([...r4SearchParameters(), ...extra]);
  }

  /** Adds SearchParameters (a later one with the same code and base wins); types recompile on next use. */
  add(params: SearchParameter[]): void {
    for (const sp of params) {
      if (sp.url) this.byUrl.set(sp.url, sp);
      this.sources.push(sp);
    }
    this.byType.clear();
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
    for (const sp of this.sources) {
      const def = this.compileParam(sp, type);
      if (def) defs.set(def.code, def);
    }
    return defs;
  }

  private compileParam(sp: SearchParameter, type: string): SearchParamDef | undefined {
    if (!(INDEXED_TYPES as readonly string[]).includes(sp.type) || !sp.expression) return undefined;
    const bases = (sp.base ?? []) as string[];
    if (!bases.includes(type) && !bases.includes('Resource') && !bases.includes('DomainResource')) return undefined;
    // _id and _lastUpdated are columns of the store, not index entries.
    if (sp.code === '_id' || sp.code === '_lastUpdated') return undefined;
    const parts = splitUnion(sp.expression).filter((p) => appliesTo(p, type));
    if (parts.length === 0) return undefined;
    const expression = withoutResolve(parts.join(' | '));
    try {
      const fn = compile(expression);
      let components: CompositeComponent[] | undefined;
      if (sp.type === 'composite') {
        components = (sp.component ?? []).map((c) => {
          const t = this.byUrl.get(c.definition)?.type;
          if (!t || t === 'composite' || !(INDEXED_TYPES as readonly string[]).includes(t)) throw new Error('component type unknown');
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
        evaluate: fn,
      };
    } catch {
      return undefined; // An expression fhirpath cannot compile is left out of the index and of the CapabilityStatement.
    }
  }
}
