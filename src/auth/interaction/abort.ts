import type { Router } from 'express';
import { refuseInteraction } from '../errors';
import { formBody, type InteractionKit } from './kit';
import type { OneTimeCodes } from './otp';

/** What the app is told when the sign-in ends without a code, by the reason the page gave. */
const ABORT_REASONS: Record<string, string> = {
  cancelled: 'The user cancelled the sign-in',
  'pro-refused': 'The professional identity provider (Pro Santé Connect) did not sign the user in',
  'pro-unknown': "The professional's RPPS number matches no Practitioner on this server",
};

/**
 * `POST /interaction/:uid/abort`: whoever gives up (cancels a sign-in, is refused upstream or
 * unknown here) goes back to the app, which is told so (access_denied), so that it never waits for
 * a code.
 */
export function abortRoute(router: Router, o: { kit: InteractionKit; codes: OneTimeCodes }): void {
  router.post('/interaction/:uid/abort', formBody, o.kit.form(undefined, async (d, req, res) => {
    await o.codes.forget(d.uid);
    const given = String(req.body.reason);
    const reason = Object.hasOwn(ABORT_REASONS, given) ? ABORT_REASONS[given] : ABORT_REASONS.cancelled;
    await refuseInteraction(o.kit.provider, req, res, 'access_denied', reason);
  }));
}
