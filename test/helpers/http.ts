import type { Express } from 'express';
import { backendToken, registerBackend, request, useToken, anonymous } from './auth';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import type { AppServices } from '../../src/server';
import { engines, servicesFor, type Engine } from './engines';
import type { Config } from '../../src/config';

export const BASE = 'http://fhir.test/fhir';
export const FHIR_JSON = 'application/fhir+json';
export const INS = 'urn:oid:1.2.250.1.213.1.4.8';

export interface Harness {
  engine: Engine;
  services: AppServices;
  app: Express;
  /** the harness's access token (a backend system with system/*.cruds); `request(h.app)` sends it */
  token: string;
  /** POST a resource and return its stored form */
  create<T extends Record<string, unknown>>(resource: T): Promise<T & { id: string; meta: { versionId: string; lastUpdated: string } }>;
}

/**
 * Runs `suite` once per engine, each with a fresh store and the real Express app. The harness
 * registers a backend system (system/*.cruds, an ES384 key pair) and gets its token from the real
 * token endpoint (client_credentials, private_key_jwt); `request(h.app)` sends it.
 */
export function eachEngine(title: string, suite: (h: Harness) => void, config: Partial<Config> = {}): void {
  describe.each(engines())(`${title} [$name]`, (engine) => {
    const h = { engine } as Harness;
    beforeAll(async () => {
      h.services = await servicesFor(engine, config);
      h.app = createApp(h.services, createLogger('silent'));
      const client = await registerBackend(h.services, 'system/*.cruds');
      h.token = await backendToken(h.app, client, 'system/*.cruds');
      useToken(h.app, h.token);
      h.create = async (resource) => {
        const res = await request(h.app).post(`/fhir/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(resource));
        if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
        return res.body;
      };
    });
    afterAll(async () => {
      await h.services?.jobs?.stop();
      await h.services?.store.close();
      await engine.cleanup();
    });
    suite(h);
  });
}

export function patient(family: string, extra: Record<string, unknown> = {}) {
  return { resourceType: 'Patient', name: [{ family, given: ['Jeanne'] }], ...extra };
}

/** The ids of the match entries of a searchset (not includes, not outcomes), in order. */
export function ids(bundle: { entry?: { resource?: { id: string }; search?: { mode: string } }[] }): string[] {
  return (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource!.id);
}

export { request, anonymous };
