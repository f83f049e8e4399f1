import http from 'node:http';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import type { Config } from './config';
import type { Services } from './fhir/context';
import { createApp } from './http/app';
import type { Logger } from './log';
import { r4ResourceTypes } from './r4';
import { SearchParamRegistry } from './search/registry';
import { FhirError } from './outcome';
import { MongoStore } from './store/mongo/store';
import { SqliteStore } from './store/sqlite/store';
import type { ResourceStore } from './store/types';
import { loadValidator, type Validator } from './validation';
import { profilesDir, readTgz } from './validation/packages';
import { Reindexer } from './jobs/reindex';
import { JobRunner } from './jobs/runner';
import { Hooks } from './fhir/hooks';
import { UNIQUE_IDENTIFIERS } from './fhir/unique-identifiers';
import fs from 'node:fs';
import type { SearchParameter } from 'fhir/r4';
import { createAuth, type Auth } from './auth';
import { createLogger } from './log';

/** The services of the running server: the FHIR layer's, and the authorization server. */
export type AppServices = Services & { auth?: Auth };

export function createStore(config: Config): ResourceStore {
  if (config.mongodbUri) return new MongoStore(config.mongodbUri);
  return new SqliteStore(path.join(config.dataDir, 'espace-sante.sqlite'), { queryTimeLimitMs: config.queryTimeLimitMs });
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

/**
 * The services; with `config.baseUrl` set (the public FHIR base, which the tokens' audience and the
 * issuer derive from) the authorization server too. startServer sets it when BASE_URL is unset.
 */
export async function createServices(config: Config, store: ResourceStore = createStore(config), log: Logger = createLogger(config.logLevel)): Promise<AppServices> {
  await store.init({ unique: UNIQUE_IDENTIFIERS });
  const validator = validatorFor(config);
  const services: AppServices = {
    store,
    registry: new SearchParamRegistry(frenchSearchParameters()),
    config,
    resourceTypes: r4ResourceTypes(),
    startedAt: new Date(),
    hooks: new Hooks(log),
    validator,
    expandValueSet: (url) => {
      const e = validator.engine.terminology.expand(url);
      if (!e) throw new FhirError(400, 'not-supported', `The value set ${url} is not known to this server`);
      const missing = [...e.incomplete.entries()].map(([system, why]) => `${system}: ${why}`);
      if (e.unknownPart) missing.push(e.unknownPart);
      if (missing.length) throw new FhirError(400, 'not-supported', `The value set ${url} cannot be expanded completely here (${missing.join('; ')}), so :in/:not-in cannot be answered exactly`);
      return [...e.codes].flatMap(([system, codes]) => [...codes].map((code) => ({ system, code })));
    },
    subsumption: (system, code, direction) => {
      const codes = validator.engine.terminology.hierarchy(system, code, direction);
      if (typeof codes === 'string') throw new FhirError(400, 'not-supported', `:${direction} cannot be answered exactly: ${codes}`);
      return codes;
    },
  };
  await startJobs(services, log);
  if (config.baseUrl) {
    services.auth = await createAuth({ config, store, log });
    const e = services.auth.endpoints;
    services.oauthUris = { authorize: e.authorize, token: e.token, introspect: e.introspect, revoke: e.revoke, register: e.register, manage: e.manage };
  }
  return services;
}

export interface RunningServer {
  server: http.Server;
  services: AppServices;
  url: string;
  /** Stops accepting connections, lets in-flight requests finish (up to the grace period), closes the store. */
  stop(): Promise<void>;
}

/**
 * The job runner of the services and the kinds of job it runs: the $reindex jobs (the search
 * parameters a completed one made searchable are searchable again), and what was left running goes on.
 */
export async function startJobs(services: AppServices, log?: Logger): Promise<void> {
  services.jobs = new JobRunner(services.store, log);
  services.reindexer = new Reindexer({ store: services.store, registry: services.registry, resourceTypes: services.resourceTypes, baseUrl: services.config.baseUrl }, services.jobs);
  await services.reindexer.restore();
  await services.jobs.resume();
}

/**
 * A request Node's HTTP parser refuses (a raw non-ASCII character in the URL, a malformed header)
 * never reaches Express: it gets an OperationOutcome that says what to do, not an empty 400.
 */
function answerUnparsable(err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable || (socket as { _httpMessage?: unknown })._httpMessage) {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const diagnostics = tooLarge
    ? 'The request headers are too large'
    : err.code === 'HPE_INVALID_CHARACTER' || err.code === 'HPE_INVALID_URL'
      ? 'The request line holds a character that HTTP does not allow there: characters outside ASCII in a URL must be percent-encoded (Hélène is H%C3%A9l%C3%A8ne)'
      : 'The request is not valid HTTP/1.1';
  const body = JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: tooLarge ? 'too-costly' : 'structure', diagnostics }] });
  socket.end(`HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\nContent-Type: application/fhir+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`);
}

export async function startServer(config: Config, log: Logger, store?: ResourceStore): Promise<RunningServer> {
  // listen first: without BASE_URL, the public base (the tokens' audience) is this port on localhost
  const server = http.createServer();
  server.keepAliveTimeout = 5000;
  server.on('clientError', answerUnparsable);
  const starting = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(503, { 'Retry-After': '1', 'Content-Type': 'application/fhir+json' });
    res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient', diagnostics: 'The server is starting' }] }));
  };
  server.on('request', starting);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = !config.host || config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  config = { ...config, baseUrl: config.baseUrl ?? `http://${host}:${port}/fhir` };
  let services: AppServices;
  try {
    services = await createServices(config, store, log);
  } catch (e) {
    server.close();
    throw e;
  }
  server.on('request', createApp(services, log));
  server.off('request', starting);
  const url = config.baseUrl!;
  // the server state whose time has passed (codes, sessions, one-time codes, launches, finished jobs)
  services.jobs!.every('purge-expired-state', config.statePurgeInterval * 1000, async () => {
    const n = await services.store.purgeExpiredState();
    if (n) log.debug({ purged: n }, 'expired server state deleted');
  });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
      await closed;
      clearTimeout(timer);
      await services.jobs?.stop();
      await services.store.close();
    })());
  return { server, services, url, stop };
}
