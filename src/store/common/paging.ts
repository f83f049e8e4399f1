import type { Cursor } from '../../search/plan';
import { InvalidCursorError } from '../errors';

/**
 * Keyset paging, the part both engines share: the position codec, and the page cut out of what a
 * query scanned. A page is the `count` rows after (or, going back, before) the edge of the previous
 * one in the order of the sort keys, so rows written or deleted meanwhile never shift or repeat a
 * page. Each engine writes the "after this position" condition in its own query language.
 *
 * Positions: the sort values of a page's edge row, as base64url JSON. A position is client input
 * when it comes back: only an array of `length` plain values (strings, finite numbers, null) is
 * accepted, never objects (MongoDB operators).
 */
export type CursorValue = string | number | null;

export function encodeCursor(values: unknown[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

export function decodeCursor(position: string, length: number): CursorValue[] {
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(position, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('The paging position does not decode');
  }
  const plain = (v: unknown) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
  if (!Array.isArray(values) || values.length !== length || !values.every(plain)) throw new InvalidCursorError('The paging position is not one this server issued for this search');
  return values as CursorValue[];
}

/**
 * The page out of the rows a query scanned from the cursor's position, in scan order (backwards
 * when going to the previous page), at most `count + 1` of them: one more than `count` says there
 * is more in the scan's direction. The rows come back in page order, with the positions of the
 * next and previous pages where there are such pages.
 */
export function keysetPage<R>(scanned: R[], count: number, cursor: Cursor | undefined, positionOf: (row: R) => string): { rows: R[]; next?: string; prev?: string } {
  const backwards = cursor?.direction === 'prev';
  const more = scanned.length > count;
  const rows = more ? scanned.slice(0, count) : scanned;
  if (backwards) rows.reverse();
  const page: { rows: R[]; next?: string; prev?: string } = { rows };
  if (rows.length > 0) {
    if (backwards || more) page.next = positionOf(rows[rows.length - 1]);
    if (backwards ? more : cursor !== undefined) page.prev = positionOf(rows[0]);
  }
  return page;
}
