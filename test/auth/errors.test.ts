import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import supertest from 'supertest';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import { createServices } from '../../src/server';
import { eachEngine, anonymous } from '../helpers/http';
import { clientAssertion, HOST, registerBackend, TOKEN_URL } from '../helpers/auth';
import { engines, testConfig } from '../helpers/engines';
import { authorizePath } from '../helpers/smart';

/**
 * What the authorization server answers when a request stops: OAuth errors as JSON from its APIs,
 * French pages (never cached, never framed) for a person in a browser.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-auth-errors-'));
const REDIRECT = 'http://127.0.0.1:9/callback';

const expectPage = (res: supertest.Response, status: number, title: string, message: string) => {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['x-frame-options']).toBe('DENY');
  expect(res.text).toContain(`<h1>${title}</h1>`);
  expect(res.text).toContain(message);
};

eachEngine(
  'authorization errors',
  (h) => {
    beforeAll(async () => {
      await h.services.auth!.clients.add({ clientId: 'carnet', name: 'Carnet', kind: 'patient-app', redirectUris: [REDIRECT], scope: 'openid patient/*.rs', authMethod: 'none' });
    });
    const admin = (method: 'get' | 'post', url: string) => anonymous(h.app)[method](url).set('Authorization', `Bearer ${h.token}`);
    /** The page of a new sign-in in the browser `agent`. */
    const signIn = async (agent: ReturnType<typeof supertest.agent>) => {
      const first = await agent.get(authorizePath({ clientId: 'carnet', redirectUri: REDIRECT, scope: 'openid patient/*.rs' })).set('Host', HOST);
      return new URL(first.headers.location, `http://${HOST}`).pathname;
    };

    test('the admin API answers what it cannot find as not_found, and a missing token as invalid_token', async () => {
      const one = await admin('get', '/auth/admin/clients/inconnu');
      expect([one.status, one.body]).toEqual([404, { error: 'not_found' }]);
      const suspend = await admin('post', '/auth/admin/clients/inconnu/suspend');
      expect([suspend.status, suspend.body]).toEqual([404, { error: 'not_found', error_description: 'No client inconnu' }]);
      const action = await admin('post', '/auth/admin/clients/carnet/delete');
      expect([action.status, action.body]).toEqual([404, { error: 'not_found' }]);
      const none = await anonymous(h.app).get('/auth/admin/clients');
      expect(none.status).toBe(401);
      expect(none.body).toEqual({ error: 'invalid_token', error_description: 'This request needs an access token (Authorization: Bearer ...)' });
      expect(none.headers['www-authenticate']).toMatch(/^Bearer realm="http:\/\/fhir.test\/fhir", error="invalid_request"/);
    });

    test('the EHR launch API and introspection answer a body that does not parse, or is too large, as invalid_request', async () => {
      const broken = await admin('post', '/auth/launch').set('Content-Type', 'application/json').send('{"patient":');
      expect([broken.status, broken.body]).toEqual([400, { error: 'invalid_request', error_description: 'The request body does not parse' }]);
      const large = await admin('post', '/auth/launch').send({ patient: 'x', padding: 'x'.repeat(20_000) });
      expect([large.status, large.body]).toEqual([413, { error: 'invalid_request', error_description: 'The request body is too large' }]);
      // introspection too: an OAuth endpoint
      const introspect = await admin('post', '/auth/introspect').type('form').send(`token=${'x'.repeat(30_000)}`);
      expect([introspect.status, introspect.body]).toEqual([413, { error: 'invalid_request', error_description: 'The request body is too large' }]);
    });

    test("a sign-in's form without its page's CSRF token is refused with a page", async () => {
      const agent = supertest.agent(h.app);
      const page = await signIn(agent);
      const forged = await agent.post(`${page}/login`).set('Host', HOST).type('form').send({ csrf: 'forged', login: 'x', password: 'y' });
      expectPage(forged, 403, 'Requête refusée', 'Le formulaire a expiré ou ne vient pas de cette page. Recommencez la connexion depuis l’application.');
    });

    test('a sign-in given up for a reason the server does not know is told to the app as cancelled', async () => {
      const agent = supertest.agent(h.app);
      const page = await signIn(agent);
      const csrf = /name="csrf" value="([^"]+)"/.exec((await agent.get(page).set('Host', HOST)).text)![1];
      let res = await agent.post(`${page}/abort`).set('Host', HOST).type('form').send({ csrf, reason: 'toString' });
      while (res.headers.location?.startsWith(`http://${HOST}/auth/`) || res.headers.location?.startsWith('/auth/')) res = await agent.get(new URL(res.headers.location, `http://${HOST}`).pathname).set('Host', HOST);
      const back = new URL(res.headers.location);
      expect(back.origin + back.pathname).toBe(REDIRECT);
      expect([back.searchParams.get('error'), back.searchParams.get('error_description')]).toEqual(['access_denied', 'The user cancelled the sign-in']);
    });

    test('a sign-in that is gone (another browser, an expired sign-in) says so', async () => {
      const page = await signIn(supertest.agent(h.app));
      // without the sign-in's cookie
      expectPage(await anonymous(h.app).get(page).set('Host', HOST), 400, 'Session expirée', 'Cette page de connexion a expiré. Recommencez depuis l’application.');
      expectPage(await anonymous(h.app).post(`${page}/login`).set('Host', HOST).type('form').send({ csrf: 'x', login: 'x', password: 'y' }), 400, 'Session expirée', 'Cette page de connexion a expiré.');
    });

    test("oidc-provider's own errors are pages too, never framed", async () => {
      const res = await anonymous(h.app).get('/auth/authorize?response_type=code&scope=openid').set('Host', HOST).set('Accept', 'text/html');
      expectPage(res, 400, 'Erreur', 'invalid_request : missing required parameter');
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    });
  },
  { dataDir },
);

describe.each(engines())('a failure of the authorization server [$name]', (engine) => {
  test('is logged, and the client gets an OAuth server_error', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk))), done()) });
    const services = await createServices(testConfig({ dataDir }), engine.create(), pino({ level: 'info' }, sink));
    try {
      const app = createApp(services, createLogger('silent'));
      const client = await registerBackend(services, 'system/*.rs');
      // the store fails when the provider records the assertion's jti
      const setState = services.store.setState.bind(services.store);
      services.store.setState = (key, ...rest) => (key.startsWith('oidc:ReplayDetection:') ? Promise.reject(new Error('store down')) : setState(key, ...rest));
      const res = await anonymous(app)
        .post('/auth/token')
        .set('Host', HOST)
        .type('form')
        .send({ grant_type: 'client_credentials', scope: 'system/*.rs', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await clientAssertion(client, {}, TOKEN_URL) });
      expect(res.status).toBe(500);
      expect(res.body).toMatchObject({ error: 'server_error' });
      expect(lines.filter((l) => l.msg === 'authorization server error').map((l) => l.err)).toEqual(['Error']);
    } finally {
      await services.jobs?.stop();
      await services.store.close();
      await engine.cleanup();
    }
  });
});

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
