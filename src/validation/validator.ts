import { hash } from 'node:crypto';
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4';
import type { Issue } from '../outcome';
import { Terminology } from '../terminology/terminology';
import type { Definitions, Sd, SdElement, SdType } from './definitions';
import { jsonShapeIssues } from './json-shape';
import { checkPrimitive, PRIMITIVES } from './primitives';
import { BaseSchema } from './schema';

/**
 * The validator: each StructureDefinition snapshot is compiled once into a tree of element nodes
 * (cardinality, types, fixed/pattern, slicing, bindings, invariants compiled with fhirpath), then a
 * resource is walked against the trees of every profile that applies to it. The base JSON
 * structure is checked by ajv (schema.ts) first.
 */

const BASE = 'http://hl7.org/fhir/StructureDefinition/';
const EXT_URL = new Set(['extension', 'modifierExtension']);
/** the types a binding applies to */
const BINDABLE = new Set(['code', 'Coding', 'CodeableConcept', 'Quantity', 'string', 'uri', 'CodeableReference']);

type Json = unknown;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Invariant {
  key: string;
  severity: 'error' | 'warning';
  human: string;
  expression: string;
  /** evaluates the invariant on a node; true when it holds, 'unknown' when it cannot be evaluated here */
  test: (node: Json, ctx: WalkContext) => boolean | 'unknown';
}

interface Node {
  id: string;
  path: string;
  /** the JSON property name (without [x]) */
  name: string;
  choice: boolean;
  min: number;
  max: number;
  /** repeating in the base definition: instances are indexed in expressions */
  repeats: boolean;
  types: SdType[];
  fixed?: SdElement['fixed'];
  pattern?: SdElement['pattern'];
  binding?: { strength: string; valueSet: string };
  invariants: Invariant[];
  slicing?: NonNullable<SdElement['slicing']>;
  slices: Node[];
  sliceName?: string;
  children: Node[];
  byName: Map<string, Node>;
  choiceChildren: Node[];
  contentReference?: string;
  maxLength?: number;
  minValue?: unknown;
  maxValue?: unknown;
  isModifier: boolean;
  /** the profile this node belongs to */
  sd: Sd;
  /** the root element of its StructureDefinition */
  isRoot: boolean;
  /** `_name`: the JSON property of a primitive's id and extensions; undefined when no type of the element is primitive */
  xname: string | undefined;
  /** the type of the values of a non-choice element: its (first) type, else Element */
  type0: string;
  /** '.' + name */
  dotName: string;
  /** is type0 a primitive type */
  prim0: boolean;
  /** choice elements: JSON key (name + type suffix) → type, for the keys met so far */
  choiceKeys?: Map<string, string>;
  /** memoised children and discriminator targets */
  kids?: Node[];
  sub?: Map<string, { node: Node; own: boolean } | null>;
  /** memoised per value type: the node's invariants then the type's (those the node does not redefine) */
  invFor?: Map<string, Invariant[]>;
  /** the two memos above for type0 */
  inv0?: Invariant[];
  tp0?: CompiledSd[];
  /** memoised per value type: the compiled profiles of the type (type.profile) */
  typeProfiles?: Map<string, CompiledSd[]>;
  /** memoised per discriminator: its path, parsed, and the element it designates in this slice */
  disc?: Map<{ type: string; path: string }, Disc>;
}

interface Disc {
  /** the path without $this */
  path: string;
  /** an extension slice: the url of its definition (type profile) */
  extUrl?: string;
  segs: Seg[];
  found?: { node: Node; own: boolean };
}

/** One step of a discriminator path: a name, extension('url'), resolve() or ofType() */
interface Seg {
  kind: 'name' | 'ext' | 'resolve' | 'ofType';
  name: string;
}

interface CompiledSd {
  sd: Sd;
  root: Node;
  byId: Map<string, Node>;
}

interface Item {
  v: Json;
  /** the `_name` object of a primitive */
  x?: Json;
  type: string;
  expr: string;
}

export interface WalkContext {
  issues: Issue[];
  resource: Obj;
  rootResource: Obj;
  /** resources of the enclosing Bundle by fullUrl, to resolve references */
  bundle?: Map<string, Obj>;
  /** profile URL being applied, named in messages */
  profile: string;
  depth: number;
  /**
   * the (element list, JSON object) pairs already walked for this issue list, with the expression:
   * an element reached through several profiles that share a definition (a slice unrolled from an
   * extension, the extension's own definition, a type profile) is walked once
   */
  walked?: Map<Obj, { children: Node[]; expr: string }[]>;
  /** codings, quantities and attachments already checked against what no profile changes (code systems, inline data): once each */
  checkedValues?: Set<Obj>;
}

export interface ValidateOptions {
  /** profiles to apply in addition to meta.profile (the required profiles, or $validate's `profile`) */
  profiles?: string[];
}

const DOM_NATIVE: Record<string, (r: Obj) => boolean> = {
  'dom-2': (r) => !Array.isArray(r.contained) || r.contained.every((c) => !isObj(c) || c.contained === undefined),
  'dom-4': (r) => !Array.isArray(r.contained) || r.contained.every((c) => !isObj(c) || !isObj(c.meta) || (c.meta.versionId === undefined && c.meta.lastUpdated === undefined)),
  'dom-5': (r) => !Array.isArray(r.contained) || r.contained.every((c) => !isObj(c) || !isObj(c.meta) || c.meta.security === undefined),
  'dom-3': (r) => {
    if (!Array.isArray(r.contained) || r.contained.length === 0) return true;
    const refs = new Set<string>();
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (isObj(v)) for (const [k, x] of Object.entries(v)) (k === 'reference' && typeof x === 'string' ? refs.add(x) : walk(x));
    };
    walk(r);
    return r.contained.every((c) => !isObj(c) || refs.has(`#${String(c.id)}`) || refs.has('#'));
  },
};

/** Invariants implemented natively (the expressions are the R4 ones; a profile redefining them with other text is evaluated by fhirpath). */
const NATIVE: Record<string, { expr: string; test: (v: Json, ctx: WalkContext) => boolean }> = {
  'ext-1': { expr: 'extension.exists() != value.exists()', test: (v) => !isObj(v) || (v.extension !== undefined) !== hasValueKey(v) },
  'ref-1': {
    expr: "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))",
    test: (v, ctx) => {
      if (!isObj(v) || typeof v.reference !== 'string' || !v.reference.startsWith('#')) return true;
      const id = v.reference.slice(1);
      return id === '' || (Array.isArray(ctx.rootResource.contained) && ctx.rootResource.contained.some((c) => isObj(c) && c.id === id));
    },
  },
  'cpt-2': { expr: 'value.empty() or system.exists()', test: (v) => !isObj(v) || v.value === undefined || v.system !== undefined },
  'per-1': {
    expr: 'start.hasValue().not() or end.hasValue().not() or (start <= end)',
    test: (v) => !isObj(v) || typeof v.start !== 'string' || typeof v.end !== 'string' || v.start.length !== v.end.length || v.start <= v.end,
  },
  'qty-3': { expr: 'code.empty() or system.exists()', test: (v) => !isObj(v) || v.code === undefined || v.system !== undefined },
  'att-1': { expr: 'data.empty() or contentType.exists()', test: (v) => !isObj(v) || v.data === undefined || v.contentType !== undefined },
  // Observation (R4 core and the vital-signs profiles)
  'obs-3': { expr: 'low.exists() or high.exists() or text.exists()', test: (v) => !isObj(v) || v.low !== undefined || v.high !== undefined || v.text !== undefined || v._text !== undefined },
  'obs-6': { expr: 'dataAbsentReason.empty() or value.empty()', test: (v) => !isObj(v) || v.dataAbsentReason === undefined || !hasChoiceValue(v, 'value') },
  'obs-7': {
    expr: 'value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()',
    test: (v, ctx) => {
      if (!isObj(v) || !hasChoiceValue(v, 'value') || !Array.isArray(v.component)) return true;
      const own = isObj(ctx.resource.code) && Array.isArray(ctx.resource.code.coding) ? ctx.resource.code.coding : [];
      if (!own.length) return true;
      return !v.component.some((c) => isObj(c) && isObj(c.code) && Array.isArray(c.code.coding) && c.code.coding.some((x) => own.some((o) => deepEqual(x, o))));
    },
  },
  'vs-2': {
    expr: '(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())',
    test: (v) => !isObj(v) || v.component !== undefined || v.hasMember !== undefined || v.dataAbsentReason !== undefined || hasChoiceValue(v, 'value'),
  },
  'vs-3': { expr: 'value.exists() or dataAbsentReason.exists()', test: (v) => !isObj(v) || v.dataAbsentReason !== undefined || hasChoiceValue(v, 'value') },
};

/** vs-1 (two wordings): a dateTime effective[x] is precise to the day (instants, the other string type there, always are) */
const VS_1: Record<string, number> = { '$this is dateTime implies $this.toString().length() >= 10': 10, '($this as dateTime).toString().length() >= 8': 8 };

// FR Core Patient INS invariants, natively (same semantics as their FHIRPath, which costs ~60 µs each in fhirpath.js)
const RELIABILITY = 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability';
const VALI = "(extension('https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability').extension('identityStatus').value.exists(code = 'VALI'))";
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
/** The value[x] of an extension (the first `value…` property). */
function valueOf(e: Obj): unknown {
  for (const k in e) if (k.startsWith('value')) return e[k];
  return undefined;
}
/** Does the object hold the choice element `name` (name + type, or _name + type with an extension)? */
function hasChoiceValue(e: Obj, name: string): boolean {
  for (const k in e) if (choiceKeyMatches(k, name)) return true;
  return false;
}
function hasValueKey(e: Obj): boolean {
  for (const k in e) if (k.startsWith('value')) return true;
  return false;
}
/** identity reliability status VALI (fr-core-identity-reliability → identityStatus → code VALI) */
function isVali(r: Obj): boolean {
  const exts = r.extension;
  if (!Array.isArray(exts)) return false;
  for (const e of exts) {
    if (!isObj(e) || e.url !== RELIABILITY || !Array.isArray(e.extension)) continue;
    for (const x of e.extension) {
      if (!isObj(x) || x.url !== 'identityStatus') continue;
      const v = valueOf(x);
      if (isObj(v) && v.code === 'VALI') return true;
    }
  }
  return false;
}
const FR_NATIVE: Record<string, { expr: string; test: (v: Json) => boolean }> = {
  'fr-core-1': {
    expr: `${VALI} implies (identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.8' and use = 'official' and type.coding.exists(code = 'INS-NIR')).exists() or identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.9' and use = 'official').exists() or identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.10' and use = 'official').exists() or identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.11' and use = 'official').exists())`,
    test: (v) =>
      !isObj(v) ||
      !isVali(v) ||
      arr(v.identifier).some(
        (i) =>
          i.use === 'official' &&
          ((i.system === 'urn:oid:1.2.250.1.213.1.4.8' && isObj(i.type) && arr(i.type.coding).some((c) => c.code === 'INS-NIR')) ||
            i.system === 'urn:oid:1.2.250.1.213.1.4.9' ||
            i.system === 'urn:oid:1.2.250.1.213.1.4.10' ||
            i.system === 'urn:oid:1.2.250.1.213.1.4.11'),
      ),
  },
  'fr-core-2': { expr: `${VALI} implies (identifier.where(use = 'official').count() = 1)`, test: (v) => !isObj(v) || !isVali(v) || arr(v.identifier).filter((i) => i.use === 'official').length === 1 },
  'fr-core-3': {
    expr: `${VALI} implies extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value.extension('https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code').value.code != '99999'`,
    test: (v) => {
      if (!isObj(v) || !isVali(v)) return true;
      // the INSEE codes of the birth place: the invariant fails only when there is exactly one and it is 99999
      let n = 0;
      let code: unknown;
      for (const e of arr(v.extension)) {
        if (e.url !== 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace') continue;
        const place = valueOf(e);
        if (!isObj(place)) continue;
        for (const x of arr(place.extension)) {
          if (x.url !== 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code') continue;
          const c = valueOf(x);
          if (isObj(c) && c.code !== undefined) {
            n++;
            code = c.code;
          }
        }
      }
      return n !== 1 || code !== '99999';
    },
  },
  'pat-1': { expr: 'name.exists() or telecom.exists() or address.exists() or organization.exists()', test: (v) => !isObj(v) || ['name', 'telecom', 'address', 'organization'].some((k) => v[k] !== undefined) },
};

/**
 * The native implementation of an invariant (same semantics as its FHIRPath expression, which it must
 * match word for word), or undefined: the expression is then evaluated by fhirpath.js. Exported for
 * the tests that hold each one against fhirpath.js.
 */
export function nativeInvariant(key: string, expression: string): ((v: Json, ctx: WalkContext) => boolean) | undefined {
  const fr = FR_NATIVE[key];
  if (fr && fr.expr === expression) return fr.test;
  const native = NATIVE[key];
  if (native && native.expr === expression) return native.test;
  const vs1 = key === 'vs-1' ? VS_1[expression] : undefined;
  if (vs1) return (v) => typeof v !== 'string' || v.length >= vs1;
  return undefined;
}

/** Constraints the validator does not evaluate: ele-1 (checked natively on every element), narrative html checks (done as a primitive check). */
const SKIPPED = new Set(['ele-1', 'txt-1', 'txt-2']);

export class Validator {
  readonly terminology: Terminology;
  readonly schema: BaseSchema;
  readonly resourceTypes: ReadonlySet<string>;
  private readonly sds = new Map<string, Sd>();
  private readonly compiled = new Map<string, CompiledSd | null>();
  private readonly fhirpathCache = new Map<string, ((v: Json, env: Obj) => unknown[]) | null>();
  private readonly choiceNames = new Set<string>();
  private readonly typeNames = new Map<string, string>();
  readonly packages: Definitions['packages'];
  /** severity of a meta.profile this server does not know */
  unknownProfile: 'error' | 'warning' = 'error';

  constructor(defs: Definitions, resourceTypes: ReadonlySet<string>) {
    this.resourceTypes = resourceTypes;
    this.packages = defs.packages;
    for (const sd of defs.structureDefinitions) if (!this.sds.has(sd.url)) this.sds.set(sd.url, sd);
    this.terminology = new Terminology(defs.valueSets, defs.codeSystems, new Set(defs.packages.filter((p) => p.version === 'single files').map((p) => p.name)));
    this.schema = new BaseSchema(resourceTypes);
    for (const sd of defs.structureDefinitions) {
      if (sd.url === BASE + sd.type && sd.derivation !== 'constraint') {
        this.typeNames.set(sd.type[0].toUpperCase() + sd.type.slice(1), sd.type);
        for (const e of sd.elements) if (e.path.endsWith('[x]')) this.choiceNames.add(e.path.slice(e.path.lastIndexOf('.') + 1, -3));
      }
    }
  }

  /** The StructureDefinition of a canonical URL (version suffix ignored). */
  structureDefinition(url: string): Sd | undefined {
    return this.sds.get(url.split('|')[0]);
  }

  allStructureDefinitions(): Sd[] {
    return [...new Set(this.sds.values())];
  }

  /** Compiles every profile of these packages now (start-up), rather than on first use. */
  precompile(filter: (sd: Sd) => boolean): number {
    let n = 0;
    for (const sd of this.sds.values()) if (filter(sd) && this.compile(sd.url)) n++;
    return n;
  }

  // ---------------------------------------------------------------- compilation

  private compile(url: string): CompiledSd | undefined {
    const key = url.split('|')[0];
    const hit = this.compiled.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const sd = this.sds.get(key);
    if (!sd) {
      this.compiled.set(key, null);
      return undefined;
    }
    const byId = new Map<string, Node>();
    let root: Node | undefined;
    for (const e of sd.elements) {
      const node = this.node(e, sd);
      byId.set(e.id, node);
      if (!root) {
        root = node;
        continue;
      }
      const lastDot = e.id.lastIndexOf('.');
      const last = e.id.slice(lastDot + 1);
      const colon = last.indexOf(':');
      if (colon >= 0 && e.sliceName) {
        // a slice (or reslice "a/b") of the element named before the colon
        const slashed = last.slice(colon + 1).split('/');
        const baseId = e.id.slice(0, lastDot + 1) + last.slice(0, colon) + (slashed.length > 1 ? ':' + slashed.slice(0, -1).join('/') : '');
        const parent = byId.get(baseId);
        if (parent) parent.slices.push(node);
        continue;
      }
      const parent = byId.get(e.id.slice(0, lastDot));
      if (!parent) continue;
      parent.children.push(node);
      if (node.choice) parent.choiceChildren.push(node);
      else parent.byName.set(node.name, node);
    }
    const c: CompiledSd = { sd, root: root!, byId };
    this.compiled.set(key, c);
    return c;
  }

  private node(e: SdElement, sd: Sd): Node {
    const last = e.path.slice(e.path.lastIndexOf('.') + 1);
    const choice = last.endsWith('[x]');
    const baseMax = e.base?.max ?? e.max ?? '1';
    const node: Node = {
      id: e.id,
      path: e.path,
      name: choice ? last.slice(0, -3) : last,
      choice,
      min: e.min ?? 0,
      max: e.max === undefined || e.max === '*' ? Infinity : Number(e.max),
      repeats: baseMax !== '1' && baseMax !== '0',
      types: e.type ?? [],
      fixed: e.fixed,
      pattern: e.pattern,
      binding: e.binding?.valueSet && (e.binding.strength === 'required' || e.binding.strength === 'extensible') ? { strength: e.binding.strength, valueSet: e.binding.valueSet } : undefined,
      invariants: [],
      slicing: e.slicing,
      slices: [],
      sliceName: e.sliceName,
      children: [],
      byName: new Map(),
      choiceChildren: [],
      contentReference: e.contentReference,
      maxLength: e.maxLength,
      minValue: e.minValue,
      maxValue: e.maxValue,
      isModifier: !!e.isModifier,
      sd,
      isRoot: !e.path.includes('.'),
      type0: e.type?.[0]?.code ?? 'Element',
      dotName: '.' + (choice ? last.slice(0, -3) : last),
      prim0: PRIMITIVES.has(e.type?.[0]?.code ?? 'Element'),
      xname: !e.type || e.type.some((t) => PRIMITIVES.has(t.code)) || e.contentReference ? '_' + (choice ? last.slice(0, -3) : last) : undefined,
    };
    const fpBase = e.path.replace(/\[x\]/g, '');
    for (const c of e.constraint ?? []) {
      const inv = this.invariant(c, fpBase);
      if (inv) node.invariants.push(inv);
    }
    return node;
  }

  private invariant(c: NonNullable<SdElement['constraint']>[number], base: string): Invariant | undefined {
    if (SKIPPED.has(c.key) || c.bestPractice || !c.expression) return undefined;
    const severity = c.severity === 'error' ? 'error' : 'warning';
    const native = nativeInvariant(c.key, c.expression);
    if (native) return { key: c.key, severity, human: c.human, expression: c.expression, test: native };
    const dom = DOM_NATIVE[c.key];
    if (dom && c.key.startsWith('dom-')) return { key: c.key, severity, human: c.human, expression: c.expression, test: (v) => !isObj(v) || dom(v) };
    const fn = this.fhirpath(base, c.expression);
    // an expression the FHIRPath engine cannot compile is reported, not silently dropped
    if (!fn) return { key: c.key, severity, human: c.human, expression: c.expression, test: () => 'unknown' };
    return {
      key: c.key,
      severity,
      human: c.human,
      expression: c.expression,
      test: (v, ctx) => {
        try {
          const r = fn(v, { resource: ctx.resource, rootResource: ctx.rootResource });
          return r.length === 0 || r[0] === true || (r.length === 1 && r[0] !== false && typeof r[0] !== 'boolean');
        } catch {
          return 'unknown'; // not held against the resource, but said
        }
      },
    };
  }

  /** Compiles a FHIRPath expression once (per base path); undefined when it cannot be compiled. */
  private fhirpath(base: string, expression: string): ((v: Json, env: Obj) => unknown[]) | undefined {
    const key = `${base}|${expression}`;
    const hit = this.fhirpathCache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    let fn: ((v: Json, env: Obj) => unknown[]) | null = null;
    try {
      const compiled = fhirpath.compile({ base, expression } as unknown as string, r4model);
      fn = (v, env) => compiled(v as Obj, env as Record<string, unknown>) as unknown[];
    } catch {
      fn = null;
    }
    this.fhirpathCache.set(key, fn);
    return fn ?? undefined;
  }

  /** The compiled base type definition (HumanName, Identifier, string...). */
  private readonly typeRoots = new Map<string, CompiledSd | undefined>();

  private typeRoot(code: string): CompiledSd | undefined {
    if (this.typeRoots.has(code)) return this.typeRoots.get(code);
    const c = code.startsWith('http://hl7.org/fhirpath/System.') ? undefined : this.compile(BASE + code);
    this.typeRoots.set(code, c);
    return c;
  }

  // ---------------------------------------------------------------- expressions

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
        const type = this.typeNames.get(key.slice(i));
        if (type && this.choiceNames.has(prefix)) return { name: prefix, type };
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------- validation

  /**
   * Validates a resource against the base R4 definition, each profile in meta.profile and `options.profiles`.
   * Returns every issue (errors, warnings), each with the FHIRPath of its element.
   */
  validate(resource: unknown, options: ValidateOptions = {}): Issue[] {
    const issues: Issue[] = [];
    if (!isObj(resource) || typeof resource.resourceType !== 'string') {
      return [{ severity: 'error', code: 'structure', diagnostics: 'Not a FHIR resource: a JSON object with a resourceType is expected', expression: ['resourceType'] }];
    }
    this.validateResource(resource, resource.resourceType, options.profiles ?? [], { issues, resource, rootResource: resource, profile: '', depth: 0 });
    return dedupe(issues);
  }

  private validateResource(res: Obj, expr: string, extraProfiles: string[], outer: WalkContext): void {
    const type = res.resourceType;
    if (typeof type !== 'string' || !this.resourceTypes.has(type)) {
      outer.issues.push({ severity: 'error', code: 'structure', diagnostics: `Unknown resource type ${JSON.stringify(type)}`, expression: [`${expr}.resourceType`] });
      return;
    }
    if (outer.depth > 8) return;
    const toExpr = (p: string[]) => (expr === type ? this.expressionOf(type, p) : expr + this.expressionOf('', p));
    const schemaIssues = this.schema.validate(res, type, toExpr);
    // the whole JSON tree once, from the top (nested resources included)
    if (outer.depth === 0) schemaIssues.push(...jsonShapeIssues(res, toExpr));
    // %rootResource: a contained resource's container; any other (top level, Bundle entry, Parameters) is its own
    const container = outer.depth === 0 ? undefined : [outer.resource, outer.rootResource].find((r) => Array.isArray(r.contained) && r.contained.includes(res));
    const ctx: WalkContext = { issues: [], resource: res, rootResource: container ?? res, bundle: outer.bundle, profile: '', depth: outer.depth + 1 };
    if (type === 'Bundle' && Array.isArray(res.entry)) {
      ctx.bundle = new Map();
      for (const e of res.entry) if (isObj(e) && typeof e.fullUrl === 'string' && isObj(e.resource)) ctx.bundle.set(e.fullUrl, e.resource);
    }
    const meta = isObj(res.meta) ? res.meta : undefined;
    const declared = Array.isArray(meta?.profile) ? (meta!.profile as unknown[]).filter((p): p is string => typeof p === 'string') : [];
    const profiles: string[] = [];
    declared.forEach((p, i) => {
      const sd = this.structureDefinition(p);
      if (!sd) ctx.issues.push({ severity: this.unknownProfile, code: 'not-found', diagnostics: `Profile ${p} is not known to this server${this.unknownProfile === 'error' ? '' : '; it was not checked'}`, expression: [`${expr}.meta.profile[${i}]`] });
      else if (sd.type !== type) ctx.issues.push({ severity: 'error', code: 'invalid', diagnostics: `Profile ${p} is a profile of ${sd.type}, not of ${type}`, expression: [`${expr}.meta.profile[${i}]`] });
      else profiles.push(sd.url);
    });
    for (const p of extraProfiles) {
      const sd = this.structureDefinition(p);
      if (!sd) ctx.issues.push({ severity: 'error', code: 'not-found', diagnostics: `Profile ${p} is not known to this server`, expression: [expr] });
      else if (sd.type !== type) ctx.issues.push({ severity: 'error', code: 'invalid', diagnostics: `Profile ${p} is a profile of ${sd.type}, not of ${type}`, expression: [expr] });
      else profiles.push(sd.url);
    }
    // a profile's snapshot contains the base definition: the base is walked only when no profile applies
    const applied = [...new Set(profiles)];
    if (applied.length === 0) applied.push(BASE + type);
    for (const url of applied) {
      const c = this.compile(url);
      if (!c) continue;
      ctx.profile = url;
      this.checkItem(c.root, { v: res, type, expr }, ctx);
    }
    // the walker's findings win over the schema's at the same element (same fault, more precise words)
    const walked = new Set(ctx.issues.filter((i) => i.severity === 'error').map((i) => i.expression?.[0]));
    for (const i of schemaIssues) if (!walked.has(i.expression?.[0])) outer.issues.push(i);
    outer.issues.push(...ctx.issues);
  }

  /** Does `res` conform to the profile (no error)? Used by profile discriminators and reference targets. */
  private conforms(res: Json, profile: string, ctx: WalkContext): boolean {
    if (!isObj(res)) return false;
    const sub: WalkContext = { ...ctx, issues: [], walked: undefined, checkedValues: undefined };
    const c = this.compile(profile);
    if (!c) return false;
    if (c.sd.kind === 'resource') {
      if (res.resourceType !== c.sd.type) return false;
      this.validateResource(res, String(res.resourceType), [profile], { ...sub, depth: ctx.depth });
    } else this.checkItem(c.root, { v: res, type: c.sd.type, expr: '' }, { ...sub, profile });
    return !sub.issues.some((i) => i.severity === 'error' || i.severity === 'fatal');
  }

  private push(ctx: WalkContext, severity: Issue['severity'], code: Issue['code'], expr: string, msg: string): void {
    ctx.issues.push({ severity, code, diagnostics: ctx.profile && !ctx.profile.startsWith(BASE) ? `${msg} (profile ${ctx.profile})` : msg, expression: [expr] });
  }

  /** Values of a child element in a JSON object, with their types and expressions. */
  private collect(node: Node, obj: Obj, expr: string, ctx: WalkContext, keys?: string[]): Item[] {
    const items: Item[] = [];
    if (node.choice) {
      for (const key of keys ?? Object.keys(obj)) {
        const under = key.charCodeAt(0) === 95;
        const k = under ? key.slice(1) : key;
        if (k.length <= node.name.length || !k.startsWith(node.name)) continue;
        let type = node.choiceKeys?.get(k);
        if (type === undefined) {
          type = this.typeNames.get(k.slice(node.name.length));
          if (type) (node.choiceKeys ??= new Map()).set(k, type);
        }
        if (!type || (under && obj[k] !== undefined)) continue;
        const e = `${expr}.${node.name}.ofType(${type})`;
        if (!node.types.some((t) => t.code === type)) {
          this.push(ctx, 'error', 'structure', e, `${e}: the type ${type} is not allowed here (allowed: ${node.types.map((t) => t.code).join(', ')})`);
          continue;
        }
        items.push({ v: obj[k], x: under ? obj[key] : obj['_' + k], type, expr: e });
      }
      return items;
    }
    const v = obj[node.name];
    const x = node.xname === undefined ? undefined : obj[node.xname];
    const type = node.type0;
    if (v === undefined && x === undefined) return items;
    if (node.repeats !== Array.isArray(v ?? x)) {
      const e = `${expr}.${node.name}`;
      this.push(ctx, 'error', 'structure', e, node.repeats ? `${e}: this element repeats; a JSON array is expected` : `${e}: this element does not repeat; a single value is expected, not an array`);
      return items;
    }
    if (node.repeats) {
      const va = Array.isArray(v) ? v : v === undefined ? [] : [v];
      const xa = Array.isArray(x) ? x : x === undefined ? [] : [x];
      const n = Math.max(va.length, xa.length);
      for (let i = 0; i < n; i++) if (va[i] != null || xa[i] != null) items.push({ v: va[i] ?? undefined, x: xa[i] ?? undefined, type, expr: `${expr}.${node.name}[${i}]` });
    } else items.push({ v, x, type, expr: expr + node.dotName });
    return items;
  }

  private children(node: Node, type: string): Node[] {
    if (node.children.length) return node.children;
    if (node.types.length <= 1) return (node.kids ??= this.childrenOf(node, type));
    return this.childrenOf(node, type);
  }

  private childrenOf(node: Node, type: string): Node[] {
    if (node.contentReference) {
      const target = this.compile(node.sd.url)?.byId.get(node.contentReference.slice(node.contentReference.indexOf('#') + 1));
      if (target) return target.children.length ? target.children : this.typeRoot(target.types[0]?.code ?? 'Element')?.root.children ?? [];
    }
    return this.typeRoot(type)?.root.children ?? [];
  }

  /** `memo`: the children of a definition's root (a profile, an extension), which several paths may reach for one value */
  private walkComplex(children: Node[], obj: Obj, expr: string, ctx: WalkContext, memo = false): void {
    if (memo) {
      const walked = (ctx.walked ??= new Map());
      const done = walked.get(obj);
      if (done) {
        for (const d of done) if (d.children === children && d.expr === expr) return;
        done.push({ children, expr });
      } else walked.set(obj, [{ children, expr }]);
    }
    // an element absent from the instance only has its minimum cardinality to check. Which
    // elements are present is read from the instance's keys (one bit per element, the required
    // ones set beforehand), rather than probing the instance for every element of the definition.
    const n = children.length;
    let lo = 0;
    let hi = 0;
    if (n <= 60) {
      const idx = childIndex(children);
      lo = idx.reqLo;
      hi = idx.reqHi;
      const choices = idx.choices;
      for (const k in obj) {
        let i = idx.byKey.get(k);
        if (i === undefined) {
          for (let c = 0; c < choices.length; c++) {
            if (choiceKeyMatches(k, children[choices[c]].name)) {
              i = choices[c];
              break;
            }
          }
          if (i === undefined) continue;
        }
        if (i < 30) lo |= 1 << i;
        else hi |= 1 << (i - 30);
      }
    }
    let keys: string[] | undefined;
    for (let i = 0; i < n; i++) {
      if (n <= 60 && (i < 30 ? (lo & (1 << i)) === 0 : (hi & (1 << (i - 30))) === 0)) continue;
      const child = children[i];
      if (child.choice) {
        keys ??= Object.keys(obj);
        if (!hasChoiceKey(keys, child.name)) {
          if (child.min > 0) this.missing(child, expr, ctx);
          continue;
        }
      } else {
        const v = obj[child.name];
        const x = child.xname === undefined ? undefined : obj[child.xname];
        if (v === undefined && x === undefined) {
          if (child.min > 0) this.missing(child, expr, ctx);
          continue;
        }
        // the common case, one value of a non-repeating element: no list of items
        if (!child.repeats && child.max !== 0 && !child.slicing && !Array.isArray(v ?? x)) {
          this.checkItem(child, { v, x, type: child.type0, expr: expr + child.dotName }, ctx);
          continue;
        }
      }
      this.checkElement(child, this.collect(child, obj, expr, ctx, keys), expr, ctx);
    }
  }

  private missing(node: Node, parentExpr: string, ctx: WalkContext): void {
    const where = `${parentExpr}.${node.name}`;
    this.push(ctx, 'error', 'required', where, `${where}: minimum required = ${node.min}, but only found 0`);
  }

  private checkElement(node: Node, items: Item[], parentExpr: string, ctx: WalkContext): void {
    const where = `${parentExpr}.${node.name}`;
    if (items.length < node.min) this.push(ctx, 'error', 'required', where, `${where}: minimum required = ${node.min}, but only found ${items.length}`);
    if (items.length > node.max) this.push(ctx, 'error', 'structure', where, `${where}: maximum allowed = ${node.max}, but found ${items.length}`);
    if (items.length === 0) return;
    if (node.slicing && node.slices.length) return this.slice(node, items, where, ctx);
    const isExt = EXT_URL.has(node.name);
    for (const it of items) {
      if (isExt && !node.sliceName) this.checkExtensionByUrl(node, it, ctx, node.slicing?.rules === 'closed');
      else this.checkItem(node, it, ctx);
    }
  }

  /** An extension not matched by any slice: validated against its own definition when known. */
  private checkExtensionByUrl(node: Node, it: Item, ctx: WalkContext, closed: boolean): void {
    const url = isObj(it.v) ? it.v.url : undefined;
    if (typeof url !== 'string') {
      this.checkItem(node, it, ctx);
      return;
    }
    if (closed) this.push(ctx, 'error', 'structure', it.expr, `${it.expr}: the extension ${url} is not allowed here (closed slicing)`);
    const def = this.compile(url);
    if (!def || def.sd.type !== 'Extension') {
      if (node.name === 'modifierExtension') this.push(ctx, 'error', 'structure', it.expr, `${it.expr}: the modifier extension ${url} is not known, so the resource cannot be safely processed`);
      else this.push(ctx, 'warning', 'not-supported', it.expr, `${it.expr}: the extension ${url} is not known to this server; its content was not checked`);
      this.checkItem(node, it, ctx);
      return;
    }
    const saved = ctx.profile;
    ctx.profile = def.sd.url;
    this.checkItem(def.root, it, ctx);
    ctx.profile = saved;
  }

  private slice(node: Node, items: Item[], where: string, ctx: WalkContext): void {
    const discs = node.slicing!.discriminator ?? [];
    const assigned = items.map((it) => node.slices.find((s) => this.matchesSlice(s, it, discs, ctx)));
    for (const s of node.slices) {
      const n = assigned.filter((a) => a === s).length;
      if (n < s.min) this.push(ctx, 'error', 'required', where, `${where}: slice '${s.sliceName}' requires at least ${s.min} element(s), but found ${n}`);
      if (n > s.max) this.push(ctx, 'error', 'structure', where, `${where}: slice '${s.sliceName}' allows at most ${s.max} element(s), but found ${n}`);
    }
    const rules = node.slicing!.rules;
    let lastSlice = -1;
    let sawUnmatched = false;
    items.forEach((it, i) => {
      const s = assigned[i];
      if (s) {
        const idx = node.slices.indexOf(s);
        if (node.slicing!.ordered && idx < lastSlice) this.push(ctx, 'error', 'structure', it.expr, `${it.expr}: the element is in slice '${s.sliceName}', out of the order the profile requires`);
        if (rules === 'openAtEnd' && sawUnmatched) this.push(ctx, 'error', 'structure', it.expr, `${it.expr}: elements of slice '${s.sliceName}' must come before unsliced elements (openAtEnd)`);
        lastSlice = Math.max(lastSlice, idx);
        this.checkItem(s, it, ctx);
      } else {
        sawUnmatched = true;
        if (EXT_URL.has(node.name)) this.checkExtensionByUrl(node, it, ctx, rules === 'closed');
        else {
          if (rules === 'closed') this.push(ctx, 'error', 'structure', it.expr, `${it.expr}: the element matches none of the slices ${node.slices.map((s) => `'${s.sliceName}'`).join(', ')} and the slicing is closed`);
          this.checkItem(node, it, ctx);
        }
      }
    });
  }

  // ---------------------------------------------------------------- slicing discriminators

  private matchesSlice(slice: Node, it: Item, discs: { type: string; path: string }[], ctx: WalkContext): boolean {
    if (discs.length === 0) return false;
    for (let i = 0; i < discs.length; i++) {
      if (!this.matchesDiscriminator(slice, it, discs[i], ctx)) return false;
    }
    return true;
  }

  /** A discriminator as it applies to a slice, prepared once: its parsed path, the element it designates, what is expected there. */
  private discOf(slice: Node, d: { type: string; path: string }): Disc {
    slice.disc ??= new Map();
    let x = slice.disc.get(d);
    if (!x) {
      const path = d.path.replace(/^\$this\.?/, '');
      x = { path, segs: splitPath(path).map(parseSeg), found: path ? this.subNode(slice, path) : { node: slice, own: true }, extUrl: slice.types[0]?.profile?.[0]?.split('|')[0] };
      slice.disc.set(d, x);
    }
    return x;
  }

  private matchesDiscriminator(slice: Node, it: Item, d: { type: string; path: string }, ctx: WalkContext): boolean {
    const disc = this.discOf(slice, d);
    const path = disc.path;
    if (d.type === 'type') {
      const target = disc.found?.node ?? slice;
      if (!path) return target.types.some((t) => t.code === it.type) || (isObj(it.v) && target.types.some((t) => t.code === (it.v as Obj).resourceType));
      return this.navigate(it.v, disc.segs, ctx).some((v) => isObj(v) && target.types.some((t) => t.code === v.resourceType));
    }
    if (d.type === 'profile') {
      const target = disc.found?.node ?? slice;
      const profiles = target.types.flatMap((t) => t.profile ?? (t.targetProfile && /resolve\(\)/.test(path) ? t.targetProfile : []));
      if (!profiles.length) return false;
      const values = path ? this.navigate(it.v, disc.segs, ctx) : [it.v];
      return values.some((v) => profiles.some((p) => this.conforms(v, p, ctx)));
    }
    const found = disc.found;
    const target = found?.node;
    const values = path ? this.navigate(it.v, disc.segs, ctx) : [it.v];
    if (d.type === 'exists') {
      if (!target) return false;
      return target.min > 0 ? values.length > 0 : target.max === 0 ? values.length === 0 : true;
    }
    // value / pattern
    if (!target) {
      // extension slices by url whose definition is only referenced through the type profile
      if (path === 'url' && EXT_URL.has(slice.name)) {
        return !!disc.extUrl && isObj(it.v) && it.v.url === disc.extUrl;
      }
      return false;
    }
    const expect = target.fixed ?? target.pattern;
    if (expect) {
      const exact = !!target.fixed || expect.type === 'Canonical';
      for (let i = 0; i < values.length; i++) if (exact ? equalValue(values[i], expect.value, expect.type) : contains(expect.value, values[i])) return true;
      return false;
    }
    if (path === 'url' && EXT_URL.has(slice.name)) return !!disc.extUrl && isObj(it.v) && it.v.url === disc.extUrl;
    // a pattern on the slice itself (e.g. patternCoding) fixes the values under it
    const own = slice.pattern ?? slice.fixed;
    if (own && isObj(own.value)) {
      const expected = this.navigate(own.value, disc.segs, ctx);
      if (expected.length) return expected.every((e) => values.some((v) => contains(e, v)));
    }
    if (found!.own && target.binding?.strength === 'required') {
      return values.some((v) => this.codesOf(v).some((c) => this.terminology.check(target.binding!.valueSet, c.system, c.code).result === 'valid'));
    }
    return false;
  }

  /** The element node at a relative path inside a slice (children unrolled in the snapshot, else the base type). */
  private subNode(start: Node, path: string): { node: Node; own: boolean } | undefined {
    start.sub ??= new Map();
    const hit = start.sub.get(path);
    if (hit !== undefined) return hit ?? undefined;
    const found = this.findSubNode(start, path);
    start.sub.set(path, found ?? null);
    return found;
  }

  private findSubNode(start: Node, path: string): { node: Node; own: boolean } | undefined {
    let cur: Node | undefined = start;
    let own = true;
    for (const seg of splitPath(path)) {
      if (!cur) return undefined;
      const ext = /^extension\('([^']+)'\)$/.exec(seg);
      if (ext) {
        const extNode = this.childNode(cur, 'extension');
        cur = extNode?.slices.find((s) => s.types[0]?.profile?.[0]?.split('|')[0] === ext[1] || this.fixedUrl(s) === ext[1]);
        continue;
      }
      if (/^ofType\(|^resolve\(\)$/.test(seg)) continue;
      // through a sliced element (code.coding.code), the values are those of its required slice
      if (cur !== start && cur.slices.length) cur = cur.slices.find((x) => x.min >= 1) ?? cur;
      if (!cur.children.length) own = false;
      cur = this.childNode(cur, seg);
    }
    return cur ? { node: cur, own } : undefined;
  }

  private fixedUrl(n: Node): string | undefined {
    const u = this.childNode(n, 'url');
    return u?.fixed?.value as string | undefined;
  }

  private childNode(n: Node, name: string): Node | undefined {
    const kids = this.children(n, n.types[0]?.code ?? 'Element');
    return kids.find((k) => k.name === name);
  }

  /** Values at a simple FHIRPath (names, extension('url'), resolve(), ofType()), parsed, from a JSON value. */
  private navigate(v: Json, segs: Seg[], ctx: WalkContext): Json[] {
    // the common case, one name (url, system, code...): no intermediate arrays
    if (segs.length === 1 && segs[0].kind === 'name') {
      if (!isObj(v)) return EMPTY;
      const x = this.member(v, segs[0].name);
      return x === undefined ? EMPTY : Array.isArray(x) ? x : [x];
    }
    let cur: Json[] = [v];
    for (const seg of segs) {
      const next: Json[] = [];
      for (const c of cur) {
        if (!isObj(c)) continue;
        if (seg.kind === 'ext') {
          if (Array.isArray(c.extension)) for (const e of c.extension) if (isObj(e) && e.url === seg.name) next.push(e);
        } else if (seg.kind === 'resolve') {
          const r = this.resolve(c, ctx);
          if (r) next.push(r);
        } else if (seg.kind === 'ofType') next.push(c);
        else {
          const x = this.member(c, seg.name);
          if (Array.isArray(x)) next.push(...x);
          else if (x !== undefined) next.push(x);
        }
      }
      cur = next;
    }
    return cur;
  }

  /** A property of a JSON object by its FHIR name; a choice element by its name without the type suffix. */
  private member(c: Obj, name: string): Json {
    const x = c[name];
    if (x !== undefined) return x;
    for (const key in c) if (key.length > name.length && key.startsWith(name) && this.typeNames.has(key.slice(name.length))) return c[key];
    return undefined;
  }

  private resolve(ref: Obj, ctx: WalkContext): Obj | undefined {
    const r = ref.reference;
    if (typeof r !== 'string') return undefined;
    if (r.startsWith('#')) return (ctx.rootResource.contained as Obj[] | undefined)?.find((c) => isObj(c) && c.id === r.slice(1));
    const hit = ctx.bundle?.get(r);
    if (hit) return hit;
    if (ctx.bundle) for (const [full, res] of ctx.bundle) if (full.endsWith('/' + r)) return res;
    return undefined;
  }

  // ---------------------------------------------------------------- one value

  private checkItem(node: Node, it: Item, ctx: WalkContext): void {
    const type = it.type;
    const primitive = type === node.type0 ? node.prim0 : PRIMITIVES.has(type);
    if (primitive) {
      if (it.v !== undefined) {
        const bad = checkPrimitive(type, it.v);
        if (bad) this.push(ctx, 'error', 'value', it.expr, `${it.expr}: ${bad}`);
        else this.checkPrimitiveLimits(node, it, ctx);
      } else if (!isObj(it.x) || (it.x.extension === undefined && it.x.id === undefined)) {
        this.push(ctx, 'error', 'invalid', it.expr, `${it.expr}: a primitive element must have a value or extensions`);
      }
      if (isObj(it.x)) {
        const kids = this.children(node, type).filter((k) => k.name !== 'value');
        this.walkComplex(kids, it.x, it.expr, ctx);
      }
    } else if (isObj(it.v)) {
      const obj = it.v;
      const resourceType = typeof obj.resourceType === 'string' ? obj.resourceType : undefined;
      if (resourceType && (type === 'Resource' || type === 'DomainResource' || this.resourceTypes.has(type)) && !node.isRoot) {
        const candidates = (node.types.find((t) => t.code === type)?.profile ?? []).filter((p) => p !== BASE + 'Resource' && p !== BASE + resourceType && this.structureDefinition(p)?.type === resourceType);
        // several profiles for one element: the resource must conform to one of them
        const chosen = candidates.length > 1 ? (candidates.find((p) => this.conforms(obj, p, ctx)) ?? candidates[0]) : candidates[0];
        this.validateResource(obj, it.expr, chosen ? [chosen] : [], ctx);
        this.runInvariants(node.invariants, it, ctx);
        return;
      }
      // a resource is not an element: ele-1 does not apply to it
      if (!(node.isRoot && resourceType) && onlyIdOrType(obj)) {
        this.push(ctx, 'error', 'invalid', it.expr, `${it.expr}: all FHIR elements must have a value or children (ele-1)`);
      }
      const profiles = this.typeProfilesFor(node, type);
      // a type profile's snapshot holds every element of the base type: when the element is walked
      // against its type profile(s) below, walking it against the bare base type too would only repeat the same checks
      const covered = profiles.length > 0 && node.children.length === 0 && (type !== 'Extension' || profiles.every((d) => obj.url === d.sd.url));
      if (!covered) this.walkComplex(this.children(node, type), obj, it.expr, ctx, node.isRoot);
      this.runInvariants(this.invariantsFor(node, type), it, ctx);
      if (type === 'Reference') this.checkReference(node, obj, it, ctx);
      else if ((type === 'Coding' || type === 'Quantity' || type === 'Attachment') && firstCheck(obj, ctx)) {
        if (type === 'Attachment') this.checkAttachmentData(obj, it, ctx);
        else this.checkCodeInSystem(obj, it, ctx);
      }
      for (const def of profiles) {
        if (type === 'Extension' && obj.url !== def.sd.url) {
          this.push(ctx, 'error', 'structure', it.expr, `${it.expr}: the extension url ${String(obj.url)} is not ${def.sd.url}`);
          continue;
        }
        const saved = ctx.profile;
        ctx.profile = def.sd.url;
        this.walkComplex(def.root.children, obj, it.expr, ctx, true);
        this.runInvariants(def.root.invariants, it, ctx);
        this.checkFixedPattern(def.root, it, ctx);
        ctx.profile = saved;
      }
    } else if (it.v !== undefined) {
      this.push(ctx, 'error', 'structure', it.expr, `${it.expr}: a ${type} is a JSON object, not ${Array.isArray(it.v) ? 'an array' : typeof it.v}`);
      return;
    }
    this.checkFixedPattern(node, it, ctx);
    if (node.binding) this.checkBinding(node, it, ctx);
    if (primitive && node.invariants.length) this.runInvariants(node.invariants, it, ctx);
  }

  private checkPrimitiveLimits(node: Node, it: Item, ctx: WalkContext): void {
    if (node.maxLength && typeof it.v === 'string' && it.v.length > node.maxLength) this.push(ctx, 'error', 'too-long', it.expr, `${it.expr}: the value is longer than ${node.maxLength} characters`);
    if (node.minValue !== undefined && typeof it.v === typeof node.minValue && (it.v as number) < (node.minValue as number)) this.push(ctx, 'error', 'value', it.expr, `${it.expr}: the value is below the minimum ${String(node.minValue)}`);
    if (node.maxValue !== undefined && typeof it.v === typeof node.maxValue && (it.v as number) > (node.maxValue as number)) this.push(ctx, 'error', 'value', it.expr, `${it.expr}: the value is above the maximum ${String(node.maxValue)}`);
  }

  private checkFixedPattern(node: Node, it: Item, ctx: WalkContext): void {
    if (node.fixed && it.v !== undefined && !equalValue(it.v, node.fixed.value, node.fixed.type)) {
      this.push(ctx, 'error', 'value', it.expr, `${it.expr}: the value must be exactly ${JSON.stringify(node.fixed.value)}`);
    }
    if (node.pattern && it.v !== undefined && !(node.pattern.type === 'Canonical' ? equalValue(it.v, node.pattern.value, 'Canonical') : contains(node.pattern.value, it.v))) {
      this.push(ctx, 'error', 'value', it.expr, `${it.expr}: the value must match the pattern ${JSON.stringify(node.pattern.value)}`);
    }
  }

  private runInvariants(invariants: Invariant[], it: Item, ctx: WalkContext): void {
    for (let i = 0; i < invariants.length; i++) {
      const inv = invariants[i];
      const held = inv.test(it.v, ctx);
      if (held === 'unknown') this.push(ctx, 'warning', 'informational', it.expr, `${it.expr}: constraint ${inv.key} could not be evaluated here (${inv.expression}); it was not checked`);
      else if (!held) this.push(ctx, inv.severity, 'invariant', it.expr, `${it.expr}: constraint ${inv.key} failed: ${inv.human}`);
    }
  }

  /** The invariants of an element holding a value of `type`: its own, then the type's that it does not redefine (memoised). */
  private invariantsFor(node: Node, type: string): Invariant[] {
    if (type === node.type0 && node.inv0) return node.inv0;
    node.invFor ??= new Map();
    let list = node.invFor.get(type);
    if (!list) {
      const typeRoot = this.typeRoot(type)?.root;
      const own = new Set(node.invariants.map((i) => i.key));
      list = typeRoot && typeRoot !== node ? [...node.invariants, ...typeRoot.invariants.filter((i) => !own.has(i.key))] : node.invariants;
      node.invFor.set(type, list);
      if (type === node.type0) node.inv0 = list;
    }
    return list;
  }

  /** The profiles an element's type names (type.profile) other than the base type, compiled (memoised). */
  private typeProfilesFor(node: Node, type: string): CompiledSd[] {
    if (type === node.type0 && node.tp0) return node.tp0;
    node.typeProfiles ??= new Map();
    let list = node.typeProfiles.get(type);
    if (!list) {
      list = [];
      for (const p of node.types.find((t) => t.code === type)?.profile ?? []) {
        if (p === BASE + type) continue;
        const def = this.compile(p);
        if (def && def.sd !== node.sd) list.push(def);
      }
      node.typeProfiles.set(type, list);
      if (type === node.type0) node.tp0 = list;
    }
    return list;
  }

  private codesOf(v: Json, type?: string): { system?: string; code: string }[] {
    if (typeof v === 'string') return [{ code: v }];
    if (!isObj(v)) return [];
    if (Array.isArray(v.coding)) return v.coding.filter((c): c is Obj => isObj(c) && typeof c.code === 'string').map((c) => ({ system: c.system as string | undefined, code: c.code as string }));
    if (typeof v.code === 'string') return [{ system: type === 'Quantity' || v.system !== undefined ? (v.system as string | undefined) : undefined, code: v.code }];
    return [];
  }

  private checkBinding(node: Node, it: Item, ctx: WalkContext): void {
    const { strength, valueSet } = node.binding!;
    const t = it.type;
    if (!BINDABLE.has(t)) return;
    const codes = this.codesOf(it.v, t);
    if (codes.length === 0) return;
    let unknown: string | undefined;
    for (const c of codes) {
      const r = this.terminology.check(valueSet, t === 'code' || t === 'string' || t === 'uri' ? undefined : c.system ?? '', c.code);
      if (r.result === 'valid') return;
      if (r.result === 'unknown') unknown ??= r.reason;
    }
    const shown = codes.map((c) => (c.system ? `${c.system}#${c.code}` : c.code)).join(', ');
    if (unknown) {
      if (strength === 'required') this.push(ctx, 'warning', 'not-supported', it.expr, `${it.expr}: could not check ${shown} against the required value set ${valueSet}: ${unknown}`);
      return;
    }
    if (strength === 'required') this.push(ctx, 'error', 'code-invalid', it.expr, `${it.expr}: ${shown} is not in the value set ${valueSet} (required binding)`);
    else this.push(ctx, 'warning', 'code-invalid', it.expr, `${it.expr}: ${shown} is not in the value set ${valueSet} (extensible binding)`);
  }

  /** ElementDefinition.type.aggregation: whether the reference may be to a contained resource, to another one, or to one in the Bundle. */
  private checkAggregation(aggregation: string[], ref: Obj, reference: string, it: Item, ctx: WalkContext): void {
    const where = `${it.expr}.reference`;
    // a '#id' naming no contained resource is refused by ref-1
    if (reference.startsWith('#')) {
      if (!aggregation.includes('contained')) this.push(ctx, 'error', 'structure', where, `${where}: a reference to a contained resource is not allowed here (aggregation: ${aggregation.join(', ')})`);
    } else if (!aggregation.includes('referenced') && !(aggregation.includes('bundled') && this.resolve(ref, ctx))) {
      const allowed = aggregation.includes('bundled') ? (aggregation.includes('contained') ? 'a contained resource or a resource of the Bundle' : 'a resource of the Bundle') : 'a contained resource';
      this.push(ctx, 'error', 'structure', where, `${where}: the reference must be to ${allowed} (aggregation: ${aggregation.join(', ')})`);
    }
  }

  /** Attachment.size and Attachment.hash (base64 of the SHA-1) must be those of the inline data. */
  private checkAttachmentData(attachment: Obj, it: Item, ctx: WalkContext): void {
    const data = attachment.data;
    if (typeof data !== 'string' || (attachment.size === undefined && attachment.hash === undefined)) return;
    const bytes = Buffer.from(data, 'base64');
    if (typeof attachment.size === 'number' && attachment.size !== bytes.length) this.push(ctx, 'error', 'value', `${it.expr}.size`, `${it.expr}.size: ${attachment.size} bytes stated, but the data holds ${bytes.length}`);
    if (typeof attachment.hash === 'string') {
      const sha1 = hash('sha1', bytes, 'base64');
      if (attachment.hash.trim() !== sha1) this.push(ctx, 'error', 'value', `${it.expr}.hash`, `${it.expr}.hash: ${attachment.hash} is not the SHA-1 of the data (${sha1})`);
    }
  }

  /** A code of a code system the server holds in full must be one of its codes, whatever the binding; its display, if any, one of the code's. */
  private checkCodeInSystem(coding: Obj, it: Item, ctx: WalkContext): void {
    const { system, code } = coding;
    if (typeof system !== 'string' || typeof code !== 'string') return;
    const found = this.terminology.lookup(system, code);
    if (found.result === 'absent') this.push(ctx, 'error', 'code-invalid', it.expr, `${it.expr}: ${code} is not a code of the code system ${system}`);
    else if (found.result === 'defined' && typeof coding.display === 'string' && found.displays.length && !found.displays.some((d) => sameDisplay(d, coding.display as string))) {
      const shown = found.displays.map((d) => `"${d}"`).join(' or ');
      this.push(ctx, 'warning', 'code-invalid', `${it.expr}.display`, `${it.expr}.display: "${coding.display}" is not the display of ${system}#${code} (${shown})`);
    } else if (found.result === 'notListed') this.push(ctx, 'warning', 'not-supported', it.expr, `${it.expr}: could not check ${system}#${code}: ${found.reason}`);
  }

  private checkReference(node: Node, ref: Obj, it: Item, ctx: WalkContext): void {
    const refType = node.types.find((t) => t.code === 'Reference');
    const targets = refType?.targetProfile ?? [];
    if (typeof ref.reference !== 'string') return;
    if (refType?.aggregation) this.checkAggregation(refType.aggregation, ref, ref.reference, it, ctx);
    if (!targets.length) return;
    const resolved = this.resolve(ref, ctx);
    let targetType: string | undefined;
    if (resolved) targetType = String(resolved.resourceType);
    else {
      const m = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(ref.reference);
      targetType = m?.[1] ?? (typeof ref.type === 'string' ? ref.type : undefined);
    }
    if (!targetType) return;
    const targetSds = targets.map((t) => this.structureDefinition(t));
    if (targetSds.some((sd) => !sd)) return; // a target profile this server does not have: its type cannot be known
    const types = new Set(targetSds.map((sd, i) => sd?.type ?? targets[i].split('/').pop()!));
    if (types.has('Resource') || types.has('DomainResource')) return;
    if (!types.has(targetType)) {
      this.push(ctx, 'error', 'structure', `${it.expr}.reference`, `${it.expr}.reference: a reference to a ${targetType} is not allowed here (allowed: ${[...types].join(', ')})`);
      return;
    }
    if (resolved) {
      const profiles = targets.filter((t, i) => targetSds[i]?.type === targetType && !t.startsWith(BASE + targetType));
      const basePermitted = targets.some((t) => t.split('|')[0] === BASE + targetType);
      if (profiles.length && !basePermitted && !profiles.some((p) => this.conforms(resolved, p, ctx))) {
        this.push(ctx, 'error', 'structure', `${it.expr}.reference`, `${it.expr}.reference: the referenced ${targetType} does not conform to ${profiles.join(' or ')}`);
      }
    }
  }
}

/** The children of an element indexed by JSON key (name and _name of each non-choice element), with the choice elements and the required ones (as bits). */
interface ChildIndex {
  byKey: Map<string, number>;
  choices: number[];
  reqLo: number;
  reqHi: number;
}

const childIndexes = new WeakMap<Node[], ChildIndex>();

function childIndex(children: Node[]): ChildIndex {
  let idx = childIndexes.get(children);
  if (!idx) {
    const x: ChildIndex = { byKey: new Map(), choices: [], reqLo: 0, reqHi: 0 };
    children.forEach((c, i) => {
      if (c.choice) x.choices.push(i);
      else {
        if (!x.byKey.has(c.name)) x.byKey.set(c.name, i);
        if (c.xname !== undefined && !x.byKey.has(c.xname)) x.byKey.set(c.xname, i);
      }
      if (c.min > 0) {
        if (i < 30) x.reqLo |= 1 << i;
        else x.reqHi |= 1 << (i - 30);
      }
    });
    childIndexes.set(children, (idx = x));
  }
  return idx;
}

/** Is this the first time the value is met in this validation (several profiles may walk it)? */
function firstCheck(value: Obj, ctx: WalkContext): boolean {
  ctx.checkedValues ??= new Set();
  if (ctx.checkedValues.has(value)) return false;
  ctx.checkedValues.add(value);
  return true;
}

/** Displays compare without regard to case or runs of white space. */
function sameDisplay(a: string, b: string): boolean {
  return a === b || a.replace(/\s+/g, ' ').trim().toLowerCase() === b.replace(/\s+/g, ' ').trim().toLowerCase();
}

/** Is `key` a JSON key of the choice element `name` (name + type, or _name + type)? */
function choiceKeyMatches(k: string, name: string): boolean {
  const off = k.charCodeAt(0) === 95 ? 1 : 0;
  return k.length > name.length + off && k.startsWith(name, off);
}

/** Is there a key for the choice element `name` (name + type, or _name + type)? */
function hasChoiceKey(keys: string[], name: string): boolean {
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const off = k.charCodeAt(0) === 95 ? 1 : 0;
    if (k.length > name.length + off && k.startsWith(name, off)) return true;
  }
  return false;
}

/** An object with no property but id and resourceType (ele-1 fails). */
function onlyIdOrType(obj: Obj): boolean {
  for (const k in obj) if (k !== 'id' && k !== 'resourceType') return false;
  return true;
}

const EMPTY: Json[] = [];

function parseSeg(seg: string): Seg {
  const ext = /^extension\('([^']+)'\)$/.exec(seg);
  if (ext) return { kind: 'ext', name: ext[1] };
  if (seg === 'resolve()') return { kind: 'resolve', name: seg };
  if (seg.startsWith('ofType(')) return { kind: 'ofType', name: seg };
  return { kind: 'name', name: seg };
}

function splitPath(path: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of path) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === '.' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

/** Equality of a value with a fixed value; canonicals match when one side has no |version. */
function equalValue(v: unknown, fixed: unknown, type: string): boolean {
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

function dedupe(issues: Issue[]): Issue[] {
  if (issues.length < 2) return issues;
  // the same finding made through two profiles is reported once: the "(profile …)" suffix is not
  // compared; messages are compared only between issues at the same element
  const byExpr = new Map<string, Issue[]>();
  const out: Issue[] = [];
  for (const i of issues) {
    const e = i.expression?.length === 1 ? i.expression[0] : (i.expression?.join(',') ?? '');
    const same = byExpr.get(e);
    if (same) {
      const base = withoutProfile(i.diagnostics);
      if (same.some((o) => o.severity === i.severity && withoutProfile(o.diagnostics) === base)) continue;
      same.push(i);
    } else byExpr.set(e, [i]);
    out.push(i);
  }
  return out;
}

function withoutProfile(d: string): string {
  if (!d.endsWith(')')) return d;
  const p = d.lastIndexOf(' (profile ');
  return p >= 0 && d.indexOf(')', p) === d.length - 1 ? d.slice(0, p) : d;
}
