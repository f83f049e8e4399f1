import type { Config } from '../config';
import type { SearchParamRegistry } from '../search/registry';
import type { ResourceStore } from '../store/types';
import type { Validator } from '../validation';
import type { Reindexer } from '../jobs/reindex';
import type { JobRunner } from '../jobs/runner';
import type { CommittedWrite, Hooks } from './hooks';
import type { FhirRequest, FhirResponse } from './request';

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

export type { FhirRequest, FhirResponse, Method, Prefer } from './request';

/** How a request is dispatched (src/fhir/dispatch.ts): Bundles run their entries through it too. */
export type Dispatch = (svc: Services, req: FhirRequest) => Promise<FhirResponse>;
export { parsePrefer } from './request';
