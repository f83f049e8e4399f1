import { containingBuckets, bucketKey, dateRange, normalizeString } from '../../src/search/values';
import { splitValues } from '../../src/search/parse';

const utc = (s: string) => Date.parse(s);

test('normalizeString folds case, accents and ligatures', () => {
  expect(normalizeString('Hélène')).toBe('helene');
  expect(normalizeString('ÉLODIE  Cœur')).toBe('elodie coeur');
  expect(normalizeString('Müller-Straße')).toBe('muller-strasse');
  // the typographic apostrophe French text is often written with, and the ASCII one a user types
  expect(normalizeString('D’Aubigné')).toBe("d'aubigne");
  expect(normalizeString("d'Aubigne")).toBe("d'aubigne");
  expect(normalizeString('Dʼ‘Ormesson')).toBe("d''ormesson");
});

test('dateRange gives the implicit range of each precision', () => {
  expect(dateRange('2024')).toEqual({ low: utc('2024-01-01T00:00:00Z'), high: utc('2025-01-01T00:00:00Z') - 1, precision: 'Y' });
  expect(dateRange('2024-02')).toEqual({ low: utc('2024-02-01T00:00:00Z'), high: utc('2024-03-01T00:00:00Z') - 1, precision: 'M' });
  expect(dateRange('2024-02-29')!.high).toBe(utc('2024-03-01T00:00:00Z') - 1);
  expect(dateRange('2024-03-05T10:00+02:00')).toEqual({ low: utc('2024-03-05T08:00:00Z'), high: utc('2024-03-05T08:01:00Z') - 1, precision: 'm' });
  expect(dateRange('2024-03-05T10:00:30Z')).toEqual({ low: utc('2024-03-05T10:00:30Z'), high: utc('2024-03-05T10:00:31Z') - 1, precision: 's' });
  expect(dateRange('2024-03-05T10:00:30.5Z')).toEqual({ low: utc('2024-03-05T10:00:30.500Z'), high: utc('2024-03-05T10:00:30.600Z') - 1, precision: 'f1' });
  expect(dateRange('2024-03-05T10:00:30.123456Z')).toEqual({ low: utc('2024-03-05T10:00:30.123Z'), high: utc('2024-03-05T10:00:30.123Z'), precision: 'f3' });
  for (const bad of ['2023-02-29', '2024-13', '2024-00-10', '24', '2024-01-01T25:00Z', 'today', '2024-1-1']) expect(dateRange(bad)).toBeUndefined();
});

test('containingBuckets lists exactly the calendar buckets that hold a whole range', () => {
  const day = dateRange('1980-08-01')!;
  const keys = containingBuckets(day.low, day.high);
  expect(keys).toEqual([bucketKey(dateRange('1980')!), bucketKey(dateRange('1980-08')!), bucketKey(dateRange('1980-08-01')!)]);
  // a period across midnight is inside its month but in no single day
  const across = containingBuckets(utc('2024-03-01T23:00:00Z'), utc('2024-03-02T01:00:00Z'));
  expect(across).toEqual([bucketKey(dateRange('2024')!), bucketKey(dateRange('2024-03')!)]);
  expect(containingBuckets(-8.64e15, utc('2024-01-01T00:00:00Z'))).toEqual([]);
});

test('splitValues splits on unescaped commas only', () => {
  expect(splitValues('a,b')).toEqual(['a', 'b']);
  expect(splitValues('a\\,b,c')).toEqual(['a\\,b', 'c']);
  expect(splitValues('')).toEqual(['']);
});
