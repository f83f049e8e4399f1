import { createHash } from 'node:crypto';
import { badRequest, FhirError } from '../outcome';
import { restrictScopes } from '../policy/access';
import { parseSearch } from '../search/parse';
import type { StoredVersion } from '../store/types';
import type { FhirRequest, Services } from './context';

/** Conditional interactions: the match of their criteria, and the claim that keeps two of them with the same criteria apart. */

/** The search criteria of a conditional interaction's query (what shapes the answer is not one). */
const criteriaOf = (query: [string, string][]) => query.filter(([k]) => k !== '_format' && k !== '_pretty');

/** Runs a type-level query for a conditional interaction: criteria are required and always strict. */
export async function conditionalMatches(svc: Services, req: FhirRequest, type: string, query: [string, string][]): Promise<StoredVersion[]> {
  const criteria = criteriaOf(query);
  if (criteria.length === 0) throw badRequest(`A conditional ${req.method} needs search criteria`);
  const { plan } = parseSearch(svc.registry, type, criteria, { strict: true, defaultCount: 2, maxCount: 2, baseUrl: req.baseUrl });
  // criteria that all drop out (empty values, result parameters) would match every resource
  if (plan.scopes.every((s) => s.conditions.length === 0)) throw badRequest(`A conditional ${req.method} needs search criteria that select resources; ${criteria.map(([k, v]) => `${k}=${v}`).join('&')} selects none`);
  // a confined token only ever matches what it could search
  plan.scopes = restrictScopes(svc, req.access, plan.scopes);
  if (plan.scopes.length === 0) return [];
  plan.count = 2;
  plan.total = 'none';
  plan.cursor = undefined;
  return (await svc.store.search(plan)).items;
}

/** How long a claim on conditional criteria may be held (a server that stops while holding one). */
const CLAIM_MS = 30_000;
/** How long a conditional interaction waits for another one with the same criteria. */
const CLAIM_WAIT_MS = 5_000;

/**
 * Runs a conditional interaction's "match, then write" with no other one of the same type and
 * criteria in between, on this server or another sharing the store: two conditional creates of the
 * same Patient sent at once would otherwise both find none and both create it. The other one waits.
 */
export async function exclusively<T>(svc: Services, type: string, criteria: [string, string][], fn: () => Promise<T>): Promise<T> {
  // not for a transaction's entries: SQLite's transaction already keeps every other writer out (and
  // a claim, outside it, would wait for it); on MongoDB two transactions can still race here
  if (svc.store.inTransaction) return fn();
  const canonical = criteriaOf(criteria).sort(([a, x], [b, y]) => a.localeCompare(b) || x.localeCompare(y)).map(([k, v]) => `${k}=${v}`).join('&');
  const key = `conditional:${type}:${createHash('sha256').update(canonical).digest('base64url')}`;
  const deadline = Date.now() + CLAIM_WAIT_MS;
  for (let pause = 2; !(await svc.store.claimState(key, 1, { expiresAt: Date.now() + CLAIM_MS })); pause = Math.min(pause * 2, 50)) {
    if (Date.now() > deadline) throw new FhirError(409, 'conflict', `Another conditional write of ${type} with the same criteria is still running; try again`);
    await new Promise((r) => setTimeout(r, pause));
  }
  try {
    return await fn();
  } finally {
    await svc.store.setState(key, null);
  }
}

