import path from 'node:path';
import type { Auth } from './index';
import { authDir } from './keys';
import { writePrivateFile } from '../private-files';

export const ADMIN_CLIENT_ID = 'admin';
export const ADMIN_SECRET_FILE = 'admin-client-secret';

/**
 * On an empty client registry: registers the administrator client (a backend system with
 * system/*.cruds authenticating with a client secret), writes its secret to
 * DATA_DIR/auth/admin-client-secret (mode 0600) and returns how to get a token, to print once.
 * Later starts return undefined.
 */
export async function bootstrapAdministrator(auth: Auth, dataDir: string): Promise<string | undefined> {
  if ((await auth.clients.list()).length > 0) return undefined;
  const client = await auth.clients.add({
    clientId: ADMIN_CLIENT_ID,
    name: 'Administrateur',
    kind: 'backend',
    redirectUris: [],
    scope: 'system/*.cruds',
    authMethod: 'client_secret_basic',
  });
  const file = path.join(authDir(dataDir), ADMIN_SECRET_FILE);
  writePrivateFile(file, `${client.secret}\n`);
  return [
    `An administrator client "${ADMIN_CLIENT_ID}" (system/*.cruds) was created; its secret is in ${file} (readable by you only).`,
    'Get an access token with:',
    `  curl -s -u ${ADMIN_CLIENT_ID}:$(cat ${file}) -d grant_type=client_credentials -d 'scope=system/*.cruds' ${auth.endpoints.token}`,
    'and send it as "Authorization: Bearer <access_token>". Register apps and systems with `npm run cli -- client add --help`.',
  ].join('\n');
}
