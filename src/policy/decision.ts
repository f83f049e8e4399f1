import { FhirError } from '../outcome';
import type { IssueCode } from '../outcome';

/**
 * What the policy decided about one access, and the rule that decided it: `scope` (the token's
 * scopes), `administrator` (the administrator's own operations), `compartment` (a patient/ token's
 * patient compartment), `compartment-link` (a write's links to another patient), `granular-scope`
 * (a scope's query); the patient's rules of a later issue add theirs ("blocked by the patient",
 * "médecin traitant", "emergency access"). The audit trail records the rule and the reason.
 */
export interface Decision {
  effect: 'allow' | 'deny' | 'mask';
  rule: string;
  /** why, in words a person reads: which scope, which patient */
  reason: string;
}

/** A refused access: the FHIR error the client gets (403, or 404 where existence must not leak), carrying the decision. */
export class Refusal extends FhirError {
  constructor(
    readonly decision: Decision,
    status: 403 | 404,
    diagnostics: string,
    code: IssueCode = status === 404 ? 'not-found' : 'forbidden',
  ) {
    super(status, code, diagnostics);
  }
}

export const allow = (rule: string, reason: string): Decision => ({ effect: 'allow', rule, reason });

/** A refusal by `rule`; `hidden`: answered 404, as for an unknown resource. */
export function refuse(rule: string, diagnostics: string, hidden = false): Refusal {
  return new Refusal({ effect: 'deny', rule, reason: diagnostics }, hidden ? 404 : 403, diagnostics);
}
