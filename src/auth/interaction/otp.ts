import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import type { Router } from 'express';
import type { ResourceStore } from '../../store/types';
import { Attempts } from '../attempts';
import { sendPage } from '../pages';
import { native } from '../esm';
import type { AccountRegistry } from '../registry';
import { formBody, type InteractionKit } from './kit';

/**
 * The one-time code of a patient's sign-in: 6 digits sent after the right password, valid 15
 * minutes, usable once, 5 tries. Stored as a keyed digest, by the sign-in (interaction) it belongs to.
 */
export const OTP_TTL_MS = 15 * 60 * 1000;
const OTP_MAX_ATTEMPTS = 5;

interface Pending {
  login: string;
  hash: string;
  expiresAt: number;
}

export type CodeCheck = { outcome: 'right'; login: string } | { outcome: 'wrong'; login: string; triesLeft: number } | { outcome: 'expired' } | { outcome: 'exhausted' };

export class OneTimeCodes {
  private readonly tries: Attempts;

  constructor(
    private readonly store: ResourceStore,
    private readonly key: string,
  ) {
    this.tries = new Attempts(store, 'auth:otp-try:', OTP_MAX_ATTEMPTS, OTP_TTL_MS);
  }

  private stateKey(uid: string) {
    return `auth:otp:${uid}`;
  }

  private hash(uid: string, code: string) {
    return createHash('sha256').update(`${this.key}:${uid}:${code}`).digest('base64url');
  }

  /** A new code for the sign-in `uid` of `login` (it replaces an earlier one). */
  async issue(uid: string, login: string): Promise<string> {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const expiresAt = Date.now() + OTP_TTL_MS;
    await this.store.setState(this.stateKey(uid), { login, hash: this.hash(uid, code), expiresAt } satisfies Pending, { expiresAt });
    return code;
  }

  async forget(uid: string): Promise<void> {
    await this.store.setState(this.stateKey(uid), null);
  }

  /** Checks a try at the code of the sign-in `uid`; a right code is used up, and so is a code tried too often. */
  async check(uid: string, code: string): Promise<CodeCheck> {
    const pending = await this.store.getState<Pending>(this.stateKey(uid));
    if (!pending || pending.expiresAt <= Date.now()) {
      await this.forget(uid);
      return { outcome: 'expired' };
    }
    // the tries at this code (by its digest: a new code gets its own), counted even when sent in parallel
    const { tries, allowed } = await this.tries.take(pending.hash);
    const right = allowed && /^\d{6}$/.test(code) && timingSafeEqual(Buffer.from(this.hash(uid, code)), Buffer.from(pending.hash));
    if (!right) {
      if (tries < OTP_MAX_ATTEMPTS) return { outcome: 'wrong', login: pending.login, triesLeft: OTP_MAX_ATTEMPTS - tries };
      await this.forget(uid);
      return { outcome: 'exhausted' };
    }
    await this.forget(uid); // usable once
    await this.tries.clear(pending.hash);
    return { outcome: 'right', login: pending.login };
  }
}

/** `POST /interaction/:uid/otp`: the code of the login page's account; a right one signs the patient in. */
export function otpRoute(router: Router, o: { kit: InteractionKit; codes: OneTimeCodes; accounts: AccountRegistry }): void {
  const { kit } = o;
  router.post('/interaction/:uid/otp', formBody, kit.form('login', async (d, req, res) => {
    const check = await o.codes.check(d.uid, String(req.body.code ?? '').trim());
    const name = await kit.clientName(d.params);
    if (check.outcome === 'expired') return sendPage(res, 401, kit.loginHtml(d.uid, name, { error: 'Le code a expiré. Connectez-vous à nouveau pour recevoir un nouveau code.' }));
    if (check.outcome === 'exhausted') return sendPage(res, 401, kit.loginHtml(d.uid, name, { error: 'Trop de codes incorrects. Connectez-vous à nouveau pour recevoir un nouveau code.' }));
    if (check.outcome === 'wrong') return sendPage(res, 401, kit.otpHtml(d.uid, name, await o.accounts.get(check.login), `Code incorrect. Il vous reste ${check.triesLeft} essai(s).`));
    kit.rememberDevice(req, res, check.login);
    await kit.provider.interactionFinished(req, res, native({ login: { accountId: `patient:${check.login}` } }), { mergeWithLastSubmission: false });
  }));
}
