import { createHash, createPublicKey, randomBytes, type JsonWebKey } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import type { JWK } from 'jose';
import type { ResourceStore } from '../store/types';
import { parseScope, NON_RESOURCE_SCOPES } from '../policy/scopes';
import type { Channel } from '../messaging';
import { Throttle } from './attempts';

/**
 * The client registry (the catalogue of apps and systems) and the patients' local accounts, kept
 * as server-owned state in the store (ResourceStore getState/setState), so the server and the CLI
 * share them whatever the engine.
 */
export const CLIENT_KINDS = ['patient-app', 'professional', 'backend'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];
export type ClientStatus = 'referenced' | 'suspended';
export const AUTH_METHODS = ['private_key_jwt', 'client_secret_basic', 'none'] as const;
export type ClientAuthMethod = (typeof AUTH_METHODS)[number];

export interface RegisteredClient {
  clientId: string;
  name: string;
  kind: ClientKind;
  status: ClientStatus;
  redirectUris: string[];
  /** the scopes the client may ever receive (a ceiling; users approve a subset) */
  scope: string;
  authMethod: ClientAuthMethod;
  jwks?: { keys: JWK[] };
  jwksUri?: string;
  /**
   * client_secret_basic: the SHA-256 of the secret. The secret itself (32 random bytes) is given
   * once, when the client is added, and never stored: the token endpoint compares digests.
   */
  secretDigest?: string;
  createdAt: string;
}

const CLIENT = (id: string) => `auth:client:${id}`;

export const secretDigest = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('base64url');

export class ClientRegistry {
  constructor(private readonly store: ResourceStore) {}

  async get(clientId: string): Promise<RegisteredClient | undefined> {
    const c = await this.store.getState<RegisteredClient & { secret?: string }>(CLIENT(clientId));
    if (c?.secret === undefined) return c;
    // registered before secrets were stored as digests
    const { secret, ...rest } = c;
    const migrated = { ...rest, secretDigest: secretDigest(secret) };
    await this.store.setState(CLIENT(clientId), migrated);
    return migrated;
  }

  async list(): Promise<RegisteredClient[]> {
    const all = await Promise.all((await this.store.listState<RegisteredClient>(CLIENT(''))).map((e) => this.get(e.value.clientId)));
    return all.filter((c): c is RegisteredClient => c !== undefined).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.clientId.localeCompare(b.clientId));
  }

  /** Registers a client; a client_secret_basic client's secret is in the answer, and nowhere else ever after. */
  async add(input: Omit<RegisteredClient, 'createdAt' | 'status' | 'secretDigest'> & { status?: ClientStatus }): Promise<RegisteredClient & { secret?: string }> {
    validateClient(input);
    if (await this.get(input.clientId)) throw new Error(`The client ${input.clientId} already exists`);
    const secret = input.authMethod === 'client_secret_basic' ? randomBytes(32).toString('base64url') : undefined;
    const client: RegisteredClient = {
      ...input,
      status: input.status ?? 'referenced',
      createdAt: new Date().toISOString(),
      ...(secret ? { secretDigest: secretDigest(secret) } : {}),
    };
    // atomic: of two registrations of one id at the same time, one wins
    if (!(await this.store.claimState(CLIENT(client.clientId), client))) throw new Error(`The client ${input.clientId} already exists`);
    return { ...client, ...(secret ? { secret } : {}) };
  }

  async setStatus(clientId: string, status: ClientStatus): Promise<RegisteredClient> {
    const c = await this.get(clientId);
    if (!c) throw new Error(`No client ${clientId}`);
    const updated = { ...c, status };
    await this.store.setState(CLIENT(clientId), updated);
    return updated;
  }
}

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

export function validateClient(c: Pick<RegisteredClient, 'clientId' | 'kind' | 'redirectUris' | 'scope' | 'authMethod' | 'jwks' | 'jwksUri'>): void {
  if (!/^[A-Za-z0-9._~-]{1,100}$/.test(c.clientId)) throw new Error('client id: 1 to 100 characters among letters, digits and . _ ~ -');
  if (!CLIENT_KINDS.includes(c.kind)) throw new Error(`kind: one of ${CLIENT_KINDS.join(', ')}`);
  if (!AUTH_METHODS.includes(c.authMethod)) throw new Error(`token endpoint authentication: one of ${AUTH_METHODS.join(', ')}`);
  if (!Array.isArray(c.redirectUris) || c.redirectUris.some((u) => typeof u !== 'string')) throw new Error('redirect URIs: a list of URLs');
  if (typeof c.scope !== 'string') throw new Error('scope: the scopes, separated by spaces');
  for (const s of c.scope.split(/\s+/).filter(Boolean)) {
    if (!parseScope(s) && !NON_RESOURCE_SCOPES.includes(s)) throw new Error(`Unknown scope "${s}"`);
  }
  const contexts = new Set(c.scope.split(/\s+/).map((s) => parseScope(s)?.context).filter(Boolean));
  if (c.kind === 'backend') {
    if ([...contexts].some((x) => x !== 'system')) throw new Error('A backend system gets system/ scopes only');
    if (c.redirectUris.length) throw new Error('A backend system has no redirect URI');
  } else {
    if (contexts.has('system')) throw new Error('Only backend systems get system/ scopes');
    if (c.kind === 'patient-app' && contexts.has('user')) throw new Error('A patient app gets patient/ scopes, not user/ scopes');
    if (c.redirectUris.length === 0) throw new Error('An app needs at least one redirect URI');
    for (const u of c.redirectUris) {
      const url = URL.parse(u);
      if (!url || url.hash) throw new Error(`Invalid redirect URI ${u}`);
      if (url.protocol !== 'https:' && !LOOPBACK.includes(url.hostname)) throw new Error(`Redirect URIs use https (http only on loopback): ${u}`);
    }
  }
  if (c.jwks !== undefined && (typeof c.jwks !== 'object' || c.jwks === null || !Array.isArray(c.jwks.keys) || c.jwks.keys.some((k) => typeof k !== 'object' || k === null || typeof k.kty !== 'string'))) {
    throw new Error('jwks: a JSON Web Key Set, {"keys": [...]}');
  }
  if (c.jwks?.keys.some((k) => 'd' in k)) throw new Error('jwks: public keys only (this JWKS holds private key material)');
  for (const k of c.jwks?.keys ?? []) {
    try {
      createPublicKey({ key: k as JsonWebKey, format: 'jwk' });
    } catch {
      throw new Error(`jwks: the key ${typeof k.kid === 'string' ? `"${k.kid}" ` : ''}is not a valid public JSON Web Key`);
    }
  }
  if (c.jwksUri !== undefined && typeof c.jwksUri !== 'string') throw new Error('jwks_uri: a URL');
  if (c.authMethod === 'private_key_jwt' && !c.jwks && !c.jwksUri) throw new Error('private_key_jwt needs a JWKS or a JWKS URL');
  if (c.jwksUri !== undefined) {
    const url = URL.parse(c.jwksUri);
    if (!url || (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.includes(url.hostname)))) throw new Error(`A JWKS URL uses https (http only on loopback): ${c.jwksUri}`);
  }
  if (c.kind === 'backend' && c.authMethod === 'none') throw new Error('A backend system authenticates (private_key_jwt or client_secret_basic)');
}

/** Password rule of local accounts: at least 8 characters with an upper case letter, a lower case letter, a digit and a special character. */
export function passwordProblem(password: string): string | undefined {
  if (password.length < 8) return 'au moins 8 caractères';
  if (!/[A-Z]/.test(password)) return 'au moins une lettre majuscule';
  if (!/[a-z]/.test(password)) return 'au moins une lettre minuscule';
  if (!/[0-9]/.test(password)) return 'au moins un chiffre';
  if (!/[^A-Za-z0-9]/.test(password)) return 'au moins un caractère spécial';
  return undefined;
}

export interface PatientAccount {
  login: string;
  passwordHash: string;
  /** the Patient resource the account is linked to */
  patientId: string;
  /** where one-time codes go */
  channel: Channel;
  to: string;
  createdAt: string;
}

const ACCOUNT = (login: string) => `auth:account:${login.toLowerCase()}`;
/**
 * Wrong passwords slow down the next tries rather than lock the account: per login and client
 * address, 5 free tries, then 1 s, 2 s, 4 s... up to 15 minutes between tries; per login from any
 * address (many addresses guessing one login), 20 free tries, then the same growing delays, except
 * for a browser where the account signed in before (its device cookie), so that nobody can keep an
 * account's owner out. Failures are forgotten after an hour or at a successful sign-in.
 */
export const FREE_TRIES_PER_ADDRESS = 5;
export const FREE_TRIES_PER_LOGIN = 20;
export const MAX_LOGIN_DELAY_MS = 15 * 60 * 1000;
const FAILURE_WINDOW_MS = 60 * 60 * 1000;

/** Who is trying: the client address, and whether this browser signed in to this account before. */
export interface LoginSource {
  address: string;
  knownDevice: boolean;
}

export interface LoginOutcome {
  account?: PatientAccount;
  /** the try was not checked: too soon after failed ones; the next may come after this many ms */
  retryAfterMs?: number;
  /** failed checks of this login in the last hour, from every address, this one included */
  failures?: number;
}

export class AccountRegistry {
  private readonly byAddress: Throttle;
  private readonly byLogin: Throttle;

  constructor(private readonly store: ResourceStore) {
    this.byAddress = new Throttle(store, 'auth:login-try:', FREE_TRIES_PER_ADDRESS, MAX_LOGIN_DELAY_MS, FAILURE_WINDOW_MS);
    this.byLogin = new Throttle(store, 'auth:login-any:', FREE_TRIES_PER_LOGIN, MAX_LOGIN_DELAY_MS, FAILURE_WINDOW_MS);
  }

  async get(login: string): Promise<PatientAccount | undefined> {
    return (await this.store.getState<PatientAccount | null>(ACCOUNT(login))) ?? undefined;
  }

  async add(input: { login: string; password: string; patientId: string; channel: Channel; to: string }): Promise<PatientAccount> {
    if (!/^[A-Za-z0-9._@+-]{3,100}$/.test(input.login)) throw new Error('login: 3 to 100 characters among letters, digits and . _ @ + -');
    const problem = passwordProblem(input.password);
    if (problem) throw new Error(`The password needs ${problem}`);
    if (await this.get(input.login)) throw new Error(`The account ${input.login} already exists`);
    const account: PatientAccount = {
      login: input.login,
      passwordHash: await hash(input.password),
      patientId: input.patientId,
      channel: input.channel,
      to: input.to,
      createdAt: new Date().toISOString(),
    };
    if (!(await this.store.claimState(ACCOUNT(input.login), account))) throw new Error(`The account ${input.login} already exists`);
    return account;
  }

  /**
   * The account when the password is right; undefined otherwise (unknown login, wrong password,
   * locked). Every try counts, an unknown login's too (a lock says nothing of whether the login
   * exists); a right password clears the tries.
   */
  async authenticate(login: string, password: string, from: LoginSource = { address: 'local', knownDevice: false }): Promise<LoginOutcome> {
    const subject = login.toLowerCase();
    const here = await this.byAddress.take(`${subject}|${from.address}`);
    if (!here.allowed) return { retryAfterMs: here.retryAfterMs };
    const anywhere = await this.byLogin.take(subject);
    if (!anywhere.allowed && !from.knownDevice) {
      await here.withdraw();
      return { retryAfterMs: anywhere.retryAfterMs };
    }
    const account = await this.get(login);
    const right = account ? await verify(account.passwordHash, password) : (await hash(password), false); // the same time either way
    if (right) {
      await this.byAddress.clear(`${subject}|${from.address}`);
      await this.byLogin.clear(subject);
      return { account };
    }
    return { failures: anywhere.failures + 1 };
  }
}
