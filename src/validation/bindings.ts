import type { Terminology } from '../terminology/terminology';
import { push } from './issues';
import { isObj, type Item, type Json, type Node, type Obj, type WalkContext } from './model';

/**
 * Codes against terminology: a bound element's codes against its value set (required: an error
 * when outside, extensible: a warning), and a coding's code and display against its code system
 * when the server holds that system in full. What terminology cannot tell (a value set or code
 * system not loaded, or only in part) is a warning "could not check", never an error.
 */

/** the types a binding applies to */
const BINDABLE = new Set(['code', 'Coding', 'CodeableConcept', 'Quantity', 'string', 'uri', 'CodeableReference']);

/** The codes of a value (a code, a Coding, a CodeableConcept's codings, a Quantity), with their systems. */
function codesOf(v: Json, type?: string): { system?: string; code: string }[] {
  if (typeof v === 'string') return [{ code: v }];
  if (!isObj(v)) return [];
  if (Array.isArray(v.coding)) return v.coding.filter((c): c is Obj => isObj(c) && typeof c.code === 'string').map((c) => ({ system: c.system as string | undefined, code: c.code as string }));
  if (typeof v.code === 'string') return [{ system: type === 'Quantity' || v.system !== undefined ? (v.system as string | undefined) : undefined, code: v.code }];
  return [];
}

/** Displays compare without regard to case or runs of white space. */
function sameDisplay(a: string, b: string): boolean {
  return a === b || a.replace(/\s+/g, ' ').trim().toLowerCase() === b.replace(/\s+/g, ' ').trim().toLowerCase();
}

export class Bindings {
  constructor(readonly terminology: Terminology) {}

  /** The element's required or extensible binding, on one of its values. */
  check(node: Node, it: Item, ctx: WalkContext): void {
    const { strength, valueSet } = node.binding!;
    const t = it.type;
    if (!BINDABLE.has(t)) return;
    const codes = codesOf(it.v, t);
    if (codes.length === 0) return;
    let unknown: string | undefined;
    for (const c of codes) {
      const r = this.terminology.check(valueSet, t === 'code' || t === 'string' || t === 'uri' ? undefined : c.system ?? '', c.code);
      if (r.result === 'valid') return;
      if (r.result === 'unknown') unknown ??= r.reason;
    }
    const shown = codes.map((c) => (c.system ? `${c.system}#${c.code}` : c.code)).join(', ');
    if (unknown) {
      if (strength === 'required') push(ctx, 'warning', 'not-supported', it.expr, `${it.expr}: could not check ${shown} against the required value set ${valueSet}: ${unknown}`);
      return;
    }
    if (strength === 'required') push(ctx, 'error', 'code-invalid', it.expr, `${it.expr}: ${shown} is not in the value set ${valueSet} (required binding)`);
    else push(ctx, 'warning', 'code-invalid', it.expr, `${it.expr}: ${shown} is not in the value set ${valueSet} (extensible binding)`);
  }

  /** Is one code of one of the values in the value set (a slice discriminated by a required binding)? */
  someCodeIn(valueSet: string, values: Json[]): boolean {
    return values.some((v) => codesOf(v).some((c) => this.terminology.check(valueSet, c.system, c.code).result === 'valid'));
  }

  /** A code of a code system the server holds in full must be one of its codes, whatever the binding; its display, if any, one of the code's. */
  checkCodeInSystem(coding: Obj, it: Item, ctx: WalkContext): void {
    const { system, code } = coding;
    if (typeof system !== 'string' || typeof code !== 'string') return;
    const found = this.terminology.lookup(system, code);
    if (found.result === 'absent') push(ctx, 'error', 'code-invalid', it.expr, `${it.expr}: ${code} is not a code of the code system ${system}`);
    else if (found.result === 'defined' && typeof coding.display === 'string' && found.displays.length && !found.displays.some((d) => sameDisplay(d, coding.display as string))) {
      const shown = found.displays.map((d) => `"${d}"`).join(' or ');
      push(ctx, 'warning', 'code-invalid', `${it.expr}.display`, `${it.expr}.display: "${coding.display}" is not the display of ${system}#${code} (${shown})`);
    } else if (found.result === 'notListed') push(ctx, 'warning', 'not-supported', it.expr, `${it.expr}: could not check ${system}#${code}: ${found.reason}`);
  }
}
