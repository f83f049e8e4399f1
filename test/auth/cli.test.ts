import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { Express } from 'express';
import jwt from 'jsonwebtoken';
import { decodeProtectedHeader, exportJWK } from 'jose';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import { createServices, type AppServices } from '../../src/server';
import { anonymous, HOST, TOKEN_URL } from '../helpers/auth';
import { emptyIndex } from '../../src/search/extract';
import { testConfig } from '../helpers/engines';

/**
 * The administrator's CLI, run as the administrator runs it (`node dist/src/cli.js ...`, what
 * `npm run cli --` does after building) in a child process, against a temporary DATA_DIR that a
 * server in this process uses at the same time (the SQLite engine: the CLI and the server share the
 * store file). Its output, its exit code and its effects on the running server are checked.
 */
const CLI = path.join(__dirname, '..', '..', 'dist', 'src', 'cli.js');
const PASSWORD = 'Motdepasse1!';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('CLI: clients, accounts, signing keys', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-cli-'));
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'silent' };
  // the SQLite engine of DATA_DIR, whatever the environment of the test run
  delete env.MONGODB_URI;
  delete env.SIGNING_KEYS;
  delete env.AUTH_SECRET;
  delete env.ACCOUNT_PASSWORD;
  let services: AppServices;
  let app: Express;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    new Promise<Run>((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env: { ...env, ...extraEnv }, timeout: 60000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
      });
    });

  /** (Re)starts the server on DATA_DIR, as `npm start` would: it reads the signing keys at start. */
  const start = async () => {
    await services?.store.close();
    services = await createServices(testConfig({ dataDir }));
    app = createApp(services, createLogger('silent'));
  };

  const assertion = (clientId: string) => jwt.sign({ iss: clientId, sub: clientId, aud: TOKEN_URL, jti: randomUUID() }, rsa.privateKey, { algorithm: 'RS384', keyid: 'cle-1', expiresIn: 240 });
  const tokenRequest = (clientId: string, scope: string) =>
    anonymous(app).post('/auth/token').set('Host', HOST).type('form').send({ grant_type: 'client_credentials', scope, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion(clientId) });
  const tokenOf = async (clientId: string, scope: string) => {
    const res = await tokenRequest(clientId, scope);
    expect(res.status).toBe(200);
    return res.body.access_token as string;
  };
  const read = (token: string, p: string) => anonymous(app).get(p).set('Authorization', `Bearer ${token}`);

  beforeAll(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (\`npm test\` does)`);
    await start();
    fs.writeFileSync(path.join(dataDir, 'hopital.jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'cle-1', alg: 'RS384', use: 'sig' }] }));
  });

  afterAll(async () => {
    await services?.store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('client add, list: the running server knows the clients at once', async () => {
    const added = await cli(['client', 'add', '--id', 'hopital', '--name', 'Hôpital', '--kind', 'backend', '--jwks', path.join(dataDir, 'hopital.jwks.json'), '--scope', 'system/Patient.rs system/DocumentReference.cru']);
    expect(added).toEqual({ code: 0, stdout: 'client hopital registered (backend, private_key_jwt)\n', stderr: '' });
    const app2 = await cli(['client', 'add', '--id', 'glycemie', '--name', 'Carnet de glycémie', '--kind', 'patient-app', '--redirect-uri', 'https://app.example/callback', '--scope', 'openid fhirUser launch/patient offline_access patient/Observation.cruds']);
    expect(app2).toEqual({ code: 0, stdout: 'client glycemie registered (patient-app, none)\n', stderr: '' });
    // a backend with a client secret: shown once, on the CLI's output only
    const secret = await cli(['client', 'add', '--id', 'outil', '--kind', 'backend', '--scope', 'system/*.rs']);
    expect(secret.code).toBe(0);
    const shown = /^client secret \(shown once\): (\S+)$/m.exec(secret.stdout)?.[1];
    expect(shown).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const basic = await anonymous(app).post('/auth/token').set('Host', HOST).auth('outil', shown!).type('form').send({ grant_type: 'client_credentials', scope: 'system/*.rs' });
    expect(basic.status).toBe(200);

    const list = await cli(['client', 'list']);
    expect(list.code).toBe(0);
    const rows = list.stdout.replace(/\n$/, '').split('\n').map((l) => l.split('\t'));
    expect(rows).toEqual([
      ['hopital', 'backend', 'referenced', 'private_key_jwt', 'system/Patient.rs system/DocumentReference.cru', ''],
      ['glycemie', 'patient-app', 'referenced', 'none', 'openid fhirUser launch/patient offline_access patient/Observation.cruds', 'https://app.example/callback'],
      ['outil', 'backend', 'referenced', 'client_secret_basic', 'system/*.rs', ''],
    ]);
    expect(list.stdout).not.toContain(shown!);
    // the secret is stored nowhere: only its digest is, in the store. (grep runs in a process of its
    // own: closing a descriptor of the database file here would drop this process's SQLite locks.)
    const grep = await new Promise<number | null>((resolve) => execFile('grep', ['-rqF', shown!, dataDir], (e) => resolve(e ? ((e as { code?: number }).code ?? null) : 0)));
    expect(grep).toBe(1);
    // the server (running all along) gives the new backend a token within its registration
    const t = await tokenOf('hopital', 'system/Patient.rs');
    expect((await read(t, '/fhir/Patient')).status).toBe(200);
    expect((await tokenRequest('hopital', 'system/Observation.rs')).body.error).toBe('invalid_scope');
  });

  test('client add refuses what the registry refuses, with a message and a failure exit code', async () => {
    const dup = await cli(['client', 'add', '--id', 'hopital', '--kind', 'backend', '--jwks', path.join(dataDir, 'hopital.jwks.json'), '--scope', 'system/Patient.rs']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe('error: The client hopital already exists\n');
    const userScope = await cli(['client', 'add', '--id', 'app2', '--kind', 'patient-app', '--redirect-uri', 'https://app.example/cb', '--scope', 'user/*.rs']);
    expect(userScope.code).toBe(1);
    expect(userScope.stderr).toContain('A patient app gets patient/ scopes');
    const http = await cli(['client', 'add', '--id', 'app3', '--kind', 'patient-app', '--redirect-uri', 'http://app.example/cb', '--scope', 'patient/*.rs']);
    expect(http.code).toBe(1);
    expect(http.stderr).toContain('Redirect URIs use https');
    const badKind = await cli(['client', 'add', '--id', 'app4', '--kind', 'autre', '--scope', 'patient/*.rs']);
    expect(badKind.code).toBe(1);
    expect(badKind.stderr).toContain('--kind');
    expect((await cli(['client', 'list'])).stdout).not.toMatch(/^app[234]\t/m);
  });

  test('client suspend: the tokens of the client stop working at once; reference undoes it', async () => {
    const t = await tokenOf('hopital', 'system/Patient.rs');
    expect((await read(t, '/fhir/Patient')).status).toBe(200);
    expect(await cli(['client', 'suspend', 'hopital'])).toEqual({ code: 0, stdout: 'client hopital suspended\n', stderr: '' });
    const after = await read(t, '/fhir/Patient');
    expect(after.status).toBe(401);
    expect(after.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(after.body.resourceType).toBe('OperationOutcome');
    // nor can it get a new one
    expect((await tokenRequest('hopital', 'system/Patient.rs')).status).toBe(401);
    expect((await cli(['client', 'list'])).stdout).toMatch(/^hopital\tbackend\tsuspended\t/m);
    expect(await cli(['client', 'reference', 'hopital'])).toEqual({ code: 0, stdout: 'client hopital referenced\n', stderr: '' });
    expect((await read(t, '/fhir/Patient')).status).toBe(200);
    expect((await read(await tokenOf('hopital', 'system/Patient.rs'), '/fhir/Patient')).status).toBe(200);
    const unknown = await cli(['client', 'suspend', 'inconnu']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('error: No client inconnu\n');
  });

  test('account add enforces the password rule and links the account to its Patient', async () => {
    const base = ['account', 'add', '--login', 'helene', '--patient', 'p-helene', '--channel', 'sms', '--to', '+33612345678'];
    // the Patient must exist
    const missing = await cli(base, { ACCOUNT_PASSWORD: PASSWORD });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: There is no Patient/p-helene on this server\n');
    await services.store.write('Patient', 'p-helene', (_c, next) => ({
      resource: { resourceType: 'Patient', id: 'p-helene', meta: { versionId: String(next.versionId), lastUpdated: new Date(next.lastUpdated).toISOString() }, name: [{ family: 'Lefèvre' }] },
      index: emptyIndex(),
    }));
    for (const [password, problem] of [
      ['Court1!', 'au moins 8 caractères'],
      ['motdepasse1!', 'au moins une lettre majuscule'],
      ['MOTDEPASSE1!', 'au moins une lettre minuscule'],
      ['Motdepasse!!', 'au moins un chiffre'],
      ['Motdepasse12', 'au moins un caractère spécial'],
    ]) {
      const r = await cli(base, { ACCOUNT_PASSWORD: password });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`error: The password needs ${problem}\n`);
    }
    expect(await services.auth!.accounts.get('helene')).toBeUndefined();
    const none = await cli(base);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('ACCOUNT_PASSWORD');
    const ok = await cli(base, { ACCOUNT_PASSWORD: PASSWORD });
    expect(ok).toEqual({ code: 0, stdout: 'account helene created for Patient/p-helene\n', stderr: '' });
    const account = await services.auth!.accounts.get('helene');
    expect(account).toMatchObject({ login: 'helene', patientId: 'p-helene', channel: 'sms', to: '+33612345678' });
    expect(JSON.stringify(account)).not.toContain(PASSWORD);
    expect((await services.auth!.accounts.authenticate('helene', PASSWORD)).account?.login).toBe('helene');
    const again = await cli(base, { ACCOUNT_PASSWORD: PASSWORD });
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('error: The account helene already exists\n');
  });

  test('keys rotate: new keys sign from the next start, tokens signed before still verify; keys prune retires the old ones', async () => {
    const before = await tokenOf('hopital', 'system/Patient.rs');
    const oldKid = decodeProtectedHeader(before).kid!;
    const rotated = await cli(['keys', 'rotate']);
    expect(rotated.code).toBe(0);
    const m = /^new keys: (rs384-\S+), (es384-\S+)\n$/.exec(rotated.stdout);
    expect(m).not.toBeNull();
    expect(m![1]).not.toBe(oldKid);
    // still running on the old keys until the next start
    expect(decodeProtectedHeader(await tokenOf('hopital', 'system/Patient.rs')).kid).toBe(oldKid);
    await start();
    const after = await tokenOf('hopital', 'system/Patient.rs');
    expect(decodeProtectedHeader(after).kid).toBe(m![1]);
    expect((await read(after, '/fhir/Patient')).status).toBe(200);
    // the token signed before the rotation still verifies (its key is still in the JWKS)
    expect((await read(before, '/fhir/Patient')).status).toBe(200);
    const jwks = (await anonymous(app).get('/auth/jwks').set('Host', HOST)).body.keys.map((k: { kid: string }) => k.kid);
    expect(jwks).toEqual(expect.arrayContaining([oldKid, m![1], m![2]]));
    expect(jwks).toHaveLength(4); // the new pair and the old one

    const pruned = await cli(['keys', 'prune']);
    expect(pruned).toEqual({ code: 0, stdout: '2 old keys removed\n', stderr: '' });
    await start();
    expect((await read(after, '/fhir/Patient')).status).toBe(200);
    expect((await read(before, '/fhir/Patient')).status).toBe(401);
    expect((await anonymous(app).get('/auth/jwks').set('Host', HOST)).body.keys.map((k: { kid: string }) => k.kid).sort()).toEqual([m![1], m![2]].sort());
  });
});
