import http from 'node:http';
import path from 'node:path';
import type { Config } from './config';
import type { Services } from './fhir/context';
import { createApp } from './http/app';
import type { Logger } from './log';
import { r4ResourceTypes } from './r4';
import { SearchParamRegistry } from './search/registry';
import { FhirError } from './outcome';
import { MongoStore } from './store/mongo';
import { SqliteStore } from './store/sqlite';
import type { ResourceStore } from './store/types';
import { loadValidator, type Validator } from './validation';
import { profilesDir, readTgz } from './validation/packages';
import { Reindexer } from './fhir/reindex';
import fs from 'node:fs';
import type { SearchParameter } from 'fhir/r4';

export function createStore(config: Config): ResourceStore {
  if (config.mongodbUri) return new MongoStore(config.mongodbUri);
  return new SqliteStore(path.join(config.dataDir, 'espace-sante.sqlite'));
}

const validators = new Map<string, Validator>();

/** The validator for a configuration; loaded once per process (the compiled form is cached under validationCacheDir). */
export function validatorFor(config: Config): Validator {
  const key = `${config.validationCacheDir}|${config.requiredProfiles}`;
  let v = validators.get(key);
  if (!v) {
    v = loadValidator({ cacheDir: config.validationCacheDir, requiredProfiles: config.requiredProfiles });
    validators.set(key, v);
  }
  return v;
}

let packageParameters: SearchParameter[] | undefined;

/** The SearchParameters of the French packages in profiles/packages (PDSm, Annuaire, GAP, traceability, FR Core). */
export function frenchSearchParameters(): SearchParameter[] {
  if (!packageParameters) {
    packageParameters = [];
    const dir = path.join(profilesDir(), 'packages');
    for (const f of fs.readdirSync(dir).filter((x) => /^(ans\.fhir\.fr|hl7\.fhir\.fr)\..*\.tgz$/.test(x)).sort()) {
      for (const [name, content] of readTgz(path.join(dir, f))) {
        if (/^package\/SearchParameter-[^/]+\.json$/.test(name)) packageParameters.push(JSON.parse(content.toString('utf8')) as SearchParameter);
      }
    }
  }
  return packageParameters;
}

export async function createServices(config: Config, store: ResourceStore = createStore(config)): Promise<Services> {
  await store.init();
  const validator = validatorFor(config);
  const services: Services = {
    store,
    registry: new SearchParamRegistry(frenchSearchParameters()),
    config,
    resourceTypes: r4ResourceTypes(),
    startedAt: new Date(),
    validator,
    expandValueSet: (url) => {
      const e = validator.engine.terminology.expand(url);
      if (!e) throw new FhirError(400, 'not-supported', `The value set ${url} is not known to this server`);
      const missing = [...e.incomplete.entries()].map(([system, why]) => `${system}: ${why}`);
      if (e.unknownPart) missing.push(e.unknownPart);
      if (missing.length) throw new FhirError(400, 'not-supported', `The value set ${url} cannot be expanded completely here (${missing.join('; ')}), so :in/:not-in cannot be answered exactly`);
      return [...e.codes].flatMap(([system, codes]) => [...codes].map((code) => ({ system, code })));
    },
  };
  services.reindexer = new Reindexer(services);
  await services.reindexer.resume();
  return services;
}

export interface RunningServer {
  server: http.Server;
  services: Services;
  url: string;
  /** Stops accepting connections, lets in-flight requests finish (up to the grace period), closes the store. */
  stop(): Promise<void>;
}

export async function startServer(config: Config, log: Logger, store?: ResourceStore): Promise<RunningServer> {
  const services = await createServices(config, store);
  const app = createApp(services, log);
  const server = http.createServer(app);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host ?? 'localhost'}:${port}/fhir`;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
      await closed;
      clearTimeout(timer);
      await services.reindexer?.stop();
      await services.store.close();
    })());
  return { server, services, url, stop };
}
