/**
 * The store-neutral search plan: what a query means, independent of how an engine answers it.
 * Conditions are ANDed; the values inside one condition are ORed.
 */

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

/** A comparison of one end of a stored range ([low, high]: epoch ms for dates, the value for numbers). */
export interface Bound {
  on: 'low' | 'high';
  op: '<' | '<=' | '>' | '>=';
  value: number;
}

/**
 * One way for a stored range to match: every bound holds for that same range. `within`, when set,
 * names the bucket (calendar bucket of a date, rounding of a number: see values.ts) that the
 * bounds describe, so an engine may test it as one key instead of two correlated bounds.
 */
export interface RangeAlternative {
  bounds: Bound[];
  within?: string;
}

/** Matches when one of the alternatives holds. */
export type RangeMatch = RangeAlternative[];

/** Where a parameter's entries are: exact keys (token, reference, uri), strings, or ranges (date, number, quantity). */
export type IndexKind = 'key' | 'string' | 'range';

export type Condition =
  | { kind: 'key'; param: string; keys: string[]; not?: boolean }
  | { kind: 'keyPrefix'; param: string; prefixes: string[]; not?: boolean }
  | { kind: 'string'; param: string; mode: 'prefix' | 'exact' | 'contains'; values: string[] }
  | { kind: 'range'; param: string; match: RangeMatch }
  | { kind: 'missing'; param: string; index: IndexKind; missing: boolean }
  | { kind: 'id'; ids: string[]; not?: boolean }
  | { kind: 'lastUpdated'; match: RangeMatch }
  | { kind: 'any'; conditions: Condition[] }
  | { kind: 'all'; conditions: Condition[] }
  /** the reference parameter `param` points to a resource of one of `targetTypes` that meets `conditions` */
  | { kind: 'chain'; param: string; targetTypes: string[]; conditions: Condition[] }
  /** a resource of `sourceType` that meets `conditions` points to this one through its reference parameter `param` */
  | { kind: 'has'; sourceType: string; param: string; conditions: Condition[] };

export interface SortKey {
  /** a parameter code, or `_id` / `_lastUpdated` */
  param: string;
  index: IndexKind | 'id' | 'lastUpdated';
  descending: boolean;
}

export interface Include {
  /** `_revinclude`: resources of `sourceType` that point to the matches; `_include`: resources the matches point to */
  reverse: boolean;
  sourceType: string;
  /** a reference parameter of sourceType, or `*` for all of them */
  param: string;
  targetType?: string;
  iterate: boolean;
}

export interface Cursor {
  direction: 'next' | 'prev';
  /** engine-specific position, opaque to everything above the store */
  position: string;
}

/** The resources of one type that meet all of `conditions`. */
export interface Scope {
  type: string;
  conditions: Condition[];
}

/**
 * The resources of any of the scopes: one scope for a type-level search, one per type for a
 * system-level search or `$everything`.
 */
export interface SearchPlan {
  scopes: Scope[];
  /** `_contained`: the resources themselves (false, the default), the resources contained in them (true), or both */
  contained?: 'false' | 'true' | 'both';
  sort: SortKey[];
  count: number;
  cursor?: Cursor;
  /**
   * `accurate`: count every match; `estimate`: count up to ESTIMATE_LIMIT matches (no total beyond);
   * `none`: no count (the FHIR layer still gives the total of a first page that holds every match).
   */
  total: 'accurate' | 'estimate' | 'none';
}

/** How many matches `_total=estimate` counts at most: a total up to it is exact, beyond it none is given. */
export const ESTIMATE_LIMIT = 1000;
