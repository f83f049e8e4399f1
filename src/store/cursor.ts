import { InvalidCursorError } from './errors';

/**
 * Paging positions, the same codec for both engines: the sort values of a page's edge row, as
 * base64url JSON. A position is client input when it comes back: only an array of `length` plain
 * values (strings, finite numbers, null) is accepted, never objects (MongoDB operators).
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
