import type { StoredVersion } from '../types';

/**
 * Version mapping: a stored row (SQLite) or document (MongoDB) as the StoredVersion the layers
 * above read. A contained resource's id is `ContainerType/containerId#cid` (real ids never hold `#`
 * or `/`); its version says where it is.
 */
export function storedVersion(type: string, id: string, versionId: number, lastUpdated: number, deleted: boolean, json: string | null | undefined): StoredVersion {
  const v: StoredVersion = { type, id, versionId, lastUpdated, deleted, json: json ?? undefined };
  const container = containerOf(id);
  if (container) v.container = container;
  return v;
}

/** Where a contained resource's row is, from its id `ContainerType/containerId#cid`; undefined for any other resource. */
export function containerOf(id: string): StoredVersion['container'] {
  const m = /^([A-Z][A-Za-z]+)\/([^#/]+)#(.+)$/.exec(id);
  return m ? { type: m[1], id: m[2], cid: m[3] } : undefined;
}

/** The number and time of the version after `previous`: its time is now, and always after the previous version's. */
export function nextVersion(previous: StoredVersion | undefined): { versionId: number; lastUpdated: number } {
  return { versionId: (previous?.versionId ?? 0) + 1, lastUpdated: Math.max(Date.now(), (previous?.lastUpdated ?? 0) + 1) };
}
