import type { Config } from '../config';
import type { Access } from '../policy/access';
import type { Decision } from '../policy/decision';
import type { SearchParamRegistry } from '../search/registry';
import type { ResourceStore } from '../store/types';
import type { Validator } from '../validation';
import type { Reindexer } from '../jobs/reindex';
import type { JobRunner } from '../jobs/runner';
import type { CommittedWrite, Hooks } from './hooks';

/** What the interactions work with. A transaction swaps `store` for its transactional view. */
export interface Services {
  store: ResourceStore;
  registry: SearchParamRegistry;
  config: Config;
  resourceTypes: ReadonlySet<string>;
  /** when the server started: the CapabilityStatement's date */
  startedAt: Date;
  /** the codes of a value set, for `:in` / `:not-in`; throws a FhirError when it cannot be expanded completely */
  expandValueSet?: (url: string) => { system: string; code: string }[];
  /** the codes a code subsumes or is subsumed by, for `:below` / `:above` on tokens */
  subsumption?: (system: string, code: string, direction: 'above' | 'below') => string[];
  /** background work: $reindex, purges (src/jobs) */
  jobs?: JobRunner;
  /** the $reindex jobs, run by `jobs` */
  reindexer?: Reindexer;
  /** base R4 + profile validation of every write and of $validate (src/validation) */
  validator?: Validator;
  /** the hook points every path to the data passes (src/fhir/hooks.ts) */
  hooks: Hooks;
  /**
   * Within a transaction: the writes committed so far, whose afterCommit waits for the transaction to
   * commit (and is dropped if it rolls back).
   */
  pendingCommits?: CommittedWrite[];
  /** the SMART endpoints, for the CapabilityStatement's security section (set when authorization is on) */
  oauthUris?: { authorize: string; token: string; introspect: string; revoke: string; register?: string; manage?: string };
}

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
