import type { Resource } from 'fhir/r4';
import { badRequest, FhirError } from '../outcome';
import type { StoredVersion } from '../store/types';
import type { Services } from './context';

export const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;

export const etag = (versionId: number) => `W/"${versionId}"`;
export const iso = (ms: number) => new Date(ms).toISOString();
export const httpDate = (ms: number) => new Date(ms).toUTCString();

/**
 * How deeply a request's JSON may nest. FHIR resources, even Bundles of resources with contained
 * resources and nested extensions, stay far below it; deeper input would exhaust the stack of the
 * recursive walks (schema, profiles, index, storage), so it is refused up front.
 */
export const MAX_JSON_DEPTH = 100;

/**
 * Parses JSON text from a client, refusing what does not parse (400), nests deeper than
 * MAX_JSON_DEPTH (400) or holds an array longer than `maxArrayItems` (413: a Patient with a million
 * names would cost the validation and the index far more memory than its bytes).
 */
export function parseClientJson(text: string, maxArrayItems: number, what = 'The body', expression?: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FhirError(400, 'structure', `${what} is not valid JSON: ${(e as Error).message}`, expression);
  }
  if (nestingOf(text) > MAX_JSON_DEPTH) throw new FhirError(400, 'too-costly', `${what} nests JSON more than ${MAX_JSON_DEPTH} levels deep`, expression);
  const long = longArray(value, maxArrayItems);
  if (long) throw new FhirError(413, 'too-costly', `${what} has an array of ${long.length} items at ${long.path}; at most ${maxArrayItems} are accepted (MAX_ARRAY_ITEMS)`, expression ?? long.path);
  return value;
}

/** The first array longer than `max` in a parsed body, with its path; a Bundle's entries are counted by MAX_BUNDLE_ENTRIES instead. */
function longArray(root: unknown, max: number): { path: string; length: number } | undefined {
  const rootName = typeof (root as { resourceType?: unknown })?.resourceType === 'string' ? (root as { resourceType: string }).resourceType : '$';
  const stack: { value: unknown; path: string }[] = [{ value: root, path: rootName }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (Array.isArray(value)) {
      if (value.length > max && path !== 'Bundle.entry') return { path, length: value.length };
      value.forEach((v, i) => typeof v === 'object' && v !== null && stack.push({ value: v, path: `${path}[${i}]` }));
    } else if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) if (typeof v === 'object' && v !== null) stack.push({ value: v, path: `${path}.${k}` });
    }
  }
  return undefined;
}

/**
 * How deeply valid JSON text nests objects and arrays: the number of brackets it opens when that is
 * at most MAX_JSON_DEPTH (a bound on the depth), else the depth found by a scan outside strings.
 */
function nestingOf(text: string): number {
  // no deeper than the number of brackets it opens: most bodies need no scan
  const opening = /[[{]/g;
  let opened = 0;
  while (opening.exec(text) !== null && ++opened <= MAX_JSON_DEPTH);
  if (opened <= MAX_JSON_DEPTH) return opened;
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > deepest) deepest = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

export function checkType(svc: Services, type: string): void {
  if (!svc.resourceTypes.has(type)) throw new FhirError(404, 'not-found', `Unknown resource type "${type}"`);
}

export function checkId(id: string, expression?: string): void {
  if (!ID_RE.test(id)) throw badRequest(`"${id}" is not a valid resource id (1 to 64 characters among A-Z a-z 0-9 - .)`, expression);
}

/** The version number in an If-Match or If-None-Match header: `W/"3"`, `"3"` or `3`. */
export function versionOfEtag(header: string): string {
  return header.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
}

/**
 * Checks that a request body is a resource of the expected type and returns it.
 * (Full structural and profile validation is the validation layer's work.)
 */
export function resourceBody(svc: Services, body: unknown, type?: string): Resource {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('The request body is not a FHIR resource: expected a JSON object with a resourceType');
  const r = body as Record<string, unknown>;
  if (typeof r.resourceType !== 'string') throw badRequest('The request body is not a FHIR resource: resourceType is missing', 'resourceType');
  if (!svc.resourceTypes.has(r.resourceType)) throw badRequest(`Unknown resourceType "${r.resourceType}"`, 'resourceType');
  if (type && r.resourceType !== type) throw badRequest(`resourceType "${r.resourceType}" does not match the type in the URL (${type})`, `${r.resourceType}.resourceType`);
  if (r.id !== undefined && (typeof r.id !== 'string' || !ID_RE.test(r.id))) throw badRequest(`${r.resourceType}.id is not a valid id`, `${r.resourceType}.id`);
  if (r.meta !== undefined && (typeof r.meta !== 'object' || r.meta === null || Array.isArray(r.meta))) throw badRequest(`${r.resourceType}.meta must be an object`, `${r.resourceType}.meta`);
  return body as Resource;
}

/** The resource as stored: server-owned id, versionId and lastUpdated, first in the JSON. */
export function stamp(resource: Resource, id: string, versionId: number, lastUpdated: number): Resource {
  const { resourceType, id: _id, meta, ...rest } = resource as Resource & Record<string, unknown>;
  return { resourceType, id, meta: { ...(meta ?? {}), versionId: String(versionId), lastUpdated: iso(lastUpdated) }, ...rest } as Resource;
}

export function versionHeaders(v: StoredVersion, baseUrl: string, withLocation: boolean): Record<string, string> {
  const h: Record<string, string> = { ETag: etag(v.versionId), 'Last-Modified': httpDate(v.lastUpdated) };
  if (withLocation) h.Location = `${baseUrl}/${v.type}/${v.id}/_history/${v.versionId}`;
  return h;
}
