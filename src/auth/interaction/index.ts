import type { Router } from 'express';
import type { Config } from '../../config';
import type { Logger } from '../../log';
import type { MessageSender } from '../../messaging';
import type { ResourceStore } from '../../store/types';
import { sendPage } from '../pages';
import type { Secrets } from '../keys';
import type { Launches } from '../launch';
import type { Provider } from '../provider';
import type { AccountRegistry, ClientRegistry } from '../registry';
import { abortRoute } from './abort';
import { consentHtml, consentRoute } from './consent';
import { InteractionKit } from './kit';
import { loginRoute } from './login';
import { OneTimeCodes, otpRoute } from './otp';
import { proRoutes } from './pro';

export interface InteractionOptions {
  config: Config;
  store: ResourceStore;
  log: Logger;
  provider: Provider;
  clients: ClientRegistry;
  accounts: AccountRegistry;
  launches: Launches;
  sender: MessageSender;
  secrets: Secrets;
  issuer: string;
  authPath: string;
}

/**
 * The pages of a sign-in, under /interaction/<uid> (oidc-provider's interactions): login, one-time
 * code, consent, and the professional's login upstream when PRO_OIDC_ISSUER is set; abort from any
 * of them.
 */
export function interactionRoutes(router: Router, o: InteractionOptions): void {
  const key = o.secrets.cookieKeys[0];
  const kit = new InteractionKit(o.provider, o.clients, key, o.authPath, Boolean(o.config.proOidc));
  const codes = new OneTimeCodes(o.store, key);
  const consent = { kit, store: o.store, accounts: o.accounts, launches: o.launches };
  // the page of the prompt at hand
  router.get('/interaction/:uid', async (req, res) => {
    const d = await kit.details(req, res);
    const name = await kit.clientName(d.params);
    sendPage(res, 200, d.prompt.name === 'login' ? kit.loginHtml(d.uid, name) : await consentHtml(consent, d, name));
  });
  loginRoute(router, { kit, codes, accounts: o.accounts, store: o.store, sender: o.sender });
  otpRoute(router, { kit, codes, accounts: o.accounts });
  abortRoute(router, { kit, codes });
  consentRoute(router, consent);
  if (o.config.proOidc) proRoutes(router, { kit, store: o.store, log: o.log, config: o.config, secrets: o.secrets, issuer: o.issuer, authPath: o.authPath });
}
