/**
 * The store-neutral search plan: what a query means, independent of how an engine answers it.
 * Conditions are ANDed; the values inside one condition are ORed.
 */

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

/** A comparison of one end of a target's time range ([low, high], epoch milliseconds). */
export interface Bound {
  on: 'low' | 'high';
  op: '<' | '<=' | '>' | '>=';
  value: number;
}

/**
 * One way for a stored range to match: every bound holds for that same range. `within`, when set,
 * names the calendar bucket (see values.ts) that the bounds describe, so an engine may test
 * "the range lies inside this bucket" as one key instead of two correlated bounds.
 */
export interface RangeAlternative {
  bounds: Bound[];
  within?: string;
}

/** Matches when one of the alternatives holds. */
export type RangeMatch = RangeAlternative[];

export type Condition =
  | { kind: 'token'; param: string; keys: string[] }
  | { kind: 'reference'; param: string; keys: string[] }
  | { kind: 'string'; param: string; mode: 'prefix' | 'exact' | 'contains'; values: string[] }
  | { kind: 'date'; param: string; match: RangeMatch }
  | { kind: 'missing'; param: string; index: 'token' | 'reference' | 'string' | 'date'; missing: boolean }
  | { kind: 'id'; ids: string[] }
  | { kind: 'lastUpdated'; match: RangeMatch };

export interface Cursor {
  direction: 'next' | 'prev';
  /** engine-specific position, opaque to everything above the store */
  position: string;
}

export interface SearchPlan {
  type: string;
  conditions: Condition[];
  count: number;
  cursor?: Cursor;
  total: 'accurate' | 'none';
}
