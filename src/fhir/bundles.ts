import { randomUUID } from 'node:crypto';
import type { OperationOutcome } from 'fhir/r4';
import type { SearchPlan } from '../search/plan';
import type { Page, StoredVersion } from '../store/types';
import { etag, iso } from './resource';

/** Bundles are written as text so stored resources go out without being parsed again. */

function url(self: string, params: [string, string][]): string {
  const q = new URLSearchParams(params).toString();
  return q ? `${self}?${q}` : self;
}

function links(self: string, params: [string, string][], count: number, page: Page<StoredVersion>, current?: SearchPlan['cursor']): string {
  const withCount: [string, string][] = [...params, ['_count', String(count)]];
  const out = [{ relation: 'self', url: url(self, current ? [...withCount, ['_cursor', `${current.direction}:${current.position}`]] : withCount) }];
  if (page.next) out.push({ relation: 'next', url: url(self, [...withCount, ['_cursor', `next:${page.next}`]]) });
  if (page.prev) out.push({ relation: 'previous', url: url(self, [...withCount, ['_cursor', `prev:${page.prev}`]]) });
  return JSON.stringify(out);
}

function head(type: string, total: number | undefined): string {
  return `{"resourceType":"Bundle","id":"${randomUUID()}","meta":{"lastUpdated":"${new Date().toISOString()}"},"type":"${type}"${total === undefined ? '' : `,"total":${total}`}`;
}

/** `,"entry":[...]`, or nothing: R4 JSON has no empty arrays. */
const entryArray = (entries: string[]) => (entries.length ? `,"entry":[${entries.join(',')}]` : '');

/** A resource of a searchset: a match or an inclusion, with the JSON to send (possibly subsetted). */
export interface BundleMatch {
  version: StoredVersion;
  mode: 'match' | 'include';
  json: string;
  /** when not `base/Type/id` (a contained resource: `base/ContainerType/id#cid`) */
  fullUrl?: string;
}

export function searchBundle(base: string, self: string, params: [string, string][], plan: SearchPlan, page: Page<StoredVersion>, matches: BundleMatch[], outcome?: OperationOutcome): string {
  const entries = matches.map((m) => `{"fullUrl":${JSON.stringify(m.fullUrl ?? `${base}/${m.version.type}/${m.version.id}`)},"resource":${m.json},"search":{"mode":"${m.mode}"}}`);
  if (outcome) entries.push(`{"resource":${JSON.stringify(outcome)},"search":{"mode":"outcome"}}`);
  return `${head('searchset', page.total)},"link":${links(self, params, plan.count, page, plan.cursor)}${entryArray(entries)}}`;
}

export function historyBundle(base: string, self: string, params: [string, string][], count: number, page: Page<StoredVersion>): string {
  const entries = page.items.map((v) => {
    const method = v.deleted ? 'DELETE' : v.versionId === 1 ? 'POST' : 'PUT';
    const status = v.deleted ? '204 No Content' : v.versionId === 1 ? '201 Created' : '200 OK';
    const request = JSON.stringify({ method, url: method === 'POST' ? v.type : `${v.type}/${v.id}` });
    const response = JSON.stringify({ status, etag: etag(v.versionId), lastModified: iso(v.lastUpdated) });
    const resource = v.json ? `"resource":${v.json},` : '';
    return `{"fullUrl":${JSON.stringify(`${base}/${v.type}/${v.id}`)},${resource}"request":${request},"response":${response}}`;
  });
  return `${head('history', page.total)},"link":${links(self, params, count, page)}${entryArray(entries)}}`;
}
