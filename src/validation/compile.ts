import type { Sd, SdElement } from './definitions';
import { InvariantCompiler } from './invariants';
import { BASE, type CompiledSd, type Node } from './model';
import { PRIMITIVES } from './primitives';

/**
 * Profiles compiled into the checker's form: each StructureDefinition snapshot once into a tree of
 * element nodes (children, slices, cardinality, types, fixed/pattern, bindings, invariants), on first
 * use or at start-up (precompile). Also what the walk asks of the compiled trees, memoised on the
 * nodes: the children of an element for a value's type, the invariants and type profiles that apply.
 */
export class CompiledProfiles {
  private readonly sds = new Map<string, Sd>();
  private readonly compiled = new Map<string, CompiledSd | null>();
  /** the compiled base type definitions (HumanName, Identifier, string...) */
  private readonly typeRoots = new Map<string, CompiledSd | undefined>();
  private readonly invariants = new InvariantCompiler();

  constructor(sds: Sd[]) {
    for (const sd of sds) if (!this.sds.has(sd.url)) this.sds.set(sd.url, sd);
  }

  /** The StructureDefinition of a canonical URL (version suffix ignored). */
  structureDefinition(url: string): Sd | undefined {
    return this.sds.get(url.split('|')[0]);
  }

  allStructureDefinitions(): Sd[] {
    return [...new Set(this.sds.values())];
  }

  /** Compiles every profile that `filter` accepts now (start-up), rather than on first use. */
  precompile(filter: (sd: Sd) => boolean): number {
    let n = 0;
    for (const sd of this.sds.values()) if (filter(sd) && this.compile(sd.url)) n++;
    return n;
  }

  /** The compiled profile of a canonical URL (memoised); undefined when the server does not have it. */
  compile(url: string): CompiledSd | undefined {
    const key = url.split('|')[0];
    const hit = this.compiled.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const sd = this.sds.get(key);
    if (!sd) {
      this.compiled.set(key, null);
      return undefined;
    }
    const c = this.tree(sd);
    this.compiled.set(key, c);
    return c;
  }

  /** The snapshot's elements as a tree: each element under its parent, a slice (or reslice "a/b") under the element it slices. */
  private tree(sd: Sd): CompiledSd {
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
    return { sd, root: root!, byId };
  }

  private node(e: SdElement, sd: Sd): Node {
    const last = e.path.slice(e.path.lastIndexOf('.') + 1);
    const choice = last.endsWith('[x]');
    const name = choice ? last.slice(0, -3) : last;
    const baseMax = e.base?.max ?? e.max ?? '1';
    const node: Node = {
      id: e.id,
      path: e.path,
      name,
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
      dotName: '.' + name,
      prim0: PRIMITIVES.has(e.type?.[0]?.code ?? 'Element'),
      xname: !e.type || e.type.some((t) => PRIMITIVES.has(t.code)) || e.contentReference ? '_' + name : undefined,
    };
    const fpBase = e.path.replace(/\[x\]/g, '');
    for (const c of e.constraint ?? []) {
      const inv = this.invariants.compile(c, fpBase);
      if (inv) node.invariants.push(inv);
    }
    return node;
  }

  /** The compiled base definition of a type (HumanName, Identifier, string...); none for the FHIRPath System types. */
  typeRoot(code: string): CompiledSd | undefined {
    if (this.typeRoots.has(code)) return this.typeRoots.get(code);
    const c = code.startsWith('http://hl7.org/fhirpath/System.') ? undefined : this.compile(BASE + code);
    this.typeRoots.set(code, c);
    return c;
  }

  /** The child elements of an element holding a value of `type`: unrolled in the profile, else those of its content reference or type. */
  children(node: Node, type: string): Node[] {
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

  /** The child element of that name, for the element's first type. */
  childNode(n: Node, name: string): Node | undefined {
    const kids = this.children(n, n.types[0]?.code ?? 'Element');
    return kids.find((k) => k.name === name);
  }

  /** The invariants of an element holding a value of `type`: its own, then the type's that it does not redefine (memoised). */
  invariantsFor(node: Node, type: string): Node['invariants'] {
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
  typeProfilesFor(node: Node, type: string): CompiledSd[] {
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
}
