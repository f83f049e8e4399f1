import fs from 'node:fs';
import path from 'node:path';

/**
 * The benchmarks speak to the server as its administrator client does: a token from the token
 * endpoint (client_credentials, system/*.cruds), with the secret the server wrote in its DATA_DIR.
 */
let token: string | undefined;

export function authHeaders(): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

export async function authorize(origin: string, dataDir: string): Promise<void> {
  const secret = fs.readFileSync(path.join(dataDir, 'auth', 'admin-client-secret'), 'utf8').trim();
  const res = await fetch(`${origin}/auth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`admin:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=system%2F*.cruds',
  });
  const body = (await res.json()) as { access_token?: string; error?: string };
  if (!body.access_token) throw new Error(`no token from ${origin}/auth/token: ${res.status} ${body.error ?? ''}`);
  token = body.access_token;
}
