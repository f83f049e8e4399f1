import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4';
import type { SdElement } from './definitions';
import { push } from './issues';
import type { Invariant, Item, Json, Obj, WalkContext } from './model';
import { domInvariant, nativeInvariant } from './native-invariants';

/**
 * Invariants (ElementDefinition.constraint): compiled once with their element, natively where
 * native-invariants.ts has them, else with fhirpath.js (each expression compiled once per base path);
 * evaluated on every value of the element. One that cannot be compiled or evaluated is reported as
 * not checked (a warning), never dropped in silence.
 */

/** Constraints the validator does not evaluate: ele-1 (checked natively on every element), narrative html checks (done as a primitive check). */
const SKIPPED = new Set(['ele-1', 'txt-1', 'txt-2']);

export class InvariantCompiler {
  private readonly fhirpathCache = new Map<string, ((v: Json, env: Obj) => unknown[]) | null>();

  /** The invariant of a constraint on the element at `base` (its path without [x]); undefined for one not evaluated. */
  compile(c: NonNullable<SdElement['constraint']>[number], base: string): Invariant | undefined {
    if (SKIPPED.has(c.key) || c.bestPractice || !c.expression) return undefined;
    const severity = c.severity === 'error' ? 'error' : 'warning';
    const native = nativeInvariant(c.key, c.expression) ?? domInvariant(c.key);
    if (native) return { key: c.key, severity, human: c.human, expression: c.expression, test: native };
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
}

/** Evaluates the invariants on one value: a failed one is an issue of its severity, one that could not be evaluated a warning. */
export function runInvariants(invariants: Invariant[], it: Item, ctx: WalkContext): void {
  for (let i = 0; i < invariants.length; i++) {
    const inv = invariants[i];
    const held = inv.test(it.v, ctx);
    if (held === 'unknown') push(ctx, 'warning', 'informational', it.expr, `${it.expr}: constraint ${inv.key} could not be evaluated here (${inv.expression}); it was not checked`);
    else if (!held) push(ctx, inv.severity, 'invariant', it.expr, `${it.expr}: constraint ${inv.key} failed: ${inv.human}`);
  }
}
