import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import { decodeJwt } from 'jose';
import type { AppServices } from '../../src/server';
import { anonymous, HOST } from '../helpers/auth';
import { Browser, consentScopes } from '../helpers/browser';
import { engines } from '../helpers/engines';
import { authorizePath, authorizeThroughForms, exchangeCode, pkce } from '../helpers/smart';
import { startProServer, type ProServer, type Upstream } from '../helpers/upstream-oidc';
import { frPractitioner } from '../helpers/french';

/**
 * EHR launch, end to end. A professional signs in to their software (through Pro Santé Connect, a
 * real oidc-provider on loopback), the software issues a launch for the patient on screen
 * (POST /auth/launch with its user/ token), and opens a SMART app in the same browser with
 * `launch=<id>` and the `launch` scope. The professional (already signed in to this server)
 * consents, and the app's token response names `patient`; its patient/ scopes are confined to it.
 */
const RPPS = '10001234567';
const OTHER_RPPS = '10007654321';
const EHR_REDIRECT = 'http://127.0.0.1:9/ehr';
const APP_REDIRECT = 'http://127.0.0.1:9/app';
const PASSWORD = 'Motdepasse1!';

describe.each(engines())('EHR launch [$name]', (engine) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-ehr-'));
  let server: ProServer;
  let upstream: Upstream;
  let services: AppServices;
  let app: Express;
  let practitioner: string;
  let A: string, B: string;
  let obsA: string, obsB: string;

  const authorizeUrl = (clientId: string, redirectUri: string, scope: string, challenge: string, extra: Record<string, string> = {}) => authorizePath({ clientId, redirectUri, scope, challenge, extra });

  /** The professional signs in to their software through the upstream: a browser with a session here, and the software's token. */
  const signInToSoftware = async (card: string) => {
    const b = new Browser(app, [upstream.issuer]);
    const { verifier, challenge } = pkce();
    expect(await b.go(authorizeUrl('logiciel-cabinet', EHR_REDIRECT, 'openid fhirUser user/*.rs', challenge))).toBeUndefined();
    expect(await b.go(/href="([^"]+\/pro)"/.exec(b.page!.text)![1])).toBeUndefined();
    expect(await b.submit({ login: card })).toBeUndefined();
    const back = await b.submit({ decision: 'allow', scope: consentScopes(b.page!.text) });
    const res = await exchangeCode(app, { code: back!.searchParams.get('code')!, clientId: 'logiciel-cabinet', redirectUri: EHR_REDIRECT, verifier });
    expect(res.status).toBe(200);
    return { browser: b, token: res.body.access_token as string };
  };

  const issueLaunch = (token: string | undefined, body: unknown) => {
    const t = anonymous(app).post('/auth/launch').set('Host', HOST);
    return (token ? t.set('Authorization', `Bearer ${token}`) : t).send(body as object);
  };

  /** The software opens the app in the professional's browser; returns the app's redirect. */
  const launchApp = async (b: Browser, launch: string, challenge: string) => {
    const out = await b.go(authorizeUrl('app-ehr', APP_REDIRECT, 'launch openid fhirUser patient/*.rs', challenge, { launch }));
    if (out) return out;
    // no login page: the professional is signed in here already; the consent page of this launch
    expect(b.page!.text).toContain('Autoriser Courbes de croissance');
    return b.submit({ decision: 'allow', scope: consentScopes(b.page!.text) });
  };

  const get = (token: string, p: string) => anonymous(app).get(p).set('Authorization', `Bearer ${token}`);

  beforeAll(async () => {
    server = await startProServer(engine, dataDir, { 'cps-martin': { SubjectNameID: `8${RPPS}` }, 'cps-durand': { SubjectNameID: `8${OTHER_RPPS}` } });
    ({ upstream, services, app } = server);
    const { create } = server;
    practitioner = await create(frPractitioner({ family: 'MARTIN', given: 'Claire', rpps: RPPS, prefix: 'MME' }));
    await create(frPractitioner({ family: 'DURAND', given: 'Pierre', rpps: OTHER_RPPS, prefix: 'M' }));
    A = await create({ resourceType: 'Patient', name: [{ family: 'Lefèvre' }] });
    B = await create({ resourceType: 'Patient', name: [{ family: 'Autre' }] });
    obsA = await create({ resourceType: 'Observation', status: 'final', code: { text: 'taille' }, subject: { reference: `Patient/${A}` } });
    obsB = await create({ resourceType: 'Observation', status: 'final', code: { text: 'taille' }, subject: { reference: `Patient/${B}` } });
    await services.auth!.clients.add({ clientId: 'logiciel-cabinet', name: 'Logiciel de cabinet', kind: 'professional', redirectUris: [EHR_REDIRECT], scope: 'openid fhirUser user/*.rs', authMethod: 'none' });
    await services.auth!.clients.add({ clientId: 'app-ehr', name: 'Courbes de croissance', kind: 'professional', redirectUris: [APP_REDIRECT], scope: 'launch openid fhirUser patient/*.rs', authMethod: 'none' });
    await services.auth!.clients.add({ clientId: 'carnet', name: 'Carnet', kind: 'patient-app', redirectUris: [APP_REDIRECT], scope: 'launch launch/patient openid patient/*.rs', authMethod: 'none' });
    await services.auth!.accounts.add({ login: 'helene', password: PASSWORD, patientId: B, channel: 'email', to: 'helene@example.fr' });
  });

  afterAll(async () => {
    await server?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('the software issues a launch; the app launched with it gets a token naming that patient, confined to them', async () => {
    const { browser, token } = await signInToSoftware('cps-martin');
    const issued = await issueLaunch(token, { patient: A });
    expect(issued.status).toBe(201);
    expect(issued.body.expires_in).toBe(300);
    const launch = issued.body.launch as string;
    expect(launch).toMatch(/^[A-Za-z0-9_-]{20,}$/);

    const { verifier, challenge } = pkce();
    const back = await launchApp(browser, launch, challenge);
    expect(back!.origin + back!.pathname).toBe(APP_REDIRECT);
    expect(back!.searchParams.get('error')).toBeNull();
    const res = await exchangeCode(app, { code: back!.searchParams.get('code')!, clientId: 'app-ehr', redirectUri: APP_REDIRECT, verifier });
    expect(res.status).toBe(200);
    expect(res.body.patient).toBe(A);
    expect(res.body.need_patient_banner).toBe(true);
    expect(res.body.scope.split(' ').sort()).toEqual(['fhirUser', 'launch', 'openid', 'patient/*.rs']);
    expect(decodeJwt(res.body.access_token)).toMatchObject({ patient: A, fhirUser: `Practitioner/${practitioner}`, client_id: 'app-ehr' });
    expect(decodeJwt(res.body.id_token).fhirUser).toBe(`Practitioner/${practitioner}`);
    const t = res.body.access_token as string;
    expect((await get(t, `/fhir/Patient/${A}`)).status).toBe(200);
    expect((await get(t, `/fhir/Observation/${obsA}`)).status).toBe(200);
    expect((await get(t, `/fhir/Patient/${B}`)).status).toBe(404);
    expect((await get(t, `/fhir/Observation/${obsB}`)).status).toBe(404);

    // a launch serves once
    const again = await launchApp(browser, launch, pkce().challenge);
    expect(again!.searchParams.get('error')).toBe('invalid_request');
    expect(again!.searchParams.get('code')).toBeNull();

    // a second launch in the same session, for another patient: a token for that patient (not the first one's context)
    const second = await issueLaunch(token, { patient: B });
    const p2 = pkce();
    const back2 = await launchApp(browser, second.body.launch, p2.challenge);
    const res2 = await exchangeCode(app, { code: back2!.searchParams.get('code')!, clientId: 'app-ehr', redirectUri: APP_REDIRECT, verifier: p2.verifier });
    expect(res2.status).toBe(200);
    expect(res2.body.patient).toBe(B);
    expect((await get(res2.body.access_token, `/fhir/Observation/${obsB}`)).status).toBe(200);
    expect((await get(res2.body.access_token, `/fhir/Observation/${obsA}`)).status).toBe(404);
    // and the first launch's token still names A
    expect((await get(t, `/fhir/Observation/${obsA}`)).status).toBe(200);
  });

  test('a launch used by two sign-ins at the same time serves one of them only', async () => {
    const first = await signInToSoftware('cps-martin');
    const second = await signInToSoftware('cps-martin');
    const launch = (await issueLaunch(first.token, { patient: A })).body.launch as string;
    // both browsers reach the consent page of the same launch, then both consent at once
    const verifiers: string[] = [];
    for (const b of [first.browser, second.browser]) {
      const { verifier, challenge } = pkce();
      verifiers.push(verifier);
      expect(await b.go(authorizeUrl('app-ehr', APP_REDIRECT, 'launch openid fhirUser patient/*.rs', challenge, { launch }))).toBeUndefined();
      expect(b.page!.text).toContain('Autoriser Courbes de croissance');
    }
    const outs = await Promise.all([first.browser, second.browser].map((b) => b.submit({ decision: 'allow', scope: consentScopes(b.page!.text) })));
    // one sign-in gets a code, the other is told the launch is gone
    expect(outs.map((u) => (u?.searchParams.get('code') ? 'code' : `${u?.searchParams.get('error')}: ${u?.searchParams.get('error_description')}`)).sort()).toEqual(['code', 'invalid_request: The launch is unknown or has expired']);
    const winner = outs.findIndex((u) => u?.searchParams.get('code'));
    const res = await exchangeCode(app, { code: outs[winner]!.searchParams.get('code')!, clientId: 'app-ehr', redirectUri: APP_REDIRECT, verifier: verifiers[winner] });
    expect([res.status, res.body.patient]).toEqual([200, A]);
  });

  test('issuing a launch: a token is needed, with user/ or system/ scopes, for a Patient that exists', async () => {
    const { token } = await signInToSoftware('cps-martin');
    const none = await issueLaunch(undefined, { patient: A });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await issueLaunch('not-a-token', { patient: A })).status).toBe(401);
    expect((await issueLaunch(token, {})).status).toBe(400);
    expect((await issueLaunch(token, { patient: '../x' })).status).toBe(400);
    expect((await issueLaunch(token, { patient: 'inconnu' })).status).toBe(404);
    // a patient's app (patient/ scopes only) cannot issue launches
    const { verifier, challenge } = pkce();
    const back = await authorizeThroughForms(app, { clientId: 'carnet', redirectUri: APP_REDIRECT, scope: 'openid launch/patient patient/*.rs', login: 'helene', password: PASSWORD, to: 'helene@example.fr', dataDir, challenge });
    const patientToken = (await exchangeCode(app, { code: back.searchParams.get('code')!, clientId: 'carnet', redirectUri: APP_REDIRECT, verifier })).body.access_token;
    const refused = await issueLaunch(patientToken, { patient: A });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toBe('insufficient_scope');
  });

  test('a launch that is unknown, or issued for someone else, gives no token', async () => {
    // the launch scope without a launch, or an unknown launch: refused at once, before anyone signs in
    const anyone = new Browser(app, [upstream.issuer]);
    const bare = await anyone.go(authorizeUrl('app-ehr', APP_REDIRECT, 'launch openid fhirUser patient/*.rs', pkce().challenge));
    expect(bare?.origin + bare!.pathname).toBe(APP_REDIRECT);
    expect([bare!.searchParams.get('error'), bare!.searchParams.get('state'), bare!.searchParams.get('code')]).toEqual(['invalid_scope', 'st4te', null]);
    const unknownAtOnce = await anyone.go(authorizeUrl('app-ehr', APP_REDIRECT, 'launch openid fhirUser patient/*.rs', pkce().challenge, { launch: 'inconnu' }));
    expect([unknownAtOnce!.searchParams.get('error'), unknownAtOnce!.searchParams.get('error_description')]).toEqual(['invalid_request', 'The launch is unknown or has expired']);
    const martin = await signInToSoftware('cps-martin');
    // the same for a signed-in professional
    const unknown = await launchApp(martin.browser, 'inconnu', pkce().challenge);
    expect(unknown!.searchParams.get('error')).toBe('invalid_request');
    expect(unknown!.searchParams.get('code')).toBeNull();
    // a launch issued by Dr Martin's session, used by Dr Durand
    const launch = (await issueLaunch(martin.token, { patient: A })).body.launch as string;
    const durand = await signInToSoftware('cps-durand');
    const stolen = await launchApp(durand.browser, launch, pkce().challenge);
    expect(stolen!.searchParams.get('error')).toBe('access_denied');
    expect(stolen!.searchParams.get('code')).toBeNull();
    // ... or by a patient signing in to a patient app (their own record is B): never another patient's context
    const patientTry = await authorizeThroughForms(app, { clientId: 'carnet', redirectUri: APP_REDIRECT, scope: 'launch openid patient/*.rs', login: 'helene', password: PASSWORD, to: 'helene@example.fr', dataDir, launch });
    expect(patientTry.searchParams.get('error')).toBe('access_denied');
    expect(patientTry.searchParams.get('code')).toBeNull();
  });
});
