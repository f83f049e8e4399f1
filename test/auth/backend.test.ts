import { generateKeyPairSync, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { exportJWK, SignJWT, importJWK, type JWK } from 'jose';
import { eachEngine, FHIR_JSON, anonymous } from '../helpers/http';
import { HOST, TOKEN_URL } from '../helpers/auth';
import { FHIR_BASE } from '../helpers/smart';
import { loadSecrets } from '../../src/auth/keys';
import { pdsmDocument } from '../helpers/french';

/** SMART Backend Services: a hospital system's client_credentials with a jsonwebtoken-signed assertion, and the resource server's checks. */
eachEngine('backend services and bearer tokens', (h) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = 'hopital-2026';
  const assertion = (claims: Record<string, unknown> = {}, key = rsa.privateKey, expiresIn: number | null = 240) =>
    jwt.sign({ iss: 'hopital', sub: 'hopital', aud: TOKEN_URL, jti: randomUUID(), ...claims }, key, { algorithm: 'RS384', keyid: kid, ...(expiresIn === null ? {} : { expiresIn }) });
  const token = (clientAssertion: string, scope = 'system/DocumentReference.cru system/Patient.rs') =>
    anonymous(h.app).post('/auth/token').set('Host', HOST).type('form').send({ grant_type: 'client_credentials', scope, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion });
  const fhir = (t: string) => ({
    get: (p: string) => anonymous(h.app).get(p).set('Authorization', `Bearer ${t}`),
    post: (p: string, b: unknown) => anonymous(h.app).post(p).set('Authorization', `Bearer ${t}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(b)),
  });

  beforeAll(async () => {
    const jwk: JWK = { ...(await exportJWK(rsa.publicKey)), kid, alg: 'RS384', use: 'sig' };
    const unused: JWK = { ...(await exportJWK(other.publicKey)), kid: 'ancienne', alg: 'RS384', use: 'sig' };
    await h.services.auth!.clients.add({ clientId: 'hopital', name: 'Hôpital', kind: 'backend', redirectUris: [], scope: 'system/DocumentReference.cru system/Patient.rs', authMethod: 'private_key_jwt', jwks: { keys: [unused, jwk] } });
  });

  test('discovery and the CapabilityStatement describe the SMART endpoints', async () => {
    const res = await anonymous(h.app).get('/fhir/.well-known/smart-configuration').set('Accept', 'text/html');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({
      issuer: 'http://fhir.test/auth',
      token_endpoint: TOKEN_URL,
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: expect.arrayContaining(['private_key_jwt', 'client_secret_basic', 'none']),
      token_endpoint_auth_signing_alg_values_supported: expect.arrayContaining(['RS384', 'ES384']),
      grant_types_supported: expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']),
      capabilities: expect.arrayContaining(['launch-standalone', 'launch-ehr', 'client-public', 'client-confidential-asymmetric', 'permission-v1', 'permission-v2', 'context-standalone-patient']),
    });
    const jwks = await anonymous(h.app).get('/auth/jwks').set('Host', HOST);
    expect(jwks.body.keys.map((k: JWK) => k.alg).sort()).toEqual(['ES384', 'RS384']);
    expect(jwks.body.keys.every((k: JWK) => k.d === undefined)).toBe(true);
    const cs = await anonymous(h.app).get('/fhir/metadata');
    expect(cs.body.rest[0].security.service[0].coding[0].code).toBe('SMART-on-FHIR');
    const uris = cs.body.rest[0].security.extension[0].extension.map((e: { url: string }) => e.url);
    expect(uris).toEqual(expect.arrayContaining(['authorize', 'token', 'introspect', 'revoke']));
  });

  test('a jsonwebtoken-signed assertion gets a token of exactly the requested scopes; the token works, within its scopes', async () => {
    const res = await token(assertion());
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', scope: 'system/DocumentReference.cru system/Patient.rs' });
    // the suite's ACCESS_TOKEN_TTL, less the second that may have turned since the token was made
    expect(res.body.expires_in).toBeGreaterThanOrEqual(3599);
    expect(res.body.expires_in).toBeLessThanOrEqual(3600);
    const t = res.body.access_token as string;
    expect(jwt.decode(t, { complete: true })!.header.alg).toBe('RS384');
    const p = await fhir(t).post('/fhir/Patient', { resourceType: 'Patient' });
    expect(p.status).toBe(403);
    expect(p.body.resourceType).toBe('OperationOutcome');
    expect((await fhir(t).get('/fhir/Patient')).status).toBe(200);
    // the hospital deposits the report of a stay of a person of the space
    const person = await h.create({ resourceType: 'Patient', name: [{ family: 'Lefèvre', given: ['Hélène'] }], gender: 'female', birthDate: '1980-08-01' });
    const report = pdsmDocument({
      patient: `Patient/${person.id}`,
      sourcePatient: { ipp: '0004589612', family: 'LEFEVRE', given: 'Hélène' },
      uniqueId: 'urn:oid:1.2.250.1.213.1.1.9.4589612.1',
      title: 'Compte rendu d’hospitalisation',
      date: '2026-03-12T16:40:00+01:00',
      period: { start: '2026-03-09T08:00:00+01:00', end: '2026-03-12T11:00:00+01:00' },
      binary: 'Binary/1',
    });
    expect((await fhir(t).post('/fhir/DocumentReference', report)).status).toBe(201);
    expect((await fhir(t).get('/fhir/Observation')).status).toBe(403);
    // introspection (RFC 7662): the caller authenticates with a token of its own
    const intro = await anonymous(h.app).post('/auth/introspect').set('Host', HOST).set('Authorization', `Bearer ${h.token}`).type('form').send({ token: t });
    expect([intro.status, intro.body]).toEqual([200, expect.objectContaining({ active: true, client_id: 'hopital', scope: 'system/DocumentReference.cru system/Patient.rs' })]);
    const bad = await anonymous(h.app).post('/auth/introspect').set('Host', HOST).set('Authorization', `Bearer ${h.token}`).type('form').send({ token: `${t.slice(0, -4)}AAAA` });
    expect(bad.body).toEqual({ active: false });
    expect((await anonymous(h.app).post('/auth/introspect').set('Host', HOST).type('form').send({ token: t })).status).toBe(401);
  });

  test('assertions refused: alg none, wrong key, expired, exp too far, wrong aud, replayed jti, unknown client', async () => {
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'hopital', sub: 'hopital', aud: TOKEN_URL, jti: randomUUID(), exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url')}.`;
    for (const [what, a] of [
      ['alg none', none],
      ['wrong key', assertion({}, other.privateKey)],
      ['expired', assertion({ exp: Math.floor(Date.now() / 1000) - 120 }, rsa.privateKey, null)],
      ['exp more than 5 minutes ahead', assertion({}, rsa.privateKey, 3600)],
      ['wrong aud', assertion({ aud: 'https://other.example/token' })],
      ['unknown client', assertion({ iss: 'inconnu', sub: 'inconnu' })],
    ] as const) {
      const res = await token(a);
      expect([what, res.status, res.body.error]).toEqual([what, 401, 'invalid_client']);
    }
    const once = assertion();
    expect((await token(once)).status).toBe(200);
    const replay = await token(once);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');
  });

  test('scope escalation: more than the registration is invalid_scope', async () => {
    const res = await token(assertion(), 'system/*.cruds');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_scope');
    const mixed = await token(assertion(), 'system/Patient.rs system/Observation.rs');
    expect(mixed.body.error).toBe('invalid_scope');
  });

  test('bearer tokens refused with 401 and WWW-Authenticate: missing, malformed, alg none, wrong key, expired, wrong aud; metadata stays open', async () => {
    const secrets = await loadSecrets(h.services.config.dataDir, {});
    const rs = secrets.signingKeys.find((k) => k.alg === 'RS384')!;
    const key = await importJWK(rs, 'RS384');
    const sign = (claims: Record<string, unknown>, exp = '5m') =>
      new SignJWT({ client_id: h.services.auth!.clients ? 'hopital' : '', scope: 'system/*.cruds', jti: randomUUID(), ...claims }).setProtectedHeader({ alg: 'RS384', kid: rs.kid }).setIssuer('http://fhir.test/auth').setAudience(FHIR_BASE).setIssuedAt().setExpirationTime(exp).sign(key);
    const ok = await fhir(await sign({})).get('/fhir/Patient');
    expect(ok.status).toBe(200); // the server's own key, its audience: accepted (this is what its token endpoint issues)
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'http://fhir.test/auth', aud: FHIR_BASE, client_id: 'hopital', scope: 'system/*.cruds', jti: 'x', iat: 1, exp: 9999999999 })).toString('base64url')}.`;
    const wrongKey = jwt.sign({ iss: 'http://fhir.test/auth', aud: FHIR_BASE, client_id: 'hopital', scope: 'system/*.cruds', jti: 'y' }, other.privateKey, { algorithm: 'RS384', expiresIn: 60, keyid: rs.kid });
    const expired = await new SignJWT({ client_id: 'hopital', scope: 'system/*.cruds', jti: randomUUID() }).setProtectedHeader({ alg: 'RS384', kid: rs.kid }).setIssuer('http://fhir.test/auth').setAudience(FHIR_BASE).setIssuedAt(Math.floor(Date.now() / 1000) - 600).setExpirationTime(Math.floor(Date.now() / 1000) - 300).sign(key);
    const wrongAud = await new SignJWT({ client_id: 'hopital', scope: 'system/*.cruds', jti: randomUUID() }).setProtectedHeader({ alg: 'RS384', kid: rs.kid }).setIssuer('http://fhir.test/auth').setAudience('https://other.example/fhir').setIssuedAt().setExpirationTime('5m').sign(key);
    for (const [what, header] of [
      ['missing', undefined],
      ['not bearer', 'Basic abc'],
      ['alg none', `Bearer ${none}`],
      ['wrong key', `Bearer ${wrongKey}`],
      ['expired', `Bearer ${expired}`],
      ['wrong aud', `Bearer ${wrongAud}`],
    ] as const) {
      const r = anonymous(h.app).get('/fhir/Patient');
      if (header) r.set('Authorization', header);
      const res = await r;
      expect([what, res.status]).toEqual([what, 401]);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
    expect((await anonymous(h.app).get('/fhir/metadata')).status).toBe(200);
  });

  test('a suspended client is refused at once, its tokens too; the admin API manages the registry', async () => {
    const t = (await token(assertion())).body.access_token as string;
    expect((await fhir(t).get('/fhir/Patient')).status).toBe(200);
    const admin = (p: string) => anonymous(h.app).post(p).set('Authorization', `Bearer ${h.token}`);
    expect((await anonymous(h.app).get('/auth/admin/clients').set('Authorization', `Bearer ${t}`)).status).toBe(403);
    expect((await admin('/auth/admin/clients/hopital/suspend')).body.status).toBe('suspended');
    expect((await fhir(t).get('/fhir/Patient')).status).toBe(401);
    expect((await token(assertion())).status).toBe(401);
    expect((await admin('/auth/admin/clients/hopital/reference')).body.status).toBe('referenced');
    expect((await fhir(t).get('/fhir/Patient')).status).toBe(200);
    const list = await anonymous(h.app).get('/auth/admin/clients').set('Authorization', `Bearer ${h.token}`);
    expect(list.body.map((c: { clientId: string }) => c.clientId)).toContain('hopital');
    expect(JSON.stringify(list.body)).not.toMatch(/secret/);
    // a client registered through the API with a secret: the secret is in the answer only, and works
    const added = await anonymous(h.app).post('/auth/admin/clients').set('Authorization', `Bearer ${h.token}`).send({ client_id: 'outil-api', kind: 'backend', scope: 'system/Patient.rs', token_endpoint_auth_method: 'client_secret_basic' });
    expect(added.status).toBe(201);
    const secret = added.body.client_secret as string;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(added.body.secretDigest).toBeUndefined();
    const basic = (s: string) => anonymous(h.app).post('/auth/token').set('Host', HOST).auth('outil-api', s).type('form').send({ grant_type: 'client_credentials', scope: 'system/Patient.rs' });
    expect((await basic(secret)).status).toBe(200);
    expect((await basic(`${secret}x`)).status).toBe(401);
    // what is stored is not the secret, and does not authenticate either
    const stored = (await h.services.auth!.clients.get('outil-api'))!;
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect((await basic(stored.secretDigest!)).status).toBe(401);
    // what the registry refuses is a 400 that says why
    const register = (body: unknown) => anonymous(h.app).post('/auth/admin/clients').set('Authorization', `Bearer ${h.token}`).send(body as object);
    const privateJwk = await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey);
    for (const [body, message] of [
      [{ client_id: 'x1', kind: 'robot', scope: 'system/Patient.rs', token_endpoint_auth_method: 'client_secret_basic' }, 'kind: one of patient-app, professional, backend'],
      [{ client_id: 'x2', kind: 'backend', scope: 'system/Patient.rs', token_endpoint_auth_method: 'client_secret_post' }, 'token endpoint authentication: one of private_key_jwt, client_secret_basic, none'],
      [{ client_id: 'x3', kind: 'backend', scope: 'system/Patient.rs', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [privateJwk] } }, 'jwks: public keys only (this JWKS holds private key material)'],
      [{ client_id: 'x4', kind: 'backend', scope: 'system/Patient.rs', token_endpoint_auth_method: 'private_key_jwt', jwks: [1] }, 'jwks: a JSON Web Key Set, {"keys": [...]}'],
      [{ client_id: 'x7', kind: 'backend', scope: 'system/Patient.rs', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', kid: 'k' }] } }, 'jwks: the key "k" is not a valid public JSON Web Key'],
      [{ client_id: 'x5', kind: 'patient-app', scope: 'patient/*.rs', redirect_uris: 'https://app.example/cb' }, 'redirect URIs: a list of URLs'],
    ] as const) {
      const r = await register(body);
      expect([r.status, r.body]).toEqual([400, { error: 'invalid_client_metadata', error_description: message }]);
    }
    const notJson = await anonymous(h.app).post('/auth/admin/clients').set('Authorization', `Bearer ${h.token}`).type('form').send('client_id=x6');
    expect(notJson.status).toBe(400);
    for (const body of ['{bad', 'null']) {
      const broken = await anonymous(h.app).post('/auth/admin/clients').set('Authorization', `Bearer ${h.token}`).set('Content-Type', 'application/json').send(body);
      expect([broken.status, broken.body]).toEqual([400, { error: 'invalid_request', error_description: 'The request body does not parse' }]);
    }
    expect((await h.services.auth!.clients.list()).map((c) => c.clientId).filter((id) => /^x\d$/.test(id))).toEqual([]);
    // one id registered several times at once: one registration wins, the others are told it exists
    const racing = await Promise.allSettled(Array.from({ length: 6 }, () => h.services.auth!.clients.add({ clientId: 'course', name: 'Course', kind: 'backend', redirectUris: [], scope: 'system/Patient.rs', authMethod: 'client_secret_basic' })));
    expect(racing.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(racing.filter((r) => r.status === 'rejected').every((r) => /already exists/.test(String((r as PromiseRejectedResult).reason)))).toBe(true);
    const winner = (racing.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ secret?: string }>).value.secret!;
    expect((await anonymous(h.app).post('/auth/token').set('Host', HOST).auth('course', winner).type('form').send({ grant_type: 'client_credentials', scope: 'system/Patient.rs' })).status).toBe(200);
    const shown = (await anonymous(h.app).get('/auth/admin/clients/outil-api').set('Authorization', `Bearer ${h.token}`)).body;
    expect(shown).toMatchObject({ clientId: 'outil-api', authMethod: 'client_secret_basic' });
    expect(Object.keys(shown).filter((k) => /secret/i.test(k))).toEqual([]);
  });

  test('a backend whose keys are at a JWKS URL: fetched from there, the key chosen by kid', async () => {
    const { createServer } = await import('node:http');
    const first = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const next = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    // the lab publishes its next key ahead of using it (keys are cached 60 s, or the JWKS's max-age if longer)
    const published: JWK[] = [
      { ...(await exportJWK(first.publicKey)), kid: 'k1', alg: 'ES384', use: 'sig' },
      { ...(await exportJWK(next.publicKey)), kid: 'k2', alg: 'ES384', use: 'sig' },
    ];
    let fetched = 0;
    const server = createServer((_req, res) => {
      fetched++;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const jwksUri = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`;
      await h.services.auth!.clients.add({ clientId: 'labo', name: 'Laboratoire', kind: 'backend', redirectUris: [], scope: 'system/Patient.rs', authMethod: 'private_key_jwt', jwksUri });
      const signed = (key: typeof first.privateKey, k: string) =>
        jwt.sign({ iss: 'labo', sub: 'labo', aud: TOKEN_URL, jti: randomUUID() }, key, { algorithm: 'ES384', keyid: k, expiresIn: 120 });
      const asLabo = (a: string) => token(a, 'system/Patient.rs');
      const ok = await asLabo(signed(first.privateKey, 'k1'));
      expect([ok.status, ok.body, fetched]).toEqual([200, expect.objectContaining({ token_type: 'Bearer' }), 1]);
      expect((await fhir(ok.body.access_token).get('/fhir/Patient')).status).toBe(200);
      // the lab switches to its next key
      expect((await asLabo(signed(next.privateKey, 'k2'))).status).toBe(200);
      // a kid naming a key other than the one that signed is refused
      expect((await asLabo(signed(next.privateKey, 'k1'))).status).toBe(401);
      // a JWKS URL on a private address whose host the operator has not listed (JWKS_PRIVATE_HOSTS) is never fetched
      const before = fetched;
      await h.services.auth!.clients.add({ clientId: 'labo-2', name: 'Laboratoire 2', kind: 'backend', redirectUris: [], scope: 'system/Patient.rs', authMethod: 'private_key_jwt', jwksUri: jwksUri.replace('127.0.0.1', 'localhost') });
      const refused = await token(jwt.sign({ iss: 'labo-2', sub: 'labo-2', aud: TOKEN_URL, jti: randomUUID() }, first.privateKey, { algorithm: 'ES384', keyid: 'k1', expiresIn: 120 }), 'system/Patient.rs');
      expect(refused.status).toBe(401);
      expect(fetched).toBe(before);
      // and a JWKS URL elsewhere than on loopback is https
      const plain = await anonymous(h.app).post('/auth/admin/clients').set('Authorization', `Bearer ${h.token}`).send({ client_id: 'labo-3', kind: 'backend', scope: 'system/Patient.rs', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'http://labo.example/jwks.json' });
      expect(plain.status).toBe(400);
      expect(plain.body.error_description).toBe('A JWKS URL uses https (http only on loopback): http://labo.example/jwks.json');
    } finally {
      server.close();
    }
  });
}, { jwksPrivateHosts: ['127.0.0.1'] });
