import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4';
import type { Issue } from '../outcome';
import { Terminology } from '../terminology/terminology';
import type { Definitions, Sd, SdElement, SdType } from './definitions';
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

type Json = unknown;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Invariant {
  key: string;
  severity: 'error' | 'warning';
  human: string;
  expression: string;
  /** evaluates the invariant on a node; true when it holds */
  test: (node: Json, ctx: WalkContext) => boolean;
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
  /** memoised children and discriminator targets */
  kids?: Node[];
  sub?: Map<string, { node: Node; own: boolean } | null>;
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
  'ext-1': { expr: 'extension.exists() != value.exists()', test: (v) => !isObj(v) || (v.extension !== undefined) !== Object.keys(v).some((k) => k.startsWith('value')) },
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
};

// FR Core Patient INS invariants, natively (same semantics as their FHIRPath, which costs ~60 µs each in fhirpath.js)
const RELIABILITY = 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability';
const VALI = "(extension('https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability').extension('identityStatus').value.exists(code = 'VALI'))";
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
const valueOf = (e: Obj): unknown => Object.keys(e).find((k) => k.startsWith('value')) !== undefined ? e[Object.keys(e).find((k) => k.startsWith('value'))!] : undefined;
const isVali = (r: Obj) => arr(r.extension).some((e) => e.url === RELIABILITY && arr(e.extension).some((x) => x.url === 'identityStatus' && isObj(valueOf(x)) && (valueOf(x) as Obj).code === 'VALI'));
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
      const codes = arr(v.extension)
        .filter((e) => e.url === 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace')
        .flatMap((e) => (isObj(valueOf(e)) ? arr((valueOf(e) as Obj).extension) : []))
        .filter((e) => e.url === 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code')
        .map((e) => (isObj(valueOf(e)) ? (valueOf(e) as Obj).code : undefined))
        .filter((c) => c !== undefined);
      return codes.length !== 1 || codes[0] !== '99999';
    },
  },
  'pat-1': { expr: 'name.exists() or telecom.exists() or address.exists() or organization.exists()', test: (v) => !isObj(v) || ['name', 'telecom', 'address', 'organization'].some((k) => v[k] !== undefined) },
};

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
    const fr = FR_NATIVE[c.key];
    if (fr && fr.expr === c.expression) return { key: c.key, severity, human: c.human, expression: c.expression, test: fr.test };
    const native = NATIVE[c.key];
    if (native && native.expr === c.expression) return { key: c.key, severity, human: c.human, expression: c.expression, test: native.test };
    const dom = DOM_NATIVE[c.key];
    if (dom && c.key.startsWith('dom-')) return { key: c.key, severity, human: c.human, expression: c.expression, test: (v) => !isObj(v) || dom(v) };
    const fn = this.fhirpath(base, c.expression);
    if (!fn) return undefined;
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
          return true; // an expression this engine cannot evaluate on this input is not held against the resource
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
    const ctx: WalkContext = { issues: [], resource: res, rootResource: outer.depth === 0 ? res : outer.rootResource, bundle: outer.bundle, profile: '', depth: outer.depth + 1 };
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
    const sub: WalkContext = { ...ctx, issues: [] };
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
  private collect(node: Node, obj: Obj, expr: string, ctx: WalkContext): Item[] {
    const items: Item[] = [];
    if (node.choice) {
      for (const key of Object.keys(obj)) {
        const k = key.startsWith('_') ? key.slice(1) : key;
        if (!k.startsWith(node.name) || k.length === node.name.length) continue;
        const suffix = k.slice(node.name.length);
        const type = this.typeNames.get(suffix);
        if (!type || key.startsWith('_') && obj[k] !== undefined) continue;
        const e = `${expr}.${node.name}.ofType(${type})`;
        if (!node.types.some((t) => t.code === type)) {
          this.push(ctx, 'error', 'structure', e, `${e}: the type ${type} is not allowed here (allowed: ${node.types.map((t) => t.code).join(', ')})`);
          continue;
        }
        items.push({ v: obj[k], x: obj['_' + k], type, expr: e });
      }
      return items;
    }
    const v = obj[node.name];
    const x = obj['_' + node.name];
    const type = node.types.length === 1 ? node.types[0].code : node.types[0]?.code ?? 'Element';
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
    } else items.push({ v, x, type, expr: `${expr}.${node.name}` });
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

  private walkComplex(children: Node[], obj: Obj, expr: string, ctx: WalkContext): void {
    for (const child of children) {
      const items = this.collect(child, obj, expr, ctx);
      this.checkElement(child, items, expr, ctx);
    }
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
    for (const d of discs) {
      if (!this.matchesDiscriminator(slice, it, d, ctx)) return false;
    }
    return true;
  }

  private matchesDiscriminator(slice: Node, it: Item, d: { type: string; path: string }, ctx: WalkContext): boolean {
    const path = d.path.replace(/^\$this\.?/, '');
    if (d.type === 'type') {
      const target = path ? this.subNode(slice, path)?.node : slice;
      const values = path ? this.navigate(it.v, path, ctx) : [it.v];
      const allowed = new Set((target ?? slice).types.map((t) => t.code));
      if (!path) return allowed.has(it.type) || (isObj(it.v) && allowed.has(String(it.v.resourceType)));
      return values.some((v) => isObj(v) && allowed.has(String(v.resourceType)));
    }
    if (d.type === 'profile') {
      const target = path ? this.subNode(slice, path)?.node : slice;
      const profiles = (target ?? slice).types.flatMap((t) => t.profile ?? (t.targetProfile && /resolve\(\)/.test(path) ? t.targetProfile : []));
      const values = path ? this.navigate(it.v, path, ctx) : [it.v];
      if (!profiles.length) return false;
      return values.some((v) => profiles.some((p) => this.conforms(v, p, ctx)));
    }
    const found = path ? this.subNode(slice, path) : { node: slice, own: true };
    const target = found?.node;
    const values = path ? this.navigate(it.v, path, ctx) : [it.v];
    if (d.type === 'exists') {
      if (!target) return false;
      return target.min > 0 ? values.length > 0 : target.max === 0 ? values.length === 0 : true;
    }
    // value / pattern
    if (!target) {
      // extension slices by url whose definition is only referenced through the type profile
      if (path === 'url' && EXT_URL.has(slice.name)) {
        const url = slice.types[0]?.profile?.[0]?.split('|')[0];
        return !!url && isObj(it.v) && it.v.url === url;
      }
      return false;
    }
    const expect = target.fixed ?? target.pattern;
    if (expect) return values.some((v) => (target.fixed || expect.type === 'Canonical' ? equalValue(v, expect.value, expect.type) : contains(expect.value, v)));
    if (path === 'url' && EXT_URL.has(slice.name)) {
      const url = slice.types[0]?.profile?.[0]?.split('|')[0];
      return !!url && isObj(it.v) && it.v.url === url;
    }
    // a pattern on the slice itself (e.g. patternCoding) fixes the values under it
    const own = slice.pattern ?? slice.fixed;
    if (own && isObj(own.value)) {
      const expected = this.navigate(own.value, path, ctx);
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

  /** Values at a simple FHIRPath (names, extension('url'), resolve(), ofType()) from a JSON value. */
  private navigate(v: Json, path: string, ctx: WalkContext): Json[] {
    let cur: Json[] = [v];
    for (const seg of splitPath(path)) {
      const next: Json[] = [];
      const ext = /^extension\('([^']+)'\)$/.exec(seg);
      for (const c of cur) {
        if (!isObj(c)) continue;
        if (ext) {
          if (Array.isArray(c.extension)) for (const e of c.extension) if (isObj(e) && e.url === ext[1]) next.push(e);
        } else if (seg === 'resolve()') {
          const r = this.resolve(c, ctx);
          if (r) next.push(r);
        } else if (seg.startsWith('ofType(')) next.push(c);
        else {
          let x = c[seg];
          if (x === undefined) {
            const k = Object.keys(c).find((key) => key.startsWith(seg) && this.typeNames.has(key.slice(seg.length)));
            if (k) x = c[k];
          }
          if (Array.isArray(x)) next.push(...x);
          else if (x !== undefined) next.push(x);
        }
      }
      cur = next;
    }
    return cur;
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
    const primitive = PRIMITIVES.has(type);
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
        this.checkInvariants(node, it, ctx, undefined);
        return;
      }
      if (Object.keys(obj).every((k) => k === 'id' || k === 'resourceType')) {
        this.push(ctx, 'error', 'invalid', it.expr, `${it.expr}: all FHIR elements must have a value or children (ele-1)`);
      }
      this.walkComplex(this.children(node, type), obj, it.expr, ctx);
      const typeRoot = node.children.length || node.types.length !== 1 ? this.typeRoot(type) : this.typeRoot(type);
      this.checkInvariants(node, it, ctx, typeRoot && typeRoot.root !== node ? typeRoot.root : undefined);
      if (type === 'Reference') this.checkReference(node, obj, it, ctx);
      const tprofiles = node.types.find((t) => t.code === type)?.profile ?? [];
      for (const p of tprofiles) {
        if (p === BASE + type) continue;
        const def = this.compile(p);
        if (!def || def.sd === node.sd) continue;
        if (type === 'Extension' && isObj(obj) && obj.url !== def.sd.url) {
          this.push(ctx, 'error', 'structure', it.expr, `${it.expr}: the extension url ${String(obj.url)} is not ${def.sd.url}`);
          continue;
        }
        const saved = ctx.profile;
        ctx.profile = def.sd.url;
        this.walkComplex(def.root.children, obj, it.expr, ctx);
        this.checkInvariants(def.root, it, ctx, undefined);
        this.checkFixedPattern(def.root, it, ctx);
        ctx.profile = saved;
      }
    } else if (it.v !== undefined) {
      this.push(ctx, 'error', 'structure', it.expr, `${it.expr}: a ${type} is a JSON object, not ${Array.isArray(it.v) ? 'an array' : typeof it.v}`);
      return;
    }
    this.checkFixedPattern(node, it, ctx);
    if (node.binding) this.checkBinding(node, it, ctx);
    if (primitive && node.invariants.length) this.checkInvariants(node, it, ctx, undefined);
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

  private checkInvariants(node: Node, it: Item, ctx: WalkContext, typeRoot: Node | undefined): void {
    const seen = node.invariants.length && typeRoot ? new Set(node.invariants.map((i) => i.key)) : undefined;
    const run = (inv: Invariant) => {
      if (!inv.test(it.v, ctx)) {
        this.push(ctx, inv.severity, 'invariant', it.expr, `${it.expr}: constraint ${inv.key} failed: ${inv.human}`);
      }
    };
    for (const inv of node.invariants) run(inv);
    if (typeRoot) for (const inv of typeRoot.invariants) if (!seen?.has(inv.key)) run(inv);
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
    if (!['code', 'Coding', 'CodeableConcept', 'Quantity', 'string', 'uri', 'CodeableReference'].includes(t)) return;
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

  private checkReference(node: Node, ref: Obj, it: Item, ctx: WalkContext): void {
    const targets = node.types.find((t) => t.code === 'Reference')?.targetProfile ?? [];
    if (!targets.length || typeof ref.reference !== 'string') return;
    const resolved = this.resolve(ref, ctx);
    let refType: string | undefined;
    if (resolved) refType = String(resolved.resourceType);
    else {
      const m = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(ref.reference);
      refType = m?.[1] ?? (typeof ref.type === 'string' ? ref.type : undefined);
    }
    if (!refType) return;
    const targetSds = targets.map((t) => this.structureDefinition(t));
    if (targetSds.some((sd) => !sd)) return; // a target profile this server does not have: its type cannot be known
    const types = new Set(targetSds.map((sd, i) => sd?.type ?? targets[i].split('/').pop()!));
    if (types.has('Resource') || types.has('DomainResource')) return;
    if (!types.has(refType)) {
      this.push(ctx, 'error', 'structure', `${it.expr}.reference`, `${it.expr}.reference: a reference to a ${refType} is not allowed here (allowed: ${[...types].join(', ')})`);
      return;
    }
    if (resolved) {
      const profiles = targets.filter((t, i) => targetSds[i]?.type === refType && !t.startsWith(BASE + refType));
      const basePermitted = targets.some((t) => t.split('|')[0] === BASE + refType);
      if (profiles.length && !basePermitted && !profiles.some((p) => this.conforms(resolved, p, ctx))) {
        this.push(ctx, 'error', 'structure', `${it.expr}.reference`, `${it.expr}.reference: the referenced ${refType} does not conform to ${profiles.join(' or ')}`);
      }
    }
  }
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
  if (type === 'Canonical' && typeof v === 'string' && typeof fixed === 'string') {
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
    return Object.entries(pattern).every(([k, p]) => contains(p, value[k]));
  }
  if (Array.isArray(value)) return value.some((v) => contains(pattern, v));
  return pattern === value;
}

function dedupe(issues: Issue[]): Issue[] {
  const seen = new Set<string>();
  const out: Issue[] = [];
  for (const i of issues) {
    const key = `${i.severity}|${i.expression?.join(',')}|${i.diagnostics.replace(/ \(profile [^)]*\)$/, '')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(i);
  }
  return out;
}
