import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import { decodeJwt } from 'jose';
import type { AppServices } from '../../src/server';
import { anonymous, HOST } from '../helpers/auth';
import { Browser, consentScopes } from '../helpers/browser';
import { engines } from '../helpers/engines';
import { authorizePath, exchangeCode, FHIR_BASE, pkce } from '../helpers/smart';
import { startProServer, type ProServer, type Upstream } from '../helpers/upstream-oidc';
import { frPractitioner } from '../helpers/french';

/**
 * Professionals sign in through an upstream OpenID Connect provider (Pro Santé Connect): a real
 * oidc-provider on loopback plays it (test/helpers/upstream-oidc.ts). The whole flow runs over
 * HTTP: a professional's software asks for authorization, the login page sends the professional
 * upstream, the upstream signs them in and sends them back to /auth/pro/callback
 * (express-openid-connect exchanges the code upstream and reads the identity), the RPPS number of
 * the identity (SubjectNameID = "8" + RPPS) finds the Practitioner with that FR Core RPPS
 * identifier, the professional consents, and the software's token names `fhirUser` =
 * `Practitioner/<id>`.
 */
const RPPS = '10003456789';
const OTHER_RPPS = '10009999999';
const UNKNOWN_RPPS = '10000000001';
const REDIRECT = 'http://127.0.0.1:9/callback';

describe.each(engines())('professionals sign in through Pro Santé Connect [$name]', (engine) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-pro-'));
  let upstream: Upstream;
  let services: AppServices;
  let app: Express;
  let practitioner: string;
  let server: ProServer;

  const authorizeUrl = (scope: string, challenge: string, extra: Record<string, string> = {}) => authorizePath({ clientId: 'logiciel-cabinet', redirectUri: REDIRECT, scope, challenge, extra });

  /** The professional's browser, from the software's authorization request to the login page. */
  const toLoginPage = async (b: Browser, scope: string, challenge: string, extra: Record<string, string> = {}) => {
    expect(await b.go(authorizeUrl(scope, challenge, extra))).toBeUndefined();
    expect(b.page!.status).toBe(200);
    const link = /href="([^"]+\/pro)"/.exec(b.page!.text)?.[1];
    expect(b.page!.text).toContain('Se connecter avec Pro Santé Connect');
    return link!;
  };

  /** Signs in upstream with the card `card`; returns what the browser ends on. */
  const signInUpstream = async (b: Browser, proLink: string, card: string) => {
    expect(await b.go(proLink)).toBeUndefined();
    // now on the upstream's login page
    expect(b.page!.url.origin).toBe(upstream.issuer);
    return b.submit({ login: card });
  };

  beforeAll(async () => {
    server = await startProServer(engine, dataDir, {
      'cps-martin': { SubjectNameID: `8${RPPS}`, family_name: 'MARTIN', given_name: 'Claire' },
      'cps-inconnu': { SubjectNameID: `8${UNKNOWN_RPPS}`, family_name: 'INCONNU', given_name: 'Paul' },
    });
    ({ upstream, services, app } = server);
    const { create } = server;
    await create(frPractitioner({ family: 'DURAND', given: 'Pierre', rpps: OTHER_RPPS, prefix: 'M' }));
    practitioner = await create(frPractitioner({ family: 'MARTIN', given: 'Claire', rpps: RPPS, prefix: 'MME' }));
    await services.auth!.clients.add({
      clientId: 'logiciel-cabinet',
      name: 'Logiciel de cabinet',
      kind: 'professional',
      redirectUris: [REDIRECT],
      scope: 'openid fhirUser user/*.rs',
      authMethod: 'none',
    });
  });

  afterAll(async () => {
    await server?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('upstream login, back, consent, code: the token names the Practitioner with that RPPS number', async () => {
    const b = new Browser(app, [upstream.issuer]);
    const { verifier, challenge } = pkce();
    const proLink = await toLoginPage(b, 'openid fhirUser user/*.rs', challenge);
    expect(await signInUpstream(b, proLink, 'cps-martin')).toBeUndefined();
    // back on this server (through /auth/pro/callback): the consent page, for the professional
    expect(b.page!.url.host).toBe(HOST);
    expect(b.page!.status).toBe(200);
    expect(b.page!.text).toContain('Autoriser Logiciel de cabinet');
    expect(b.page!.text).toContain(`Practitioner/${practitioner}`);
    const scopes = consentScopes(b.page!.text);
    expect([...scopes].sort()).toEqual(['fhirUser', 'openid', 'user/*.rs']);
    const back = await b.submit({ decision: 'allow', scope: scopes });
    expect(back?.origin + back!.pathname).toBe(REDIRECT);
    expect(back!.searchParams.get('state')).toBe('st4te');
    const code = back!.searchParams.get('code');
    expect(code).toBeTruthy();

    const res = await exchangeCode(app, { code: code!, clientId: 'logiciel-cabinet', redirectUri: REDIRECT, verifier });
    expect(res.status).toBe(200);
    expect(res.body.patient).toBeUndefined();
    expect(res.body.scope.split(' ').sort()).toEqual(['fhirUser', 'openid', 'user/*.rs']);
    const claims = decodeJwt(res.body.access_token);
    expect(claims).toMatchObject({ fhirUser: `Practitioner/${practitioner}`, sub: `practitioner:${practitioner}`, client_id: 'logiciel-cabinet', aud: FHIR_BASE });
    expect(decodeJwt(res.body.id_token).fhirUser).toBe(`Practitioner/${practitioner}`);
    // the upstream really was used: its token endpoint, and its userinfo (where SubjectNameID is)
    expect(upstream.calls.token).toBe(1);
    expect(upstream.calls.me).toBe(1);
    // the upstream session ended once read: a new sign-in in this browser (prompt=login, past this
    // server's own session) goes upstream again instead of reusing the last professional's identity
    const asked = upstream.calls.auth;
    const again = await toLoginPage(b, 'openid fhirUser user/*.rs', pkce().challenge, { prompt: 'login' });
    await b.go(again);
    expect(upstream.calls.auth).toBe(asked + 1);
    // the token works with its user/ scopes
    const me = await anonymous(app).get(`/fhir/Practitioner/${practitioner}`).set('Authorization', `Bearer ${res.body.access_token}`);
    expect(me.status).toBe(200);
    expect(me.body.identifier[0].value).toBe(RPPS);
    const write = await anonymous(app).post('/fhir/Patient').set('Authorization', `Bearer ${res.body.access_token}`).set('Content-Type', 'application/fhir+json').send(JSON.stringify({ resourceType: 'Patient' }));
    expect(write.status).toBe(403);
  });

  test('an RPPS number that matches no Practitioner is refused with a clear page, and no code is issued', async () => {
    const b = new Browser(app, [upstream.issuer]);
    const proLink = await toLoginPage(b, 'openid fhirUser user/*.rs', pkce().challenge);
    expect(await signInUpstream(b, proLink, 'cps-inconnu')).toBeUndefined();
    expect(b.page!.url.host).toBe(HOST);
    expect(b.page!.status).toBe(403);
    expect(b.page!.text).toContain('Accès refusé');
    expect(b.page!.text).toContain('RPPS');
    expect(b.page!.text).toContain('role="alert"');
    // the RPPS number itself is not echoed back
    expect(b.page!.text).not.toContain(UNKNOWN_RPPS);
    // the way back tells the software, which would otherwise wait for a code
    expect(b.page!.text).toContain('Revenir à Logiciel de cabinet');
    const back = await b.submit({}, /\/abort$/);
    expect(back?.origin + back!.pathname).toBe(REDIRECT);
    expect(back!.searchParams.get('error')).toBe('access_denied');
    expect(back!.searchParams.get('error_description')).toContain('RPPS');
    expect(back!.searchParams.get('state')).toBe('st4te');
    expect(back!.searchParams.get('code')).toBeNull();
  });

  test('an upstream refusal (access_denied) ends on a clear page of this server, whose way back tells the software', async () => {
    const b = new Browser(app, [upstream.issuer]);
    const proLink = await toLoginPage(b, 'openid fhirUser user/*.rs', pkce().challenge);
    const out = await signInUpstream(b, proLink, 'carte-inconnue-en-amont');
    // the upstream answers access_denied to /auth/pro/callback: this server shows an error page
    expect(out).toBeUndefined();
    expect(b.page!.url.host).toBe(HOST);
    expect(b.page!.url.pathname).toBe('/auth/pro/callback');
    expect(b.page!.status).toBe(401);
    expect(b.page!.text).toContain('La connexion avec Pro Santé Connect n’a pas abouti');
    expect(b.page!.text).toContain('role="alert"');
    // no upstream session was opened: the login link still goes upstream (signInUpstream checks it)
    expect(await signInUpstream(b, proLink, 'carte-inconnue-en-amont')).toBeUndefined();
    expect(b.page!.status).toBe(401);
    // back to the software, with access_denied and its state
    const back = await b.submit({}, /\/abort$/);
    expect(back?.origin + back!.pathname).toBe(REDIRECT);
    expect(back!.searchParams.get('error')).toBe('access_denied');
    expect(back!.searchParams.get('error_description')).toContain('Pro Santé Connect');
    expect(back!.searchParams.get('state')).toBe('st4te');
    // that sign-in is over; a new one in the same browser starts afresh and can succeed
    const { verifier, challenge } = pkce();
    const again = await toLoginPage(b, 'openid fhirUser user/*.rs', challenge);
    expect(await signInUpstream(b, again, 'cps-martin')).toBeUndefined();
    expect(b.page!.text).toContain('Autoriser Logiciel de cabinet');
    const done = await b.submit({ decision: 'allow', scope: consentScopes(b.page!.text) });
    const res = await exchangeCode(app, { code: done!.searchParams.get('code')!, clientId: 'logiciel-cabinet', redirectUri: REDIRECT, verifier });
    expect(res.status).toBe(200);
    expect(decodeJwt(res.body.access_token).fhirUser).toBe(`Practitioner/${practitioner}`);
  });

  test('a forged way back is refused: the interaction needs its own cookie and CSRF token', async () => {
    const b = new Browser(app, [upstream.issuer]);
    const proLink = await toLoginPage(b, 'openid fhirUser user/*.rs', pkce().challenge);
    const abort = proLink.replace(/\/pro$/, '/abort');
    // another browser (no interaction cookie) cannot end this sign-in
    const other = await anonymous(app).post(abort).set('Host', HOST).type('form').send({ csrf: 'x', reason: 'cancelled' });
    expect(other.status).toBe(400);
    // this browser without the page's CSRF token neither
    expect(await b.go(abort, 'POST', 'csrf=forged&reason=cancelled')).toBeUndefined();
    expect(b.page!.status).toBe(403);
    // the sign-in is still open
    expect(await b.go(proLink.replace(/\/pro$/, ''))).toBeUndefined();
    expect(b.page!.status).toBe(200);
    expect(b.page!.text).toContain('Se connecter avec Pro Santé Connect');
  });
});
