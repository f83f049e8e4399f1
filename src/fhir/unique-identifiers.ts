import { createHash } from 'node:crypto';
import type { Resource } from 'fhir/r4';
import { FhirError } from '../outcome';
import { tokenSystemCodeKey } from '../search/values';
import type { ResourceStore, StoredVersion } from '../store/types';
import { INS_SYSTEMS } from '../validation/required-profiles';

/**
 * Identifiers that name one resource only: an INS (INS-NIR, INS-NIA) identifies one person, so two
 * Patients never carry the same one. A write is checked against what is stored (a search), and
 * against writes of the same identifier sent at the same time, on this server or another sharing the
 * store, by a claim in the server state that the resource carrying the identifier holds.
 */
const UNIQUE_SYSTEMS: Record<string, ReadonlySet<string>> = { Patient: INS_SYSTEMS };

/** A claim younger than this is a write under way; an older one whose holder no longer carries the identifier is void. */
const UNDER_WAY_MS = 30_000;

interface Claim {
  id: string;
  at: number;
}

interface Identifier {
  system: string;
  value: string;
  /** its FHIRPath in the resource */
  path: string;
}

function uniqueIdentifiers(type: string, json: Resource | undefined): Identifier[] {
  const systems = UNIQUE_SYSTEMS[type];
  const list = (json as { identifier?: unknown } | undefined)?.identifier;
  if (!systems || !Array.isArray(list)) return [];
  return list.flatMap((i: { system?: unknown; value?: unknown }, n) => (typeof i?.system === 'string' && systems.has(i.system) && typeof i.value === 'string' ? [{ system: i.system, value: i.value, path: `${type}.identifier[${n}]` }] : []));
}

/** The claim's key: a digest, so that no identifier is written into the server state in clear. */
const claimKey = (type: string, i: Identifier) => `unique:${type}:${createHash('sha256').update(`${i.system}|${i.value}`).digest('base64url')}`;

const taken = (type: string, i: Identifier) => new FhirError(409, 'duplicate', `Another ${type} already carries the identifier ${i.system}|${i.value}: it identifies one person`, i.path);

/**
 * Before a write of `type/id` with `resource`: 409 when another resource carries one of its unique
 * identifiers or is being written with it. Returns what undoes the claims taken, for a write that
 * then fails. In a transaction only the stored data is searched (SQLite's transaction keeps other
 * writers out; two MongoDB transactions with the same identifier can still both pass).
 */
export async function claimUniqueIdentifiers(store: ResourceStore, type: string, id: string, resource: Resource): Promise<() => Promise<void>> {
  const claims: (() => Promise<unknown>)[] = [];
  const undo = async () => {
    for (const release of claims) await release();
  };
  try {
    for (const ident of uniqueIdentifiers(type, resource)) {
      const others = await store.search({
        scopes: [{ type, conditions: [{ kind: 'key', param: 'identifier', keys: [tokenSystemCodeKey(ident.system, ident.value)] }, { kind: 'id', ids: [id], not: true }] }],
        sort: [],
        count: 1,
        total: 'none',
      });
      if (others.items.length > 0) throw taken(type, ident);
      if (store.inTransaction) continue;
      const key = claimKey(type, ident);
      const mine: Claim = { id, at: Date.now() };
      for (let attempt = 0; ; attempt++) {
        if (await store.claimState(key, mine)) {
          claims.push(() => store.releaseState(key, mine));
          break;
        }
        const holder = await store.getState<Claim>(key);
        if (holder?.id === id) break;
        // a write under way, or (after a void claim was cleared) another one that got there first
        if (attempt > 0 || (holder && Date.now() - holder.at < UNDER_WAY_MS)) throw taken(type, ident);
        // the holder no longer carries it (the search found none): its claim is void
        if (holder) await store.releaseState(key, holder);
      }
    }
  } catch (e) {
    await undo();
    throw e;
  }
  return undo;
}

/** After a write: the claims of the unique identifiers that `previous` carried and the stored version no longer does are released. */
export async function releaseDroppedIdentifiers(store: ResourceStore, type: string, id: string, previous: StoredVersion | undefined, stored: StoredVersion): Promise<void> {
  if (!UNIQUE_SYSTEMS[type] || !previous?.json || store.inTransaction) return;
  const kept = new Set(uniqueIdentifiers(type, stored.json ? (JSON.parse(stored.json) as Resource) : undefined).map((i) => claimKey(type, i)));
  for (const ident of uniqueIdentifiers(type, JSON.parse(previous.json) as Resource)) {
    const key = claimKey(type, ident);
    if (kept.has(key)) continue;
    const holder = await store.getState<Claim>(key);
    if (holder?.id === id) await store.releaseState(key, holder);
  }
}

/** Whether two versions of a resource carry the same unique identifiers. */
export function sameUniqueIdentifiers(type: string, a: Resource | undefined, b: Resource | undefined): boolean {
  const keys = (r: Resource | undefined) => uniqueIdentifiers(type, r).map((i) => claimKey(type, i)).sort().join(' ');
  return keys(a) === keys(b);
}
