/**
 * Primitive value checks the JSON schema cannot make: calendar validity, integer ranges, decimals
 * given as numbers, base64 alphabet, string content. Lexical patterns are also checked here so
 * that profile element types (e.g. System.String ids) are covered.
 */

const DATE = /^(\d{4})(-(\d{2})(-(\d{2}))?)?$/;
const DATETIME = /^(\d{4})(-(\d{2})(-(\d{2})(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?$/;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$/;
const TIME = /^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?$/;
const CODE = /^[^\s]+( [^\s]+)*$/;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const OID = /^urn:oid:[0-2](\.(0|[1-9]\d*))+$/;
const UUID = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64 = /^(\s*([0-9a-zA-Z+/=]){4}\s*)*$/;

function validDay(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12) return false;
  const days = [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];
  return d >= 1 && d <= days;
}

function dateParts(m: RegExpExecArray, yi: number, mi: number, di: number): string | undefined {
  const y = Number(m[yi]);
  if (y < 1) return 'the year must be 0001 or later';
  if (m[mi] !== undefined && (Number(m[mi]) < 1 || Number(m[mi]) > 12)) return `${m[mi]} is not a month`;
  if (m[di] !== undefined && !validDay(y, Number(m[mi]), Number(m[di]))) return `${y}-${m[mi]}-${m[di]} is not a calendar date`;
  return undefined;
}

export const PRIMITIVES = new Set([
  'boolean', 'integer', 'integer64', 'string', 'decimal', 'uri', 'url', 'canonical', 'base64Binary', 'instant', 'date', 'dateTime', 'time',
  'code', 'oid', 'id', 'markdown', 'unsignedInt', 'positiveInt', 'uuid', 'xhtml',
  'http://hl7.org/fhirpath/System.String', 'http://hl7.org/fhirpath/System.Boolean', 'http://hl7.org/fhirpath/System.Integer',
  'http://hl7.org/fhirpath/System.Decimal', 'http://hl7.org/fhirpath/System.Date', 'http://hl7.org/fhirpath/System.DateTime', 'http://hl7.org/fhirpath/System.Time',
]);

/** A message when `v` is not a valid value of the primitive type, else undefined. */
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

export function checkPrimitive(type: string, v: unknown): string | undefined {
  switch (type) {
    case 'boolean':
    case 'http://hl7.org/fhirpath/System.Boolean':
      return typeof v === 'boolean' ? undefined : `${JSON.stringify(v)} is not a boolean`;
    case 'integer':
    case 'http://hl7.org/fhirpath/System.Integer':
    case 'unsignedInt':
    case 'positiveInt': {
      if (typeof v !== 'number' || !Number.isInteger(v)) return `${JSON.stringify(v)} is not an integer`;
      if (v > 2147483647 || v < -2147483648) return `${v} is outside the range of a 32-bit integer`;
      if (type === 'unsignedInt' && v < 0) return `${v} is negative; an unsignedInt must be 0 or more`;
      if (type === 'positiveInt' && v < 1) return `${v} is not positive; a positiveInt must be 1 or more`;
      return undefined;
    }
    case 'integer64':
      return typeof v === 'string' && /^-?\d+$/.test(v) ? undefined : `${JSON.stringify(v)} is not an integer64`;
    case 'decimal':
    case 'http://hl7.org/fhirpath/System.Decimal':
      return typeof v === 'number' && Number.isFinite(v) ? undefined : `${JSON.stringify(v)} is not a decimal number`;
  }
  if (typeof v !== 'string') return `${JSON.stringify(v)} is not a ${type} (a JSON string is expected)`;
  // FHIR strings hold no character below U+0020 but tab, line feed and carriage return
  if (CONTROL.test(v)) return `the value holds the control character U+${v.charCodeAt(v.search(CONTROL)).toString(16).padStart(4, '0').toUpperCase()} (only tab, line feed and carriage return are allowed below U+0020)`;
  switch (type) {
    case 'string':
    case 'markdown':
    case 'http://hl7.org/fhirpath/System.String':
      if (v.trim() === '') return 'a string must have non-whitespace content';
      return v.length > 1048576 ? 'the string is longer than 1 MB' : undefined;
    case 'code':
      return CODE.test(v) ? undefined : `"${v}" is not a valid code (no leading, trailing or double whitespace)`;
    case 'id':
      return ID.test(v) ? undefined : `"${v}" is not a valid id`;
    case 'uri':
    case 'url':
    case 'canonical':
      return v.length > 0 && !/\s/.test(v) ? undefined : `"${v}" is not a valid ${type} (no whitespace allowed)`;
    case 'oid':
      return OID.test(v) ? undefined : `"${v}" is not a valid oid (urn:oid:…)`;
    case 'uuid':
      return UUID.test(v) ? undefined : `"${v}" is not a valid uuid (urn:uuid:…, lower case)`;
    case 'base64Binary':
      return BASE64.test(v) ? undefined : 'the value is not valid base64';
    case 'date':
    case 'http://hl7.org/fhirpath/System.Date': {
      const m = DATE.exec(v);
      return m ? dateParts(m, 1, 3, 5) : `"${v}" is not a valid date (YYYY, YYYY-MM or YYYY-MM-DD)`;
    }
    case 'dateTime':
    case 'http://hl7.org/fhirpath/System.DateTime': {
      const m = DATETIME.exec(v);
      return m ? dateParts(m, 1, 3, 5) : `"${v}" is not a valid dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz)`;
    }
    case 'instant': {
      const m = INSTANT.exec(v);
      return m ? dateParts(m, 1, 2, 3) : `"${v}" is not a valid instant (YYYY-MM-DDThh:mm:ss(.sss)+zz:zz)`;
    }
    case 'time':
    case 'http://hl7.org/fhirpath/System.Time':
      return TIME.test(v) ? undefined : `"${v}" is not a valid time (hh:mm:ss)`;
    case 'xhtml':
      return /^\s*<div[\s>]/.test(v) && /xmlns\s*=\s*["']http:\/\/www\.w3\.org\/1999\/xhtml["']/.test(v) ? undefined : 'the narrative must be an XHTML <div> in the namespace http://www.w3.org/1999/xhtml';
  }
  return undefined;
}
