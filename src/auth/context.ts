import type { ResourceStore } from '../store/types';
import type { AccountRegistry } from './registry';

/** Launch context of a grant: the patient the tokens are about, the signed-in user. */
export interface LaunchContext {
  patient?: string;
  fhirUser?: string;
}

/**
 * The context is recorded at consent and put in every token of the grant (patient, fhirUser); it
 * lives and goes with its grant (revoked with it).
 */
const CONTEXT = (grantId: string) => `smart:context:${grantId}`;

export async function launchContextOf(store: ResourceStore, grantId: string | undefined): Promise<LaunchContext> {
  return grantId ? ((await store.getState<LaunchContext | null>(CONTEXT(grantId))) ?? {}) : {};
}

export async function keepLaunchContext(store: ResourceStore, grantId: string, context: LaunchContext, expiresAt: number): Promise<void> {
  await store.setState(CONTEXT(grantId), context, { group: grantId, expiresAt });
}

/** The FHIR user of an account id (`patient:<login>`, `practitioner:<id>`). */
export async function fhirUserOf(accounts: AccountRegistry, sub: string): Promise<string | undefined> {
  if (sub.startsWith('patient:')) {
    const a = await accounts.get(sub.slice('patient:'.length));
    return a ? `Patient/${a.patientId}` : undefined;
  }
  if (sub.startsWith('practitioner:')) return `Practitioner/${sub.slice('practitioner:'.length)}`;
  return undefined;
}
