import type { Request, Router } from 'express';
import { describeScope } from '../../policy/scopes';
import type { ResourceStore } from '../../store/types';
import { fhirUserOf, keepLaunchContext, type LaunchContext } from '../context';
import { refuseInteraction } from '../errors';
import { native } from '../esm';
import { LAUNCH_SCOPE_WITHOUT_LAUNCH, type Launches } from '../launch';
import { consentPage } from '../pages';
import type { Provider } from '../provider';
import type { AccountRegistry } from '../registry';
import { formBody, type Interaction, type InteractionKit } from './kit';

/** What the signed-in user is asked to approve: the scopes the grant does not hold yet. */
type Missing = { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };

/**
 * The consent page and its answer: the signed-in user approves the scopes they keep ticked; the
 * grant records them and its launch context (the patient: the user's own, or an EHR launch's).
 */
export interface ConsentOptions {
  kit: InteractionKit;
  store: ResourceStore;
  accounts: AccountRegistry;
  launches: Launches;
}

export async function consentHtml(o: ConsentOptions, d: Interaction, clientName: string): Promise<string> {
  const details = d.prompt.details as Missing;
  const oidc = details.missingOIDCScope ?? [];
  const resource = Object.values(details.missingResourceScopes ?? {}).flat();
  const sub = d.session?.accountId ?? '';
  const who = await displayName(o.store, (await fhirUserOf(o.accounts, sub)) ?? sub);
  const scopes = [...oidc, ...resource].map((value) => ({ value, label: describeScope(value), required: value === 'openid' || value === 'launch' || value === 'launch/patient' }));
  return consentPage({ action: `${o.kit.path(d.uid)}/consent`, csrf: o.kit.csrf(d.uid), clientName, who, scopes });
}

/** `POST /interaction/:uid/consent` */
export function consentRoute(router: Router, o: ConsentOptions): void {
  const { kit } = o;
  const { provider } = kit;
  router.post('/interaction/:uid/consent', formBody, kit.form('consent', async (d, req, res) => {
    if (req.body.decision !== 'allow') return refuseInteraction(provider, req, res, 'access_denied', 'The user refused the access');
    const accountId = d.session!.accountId;
    const grantId = await grantOf(provider, d, accountId, req);
    // the launch context of the tokens of this grant
    const context: LaunchContext = { fhirUser: await fhirUserOf(o.accounts, accountId) };
    if (accountId.startsWith('patient:')) context.patient = context.fhirUser?.slice('Patient/'.length);
    const launchId = (d.params as Record<string, unknown>).launch;
    // the `launch` scope asks for the context of an EHR launch: without a launch there is none to give
    if (typeof launchId !== 'string' && String(d.params.scope ?? '').split(' ').includes('launch')) return refuseInteraction(provider, req, res, 'invalid_scope', LAUNCH_SCOPE_WITHOUT_LAUNCH);
    if (typeof launchId === 'string') {
      const launch = await o.launches.take(launchId, context);
      if ('error' in launch) return refuseInteraction(provider, req, res, launch.error, launch.description);
      context.patient = launch.patient;
    }
    await keepLaunchContext(o.store, grantId, context, ((await provider.Grant.find(grantId))?.exp ?? 0) * 1000);
    await provider.interactionFinished(req, res, native({ consent: { grantId } }), { mergeWithLastSubmission: true });
  }));
}

/** "Hélène Lefèvre (Patient/123)" from the stored resource's first name, or the reference alone. */
async function displayName(store: ResourceStore, ref: string): Promise<string> {
  const m = /^(Patient|Practitioner|RelatedPerson)\/([A-Za-z0-9.-]{1,64})$/.exec(ref);
  if (!m) return ref;
  const v = await store.read(m[1], m[2]);
  if (!v?.json || v.deleted) return ref;
  const name = ((JSON.parse(v.json) as { name?: { given?: string[]; family?: string; text?: string }[] }).name ?? [])[0];
  const text = name?.text ?? [...(name?.given ?? []), name?.family].filter(Boolean).join(' ');
  return text ? `${text} (${ref})` : ref;
}

/** The interaction's grant (a new one, or the one being extended) with the scopes the user kept ticked; its id. */
async function grantOf(provider: Provider, d: Interaction, accountId: string, req: Request): Promise<string> {
  const chosen = new Set<string>(([] as string[]).concat(req.body.scope ?? []));
  const missing = d.prompt.details as Missing;
  const grant = d.grantId ? (await provider.Grant.find(d.grantId))! : new provider.Grant(native({ accountId, clientId: String(d.params.client_id) }));
  const oidc = missing.missingOIDCScope ?? [];
  grant.addOIDCScope(oidc.filter((s) => chosen.has(s) || s === 'openid'));
  const refusedOidc = oidc.filter((s) => !chosen.has(s) && s !== 'openid');
  if (refusedOidc.length) grant.rejectOIDCScope(refusedOidc);
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    const ok = scopes.filter((s) => chosen.has(s));
    if (ok.length) grant.addResourceScope(resource, ok);
    const refused = scopes.filter((s) => !chosen.has(s));
    if (refused.length) grant.rejectResourceScope(resource, refused);
  }
  return grant.save();
}
