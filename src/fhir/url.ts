import { FhirError } from '../outcome';

/** The decoded segments of a URL path; 400 when one is not correctly percent-encoded. */
export function pathSegments(path: string, expression?: string): string[] {
  try {
    return path
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch {
    throw new FhirError(400, 'invalid', 'The URL path is not correctly percent-encoded', expression);
  }
}

export function parseQueryString(q: string): [string, string][] {
  const s = q.replace(/^[^?]*\?/, '');
  return [...new URLSearchParams(s).entries()];
}

