import supertest from 'supertest';
import { eachEngine, patient, request, anonymous } from '../helpers/http';
import { HOST } from '../helpers/auth';
import { authorizePath } from '../helpers/smart';

/** Health data is never cached; pages are not sniffed nor leak their address; only registered browser apps may call the API from a page. */
eachEngine('security headers and CORS', (h) => {
  const APP = 'https://carnet.example';
  beforeAll(async () => {
    await h.services.auth!.clients.add({ clientId: 'carnet-web', name: 'Carnet web', kind: 'patient-app', redirectUris: [`${APP}/callback`], scope: 'openid launch/patient patient/*.rs', authMethod: 'none' });
  });

  test('answers with health data carry Cache-Control: no-store, nosniff and no-referrer; the CapabilityStatement may be cached', async () => {
    const p = await h.create(patient('Cache'));
    for (const path of [`/fhir/Patient/${p.id}`, '/fhir/Patient?name=cache', `/fhir/Patient/${p.id}/_history`, '/fhir/Patient/inconnu']) {
      const res = await request(h.app).get(path);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
    }
    const meta = await request(h.app).get('/fhir/metadata');
    expect(meta.headers['cache-control']).toBeUndefined();
    expect(meta.headers['x-content-type-options']).toBe('nosniff');
  });

  test('the sign-in pages forbid framing and sniffing and send no Referer', async () => {
    const browser = supertest.agent(h.app);
    const first = await browser.get(authorizePath({ clientId: 'carnet-web', redirectUri: `${APP}/callback`, scope: 'openid patient/*.rs' })).set('Host', HOST);
    const page = await browser.get(new URL(first.headers.location, `http://${HOST}`).pathname).set('Host', HOST);
    expect(first.headers.location).toContain('/auth/interaction/');
    expect(page.status).toBe(200);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  });

  test('CORS: a registered browser app’s origin may call the API (preflight and request); any other origin is refused', async () => {
    const preflight = await anonymous(h.app).options('/fhir/Patient').set('Origin', APP).set('Access-Control-Request-Method', 'POST').set('Access-Control-Request-Headers', 'authorization, content-type, if-match');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(APP);
    expect(preflight.headers['access-control-allow-methods']).toContain('POST');
    expect(preflight.headers['access-control-allow-headers']).toMatch(/Authorization/);
    expect(preflight.headers['access-control-allow-headers']).toMatch(/If-Match/);
    const get = await request(h.app).get('/fhir/Patient?_count=1').set('Origin', APP);
    expect(get.status).toBe(200);
    expect(get.headers['access-control-allow-origin']).toBe(APP);
    expect(get.headers['access-control-expose-headers']).toContain('ETag');
    expect(get.headers.vary).toMatch(/Origin/);

    const evil = 'https://evil.example';
    const refusedPreflight = await anonymous(h.app).options('/fhir/Patient').set('Origin', evil).set('Access-Control-Request-Method', 'GET');
    expect(refusedPreflight.status).toBe(403);
    expect(refusedPreflight.headers['access-control-allow-origin']).toBeUndefined();
    const refused = await request(h.app).get('/fhir/Patient?_count=1').set('Origin', evil);
    expect(refused.status).toBe(403);
    expect(refused.body.resourceType).toBe('OperationOutcome');
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    // the public documents are for anyone
    const meta = await anonymous(h.app).get('/fhir/metadata').set('Origin', evil);
    expect(meta.status).toBe(200);
    expect(meta.headers['access-control-allow-origin']).toBe(evil);
    const discovery = await anonymous(h.app).get('/fhir/.well-known/smart-configuration').set('Origin', evil);
    expect(discovery.headers['access-control-allow-origin']).toBe(evil);
    // requests without Origin (servers, not browsers) are not concerned
    expect((await request(h.app).get('/fhir/Patient?_count=1')).status).toBe(200);
  });

  test('CORS on the token endpoint: the app’s own origin only', async () => {
    const ok = await anonymous(h.app).options('/auth/token').set('Host', HOST).set('Origin', APP).set('Access-Control-Request-Method', 'POST');
    expect(ok.headers['access-control-allow-origin']).toBe(APP);
    const code = await anonymous(h.app).post('/auth/token').set('Host', HOST).set('Origin', 'https://evil.example').type('form').send({ grant_type: 'authorization_code', code: 'x', client_id: 'carnet-web', redirect_uri: `${APP}/callback` });
    expect(code.headers['access-control-allow-origin']).toBeUndefined();
  });
});
