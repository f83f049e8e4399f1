import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { eachEngine } from '../helpers/http';
import { HOST } from '../helpers/auth';
import { authorizePath, lastCode } from '../helpers/smart';

/**
 * Wrong passwords slow down the tries of whoever makes them, never lock the account's owner out;
 * the owner is told. The server sits behind a proxy here (TRUST_PROXY), so each test client has an
 * address of its own (X-Forwarded-For).
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-throttle-'));
const REDIRECT = 'http://127.0.0.1:9/callback';
const PASSWORD = 'Motdepasse1!';

/** The messages the development sender wrote for `to` since `since` (epoch ms); both engines' suites share the outbox. */
const messagesTo = (to: string, since: number) => {
  const file = path.join(dataDir, 'outbox', 'messages.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { to: string; at: string; subject: string; text: string })
    .filter((m) => m.to === to && Date.parse(m.at) >= since);
};

eachEngine(
  'sign-in tries',
  (h) => {
    let n = 0;
    /** A browser at `address` on the login page of a new sign-in. */
    const browserAt = async (address: string, agent = supertest.agent(h.app)) => {
      const first = await agent.get(authorizePath({ clientId: 'carnet', redirectUri: REDIRECT, scope: 'openid patient/*.rs', state: `s${++n}` })).set('Host', HOST).set('X-Forwarded-For', address);
      const page = await agent.get(new URL(first.headers.location, `http://${HOST}`).pathname).set('Host', HOST).set('X-Forwarded-For', address);
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1];
      const uid = /\/interaction\/([^/"]+)\/login/.exec(page.text)![1];
      return {
        agent,
        login: (login: string, password: string) => agent.post(`/auth/interaction/${uid}/login`).set('Host', HOST).set('X-Forwarded-For', address).type('form').send({ csrf, login, password }),
        otp: (code: string) => agent.post(`/auth/interaction/${uid}/otp`).set('Host', HOST).set('X-Forwarded-For', address).type('form').send({ csrf, code }),
      };
    };

    beforeAll(async () => {
      const patientId = (await h.create({ resourceType: 'Patient', name: [{ family: 'Lefèvre' }] })).id;
      await h.services.auth!.clients.add({ clientId: 'carnet', name: 'Carnet', kind: 'patient-app', redirectUris: [REDIRECT], scope: 'openid patient/*.rs', authMethod: 'none' });
      for (const login of ['helene', 'paul', 'lea']) await h.services.auth!.accounts.add({ login, password: PASSWORD, patientId, channel: 'email', to: `${login}@example.fr` });
    });

    test('wrong passwords from one address slow that address down (1 s, 2 s, ...), and the owner still signs in from elsewhere and is told', async () => {
      const since = Date.now();
      const attacker = await browserAt('203.0.113.9');
      for (let i = 0; i < 5; i++) {
        const res = await attacker.login('helene', `Mauvais${i}!x`);
        expect(res.status).toBe(401);
        expect(res.text).toContain('Identifiant ou mot de passe incorrect');
      }
      const sixth = await attacker.login('helene', 'Mauvais5!x');
      expect(sixth.status).toBe(429);
      expect(sixth.headers['retry-after']).toBe('1');
      expect(sixth.text).toContain('réessayez dans 1 seconde');
      // even the right password is not checked that soon after
      expect((await attacker.login('helene', PASSWORD)).status).toBe(429);
      // once the delay has passed, one more try is checked, and the next delay is longer
      await new Promise((r) => setTimeout(r, 1100));
      expect((await attacker.login('helene', 'Mauvais6!x')).status).toBe(401);
      const next = await attacker.login('helene', 'Mauvais7!x');
      expect(next.status).toBe(429);
      expect(next.headers['retry-after']).toBe('2');
      // the owner, from their own address, is not kept out
      const owner = await browserAt('198.51.100.7');
      const signIn = await owner.login('helene', PASSWORD);
      expect(signIn.status).toBe(200);
      expect(signIn.text).toContain('Saisissez votre code');
      // and was told, once, that their account was being tried (no password, no health data in it)
      const warnings = messagesTo('helene@example.fr', since).filter((m) => m.subject === 'Tentatives de connexion à votre espace santé');
      expect(warnings).toHaveLength(1);
      expect(warnings[0].text).toContain('5 tentatives');
      expect(warnings[0].text).not.toContain('Mauvais');
    });

    test('tries sent in parallel are not all checked: of 20 wrong passwords at once at most 5 are, and the owner is not locked out', async () => {
      const attacker = await browserAt('203.0.113.20');
      const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => attacker.login('paul', `Mauvais${i}!x`)));
      const checked = burst.filter((r) => r.status === 401).length;
      expect(checked).toBeLessThanOrEqual(5);
      expect(burst.filter((r) => r.status !== 401).every((r) => r.status === 429)).toBe(true);
      // once the delay owed after them has passed (at most 1 s after 5 failures), the right password is checked and signs in
      await new Promise((r) => setTimeout(r, 1100));
      expect((await attacker.login('paul', PASSWORD)).status).toBe(200);
      // the owner elsewhere signs in
      expect((await (await browserAt('198.51.100.8')).login('paul', PASSWORD)).status).toBe(200);
      expect(burst.length - checked).toBeGreaterThanOrEqual(15);
    });

    test('many addresses against one login slow down every new address, but not the browser where the owner signed in before', async () => {
      // the owner signs in once completely (password and code): this browser is now known
      const ownerAgent = supertest.agent(h.app);
      const first = await browserAt('198.51.100.9', ownerAgent);
      expect((await first.login('lea', PASSWORD)).status).toBe(200);
      const done = await first.otp(lastCode(dataDir, 'lea@example.fr'));
      expect(done.status).toBe(303);
      // 20 addresses, one wrong try each: every one is checked
      for (let i = 0; i < 20; i++) expect((await (await browserAt(`203.0.113.${100 + i}`)).login('lea', `Mauvais${i}!x`)).status).toBe(401);
      // the 21st address, and an unknown browser, now wait
      expect((await (await browserAt('203.0.113.200')).login('lea', 'Mauvais!x1')).status).toBe(429);
      expect((await (await browserAt('198.51.100.10')).login('lea', PASSWORD)).status).toBe(429);
      // the owner's browser signs in at once
      const again = await browserAt('198.51.100.9', ownerAgent);
      const res = await again.login('lea', PASSWORD);
      expect(res.status).toBe(200);
      expect(res.text).toContain('Saisissez votre code');
    });
  },
  { dataDir, trustProxy: true },
);

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
