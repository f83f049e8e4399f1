import type { Issue } from '../outcome';
import { BASE, type WalkContext } from './model';

/** Issues as the walk reports them: each at one element, naming the profile that asks (but the base R4 one). */

export function push(ctx: WalkContext, severity: Issue['severity'], code: Issue['code'], expr: string, msg: string): void {
  ctx.issues.push({ severity, code, diagnostics: ctx.profile && !ctx.profile.startsWith(BASE) ? `${msg} (profile ${ctx.profile})` : msg, expression: [expr] });
}

/**
 * The same finding made through two profiles is reported once: the "(profile …)" suffix is not
 * compared; messages are compared only between issues at the same element.
 */
export function dedupe(issues: Issue[]): Issue[] {
  if (issues.length < 2) return issues;
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
