import type { CompiledProfiles } from './compile';
import { push } from './issues';
import { BASE, isObj, type Item, type Node, type Obj, type Walk, type WalkContext } from './model';

/**
 * References: how they may be held (ElementDefinition.type.aggregation: contained, referenced,
 * bundled) and what they may point to (targetProfile: the type of the target, and its profile when
 * the target is at hand, contained or in the Bundle). A reference to a resource elsewhere is checked
 * by the type its URL names.
 */

/** The resource a reference points to when it is at hand: a contained one (`#id`) or an entry of the enclosing Bundle. */
export function resolve(ref: Obj, ctx: WalkContext): Obj | undefined {
  const r = ref.reference;
  if (typeof r !== 'string') return undefined;
  if (r.startsWith('#')) return (ctx.rootResource.contained as Obj[] | undefined)?.find((c) => isObj(c) && c.id === r.slice(1));
  const hit = ctx.bundle?.get(r);
  if (hit) return hit;
  if (ctx.bundle) for (const [full, res] of ctx.bundle) if (full.endsWith('/' + r)) return res;
  return undefined;
}

export class References {
  constructor(
    private readonly profiles: CompiledProfiles,
    private readonly walk: Walk,
  ) {}

  /** A Reference value of the element: its aggregation, then its target's type and profile. */
  check(node: Node, ref: Obj, it: Item, ctx: WalkContext): void {
    const refType = node.types.find((t) => t.code === 'Reference');
    const targets = refType?.targetProfile ?? [];
    if (typeof ref.reference !== 'string') return;
    if (refType?.aggregation) this.checkAggregation(refType.aggregation, ref, ref.reference, it, ctx);
    if (!targets.length) return;
    const resolved = resolve(ref, ctx);
    const targetType = resolved ? String(resolved.resourceType) : typeInReference(ref, ref.reference);
    if (!targetType) return;
    const targetSds = targets.map((t) => this.profiles.structureDefinition(t));
    if (targetSds.some((sd) => !sd)) return; // a target profile this server does not have: its type cannot be known
    const types = new Set(targetSds.map((sd, i) => sd?.type ?? targets[i].split('/').pop()!));
    if (types.has('Resource') || types.has('DomainResource')) return;
    if (!types.has(targetType)) {
      push(ctx, 'error', 'structure', `${it.expr}.reference`, `${it.expr}.reference: a reference to a ${targetType} is not allowed here (allowed: ${[...types].join(', ')})`);
      return;
    }
    if (resolved) {
      const profiles = targets.filter((t, i) => targetSds[i]?.type === targetType && !t.startsWith(BASE + targetType));
      const basePermitted = targets.some((t) => t.split('|')[0] === BASE + targetType);
      if (profiles.length && !basePermitted && !profiles.some((p) => this.walk.conforms(resolved, p, ctx))) {
        push(ctx, 'error', 'structure', `${it.expr}.reference`, `${it.expr}.reference: the referenced ${targetType} does not conform to ${profiles.join(' or ')}`);
      }
    }
  }

  /** ElementDefinition.type.aggregation: whether the reference may be to a contained resource, to another one, or to one in the Bundle. */
  private checkAggregation(aggregation: string[], ref: Obj, reference: string, it: Item, ctx: WalkContext): void {
    const where = `${it.expr}.reference`;
    // a '#id' naming no contained resource is refused by ref-1
    if (reference.startsWith('#')) {
      if (!aggregation.includes('contained')) push(ctx, 'error', 'structure', where, `${where}: a reference to a contained resource is not allowed here (aggregation: ${aggregation.join(', ')})`);
    } else if (!aggregation.includes('referenced') && !(aggregation.includes('bundled') && resolve(ref, ctx))) {
      const allowed = aggregation.includes('bundled') ? (aggregation.includes('contained') ? 'a contained resource or a resource of the Bundle' : 'a resource of the Bundle') : 'a contained resource';
      push(ctx, 'error', 'structure', where, `${where}: the reference must be to ${allowed} (aggregation: ${aggregation.join(', ')})`);
    }
  }
}

/** The resource type a reference names: by its URL (`Patient/123`, `…/Patient/123/_history/2`), else by its `type`. */
function typeInReference(ref: Obj, reference: string): string | undefined {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(reference);
  return m?.[1] ?? (typeof ref.type === 'string' ? ref.type : undefined);
}
