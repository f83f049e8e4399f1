import type { Resource } from 'fhir/r4';
import type { IndexEntries } from '../search/extract';
import type { SearchPlan } from '../search/plan';

/*
 * The store's interface: what the rest of the server imports from src/store, with the store's
 * errors (errors.ts) and the request time budget (budget.ts). The engines (sqlite/, mongo/) and
 * what they share (common/) are imported by src/server.ts, which picks one, and by nothing else.
 */

/** One version of a resource as stored. */
export interface StoredVersion {
  type: string;
  id: string;
  versionId: number;
  /** epoch milliseconds */
  lastUpdated: number;
  deleted: boolean;
  /** the resource's JSON text; absent for a deletion */
  json?: string;
  /** for a resource contained in another (a `_contained` match): where it is; `id` is then `Type/id#cid` */
  container?: { type: string; id: string; cid: string };
}

/** What a write stores: the new resource (null to delete) and its index entries. */
export interface WriteInput {
  resource: Resource | null;
  index: IndexEntries;
}

/**
 * Computes the new version from the current one. Called inside the engine's atomic section and
 * called again if another writer got there first, so it must be a pure function of its arguments.
 * Returning null leaves the resource as it is (e.g. deleting what is already deleted).
 */
export type Mutator = (current: StoredVersion | undefined, next: { versionId: number; lastUpdated: number }) => WriteInput | null;

export interface WriteResult {
  version: StoredVersion;
  /** the version that was current before; undefined when the resource did not exist */
  previous?: StoredVersion;
  /** true when the mutator returned null and nothing was written */
  unchanged: boolean;
}

export interface Page<T> {
  items: T[];
  total?: number;
  /** engine positions for the next and previous pages, when there are such pages */
  next?: string;
  prev?: string;
}

export interface HistoryQuery {
  type?: string;
  id?: string;
  /** only versions written at or after this instant (epoch ms) */
  since?: number;
  count: number;
  cursor?: SearchPlan['cursor'];
}

/**
 * Index keys that name one live resource of a type at most (an INS in Patient.identifier): the keys
 * of `param` that start with one of `prefixes`. A write that would give one to a second resource is
 * refused with UniqueKeyError, atomically, also against writes sent at the same time.
 */
export interface UniqueKeys {
  type: string;
  param: string;
  prefixes: string[];
}

export interface ResourceStore {
  readonly engine: 'sqlite' | 'mongodb';
  /** where the data lives, for the start-up message (never includes credentials) */
  readonly location: string;
  /** whether transaction() is all-or-nothing on this deployment */
  readonly supportsTransactions: boolean;
  /** true on the view a transaction works through (its writes already exclude the others') */
  readonly inTransaction?: boolean;

  /** Opens the store; `unique`: the keys it keeps unique (see UniqueKeys), also in what it already holds. */
  init(options?: { unique?: readonly UniqueKeys[] }): Promise<void>;
  close(): Promise<void>;

  /** The current version, deleted or not; undefined if the resource never existed. */
  read(type: string, id: string): Promise<StoredVersion | undefined>;
  vread(type: string, id: string, versionId: number): Promise<StoredVersion | undefined>;
  write(type: string, id: string, mutate: Mutator): Promise<WriteResult>;
  history(query: HistoryQuery): Promise<Page<StoredVersion>>;
  search(plan: SearchPlan): Promise<Page<StoredVersion>>;
  /** Current, not deleted versions of the given resources (missing ones are left out). */
  readMany(refs: { type: string; id: string }[]): Promise<StoredVersion[]>;
  /** The `Type/id` references that the given resources hold in the given reference parameters. */
  referencesOf(type: string, ids: string[], params: string[]): Promise<string[]>;
  /** Up to `limit` live resources that point to one of `targets` (`Type/id`) through one of the sources' reference parameters. */
  referencing(sources: { type: string; params: string[] }[], targets: string[], limit: number): Promise<StoredVersion[]>;
  /** Replaces the index entries of a resource if `versionId` is still its current version (true), without a new version. */
  reindex(type: string, id: string, versionId: number, index: IndexEntries): Promise<boolean>;
  /**
   * Server-owned state that is not FHIR data ($reindex jobs, the authorization server's clients,
   * accounts, codes and sessions), as JSON values by key, outside transactions. A value set with
   * `expiresAt` (epoch ms) is gone once it has passed (purgeExpiredState() frees its room); a value
   * in a `group` goes with deleteStateGroup(group); setting null or undefined deletes it.
   */
  getState<T>(key: string): Promise<T | undefined>;
  setState(key: string, value: unknown, options?: StateOptions): Promise<void>;
  /** Sets the value only if the key holds no live value (atomically, also between servers sharing the store); true when it did. */
  claimState(key: string, value: unknown, options?: StateOptions): Promise<boolean>;
  /** Deletes the key's value if it is still `value` (compared as JSON), atomically; true when it did. */
  releaseState(key: string, value: unknown): Promise<boolean>;
  /** The live values whose key starts with `prefix`, in key order. */
  listState<T>(prefix: string): Promise<{ key: string; value: T }[]>;
  /** Deletes every value of the group; returns how many there were. */
  deleteStateGroup(group: string): Promise<number>;
  /** Deletes the values whose expiry has passed; returns how many. */
  purgeExpiredState(): Promise<number>;
  /** Runs fn with a store whose writes all commit or all roll back. */
  transaction<T>(fn: (tx: ResourceStore) => Promise<T>): Promise<T>;
}

export interface StateOptions {
  /** epoch milliseconds after which the value is gone */
  expiresAt?: number;
  group?: string;
}

