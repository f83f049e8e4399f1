import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { writePrivateFile } from '../private-files';

/**
 * The authorization server's secrets: JWT signing keys (JWKS with private parts) and the keys of
 * its cookies and CSRF tokens. They come from the environment (SIGNING_KEYS: a JWKS as JSON;
 * AUTH_SECRET) or, by default, from files in DATA_DIR/auth/ created on first start (mode 0600).
 * Never from the repository.
 *
 * Rotation: `npm run cli -- keys rotate` puts new keys first (they sign from the next start) and
 * keeps the previous ones in the JWKS, so tokens signed before the rotation still verify until
 * they expire; `keys prune` drops all but the newest pair.
 */
export interface Secrets {
  /** private JWKs, newest first: one RS384 and one ES384 key at least */
  signingKeys: JWK[];
  /** keys of the cookies and CSRF tokens, newest first */
  cookieKeys: string[];
}

/** The signing algorithms of access tokens and ID tokens. */
export const SIGNING_ALGS = ['RS384', 'ES384'];
/** The signing algorithms accepted for clients' assertions (private_key_jwt). */
export const CLIENT_ASSERTION_ALGS = ['RS384', 'ES384', 'RS256', 'ES256', 'PS384'];

const KEYS_FILE = 'signing-keys.json';
const SECRET_FILE = 'secret.json';

export async function newKeyPair(): Promise<JWK[]> {
  const out: JWK[] = [];
  for (const alg of ['RS384', 'ES384'] as const) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS384' ? { modulusLength: 2048 } : {}) });
    out.push({ ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}` });
  }
  return out;
}

function writePrivate(file: string, value: unknown): void {
  writePrivateFile(file, JSON.stringify(value, null, 2));
}

export function authDir(dataDir: string): string {
  return path.join(dataDir, 'auth');
}

export async function loadSecrets(dataDir: string, env: { signingKeys?: string; authSecret?: string }): Promise<Secrets> {
  let signingKeys: JWK[];
  if (env.signingKeys) {
    signingKeys = (JSON.parse(env.signingKeys) as { keys: JWK[] }).keys;
  } else {
    const file = path.join(authDir(dataDir), KEYS_FILE);
    if (!fs.existsSync(file)) writePrivate(file, { keys: await newKeyPair() });
    signingKeys = (JSON.parse(fs.readFileSync(file, 'utf8')) as { keys: JWK[] }).keys;
  }
  if (!signingKeys.some((k) => k.alg === 'RS384') || !signingKeys.some((k) => k.alg === 'ES384')) throw new Error('The signing keys must hold an RS384 and an ES384 private key');
  let cookieKeys: string[];
  if (env.authSecret) cookieKeys = [env.authSecret];
  else {
    const file = path.join(authDir(dataDir), SECRET_FILE);
    if (!fs.existsSync(file)) writePrivate(file, { keys: [randomBytes(32).toString('base64url')] });
    cookieKeys = (JSON.parse(fs.readFileSync(file, 'utf8')) as { keys: string[] }).keys;
  }
  return { signingKeys, cookieKeys };
}

export async function rotateKeys(dataDir: string): Promise<string[]> {
  const file = path.join(authDir(dataDir), KEYS_FILE);
  const current = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { keys: JWK[] }).keys : [];
  const fresh = await newKeyPair();
  writePrivate(file, { keys: [...fresh, ...current] });
  return fresh.map((k) => k.kid!);
}

export function pruneKeys(dataDir: string): number {
  const file = path.join(authDir(dataDir), KEYS_FILE);
  const keys = (JSON.parse(fs.readFileSync(file, 'utf8')) as { keys: JWK[] }).keys;
  const keep = [keys.find((k) => k.alg === 'RS384')!, keys.find((k) => k.alg === 'ES384')!];
  writePrivate(file, { keys: keep });
  return keys.length - keep.length;
}

/** The public half of a private JWK. */
export function publicJwk(k: JWK): JWK {
  const { d, p, q, dp, dq, qi, ...pub } = k;
  void d, p, q, dp, dq, qi;
  return pub;
}
