import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { Recipient } from '../../messaging';
import { PageError } from '../errors';
import { loginPage, otpPage, type Back } from '../pages';
import type { Provider } from '../provider';
import type { ClientRegistry } from '../registry';

/** A sign-in in progress, as oidc-provider describes it (its uid, prompt, parameters, session). */
export type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/** The body parser of the interaction forms. */
export const formBody = express.urlencoded({ extended: false, limit: '20kb' });

/** How long a browser where an account signed in is known as its owner's (it then escapes the slow-down of tries from many addresses). */
const DEVICE_COOKIE_DAYS = 180;

/** An address shown half hidden: h•••@example.fr, ••••••••78. */
const mask = (to: string) => (to.includes('@') ? to.replace(/^(.).*(@.*)$/, '$1•••$2') : to.replace(/.(?=.{2})/g, '•'));

/**
 * What the interaction routes share: the sign-in at hand, its pages' addresses and CSRF token, the
 * login and one-time code pages, the device cookie. The CSRF token and the device cookie's name are
 * keyed with the server's cookie key.
 */
export class InteractionKit {
  constructor(
    readonly provider: Provider,
    private readonly clients: ClientRegistry,
    private readonly key: string,
    private readonly authPath: string,
    /** whether professionals may sign in upstream (the login page then links there) */
    private readonly proLogin: boolean,
  ) {}

  details(req: Request, res: Response): Promise<Interaction> {
    return this.provider.interactionDetails(req, res);
  }

  /** The registered name of the app that asked for the sign-in. */
  async clientName(params: { client_id?: unknown }): Promise<string> {
    const clientId = String(params.client_id);
    return (await this.clients.get(clientId))?.name ?? clientId;
  }

  path(uid: string): string {
    return `${this.authPath}/interaction/${uid}`;
  }

  csrf(uid: string): string {
    return createHmac('sha256', this.key).update(`csrf:${uid}`).digest('base64url');
  }

  private csrfOk(uid: string, token: unknown): boolean {
    if (typeof token !== 'string') return false;
    const a = Buffer.from(token);
    const b = Buffer.from(this.csrf(uid));
    return a.length === b.length && timingSafeEqual(a, b);
  }

  backTo(uid: string, clientName: string, reason?: Back['reason']): Back {
    return { action: `${this.path(uid)}/abort`, csrf: this.csrf(uid), clientName, reason };
  }

  loginHtml(uid: string, clientName: string, o: { error?: string; login?: string } = {}): string {
    return loginPage({ action: `${this.path(uid)}/login`, csrf: this.csrf(uid), clientName, proLoginUrl: this.proLogin ? `${this.path(uid)}/pro` : undefined, back: this.backTo(uid, clientName), ...o });
  }

  otpHtml(uid: string, clientName: string, account: Recipient | undefined, error?: string): string {
    return otpPage({ action: `${this.path(uid)}/otp`, csrf: this.csrf(uid), channel: account?.channel ?? 'email', masked: mask(account?.to ?? ''), error, back: this.backTo(uid, clientName) });
  }

  /**
   * A form of the interaction pages: the interaction, at the prompt the form belongs to (any for
   * undefined), with the page's CSRF token; anything else is refused with a 403 page.
   */
  form(prompt: 'login' | 'consent' | undefined, handle: (d: Interaction, req: Request, res: Response) => Promise<unknown>) {
    return async (req: Request, res: Response) => {
      const d = await this.details(req, res);
      if ((prompt && d.prompt.name !== prompt) || !this.csrfOk(d.uid, req.body?.csrf)) {
        throw new PageError(403, 'Requête refusée', `Le formulaire a expiré ou ne vient pas de cette page. Recommencez ${prompt === 'login' ? 'la connexion ' : ''}depuis l’application.`);
      }
      await handle(d, req, res);
    };
  }

  /** A browser where an account signed in: a cookie whose name only this server can derive from the login. */
  private deviceCookie(login: string): string {
    return `esf_device_${createHmac('sha256', this.key).update(`device:${login.toLowerCase()}`).digest('base64url').slice(0, 22)}`;
  }

  knownDevice(req: Request, login: string): boolean {
    return (req.get('cookie') ?? '').split(';').some((c) => c.trim().startsWith(`${this.deviceCookie(login)}=`));
  }

  rememberDevice(req: Request, res: Response, login: string): void {
    res.append('Set-Cookie', `${this.deviceCookie(login)}=1; Max-Age=${DEVICE_COOKIE_DAYS * 86400}; Path=${this.authPath}; HttpOnly; SameSite=Lax${req.secure ? '; Secure' : ''}`);
  }
}
