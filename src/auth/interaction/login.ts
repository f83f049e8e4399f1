import { createHash } from 'node:crypto';
import type { Router } from 'express';
import { failedSignInsMessage, oneTimeCodeMessage, type MessageSender } from '../../messaging';
import type { ResourceStore } from '../../store/types';
import { sendPage } from '../pages';
import { FREE_TRIES_PER_ADDRESS, type AccountRegistry } from '../registry';
import { formBody, type InteractionKit } from './kit';
import { OTP_TTL_MS, type OneTimeCodes } from './otp';

const waitText = (ms: number) => (ms < 60_000 ? `${Math.ceil(ms / 1000)} seconde(s)` : `${Math.ceil(ms / 60_000)} minute(s)`);

/**
 * `POST /interaction/:uid/login`: a patient's login and password. The right password sends a
 * one-time code to the account's channel and shows its page; a wrong one shows the login page
 * again, 429 with Retry-After while tries are slowed down (AccountRegistry.authenticate).
 */
export function loginRoute(router: Router, o: { kit: InteractionKit; codes: OneTimeCodes; accounts: AccountRegistry; store: ResourceStore; sender: MessageSender }): void {
  const { kit, accounts, sender } = o;

  /** Tells an account's owner, at most once an hour, that wrong passwords are being tried on it. */
  async function warnOwner(login: string, failures: number): Promise<void> {
    const account = await accounts.get(login);
    if (!account || !(await o.store.claimState(`auth:login-notice:${createHash('sha256').update(login.toLowerCase()).digest('base64url')}`, 1, { expiresAt: Date.now() + 60 * 60 * 1000 }))) return;
    await sender.send({ channel: account.channel, to: account.to, ...failedSignInsMessage({ failures }) });
  }

  router.post('/interaction/:uid/login', formBody, kit.form('login', async (d, req, res) => {
    const login = String(req.body.login ?? '').trim();
    const { account, retryAfterMs, failures } = await accounts.authenticate(login, String(req.body.password ?? ''), { address: req.ip ?? 'unknown', knownDevice: kit.knownDevice(req, login) });
    const name = await kit.clientName(d.params);
    if (!account) {
      if (failures !== undefined && failures >= FREE_TRIES_PER_ADDRESS) await warnOwner(login, failures);
      const error = retryAfterMs !== undefined ? `Trop de tentatives : réessayez dans ${waitText(retryAfterMs)}.` : 'Identifiant ou mot de passe incorrect.';
      if (retryAfterMs !== undefined) res.set('Retry-After', String(Math.ceil(retryAfterMs / 1000)));
      return sendPage(res, retryAfterMs !== undefined ? 429 : 401, kit.loginHtml(d.uid, name, { error, login }));
    }
    const code = await o.codes.issue(d.uid, account.login);
    await sender.send({ channel: account.channel, to: account.to, ...oneTimeCodeMessage({ code, validMinutes: OTP_TTL_MS / 60_000 }) });
    return sendPage(res, 200, kit.otpHtml(d.uid, name, account));
  }));
}
