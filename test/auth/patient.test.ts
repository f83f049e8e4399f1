import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { eachEngine, FHIR_JSON, ids, anonymous } from '../helpers/http';
import { HOST } from '../helpers/auth';
import { withTransactions } from '../helpers/engines';
import supertest from 'supertest';
import { authorizePath, authorizeThroughForms, exchangeCode, FHIR_BASE, lastCode, pkce } from '../helpers/smart';

/** A catalogue app acting for a patient: standalone launch through the real pages, then patient/ scopes confine every interaction. */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-patient-'));
const REDIRECT = 'http://127.0.0.1:9/callback';
const PASSWORD = 'Motdepasse1!';

eachEngine(
  'patient/ scopes (standalone launch)',
  (h) => {
    let A: string, B: string, obsA1: string, obsA2: string, obsB: string, obsA3: string;
    const flow = (scope: string, extra: Partial<Parameters<typeof authorizeThroughForms>[1]> = {}) =>
      authorizeThroughForms(h.app, { clientId: 'glycemie', redirectUri: REDIRECT, scope, login: 'helene', password: PASSWORD, to: 'helene@example.fr', dataDir, ...extra });
    const tokenFor = async (scope: string, untick?: string[]) => {
      const { verifier, challenge } = pkce();
      const back = await flow(scope, { challenge, untick });
      const res = await exchangeCode(h.app, { code: back.searchParams.get('code')!, clientId: 'glycemie', redirectUri: REDIRECT, verifier });
      expect(res.status).toBe(200);
      return res.body as { access_token: string; refresh_token?: string; patient?: string; scope: string; id_token?: string };
    };
    const as = (token: string) => ({
      get: (p: string) => anonymous(h.app).get(p).set('Authorization', `Bearer ${token}`),
      post: (p: string, body: unknown) => anonymous(h.app).post(p).set('Authorization', `Bearer ${token}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body)),
      delete: (p: string) => anonymous(h.app).delete(p).set('Authorization', `Bearer ${token}`),
      put: (p: string, body: unknown) => anonymous(h.app).put(p).set('Authorization', `Bearer ${token}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body)),
    });
    /** A browser's agent on the login page of a new sign-in to the catalogue app, with the page's CSRF token and interaction. */
    const openLoginPage = async () => {
      const agent = supertest.agent(h.app);
      const first = await agent.get(authorizePath({ clientId: 'glycemie', redirectUri: REDIRECT, scope: 'openid patient/*.rs', state: 's' })).set('Host', HOST);
      const page = await agent.get(new URL(first.headers.location, `http://${HOST}`).pathname).set('Host', HOST);
      return { agent, csrf: /name="csrf" value="([^"]+)"/.exec(page.text)![1], uid: /\/interaction\/([^/"]+)\/login/.exec(page.text)![1] };
    };
    const obs = (patient: string, category: string, extra: Record<string, unknown> = {}) => ({
      resourceType: 'Observation',
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: category }] }],
      code: { text: 'glycémie' },
      subject: { reference: `Patient/${patient}` },
      ...extra,
    });

    beforeAll(async () => {
      A = (await h.create({ resourceType: 'Patient', name: [{ family: 'Lefèvre', given: ['Hélène'] }] })).id;
      B = (await h.create({ resourceType: 'Patient', name: [{ family: 'Autre', given: ['Bernard'] }] })).id;
      obsA1 = (await h.create(obs(A, 'vital-signs'))).id;
      obsA2 = (await h.create(obs(A, 'laboratory'))).id;
      obsB = (await h.create(obs(B, 'vital-signs'))).id;
      obsA3 = (await h.create(obs(A, 'vital-signs', { performer: [{ reference: `Patient/${B}` }] }))).id;
      await h.services.auth!.accounts.add({ login: 'helene', password: PASSWORD, patientId: A, channel: 'email', to: 'helene@example.fr' });
      await h.services.auth!.clients.add({
        clientId: 'glycemie',
        name: 'Carnet de glycémie',
        kind: 'patient-app',
        redirectUris: [REDIRECT],
        scope: 'openid fhirUser launch/patient offline_access patient/*.cruds',
        authMethod: 'none',
      });
      await h.services.auth!.clients.add({ clientId: 'lecture-obs', name: 'Lecture', kind: 'patient-app', redirectUris: [REDIRECT], scope: 'openid launch/patient patient/Observation.rs', authMethod: 'none' });
    });

    test('standalone launch: code with PKCE, token with the patient context, refresh, reads of the own record', async () => {
      const t = await tokenFor('openid fhirUser launch/patient offline_access patient/*.rs');
      expect(t.patient).toBe(A);
      expect(t.scope.split(' ').sort()).toEqual(['fhirUser', 'launch/patient', 'offline_access', 'openid', 'patient/*.rs']);
      const claims = decodeJwt(t.access_token);
      expect(claims).toMatchObject({ aud: FHIR_BASE, patient: A, client_id: 'glycemie', scope: expect.stringContaining('patient/*.rs') });
      expect(decodeJwt(t.id_token!).fhirUser).toBe(`Patient/${A}`);
      expect((await as(t.access_token).get(`/fhir/Patient/${A}`)).status).toBe(200);
      const refreshed = await anonymous(h.app).post('/auth/token').set('Host', HOST).type('form').send({ grant_type: 'refresh_token', refresh_token: t.refresh_token!, client_id: 'glycemie' });
      expect(refreshed.status).toBe(200);
      expect(refreshed.body.patient).toBe(A);
      expect((await as(refreshed.body.access_token).get(`/fhir/Observation/${obsA1}`)).status).toBe(200);
    });

    test('a patient/ token cannot reach another patient: read, search, _include, _revinclude, history, $everything', async () => {
      const t = (await tokenFor('openid launch/patient patient/*.rs')).access_token;
      const c = as(t);
      expect((await c.get(`/fhir/Patient/${B}`)).status).toBe(404);
      expect((await c.get(`/fhir/Observation/${obsB}`)).status).toBe(404);
      expect((await c.get(`/fhir/Observation/${obsB}/_history/1`)).status).toBe(404);
      expect((await c.get(`/fhir/Observation/${obsB}/_history`)).status).toBe(404);
      expect((await c.get(`/fhir/Patient/${B}/$everything`)).status).toBe(404);
      expect(ids((await c.get(`/fhir/Observation?subject=Patient/${B}`)).body)).toEqual([]);
      expect(ids((await c.get(`/fhir/Patient?_id=${A},${B}`)).body)).toEqual([A]);
      expect(ids((await c.get('/fhir/Observation?_count=50')).body).sort()).toEqual([obsA1, obsA2, obsA3].sort());
      // only what is also in the patient's own compartment (obsA3 names B as performer, A as subject)
      expect(ids((await c.get(`/fhir/Patient/${B}/Observation`)).body)).toEqual([obsA3]);
      // _include through a reference to the other patient (performer) leaves them out
      const inc = (await c.get(`/fhir/Observation?_id=${obsA3}&_include=Observation:performer&_include=Observation:subject`)).body;
      const included = inc.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'include').map((e: { resource: { id: string } }) => e.resource.id);
      expect(included).toEqual([A]);
      const rev = (await c.get(`/fhir/Patient?_id=${A},${B}&_revinclude=Observation:subject`)).body;
      expect(rev.entry.map((e: { resource: { id: string } }) => e.resource.id).sort()).toEqual([A, obsA1, obsA2, obsA3].sort());
      // history: type and system levels hold the patient's resources only
      const typeHistory = (await c.get('/fhir/Observation/_history?_count=100')).body;
      expect(typeHistory.entry.map((e: { resource: { id: string } }) => e.resource.id).sort()).toEqual([obsA1, obsA2, obsA3].sort());
      const all = (await c.get('/fhir/_history?_count=100')).body;
      expect(all.entry.map((e: { resource: { id: string } }) => e.resource.id)).not.toContain(obsB);
      expect(all.entry.map((e: { resource: { id: string } }) => e.resource.id)).not.toContain(B);
      const everything = (await c.get(`/fhir/Patient/${A}/$everything`)).body;
      expect(everything.entry.map((e: { resource: { id: string } }) => e.resource.id)).not.toContain(obsB);
      // system search
      const sys = (await c.get('/fhir?_count=100')).body;
      expect(sys.entry.map((e: { resource: { id: string } }) => e.resource.id)).not.toContain(B);
      // writes need write scopes: 403 with an OperationOutcome
      const write = await c.post('/fhir/Observation', obs(A, 'vital-signs'));
      expect(write.status).toBe(403);
      expect(write.body.resourceType).toBe('OperationOutcome');
    });

    test('a patient/ token writes only in its compartment, including in a transaction or a batch', async () => {
      const c = as((await tokenFor('openid launch/patient patient/*.cruds')).access_token);
      expect((await c.post('/fhir/Observation', obs(A, 'vital-signs'))).status).toBe(201);
      expect((await c.post('/fhir/Observation', obs(B, 'vital-signs'))).status).toBe(403);
      expect((await c.put(`/fhir/Observation/${obsB}`, { ...obs(A, 'vital-signs'), id: obsB })).status).toBe(404);
      expect((await c.put(`/fhir/Observation/${obsA1}`, { ...obs(B, 'vital-signs'), id: obsA1 })).status).toBe(403);
      expect((await c.post('/fhir/Patient', { resourceType: 'Patient' })).status).toBe(403);
      expect((await c.delete(`/fhir/Observation/${obsB}`)).status).toBe(404);
      expect((await c.get(`/fhir/Observation/${obsB}`)).status).toBe(404);
      const batch = await c.post('/fhir', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Patient/${B}` } }, { request: { method: 'GET', url: `Observation?subject=Patient/${B}` } }, { request: { method: 'GET', url: `Patient/${A}` } }] });
      expect(batch.status).toBe(200);
      expect(batch.body.entry[0].response.status).toMatch(/^404/);
      expect(batch.body.entry[1].resource.total ?? batch.body.entry[1].resource.entry?.length ?? 0).toBe(0);
      expect(batch.body.entry[2].response.status).toMatch(/^200/);
    });

    withTransactions(h.engine)('a transaction of a patient/ token with one entry outside its compartment is refused whole', async () => {
      const c = as((await tokenFor('openid launch/patient patient/*.cruds')).access_token);
      const marker = { system: 'urn:test:tx-compartment', value: h.engine.name };
      const tx = await c.post('/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Observation' }, resource: obs(A, 'vital-signs', { identifier: [marker] }) }, { request: { method: 'POST', url: 'Observation' }, resource: obs(B, 'vital-signs', { identifier: [marker] }) }] });
      expect(tx.status).toBe(403);
      expect(tx.body.resourceType).toBe('OperationOutcome');
      expect(ids((await c.get(`/fhir/Observation?identifier=${marker.system}|${marker.value}`)).body)).toEqual([]);
    });

    test('granular scope: patient/Observation.rs?category=vital-signs sees vital signs only', async () => {
      const t = await tokenFor('launch/patient patient/Observation.rs?category=vital-signs');
      const c = as(t.access_token);
      const seen = ids((await c.get('/fhir/Observation?_count=50')).body);
      expect(seen).toEqual(expect.arrayContaining([obsA1, obsA3]));
      expect(seen).not.toContain(obsA2);
      expect(seen).not.toContain(obsB);
      expect((await c.get(`/fhir/Observation/${obsA2}`)).status).toBe(404);
      expect((await c.get(`/fhir/Observation/${obsA1}`)).status).toBe(200);
      expect((await c.get(`/fhir/Patient/${A}`)).status).toBe(403);
    });

    test('granted scopes never exceed the registration nor what the patient approved', async () => {
      // registered for patient/Observation.rs only: patient/*.cruds is not granted
      const { verifier, challenge } = pkce();
      const back = await flow('openid launch/patient patient/Observation.rs patient/*.cruds', { clientId: 'lecture-obs', challenge });
      const t = (await exchangeCode(h.app, { code: back.searchParams.get('code')!, clientId: 'lecture-obs', redirectUri: REDIRECT, verifier })).body;
      expect(t.scope.split(' ').sort()).toEqual(['launch/patient', 'openid', 'patient/Observation.rs']);
      expect((await as(t.access_token).get(`/fhir/Patient/${A}`)).status).toBe(403);
      // the patient unticks a scope on the consent page
      const u = await tokenFor('openid launch/patient patient/Observation.rs patient/Condition.rs', ['patient/Condition.rs']);
      expect(u.scope.split(' ')).not.toContain('patient/Condition.rs');
      expect((await as(u.access_token).get('/fhir/Condition')).status).toBe(403);
    });

    test('a code or a refresh token sent several times at once is used once at most, and the reuse revokes the grant', async () => {
      const { verifier, challenge } = pkce();
      const back = await flow('openid launch/patient offline_access patient/*.rs', { challenge });
      const code = back.searchParams.get('code')!;
      const exchanges = await Promise.all(Array.from({ length: 8 }, () => exchangeCode(h.app, { code, clientId: 'glycemie', redirectUri: REDIRECT, verifier })));
      // one use gets tokens, the seven others are refused as reuses
      expect(exchanges.map((r) => (r.status === 200 ? 200 : `${r.status} ${r.body.error}`)).sort()).toEqual([200, ...Array(7).fill('400 invalid_grant')]);
      // the reuse was seen: what the use got no longer works
      const won = exchanges.find((r) => r.status === 200)!;
      expect((await as(won.body.access_token).get(`/fhir/Patient/${A}`)).status).toBe(401);

      const t = await tokenFor('openid launch/patient offline_access patient/*.rs');
      const refreshes = await Promise.all(Array.from({ length: 8 }, () => anonymous(h.app).post('/auth/token').set('Host', HOST).type('form').send({ grant_type: 'refresh_token', refresh_token: t.refresh_token!, client_id: 'glycemie' })));
      expect(refreshes.map((r) => (r.status === 200 ? 200 : `${r.status} ${r.body.error}`)).sort()).toEqual([200, ...Array(7).fill('400 invalid_grant')]);
      const renewed = refreshes.find((r) => r.status === 200)!;
      expect((await as(renewed.body.access_token).get(`/fhir/Patient/${A}`)).status).toBe(401);
      expect((await as(t.access_token).get(`/fhir/Patient/${A}`)).status).toBe(401);
    });

    test('code reuse: the second use fails and revokes the tokens of the first', async () => {
      const { verifier, challenge } = pkce();
      const back = await flow('openid launch/patient offline_access patient/*.rs', { challenge });
      const code = back.searchParams.get('code')!;
      const first = await exchangeCode(h.app, { code, clientId: 'glycemie', redirectUri: REDIRECT, verifier });
      expect(first.status).toBe(200);
      expect((await as(first.body.access_token).get(`/fhir/Patient/${A}`)).status).toBe(200);
      const second = await exchangeCode(h.app, { code, clientId: 'glycemie', redirectUri: REDIRECT, verifier });
      expect(second.status).toBe(400);
      expect(second.body.error).toBe('invalid_grant');
      const after = await as(first.body.access_token).get(`/fhir/Patient/${A}`);
      expect(after.status).toBe(401);
      expect(after.headers['www-authenticate']).toMatch(/^Bearer/);
      const refresh = await anonymous(h.app).post('/auth/token').set('Host', HOST).type('form').send({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: 'glycemie' });
      expect(refresh.status).toBe(400);
    });

    test('revocation (RFC 7009): revoking the refresh token ends the grant; its access tokens stop at once', async () => {
      const t = await tokenFor('openid launch/patient offline_access patient/*.rs');
      const other = await tokenFor('openid launch/patient patient/*.rs');
      expect((await as(t.access_token).get(`/fhir/Patient/${A}`)).status).toBe(200);
      const introspect = (token: string) => anonymous(h.app).post('/auth/introspect').set('Host', HOST).set('Authorization', `Bearer ${other.access_token}`).type('form').send({ token });
      expect((await introspect(t.access_token)).body).toMatchObject({ active: true, client_id: 'glycemie', patient: A });
      const revoke = await anonymous(h.app).post('/auth/revoke').set('Host', HOST).type('form').send({ token: t.refresh_token!, token_type_hint: 'refresh_token', client_id: 'glycemie' });
      expect(revoke.status).toBe(200);
      const after = await as(t.access_token).get(`/fhir/Patient/${A}`);
      expect(after.status).toBe(401);
      expect(after.body.issue[0].diagnostics).toContain('revoked');
      expect((await introspect(t.access_token)).body).toEqual({ active: false });
      const refresh = await anonymous(h.app).post('/auth/token').set('Host', HOST).type('form').send({ grant_type: 'refresh_token', refresh_token: t.refresh_token!, client_id: 'glycemie' });
      expect(refresh.status).toBe(400);
      expect(refresh.body.error).toBe('invalid_grant');
      // another grant of the same app and patient is untouched
      expect((await as(other.access_token).get(`/fhir/Patient/${A}`)).status).toBe(200);
    });

    test('$validate needs the permission of the write it simulates, and another patient\'s resource is unknown to it (404, as an unknown id)', async () => {
      const t = await tokenFor('openid launch/patient patient/*.cruds');
      const me = as(t.access_token);
      const deleteMode = { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'delete' }] };
      const other = await me.post(`/fhir/Patient/${B}/$validate`, deleteMode);
      const unknown = await me.post('/fhir/Patient/no-such-patient/$validate', deleteMode);
      expect(other.status).toBe(404);
      expect(unknown.status).toBe(404);
      expect(other.body.issue.map((i: { code: string }) => i.code)).toEqual(unknown.body.issue.map((i: { code: string }) => i.code));
      expect(other.body.issue[0].diagnostics.replace(B, 'ID')).toBe(unknown.body.issue[0].diagnostics.replace('no-such-patient', 'ID'));
      const otherUpdate = await me.post(`/fhir/Observation/${obsB}/$validate?mode=update`, obs(B, 'vital-signs', { id: obsB }));
      expect(otherUpdate.status).toBe(404);
      // its own record
      expect((await me.post(`/fhir/Patient/${A}/$validate`, deleteMode)).status).toBe(200);
      expect((await me.post(`/fhir/Observation/${obsA1}/$validate?mode=update`, obs(A, 'vital-signs', { id: obsA1 }))).status).toBe(200);
      // a token that may only read may not validate a write
      const reader = as((await tokenFor('openid launch/patient patient/*.rs')).access_token);
      expect((await reader.post(`/fhir/Patient/${A}/$validate`, deleteMode)).status).toBe(403);
      expect((await reader.post('/fhir/Observation/$validate', obs(A, 'vital-signs'))).status).toBe(403);
    });

    test('PKCE is required and S256 only; the verifier must match', async () => {
      const missing = await flow('openid patient/*.rs', { challenge: null });
      expect(missing.searchParams.get('error')).toBe('invalid_request');
      const plain = await flow('openid patient/*.rs', { method: 'plain' });
      expect(plain.searchParams.get('error')).toBe('invalid_request');
      const { challenge } = pkce();
      const back = await flow('openid launch/patient patient/*.rs', { challenge });
      const wrong = await exchangeCode(h.app, { code: back.searchParams.get('code')!, clientId: 'glycemie', redirectUri: REDIRECT, verifier: pkce().verifier });
      expect(wrong.status).toBe(400);
      expect(wrong.body.error).toBe('invalid_grant');
    });

    test('redirect URI mismatch and wrong aud are refused', async () => {
      const res = await anonymous(h.app).get(authorizePath({ clientId: 'glycemie', redirectUri: 'https://evil.example/cb', scope: 'openid patient/*.rs', state: 's' })).set('Host', HOST);
      expect(res.status).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(res.text).toMatch(/redirect_uri/);
      const aud = await flow('openid patient/*.rs', { aud: 'https://other.example/fhir' });
      expect(aud.searchParams.get('error')).toBe('invalid_request');
      expect(aud.searchParams.get('error_description')).toMatch(/aud/);
    });

    test('the one-time code is usable once and attempts are limited', async () => {
      // wrong password: no code sent, generic message
      const { agent, csrf, uid } = await openLoginPage();
      expect((await agent.post(`/auth/interaction/${uid}/login`).set('Host', HOST).type('form').send({ csrf: 'forged', login: 'helene', password: PASSWORD })).status).toBe(403);
      const bad = await agent.post(`/auth/interaction/${uid}/login`).set('Host', HOST).type('form').send({ csrf, login: 'helene', password: 'Mauvais1!' });
      expect(bad.status).toBe(401);
      expect(bad.text).toContain('Identifiant ou mot de passe incorrect');
      expect((await agent.post(`/auth/interaction/${uid}/login`).set('Host', HOST).type('form').send({ csrf, login: 'helene', password: PASSWORD })).status).toBe(200);
      for (let i = 0; i < 4; i++) expect((await agent.post(`/auth/interaction/${uid}/otp`).set('Host', HOST).type('form').send({ csrf, code: '000000' })).text).toContain('Code incorrect');
      const locked = await agent.post(`/auth/interaction/${uid}/otp`).set('Host', HOST).type('form').send({ csrf, code: '000000' });
      expect(locked.text).toContain('Trop de codes incorrects');
    });

    test('tries sent in parallel are limited too: 20 wrong codes at once void the code, 20 wrong passwords at once are not all checked', async () => {
      await h.services.auth!.accounts.add({ login: 'paul', password: PASSWORD, patientId: B, channel: 'email', to: 'paul@example.fr' });
      // one-time codes: 20 wrong ones at once, then the right one
      const s1 = await openLoginPage();
      expect((await s1.agent.post(`/auth/interaction/${s1.uid}/login`).set('Host', HOST).type('form').send({ csrf: s1.csrf, login: 'paul', password: PASSWORD })).status).toBe(200);
      const code = lastCode(dataDir, 'paul@example.fr');
      const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
      const burst = await Promise.all(Array.from({ length: 20 }, () => s1.agent.post(`/auth/interaction/${s1.uid}/otp`).set('Host', HOST).type('form').send({ csrf: s1.csrf, code: wrong })));
      expect(burst.every((r) => r.status === 401)).toBe(true);
      // a try counts the tries recorded when it looks, its own and those sent with it: at most the
      // first four are told the code is wrong (how many depends on the interleaving, none at all when
      // all twenty are recorded before any looks); every other one is sent to sign in again
      const told = burst.map((r) => (r.text.includes('Code incorrect') ? 'wrong code' : r.text.includes('Connectez-vous à nouveau pour recevoir un nouveau code') ? 'sign in again' : r.text));
      const wrongCode = told.filter((t) => t === 'wrong code').length;
      expect(wrongCode).toBeLessThanOrEqual(4);
      expect(told.sort()).toEqual([...Array(20 - wrongCode).fill('sign in again'), ...Array(wrongCode).fill('wrong code')]);
      expect(burst.some((r) => r.text.includes('Trop de codes incorrects'))).toBe(true);
      const late = await s1.agent.post(`/auth/interaction/${s1.uid}/otp`).set('Host', HOST).type('form').send({ csrf: s1.csrf, code });
      expect(late.status).toBe(401);
      expect(late.text).toContain('Connectez-vous');
      // passwords: of 20 wrong ones at once, at most 5 are checked (the others wait: 429)
      const s2 = await openLoginPage();
      const guesses = await Promise.all(Array.from({ length: 20 }, (_, i) => s2.agent.post(`/auth/interaction/${s2.uid}/login`).set('Host', HOST).type('form').send({ csrf: s2.csrf, login: 'paul', password: `Mauvais${i}!x` })));
      const checked = guesses.filter((r) => r.status === 401).length;
      expect(checked).toBeLessThanOrEqual(5);
      expect(guesses.filter((r) => r.status === 429)).toHaveLength(20 - checked);
      // a slow-down, not a lock: once the delay has passed (1 s after 5 failures), the right password signs in
      await new Promise((r) => setTimeout(r, 1100));
      const right = await s2.agent.post(`/auth/interaction/${s2.uid}/login`).set('Host', HOST).type('form').send({ csrf: s2.csrf, login: 'paul', password: PASSWORD });
      expect(right.status).toBe(200);
      expect(right.text).toContain('Saisissez votre code');
    });

    test('cancelling on the login or one-time code page sends the patient back to the app with access_denied', async () => {
      const { Browser } = await import('../helpers/browser');
      const authorize = authorizePath({ clientId: 'glycemie', redirectUri: REDIRECT, scope: 'openid patient/*.rs', state: 'etat-1' });
      const b = new Browser(h.app);
      expect(await b.go(authorize)).toBeUndefined();
      expect(b.page!.text).toContain('Annuler et revenir à Carnet de glycémie');
      const back = await b.submit({}, /\/abort$/);
      expect(back?.origin + back!.pathname).toBe(REDIRECT);
      expect(Object.fromEntries(back!.searchParams)).toEqual({ error: 'access_denied', error_description: 'The user cancelled the sign-in', state: 'etat-1', iss: `http://${HOST}/auth` });
      // from the one-time code page too; the code sent is then void
      expect(await b.go(authorize.replace('etat-1', 'etat-2'))).toBeUndefined();
      expect(await b.submit({ login: 'helene', password: PASSWORD })).toBeUndefined();
      expect(b.page!.text).toContain('Saisissez votre code');
      const again = await b.submit({}, /\/abort$/);
      expect(again!.searchParams.get('error')).toBe('access_denied');
      expect(again!.searchParams.get('state')).toBe('etat-2');
      // an address that does not decode is the client's mistake, not the server's
      const undecodable = await anonymous(h.app).get('/auth/interaction/%ZZ').set('Host', HOST);
      expect(undecodable.status).toBe(400);
      expect(undecodable.text).toContain('Requête invalide');
    });
  },
  { dataDir },
);

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
