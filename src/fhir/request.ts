import type { Access } from '../policy/access';
import type { Decision } from '../policy/decision';

/** A FHIR request and its answer, as the pipeline sees them (src/fhir/README.md). */

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface Prefer {
  return?: 'minimal' | 'representation' | 'OperationOutcome';
  handling?: 'strict' | 'lenient';
}

/** A FHIR request, whether it came over HTTP or from a Bundle entry. */
export interface FhirRequest {
  method: Method;
  /** path segments after the FHIR base, e.g. ["Patient", "123", "_history", "2"] */
  path: string[];
  query: [string, string][];
  body?: unknown;
  /** how the body was sent: a FHIR resource, a JSON Patch document or a search form */
  bodyKind?: 'resource' | 'json-patch' | 'form';
  ifMatch?: string;
  ifNoneMatch?: string;
  ifNoneExist?: string;
  ifModifiedSince?: string;
  prefer: Prefer;
  /** the FHIR base URL, without trailing slash */
  baseUrl: string;
  /** id chosen in advance by a transaction for a create */
  assignedId?: string;
  /**
   * The caller, from its verified access token: every interaction checks it (src/policy). Only the
   * server's own work (background jobs) runs without; the HTTP layer always sets it.
   */
  access?: Access;
  /** what the policy decided for this request, each with the rule that decided (for the audit trail) */
  decisions?: Decision[];
}

export interface FhirResponse {
  status: number;
  headers: Record<string, string>;
  /** a JSON value to send */
  body?: unknown;
  /** JSON text to send as is (a stored resource, a bundle built as text) */
  raw?: string;
}

export function parsePrefer(header: string | undefined): Prefer {
  const prefer: Prefer = {};
  if (!header) return prefer;
  for (const part of header.split(/[,;]/)) {
    const [k, v] = part.split('=').map((s) => s?.trim().replace(/^"|"$/g, ''));
    if (k === 'return' && (v === 'minimal' || v === 'representation' || v === 'OperationOutcome')) prefer.return = v;
    if (k === 'handling' && (v === 'strict' || v === 'lenient')) prefer.handling = v;
  }
  return prefer;
}
