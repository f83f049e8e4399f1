import type { Bindings } from './bindings';
import type { CompiledProfiles } from './compile';
import { contains, equalValue } from './equality';
import { push } from './issues';
import { EXT_URL, isObj, type Disc, type Item, type Json, type Node, type Obj, type Seg, type Walk, type WalkContext } from './model';
import { resolve } from './references';
import type { TypeNames } from './type-names';

/**
 * Slicing: the values of a sliced element are each given to the first slice whose discriminators
 * they all match (value, pattern, exists, type, profile; a discriminator path is a simple FHIRPath
 * of names, extension('url'), resolve() and ofType()), then each slice's cardinality, the order
 * (ordered) and the place of unsliced values (closed, openAtEnd) are checked, and every value is
 * walked against its slice, or against the sliced element (an extension by its own definition).
 */

type Discriminator = { type: string; path: string };

const EMPTY: Json[] = [];

export class Slicing {
  constructor(
    private readonly profiles: CompiledProfiles,
    private readonly typeNames: TypeNames,
    private readonly bindings: Bindings,
    private readonly walk: Walk,
  ) {}

  /** The values of a sliced element (`where`), each in its slice. */
  slice(node: Node, items: Item[], where: string, ctx: WalkContext): void {
    const discs = node.slicing!.discriminator ?? [];
    const assigned = items.map((it) => node.slices.find((s) => this.matchesSlice(s, it, discs, ctx)));
    for (const s of node.slices) {
      const n = assigned.filter((a) => a === s).length;
      if (n < s.min) push(ctx, 'error', 'required', where, `${where}: slice '${s.sliceName}' requires at least ${s.min} element(s), but found ${n}`);
      if (n > s.max) push(ctx, 'error', 'structure', where, `${where}: slice '${s.sliceName}' allows at most ${s.max} element(s), but found ${n}`);
    }
    const rules = node.slicing!.rules;
    let lastSlice = -1;
    let sawUnmatched = false;
    items.forEach((it, i) => {
      const s = assigned[i];
      if (s) {
        const idx = node.slices.indexOf(s);
        if (node.slicing!.ordered && idx < lastSlice) push(ctx, 'error', 'structure', it.expr, `${it.expr}: the element is in slice '${s.sliceName}', out of the order the profile requires`);
        if (rules === 'openAtEnd' && sawUnmatched) push(ctx, 'error', 'structure', it.expr, `${it.expr}: elements of slice '${s.sliceName}' must come before unsliced elements (openAtEnd)`);
        lastSlice = Math.max(lastSlice, idx);
        this.walk.checkItem(s, it, ctx);
      } else {
        sawUnmatched = true;
        if (EXT_URL.has(node.name)) this.walk.checkExtensionByUrl(node, it, ctx, rules === 'closed');
        else {
          if (rules === 'closed') push(ctx, 'error', 'structure', it.expr, `${it.expr}: the element matches none of the slices ${node.slices.map((s) => `'${s.sliceName}'`).join(', ')} and the slicing is closed`);
          this.walk.checkItem(node, it, ctx);
        }
      }
    });
  }

  private matchesSlice(slice: Node, it: Item, discs: Discriminator[], ctx: WalkContext): boolean {
    if (discs.length === 0) return false;
    for (let i = 0; i < discs.length; i++) {
      if (!this.matchesDiscriminator(slice, it, discs[i], ctx)) return false;
    }
    return true;
  }

  /** A discriminator as it applies to a slice, prepared once: its parsed path, the element it designates, what is expected there. */
  private discOf(slice: Node, d: Discriminator): Disc {
    slice.disc ??= new Map();
    let x = slice.disc.get(d);
    if (!x) {
      const path = d.path.replace(/^\$this\.?/, '');
      x = { path, segs: splitPath(path).map(parseSeg), found: path ? this.subNode(slice, path) : { node: slice, own: true }, extUrl: slice.types[0]?.profile?.[0]?.split('|')[0] };
      slice.disc.set(d, x);
    }
    return x;
  }

  private matchesDiscriminator(slice: Node, it: Item, d: Discriminator, ctx: WalkContext): boolean {
    const disc = this.discOf(slice, d);
    if (d.type === 'type') return this.matchesType(slice, it, disc, ctx);
    if (d.type === 'profile') return this.matchesProfile(slice, it, disc, ctx);
    const values = disc.path ? this.navigate(it.v, disc.segs, ctx) : [it.v];
    if (d.type === 'exists') {
      const target = disc.found?.node;
      if (!target) return false;
      return target.min > 0 ? values.length > 0 : target.max === 0 ? values.length === 0 : true;
    }
    return this.matchesValue(slice, it, disc, values, ctx);
  }

  /** `type`: the value (or what its path designates) is of a type the slice allows. */
  private matchesType(slice: Node, it: Item, disc: Disc, ctx: WalkContext): boolean {
    const target = disc.found?.node ?? slice;
    if (!disc.path) return target.types.some((t) => t.code === it.type) || (isObj(it.v) && target.types.some((t) => t.code === (it.v as Obj).resourceType));
    return this.navigate(it.v, disc.segs, ctx).some((v) => isObj(v) && target.types.some((t) => t.code === v.resourceType));
  }

  /** `profile`: the value (or what its path designates, resolve() included) conforms to a profile the slice names. */
  private matchesProfile(slice: Node, it: Item, disc: Disc, ctx: WalkContext): boolean {
    const path = disc.path;
    const target = disc.found?.node ?? slice;
    const profiles = target.types.flatMap((t) => t.profile ?? (t.targetProfile && /resolve\(\)/.test(path) ? t.targetProfile : []));
    if (!profiles.length) return false;
    const values = path ? this.navigate(it.v, disc.segs, ctx) : [it.v];
    return values.some((v) => profiles.some((p) => this.walk.conforms(v, p, ctx)));
  }

  /** `value` and `pattern`: the values at the path hold what the slice fixes there (fixed, pattern, an extension's url, a required binding). */
  private matchesValue(slice: Node, it: Item, disc: Disc, values: Json[], ctx: WalkContext): boolean {
    const path = disc.path;
    const found = disc.found;
    const target = found?.node;
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
    if (found!.own && target.binding?.strength === 'required') return this.bindings.someCodeIn(target.binding.valueSet, values);
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
        const extNode = this.profiles.childNode(cur, 'extension');
        cur = extNode?.slices.find((s) => s.types[0]?.profile?.[0]?.split('|')[0] === ext[1] || this.fixedUrl(s) === ext[1]);
        continue;
      }
      if (/^ofType\(|^resolve\(\)$/.test(seg)) continue;
      // through a sliced element (code.coding.code), the values are those of its required slice
      if (cur !== start && cur.slices.length) cur = cur.slices.find((x) => x.min >= 1) ?? cur;
      if (!cur.children.length) own = false;
      cur = this.profiles.childNode(cur, seg);
    }
    return cur ? { node: cur, own } : undefined;
  }

  private fixedUrl(n: Node): string | undefined {
    const u = this.profiles.childNode(n, 'url');
    return u?.fixed?.value as string | undefined;
  }

  /** Values at a simple FHIRPath (names, extension('url'), resolve(), ofType()), parsed, from a JSON value. */
  private navigate(v: Json, segs: Seg[], ctx: WalkContext): Json[] {
    // the common case, one name (url, system, code...): no intermediate arrays
    if (segs.length === 1 && segs[0].kind === 'name') {
      if (!isObj(v)) return EMPTY;
      const x = this.typeNames.member(v, segs[0].name);
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
          const r = resolve(c, ctx);
          if (r) next.push(r);
        } else if (seg.kind === 'ofType') next.push(c);
        else {
          const x = this.typeNames.member(c, seg.name);
          if (Array.isArray(x)) next.push(...x);
          else if (x !== undefined) next.push(x);
        }
      }
      cur = next;
    }
    return cur;
  }
}

function parseSeg(seg: string): Seg {
  const ext = /^extension\('([^']+)'\)$/.exec(seg);
  if (ext) return { kind: 'ext', name: ext[1] };
  if (seg === 'resolve()') return { kind: 'resolve', name: seg };
  if (seg.startsWith('ofType(')) return { kind: 'ofType', name: seg };
  return { kind: 'name', name: seg };
}

/** A FHIRPath split at its dots, but not at those inside parentheses (extension('http://…')). */
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
