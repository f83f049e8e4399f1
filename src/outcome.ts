import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4';

export type IssueSeverity = OperationOutcomeIssue['severity'];
export type IssueCode = OperationOutcomeIssue['code'];

export interface Issue {
  severity: IssueSeverity;
  code: IssueCode;
  diagnostics: string;
  /** FHIRPath of the element the issue is about. */
  expression?: string[];
}

/** An error a client caused (or a refusal the server owes it): carries the HTTP status and the issues. */
export class FhirError extends Error {
  readonly status: number;
  readonly issues: Issue[];
  readonly headers: Record<string, string>;

  constructor(status: number, code: IssueCode, diagnostics: string, expression?: string | string[], headers: Record<string, string> = {}) {
    super(diagnostics);
    this.status = status;
    this.headers = headers;
    const issue: Issue = { severity: status >= 500 ? 'fatal' : 'error', code, diagnostics };
    if (expression !== undefined) issue.expression = Array.isArray(expression) ? expression : [expression];
    this.issues = [issue];
  }
}

export const badRequest = (msg: string, expression?: string | string[]) => new FhirError(400, 'invalid', msg, expression);
export const notFound = (msg: string) => new FhirError(404, 'not-found', msg);
export const notSupported = (status: number, msg: string, expression?: string) => new FhirError(status, 'not-supported', msg, expression);
export const preconditionFailed = (msg: string, expression?: string) => new FhirError(412, 'conflict', msg, expression);
export const conflict = (msg: string, expression?: string) => new FhirError(409, 'conflict', msg, expression);

export function operationOutcome(issues: Issue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((i) => {
      const out: OperationOutcomeIssue = { severity: i.severity, code: i.code, diagnostics: i.diagnostics };
      if (i.expression) out.expression = i.expression;
      return out;
    }),
  };
}

export function informational(diagnostics: string): OperationOutcome {
  return operationOutcome([{ severity: 'information', code: 'informational', diagnostics }]);
}
