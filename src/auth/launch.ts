import { randomBytes } from 'node:crypto';
import express, { type Router } from 'express';
import { forbidden } from '../policy/access';
import type { ResourceStore } from '../store/types';
import type { LaunchContext } from './context';
import { bearerError, OAuthError } from './errors';
import type { Verify } from './verify';

/**
 * EHR launch: a professional's software (or a system) issues a launch for a patient
 * (`POST /auth/launch`), then sends the user to authorize with `launch=<id>` and the `launch`
 * scope; at consent the launch gives the grant its patient. A launch serves once, within 5 minutes,
 * and only for the user whose token issued it.
 */
export const LAUNCH_TTL_S = 300;
export const LAUNCH_SCOPE_WITHOUT_LAUNCH = 'The launch scope goes with the launch parameter of an EHR launch (a standalone launch asks for launch/patient)';
const UNKNOWN_LAUNCH = 'The launch is unknown or has expired';

interface Launch {
  patient: string;
  issuedBy: string;
  /** the signed-in user of the token that issued it (`Practitioner/..`): only they may use it */
  user?: string;
  expiresAt: number;
}

const LAUNCH = (id: string) => `smart:launch:${id}`;

export type LaunchOutcome = { patient: string } | { error: 'invalid_request' | 'access_denied'; description: string };

export class Launches {
  constructor(private readonly store: ResourceStore) {}

  async exists(id: string): Promise<boolean> {
    return Boolean(await this.store.getState<Launch | null>(LAUNCH(id)));
  }

  async issue(patient: string, issuedBy: string, user: string | undefined): Promise<string> {
    const id = randomBytes(24).toString('base64url');
    const expiresAt = Date.now() + LAUNCH_TTL_S * 1000;
    await this.store.setState(LAUNCH(id), { patient, issuedBy, ...(user ? { user } : {}), expiresAt } satisfies Launch, { expiresAt });
    return id;
  }

  /** Uses the launch `id` for a sign-in whose context is `context`: its patient, or why not. */
  async take(id: string, context: LaunchContext): Promise<LaunchOutcome> {
    const launch = await this.store.getState<Launch | null>(LAUNCH(id));
    if (!launch || launch.expiresAt < Date.now()) return { error: 'invalid_request', description: UNKNOWN_LAUNCH };
    // a launch issued from a professional's session is theirs; a patient's own context is never replaced
    const notTheirs = (launch.user && launch.user !== context.fhirUser) || (context.patient !== undefined && context.patient !== launch.patient);
    if (notTheirs) return { error: 'access_denied', description: 'This launch was not issued for the signed-in user' };
    // a launch serves once, also when two sign-ins use it at the same time
    if (!(await this.store.claimState(`smart:launch-use:${id}`, 1, { expiresAt: launch.expiresAt }))) return { error: 'invalid_request', description: UNKNOWN_LAUNCH };
    await this.store.setState(LAUNCH(id), null);
    return { patient: launch.patient };
  }
}

/** `POST /launch` with a professional's or a system's token and `{"patient": "<id>"}`: `{launch, expires_in}`. */
export function launchRoutes(router: Router, o: { launches: Launches; store: ResourceStore; verify: Verify }): void {
  router.post('/launch', express.json({ limit: '10kb' }), async (req, res) => {
    try {
      const access = await o.verify(req.get('authorization'));
      const patient = (req.body as { patient?: unknown })?.patient;
      if (typeof patient !== 'string' || !/^[A-Za-z0-9\-.]{1,64}$/.test(patient)) throw new OAuthError(400, 'invalid_request', 'patient: the id of a Patient');
      if (!access.scopes.some((s) => s.context === 'user' || s.context === 'system')) throw forbidden('An EHR launch is issued by a professional (user/ scopes) or a system');
      const current = await o.store.read('Patient', patient);
      if (!current || current.deleted) throw new OAuthError(404, 'invalid_request', `No Patient/${patient}`);
      const launch = await o.launches.issue(patient, access.clientId, access.fhirUser);
      res.status(201).json({ launch, expires_in: LAUNCH_TTL_S });
    } catch (e) {
      throw bearerError(e);
    }
  });
}
