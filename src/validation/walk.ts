import type { Issue } from '../outcome';
import type { Bindings } from './bindings';
import type { CompiledProfiles } from './compile';
import { checkAttachmentData, checkCardinality, checkFixedPattern, checkPrimitiveValue } from './element-checks';
import { runInvariants } from './invariants';
import { push } from './issues';
import { jsonShapeIssues } from './json-shape';
import { BASE, EXT_URL, isObj, type CompiledSd, type Item, type Json, type Node, type Obj, type Walk, type WalkContext } from './model';
import { PRIMITIVES } from './primitives';
import { References } from './references';
import type { BaseSchema } from './schema';
import { Slicing } from './slicing';
import { choiceKeyMatches, hasChoiceKey, type TypeNames } from './type-names';

/**
 * The element walk: a resource is checked against the base JSON structure (schema.ts, json-shape.ts),
 * then walked against the compiled tree of each profile that applies to it. The walk goes down the
 * instance's JSON and the tree together: for each element, the values present (collected by key,
 * with their types), their cardinality, slices (slicing.ts), and each value's checks
 * (element-checks.ts, bindings.ts, references.ts, invariants.ts); a complex value is walked in turn
 * against its type's children and the profiles its type names, a nested resource validated as one.
 */
export class Walker implements Walk {
  /** severity of a meta.profile this server does not know */
  unknownProfile: 'error' | 'warning' = 'error';
  private readonly slicing: Slicing;
  private readonly references: References;

  constructor(
    private readonly profiles: CompiledProfiles,
    private readonly typeNames: TypeNames,
    private readonly schema: BaseSchema,
    private readonly bindings: Bindings,
    private readonly resourceTypes: ReadonlySet<string>,
  ) {
    this.slicing = new Slicing(profiles, typeNames, bindings, this);
    this.references = new References(profiles, this);
  }

  // ---------------------------------------------------------------- resources

  /** A resource (`expr` its expression: its type, or where it is nested) against its structure and every profile that applies. */
  validateResource(res: Obj, expr: string, extraProfiles: string[], outer: WalkContext): void {
    const type = res.resourceType;
    if (typeof type !== 'string' || !this.resourceTypes.has(type)) {
      outer.issues.push({ severity: 'error', code: 'structure', diagnostics: `Unknown resource type ${JSON.stringify(type)}`, expression: [`${expr}.resourceType`] });
      return;
    }
    if (outer.depth > 8) return;
    const toExpr = (p: string[]) => (expr === type ? this.typeNames.expressionOf(type, p) : expr + this.typeNames.expressionOf('', p));
    const schemaIssues = this.schema.validate(res, type, toExpr);
    // the whole JSON tree once, from the top (nested resources included)
    if (outer.depth === 0) schemaIssues.push(...jsonShapeIssues(res, toExpr));
    const ctx = resourceContext(res, outer);
    for (const url of this.profilesToApply(res, type, expr, extraProfiles, ctx)) {
      const c = this.profiles.compile(url);
      if (!c) continue;
      ctx.profile = url;
      this.checkItem(c.root, { v: res, type, expr }, ctx);
    }
    // the walker's findings win over the schema's at the same element (same fault, more precise words)
    const walked = new Set(ctx.issues.filter((i) => i.severity === 'error').map((i) => i.expression?.[0]));
    for (const i of schemaIssues) if (!walked.has(i.expression?.[0])) outer.issues.push(i);
    outer.issues.push(...ctx.issues);
  }

  /** Its meta.profile and `extraProfiles` that are known profiles of its type, each once; the base definition when there are none. */
  private profilesToApply(res: Obj, type: string, expr: string, extraProfiles: string[], ctx: WalkContext): string[] {
    const meta = isObj(res.meta) ? res.meta : undefined;
    const declared = Array.isArray(meta?.profile) ? (meta!.profile as unknown[]).filter((p): p is string => typeof p === 'string') : [];
    const profiles: string[] = [];
    declared.forEach((p, i) => {
      const url = this.profileOf(p, type, `${expr}.meta.profile[${i}]`, this.unknownProfile, ctx);
      if (url) profiles.push(url);
    });
    for (const p of extraProfiles) {
      const url = this.profileOf(p, type, expr, 'error', ctx);
      if (url) profiles.push(url);
    }
    // a profile's snapshot contains the base definition: the base is walked only when no profile applies
    const applied = [...new Set(profiles)];
    if (applied.length === 0) applied.push(BASE + type);
    return applied;
  }

  /** The URL of a profile that is known and of this type; else an issue at `where` says why. */
  private profileOf(p: string, type: string, where: string, unknown: Issue['severity'], ctx: WalkContext): string | undefined {
    const sd = this.profiles.structureDefinition(p);
    if (!sd) ctx.issues.push({ severity: unknown, code: 'not-found', diagnostics: `Profile ${p} is not known to this server${unknown === 'error' ? '' : '; it was not checked'}`, expression: [where] });
    else if (sd.type !== type) ctx.issues.push({ severity: 'error', code: 'invalid', diagnostics: `Profile ${p} is a profile of ${sd.type}, not of ${type}`, expression: [where] });
    else return sd.url;
    return undefined;
  }

  /** Does `res` conform to the profile (no error)? Used by profile discriminators and reference targets. */
  conforms(res: Json, profile: string, ctx: WalkContext): boolean {
    if (!isObj(res)) return false;
    const sub: WalkContext = { ...ctx, issues: [], walked: undefined, checkedValues: undefined };
    const c = this.profiles.compile(profile);
    if (!c) return false;
    if (c.sd.kind === 'resource') {
      if (res.resourceType !== c.sd.type) return false;
      this.validateResource(res, String(res.resourceType), [profile], { ...sub, depth: ctx.depth });
    } else this.checkItem(c.root, { v: res, type: c.sd.type, expr: '' }, { ...sub, profile });
    return !sub.issues.some((i) => i.severity === 'error' || i.severity === 'fatal');
  }

  // ---------------------------------------------------------------- elements

  /** `memo`: the children of a definition's root (a profile, an extension), which several paths may reach for one value */
  private walkComplex(children: Node[], obj: Obj, expr: string, ctx: WalkContext, memo = false): void {
    if (memo && alreadyWalked(children, obj, expr, ctx)) return;
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
          if (child.min > 0) checkCardinality(child, 0, `${expr}.${child.name}`, ctx);
          continue;
        }
      } else {
        const v = obj[child.name];
        const x = child.xname === undefined ? undefined : obj[child.xname];
        if (v === undefined && x === undefined) {
          if (child.min > 0) checkCardinality(child, 0, `${expr}.${child.name}`, ctx);
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

  /** Values of a child element in a JSON object, with their types and expressions. */
  private collect(node: Node, obj: Obj, expr: string, ctx: WalkContext, keys?: string[]): Item[] {
    if (node.choice) return this.collectChoice(node, obj, expr, ctx, keys);
    const items: Item[] = [];
    const v = obj[node.name];
    const x = node.xname === undefined ? undefined : obj[node.xname];
    const type = node.type0;
    if (v === undefined && x === undefined) return items;
    if (node.repeats !== Array.isArray(v ?? x)) {
      const e = `${expr}.${node.name}`;
      push(ctx, 'error', 'structure', e, node.repeats ? `${e}: this element repeats; a JSON array is expected` : `${e}: this element does not repeat; a single value is expected, not an array`);
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

  /** The values of a choice element (`value[x]`): each key of its name with a type suffix, of a type the element allows. */
  private collectChoice(node: Node, obj: Obj, expr: string, ctx: WalkContext, keys?: string[]): Item[] {
    const items: Item[] = [];
    for (const key of keys ?? Object.keys(obj)) {
      const under = key.charCodeAt(0) === 95;
      const k = under ? key.slice(1) : key;
      if (k.length <= node.name.length || !k.startsWith(node.name)) continue;
      let type = node.choiceKeys?.get(k);
      if (type === undefined) {
        type = this.typeNames.typeOfSuffix(k.slice(node.name.length));
        if (type) (node.choiceKeys ??= new Map()).set(k, type);
      }
      if (!type || (under && obj[k] !== undefined)) continue;
      const e = `${expr}.${node.name}.ofType(${type})`;
      if (!node.types.some((t) => t.code === type)) {
        push(ctx, 'error', 'structure', e, `${e}: the type ${type} is not allowed here (allowed: ${node.types.map((t) => t.code).join(', ')})`);
        continue;
      }
      items.push({ v: obj[k], x: under ? obj[key] : obj['_' + k], type, expr: e });
    }
    return items;
  }

  private checkElement(node: Node, items: Item[], parentExpr: string, ctx: WalkContext): void {
    const where = `${parentExpr}.${node.name}`;
    checkCardinality(node, items.length, where, ctx);
    if (items.length === 0) return;
    if (node.slicing && node.slices.length) return this.slicing.slice(node, items, where, ctx);
    const isExt = EXT_URL.has(node.name);
    for (const it of items) {
      if (isExt && !node.sliceName) this.checkExtensionByUrl(node, it, ctx, node.slicing?.rules === 'closed');
      else this.checkItem(node, it, ctx);
    }
  }

  /** An extension not matched by any slice: validated against its own definition when known. */
  checkExtensionByUrl(node: Node, it: Item, ctx: WalkContext, closed: boolean): void {
    const url = isObj(it.v) ? it.v.url : undefined;
    if (typeof url !== 'string') {
      this.checkItem(node, it, ctx);
      return;
    }
    if (closed) push(ctx, 'error', 'structure', it.expr, `${it.expr}: the extension ${url} is not allowed here (closed slicing)`);
    const def = this.profiles.compile(url);
    if (!def || def.sd.type !== 'Extension') {
      if (node.name === 'modifierExtension') push(ctx, 'error', 'structure', it.expr, `${it.expr}: the modifier extension ${url} is not known, so the resource cannot be safely processed`);
      else push(ctx, 'warning', 'not-supported', it.expr, `${it.expr}: the extension ${url} is not known to this server; its content was not checked`);
      this.checkItem(node, it, ctx);
      return;
    }
    const saved = ctx.profile;
    ctx.profile = def.sd.url;
    this.checkItem(def.root, it, ctx);
    ctx.profile = saved;
  }

  // ---------------------------------------------------------------- one value

  /** One value of an element: a primitive, a complex value (walked in turn) or a nested resource; then fixed/pattern, binding, invariants. */
  checkItem(node: Node, it: Item, ctx: WalkContext): void {
    const type = it.type;
    const primitive = type === node.type0 ? node.prim0 : PRIMITIVES.has(type);
    if (primitive) {
      checkPrimitiveValue(node, it, ctx);
      if (isObj(it.x)) {
        const kids = this.profiles.children(node, type).filter((k) => k.name !== 'value');
        this.walkComplex(kids, it.x, it.expr, ctx);
      }
    } else if (isObj(it.v)) {
      const obj = it.v;
      const resourceType = typeof obj.resourceType === 'string' ? obj.resourceType : undefined;
      if (resourceType && (type === 'Resource' || type === 'DomainResource' || this.resourceTypes.has(type)) && !node.isRoot) {
        this.checkNestedResource(node, it, obj, resourceType, ctx);
        return;
      }
      // a resource is not an element: ele-1 does not apply to it
      if (!(node.isRoot && resourceType) && onlyIdOrType(obj)) {
        push(ctx, 'error', 'invalid', it.expr, `${it.expr}: all FHIR elements must have a value or children (ele-1)`);
      }
      this.checkComplex(node, it, obj, ctx);
    } else if (it.v !== undefined) {
      push(ctx, 'error', 'structure', it.expr, `${it.expr}: a ${type} is a JSON object, not ${Array.isArray(it.v) ? 'an array' : typeof it.v}`);
      return;
    }
    checkFixedPattern(node, it, ctx);
    if (node.binding) this.bindings.check(node, it, ctx);
    if (primitive && node.invariants.length) runInvariants(node.invariants, it, ctx);
  }

  /** A resource inside an element (contained, Bundle.entry.resource, Parameters): validated as a resource, against the element's profile for it. */
  private checkNestedResource(node: Node, it: Item, obj: Obj, resourceType: string, ctx: WalkContext): void {
    const candidates = (node.types.find((t) => t.code === it.type)?.profile ?? []).filter((p) => p !== BASE + 'Resource' && p !== BASE + resourceType && this.profiles.structureDefinition(p)?.type === resourceType);
    // several profiles for one element: the resource must conform to one of them
    const chosen = candidates.length > 1 ? (candidates.find((p) => this.conforms(obj, p, ctx)) ?? candidates[0]) : candidates[0];
    this.validateResource(obj, it.expr, chosen ? [chosen] : [], ctx);
    runInvariants(node.invariants, it, ctx);
  }

  /** A complex value: its children, its invariants, what its type asks (a Reference's target, a code in its system, an attachment's data), its type profiles. */
  private checkComplex(node: Node, it: Item, obj: Obj, ctx: WalkContext): void {
    const type = it.type;
    const profiles = this.profiles.typeProfilesFor(node, type);
    // a type profile's snapshot holds every element of the base type: when the element is walked
    // against its type profile(s) below, walking it against the bare base type too would only repeat the same checks
    const covered = profiles.length > 0 && node.children.length === 0 && (type !== 'Extension' || profiles.every((d) => obj.url === d.sd.url));
    if (!covered) this.walkComplex(this.profiles.children(node, type), obj, it.expr, ctx, node.isRoot);
    runInvariants(this.profiles.invariantsFor(node, type), it, ctx);
    if (type === 'Reference') this.references.check(node, obj, it, ctx);
    else if ((type === 'Coding' || type === 'Quantity' || type === 'Attachment') && firstCheck(obj, ctx)) {
      if (type === 'Attachment') checkAttachmentData(obj, it, ctx);
      else this.bindings.checkCodeInSystem(obj, it, ctx);
    }
    if (profiles.length) this.checkTypeProfiles(profiles, it, obj, ctx);
  }

  /** A complex value against each profile its element's type names (an extension's definition, a FR Core datatype profile). */
  private checkTypeProfiles(profiles: CompiledSd[], it: Item, obj: Obj, ctx: WalkContext): void {
    for (const def of profiles) {
      if (it.type === 'Extension' && obj.url !== def.sd.url) {
        push(ctx, 'error', 'structure', it.expr, `${it.expr}: the extension url ${String(obj.url)} is not ${def.sd.url}`);
        continue;
      }
      const saved = ctx.profile;
      ctx.profile = def.sd.url;
      this.walkComplex(def.root.children, obj, it.expr, ctx, true);
      runInvariants(def.root.invariants, it, ctx);
      checkFixedPattern(def.root, it, ctx);
      ctx.profile = saved;
    }
  }
}

/** The context of a resource's own walk: %resource is itself; %rootResource its container when contained, else itself; a Bundle's entries by fullUrl. */
function resourceContext(res: Obj, outer: WalkContext): WalkContext {
  // %rootResource: a contained resource's container; any other (top level, Bundle entry, Parameters) is its own
  const container = outer.depth === 0 ? undefined : [outer.resource, outer.rootResource].find((r) => Array.isArray(r.contained) && r.contained.includes(res));
  const ctx: WalkContext = { issues: [], resource: res, rootResource: container ?? res, bundle: outer.bundle, profile: '', depth: outer.depth + 1 };
  if (res.resourceType === 'Bundle' && Array.isArray(res.entry)) {
    ctx.bundle = new Map();
    for (const e of res.entry) if (isObj(e) && typeof e.fullUrl === 'string' && isObj(e.resource)) ctx.bundle.set(e.fullUrl, e.resource);
  }
  return ctx;
}

/** Has this object been walked against these children at this expression already, for this issue list? Records it otherwise. */
function alreadyWalked(children: Node[], obj: Obj, expr: string, ctx: WalkContext): boolean {
  const walked = (ctx.walked ??= new Map());
  const done = walked.get(obj);
  if (done) {
    for (const d of done) if (d.children === children && d.expr === expr) return true;
    done.push({ children, expr });
  } else walked.set(obj, [{ children, expr }]);
  return false;
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

/** An object with no property but id and resourceType (ele-1 fails). */
function onlyIdOrType(obj: Obj): boolean {
  for (const k in obj) if (k !== 'id' && k !== 'resourceType') return false;
  return true;
}
