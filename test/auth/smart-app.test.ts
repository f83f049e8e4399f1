import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import express from 'express';
import NodeAdapter from 'fhirclient/lib/adapters/NodeAdapter';
import type Client from 'fhirclient/lib/Client';
import Database from 'better-sqlite3';
import { chromium, type Browser } from 'playwright-core';
import { startServer, type RunningServer } from '../../src/server';
import { createLogger } from '../../src/log';
import { testConfig } from '../helpers/engines';
import { lastCode } from '../helpers/smart';

/**
 * End to end with real clients: SMART's JavaScript client (fhirclient) runs a standalone launch
 * with PKCE against the real server; headless Chromium signs the patient in through the French
 * pages (login, one-time code, consent; screenshots in test-artifacts/); then fhirclient reads,
 * refreshes its token and reads again.
 */
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');
const PASSWORD = 'Motdepasse1!';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) console.warn(`${CHROMIUM} is missing (apt-get install chromium): the browser test is SKIPPED`);

(haveChromium ? describe : describe.skip)('SMART standalone launch with fhirclient and a browser', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-smart-'));
  let server: RunningServer;
  let appServer: http.Server;
  let appUrl: string;
  let browser: Browser;
  let patientId: string;
  let ready: Promise<Client>;
  const storage = new Map<string, unknown>();
  const store = { get: async (k: string) => storage.get(k), set: async (k: string, v: unknown) => void storage.set(k, v), unset: async (k: string) => storage.delete(k) };
  // fhirclient's Node entry point, with its option for public clients: name the client on refresh (RFC 6749 §6)
  const smart = (req: express.Request, res: express.Response) => new NodeAdapter({ request: req, response: res, storage: store, refreshTokenWithClientId: true } as never).getSmartApi();

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer(testConfig({ dataDir, port: 0, host: '127.0.0.1', baseUrl: undefined, statePurgeInterval: 1 }), createLogger('silent'));
    const auth = server.services.auth!;
    // the patient's record and account
    const admin = await auth.clients.add({ clientId: 'admin', name: 'Admin', kind: 'backend', redirectUris: [], scope: 'system/*.cruds', authMethod: 'client_secret_basic' });
    const tok = await fetch(auth.endpoints.token, { method: 'POST', headers: { Authorization: `Basic ${Buffer.from(`admin:${admin.secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&scope=system/*.cruds' });
    const { access_token } = (await tok.json()) as { access_token: string };
    const created = await fetch(`${server.url}/Patient`, { method: 'POST', headers: { Authorization: `Bearer ${access_token}`, 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Lefèvre', given: ['Hélène'] }] }) });
    patientId = ((await created.json()) as { id: string }).id;
    await auth.accounts.add({ login: 'helene', password: PASSWORD, patientId, channel: 'sms', to: '+33612345678' });

    // the app: a catalogue app registered as a public client
    const app = express();
    let resolveReady!: (c: Client) => void;
    ready = new Promise((r) => (resolveReady = r));
    app.get('/launch', (req, res) => {
      void smart(req, res).authorize({ iss: server.url, clientId: 'carnet', scope: 'openid fhirUser launch/patient offline_access patient/*.rs', redirectUri: `${appUrl}/callback`, pkceMode: 'required' });
    });
    app.get('/callback', async (req, res) => {
      try {
        resolveReady(await smart(req, res).ready());
        res.type('html').send('<!doctype html><html lang="fr"><title>ok</title><p id="ok">Connecté</p></html>');
      } catch (e) {
        res.status(500).send(String(e));
      }
    });
    appServer = http.createServer(app);
    await new Promise<void>((r) => appServer.listen(0, '127.0.0.1', () => r()));
    appUrl = `http://127.0.0.1:${(appServer.address() as { port: number }).port}`;
    await auth.clients.add({ clientId: 'carnet', name: 'Carnet de santé', kind: 'patient-app', redirectUris: [`${appUrl}/callback`], scope: 'openid fhirUser launch/patient offline_access patient/*.rs', authMethod: 'none' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => appServer?.close(r));
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('login, one-time code and consent in French; fhirclient reads, refreshes and reads again', async () => {
    const page = await browser.newPage({ locale: 'fr-FR', viewport: { width: 800, height: 900 } });
    await page.goto(`${appUrl}/launch`);
    // login page: French, labelled fields, keyboard only
    await page.waitForSelector('h1');
    expect(await page.getAttribute('html', 'lang')).toBe('fr');
    expect(await page.textContent('h1')).toContain('Connexion');
    expect(await page.textContent('main')).toContain('Carnet de santé');
    await page.screenshot({ path: path.join(ARTIFACTS, 'smart-1-connexion.png'), fullPage: true });
    await page.getByLabel('Identifiant').fill('helene');
    await page.getByLabel('Mot de passe').fill('Mauvais1!');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[role=alert]');
    expect(await page.textContent('[role=alert]')).toContain('Identifiant ou mot de passe incorrect');
    await page.getByLabel('Mot de passe').fill(PASSWORD);
    await page.keyboard.press('Enter');
    // one-time code, sent by SMS (the development sender writes it to the data directory)
    await page.waitForSelector('#code');
    expect(await page.textContent('h1')).toContain('code de vérification');
    await page.screenshot({ path: path.join(ARTIFACTS, 'smart-2-code.png'), fullPage: true });
    await page.getByLabel('Code à 6 chiffres').fill(lastCode(dataDir, '+33612345678'));
    await page.keyboard.press('Enter');
    // consent: which app, which data, which access; boxes to untick
    await page.waitForSelector('fieldset');
    expect(await page.textContent('h1')).toContain('Autoriser Carnet de santé');
    // what the patient may refuse is a box to untick; what the app needs is stated, not a greyed box
    const boxes = await page.locator('input[type=checkbox]').evaluateAll((inputs) => inputs.map((i) => (i as HTMLInputElement).value));
    expect(boxes.sort()).toEqual(['fhirUser', 'offline_access', 'patient/*.rs']);
    expect(await page.locator('input[type=checkbox]:disabled').count()).toBe(0);
    expect(await page.textContent('fieldset')).toContain('(nécessaire)');
    expect(await page.textContent('fieldset')).toContain('Lire, rechercher : toutes vos données de santé de votre dossier');
    await page.screenshot({ path: path.join(ARTIFACTS, 'smart-3-consentement.png'), fullPage: true });
    await page.getByRole('button', { name: 'Autoriser' }).click();
    await page.waitForSelector('#ok');

    const client = await ready;
    expect(client.patient.id).toBe(patientId);
    expect(client.getFhirUser()).toBe(`Patient/${patientId}`);
    const me = await client.patient.read();
    expect(me.name[0].family).toBe('Lefèvre');
    const before = client.state.tokenResponse!.access_token;
    await client.refresh();
    expect(client.state.tokenResponse!.access_token).not.toBe(before);
    const again = (await client.request(`Patient/${patientId}`)) as { id: string };
    expect(again.id).toBe(patientId);
    // another patient's data is not reachable with this token
    await expect(client.request('Patient/someone-else')).rejects.toThrow(/404/);
    await page.close();
  });

  test('what the sign-in left in the store expires, and the running server deletes it once expired', async () => {
    const db = new Database(path.join(dataDir, 'espace-sante.sqlite'), { readonly: true });
    try {
      const rows = db.prepare("SELECT key, expires_at FROM server_state WHERE key LIKE 'oidc:%' OR key LIKE 'smart:%' OR key LIKE 'auth:otp:%'").all() as { key: string; expires_at: number | null }[];
      // the launch left a session, a grant, a code, refresh tokens and its context (the interaction is gone)
      const kinds = new Set(rows.map((r) => r.key.split(':').slice(0, 2).join(':')));
      // (and the marks of the code's and the refresh token's single use)
      expect([...kinds].sort()).toEqual(['oidc:AuthorizationCode', 'oidc:Grant', 'oidc:RefreshToken', 'oidc:Session', 'oidc:use', 'smart:context']);
      expect(rows.filter((r) => r.expires_at === null)).toEqual([]);
      // the client registry and the accounts do not expire
      expect(db.prepare("SELECT count(*) AS n FROM server_state WHERE key LIKE 'auth:client:%' AND expires_at IS NULL").get()).toEqual({ n: 2 });

      // an expired code: unusable at once, and deleted by the server within its purge interval (1 s here)
      await server.services.store.setState('oidc:AuthorizationCode:expired-code', { jti: 'expired-code' }, { expiresAt: Date.now() - 1000 });
      expect(await server.services.store.getState('oidc:AuthorizationCode:expired-code')).toBeUndefined();
      const count = db.prepare("SELECT count(*) AS n FROM server_state WHERE key = 'oidc:AuthorizationCode:expired-code'");
      expect(count.get()).toEqual({ n: 1 });
      const deadline = Date.now() + 5000;
      while ((count.get() as { n: number }).n === 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(count.get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});
