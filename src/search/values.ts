/** Normalized forms shared by the index (write time) and the search plans (query time). */

/** Lower case without accents or ligatures, typographic apostrophes as ASCII ones: "Hélène" and "HELENE" both give "helene", "D’Aubigné" gives "d'aubigne". */
export function normalizeString(s: string): string {
  // plain ASCII has no accents or ligatures to take off
  if (/^[\x20-\x7e]*$/.test(s)) return s.toLowerCase().replace(/ {2,}/g, ' ').trim();
  return s
    .normalize('NFD')
    .replace(/\p{M}+/gu, '')
    .replace(/œ/gi, 'oe')
    .replace(/æ/gi, 'ae')
    .replace(/ß/g, 'ss')
    .replace(/[\u2018\u2019\u02bc]/g, "'")
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim();
}

/** Index keys of tokens. SEP cannot occur in a system or a code that a client sends us. */
export const SEP = '\u001f';
/** code alone, whatever the system */
export const tokenCodeKey = (code: string) => `c${SEP}${code}`;
/** system and code; an absent system is the empty string, as in `|code` */
export const tokenSystemCodeKey = (system: string, code: string) => `s${SEP}${system}${SEP}${code}`;
/** The prefix of every system|code key of a system: `system|` searches it. */
export const tokenSystemPrefix = (system: string) => `s${SEP}${system}${SEP}`;

export function tokenKeys(system: string | undefined, code: string | undefined): string[] {
  if (code === undefined || code === '') return [];
  return [tokenCodeKey(code), tokenSystemCodeKey(system ?? '', code)];
}

/** Lowest and highest millisecond an instant may have; open period ends use them. */
export const MIN_TIME = -8.64e15;
export const MAX_TIME = 8.64e15;

/** Calendar precisions of FHIR dates: year, month, day, minute, second, and tenths to thousandths of a second. */
export type Precision = 'Y' | 'M' | 'D' | 'm' | 's' | 'f1' | 'f2' | 'f3';
const PRECISIONS: Precision[] = ['Y', 'M', 'D', 'm', 's', 'f1', 'f2', 'f3'];

export interface TimeRange {
  low: number;
  high: number;
  precision?: Precision;
}

/** The calendar bucket of precision p (UTC) that contains instant t: [start, end]. */
function bucket(t: number, p: Precision): [number, number] {
  const d = new Date(t);
  const y = d.getUTCFullYear();
  const at = (yy: number, mm: number, dd: number) => {
    const x = new Date(0);
    x.setUTCFullYear(yy, mm, dd);
    return x.getTime();
  };
  switch (p) {
    case 'Y':
      return [at(y, 0, 1), at(y + 1, 0, 1) - 1];
    case 'M':
      return [at(y, d.getUTCMonth(), 1), at(y, d.getUTCMonth() + 1, 1) - 1];
    case 'D':
      return [at(y, d.getUTCMonth(), d.getUTCDate()), at(y, d.getUTCMonth(), d.getUTCDate() + 1) - 1];
    default: {
      const width = { m: 60000, s: 1000, f1: 100, f2: 10, f3: 1 }[p];
      const start = Math.floor(t / width) * width;
      return [start, start + width - 1];
    }
  }
}

/** The key of the bucket a search value stands for: `eq` on it means "the stored range lies inside". */
export const bucketKey = (r: TimeRange): string | undefined => (r.precision ? `${r.precision}${r.low}` : undefined);

/** The keys of every bucket that wholly contains the stored range [low, high]. */
export function containingBuckets(low: number, high: number): string[] {
  if (low <= MIN_TIME || high >= MAX_TIME) return [];
  const keys: string[] = [];
  for (const p of PRECISIONS) {
    const [start, end] = bucket(low, p);
    if (high > end) break;
    keys.push(`${p}${start}`);
  }
  return keys;
}

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * The range of instants a FHIR date, dateTime or instant stands for, to its precision:
 * "2024" is all of 2024, "2024-03-05T10:00Z" is that minute. A time without a zone is read as UTC.
 */
export function dateRange(value: string): TimeRange | undefined {
  const m = DATE_RE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  const month = mo ? Number(mo) : 1;
  const day = d ? Number(d) : 1;
  if (month < 1 || month > 12) return undefined;
  if (day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  if (h !== undefined && (Number(h) > 24 || Number(mi) > 59 || (s !== undefined && Number(s) > 60))) return undefined;
  let offset = 0;
  if (tz && tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    offset = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60000;
  }
  const utc = (yy: number, mm: number, dd: number, hh = 0, mn = 0, ss = 0, ms = 0) => {
    const t = new Date(0);
    t.setUTCFullYear(yy, mm - 1, dd);
    t.setUTCHours(hh, mn, ss, ms);
    return t.getTime();
  };
  if (!mo) return { low: utc(year, 1, 1), high: utc(year + 1, 1, 1) - 1, precision: 'Y' };
  if (!d) return { low: utc(year, month, 1), high: utc(year, month + 1, 1) - 1, precision: 'M' };
  if (h === undefined) return { low: utc(year, month, day), high: utc(year, month, day + 1) - 1, precision: 'D' };
  const base = utc(year, month, day, Number(h), Number(mi)) - offset;
  if (s === undefined) return { low: base, high: base + 60000 - 1, precision: 'm' };
  const secStart = base + Number(s) * 1000;
  if (frac === undefined) return { low: secStart, high: secStart + 999, precision: 's' };
  // Precision finer than a millisecond is kept to the millisecond.
  const digits = Math.min(frac.length, 3);
  const low = secStart + Math.floor(Number(`0.${frac}`) * 1000);
  const width = 10 ** (3 - digits);
  return { low, high: low + width - 1, precision: `f${digits}` as Precision };
}

/**
 * Index entries that only make sense together with another value are stored under a derived
 * parameter name: `param` + SUB + qualifier. A quantity in mg/dL is an entry of
 * `value-quantity` (any unit) and of `value-quantity␞s␟http://unitsofmeasure.org␟mg/dL`; a
 * composite's last component is an entry of `code-value-quantity␞<key of its code>`. The
 * correlation is in the name, so every engine tests one plain parameter.
 */
export const SUB = '\u001e';
export const subParam = (param: string, qualifier: string) => `${param}${SUB}${qualifier}`;

/** Qualifiers of quantity units: any system's code, system|code, and UCUM canonical units. */
export const unitCodeQualifier = (code: string) => `c${SEP}${code}`;
export const unitSystemCodeQualifier = (system: string, code: string) => `s${SEP}${system}${SEP}${code}`;
export const canonicalQualifier = (canonicalUnits: string) => `u${SEP}${canonicalUnits}`;

export const UCUM = 'http://unitsofmeasure.org';

interface UcumUtils {
  convertToBaseUnits(unit: string, value: number): { status: string; magnitude?: number; unitToExp?: Record<string, number>; fromUnitIsSpecial?: boolean };
}
let ucum: UcumUtils | undefined;

/** A UCUM quantity in canonical (base) units: the value and a key naming the units, or undefined. */
export function ucumCanonical(value: number, code: string): { value: number; units: string } | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ucum ??= (require('@lhncbc/ucum-lhc') as { UcumLhcUtils: { getInstance(): UcumUtils } }).UcumLhcUtils.getInstance();
  let r;
  try {
    r = ucum.convertToBaseUnits(code, value);
  } catch {
    return undefined;
  }
  if (r.status !== 'succeeded' || r.fromUnitIsSpecial || r.magnitude === undefined || !Number.isFinite(r.magnitude)) return undefined;
  const units = Object.entries(r.unitToExp ?? {})
    .filter(([, e]) => e !== 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([u, e]) => `${u}${e}`)
    .join('.');
  return { value: r.magnitude, units: units || '1' };
}

/** The decimal precision of a number as written: "1.50" has 2 decimals, "100" none, "1e2" none. */
export function decimalsOf(raw: string): number {
  const m = /^[-+]?\d*(?:\.(\d+))?(?:[eE]([-+]?\d+))?$/.exec(raw);
  if (!m) return 0;
  return Math.max(0, (m[1]?.length ?? 0) - Number(m[2] ?? 0));
}

/** Keys of the rounding buckets of a number: "eq 1.5" means "rounds to 1.5 at one decimal". */
export function numberBuckets(value: number): string[] {
  const keys: string[] = [];
  for (let d = 0; d <= 6; d++) keys.push(roundingKey(value, d));
  return keys;
}
export function roundingKey(value: number, decimals: number): string {
  const f = 10 ** decimals;
  return `n${decimals}:${Math.floor(value * f + 0.5) / f}`;
}
