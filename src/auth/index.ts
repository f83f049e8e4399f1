import express from 'express';
import type { JWK } from 'jose';
import type { Config } from '../config';
import type { Logger } from '../log';
import { FileMessageSender, type MessageSender } from '../messaging';
import type { ResourceStore } from '../store/types';
import { adminRoutes } from './admin';
import { AppOrigins } from './cors';
import { endpointsOf, smartConfiguration, type Endpoints } from './discovery';
import { errorAnswers } from './errors';
import { interactionRoutes } from './interaction';
import { loadSecrets, publicJwk, type Secrets } from './keys';
import { launchRoutes, Launches } from './launch';
import { protocolRoutes } from './protocol';
import { createProvider, type Provider } from './provider';
import { AccountRegistry, ClientRegistry } from './registry';
import { tokenVerifier, type Verify } from './verify';

/** The SMART authorization server (src/auth/README.md), composed of the modules of this folder. */
export interface Auth {
  issuer: string;
  trustProxy: boolean;
  fhirBase: string;
  provider: Provider;
  clients: ClientRegistry;
  accounts: AccountRegistry;
  /** Express routes under /auth: the provider, the interaction pages, the launch and admin APIs */
  router: express.Router;
  /** The caller of a FHIR request from its Authorization header; throws 401/403 FhirErrors. */
  verify: Verify;
  smartConfiguration(): Record<string, unknown>;
  /** Whether a browser page from `origin` may call the FHIR API: it is the origin of a redirect URI of a referenced app. */
  allowsOrigin(origin: string): Promise<boolean>;
  endpoints: Endpoints;
  publicJwks: { keys: JWK[] };
}

export interface AuthOptions {
  config: Config;
  store: ResourceStore;
  log: Logger;
  /** defaults to the file sender of the data directory */
  sender?: MessageSender;
  secrets?: Secrets;
}

/** `https://h/x/fhir` → `https://h/x/auth`: the authorization server lives beside the FHIR base. */
export function issuerFor(fhirBase: string): string {
  return `${fhirBase.replace(/\/fhir$/, '')}/auth`;
}

export async function createAuth(opts: AuthOptions): Promise<Auth> {
  const { config, store, log } = opts;
  if (!config.baseUrl) throw new Error('Authorization needs the public FHIR base (BASE_URL)');
  const fhirBase = config.baseUrl;
  const issuer = issuerFor(fhirBase);
  const authPath = new URL(issuer).pathname;
  const secrets = opts.secrets ?? (await loadSecrets(config.dataDir, { signingKeys: config.signingKeys, authSecret: config.authSecret }));
  const sender = opts.sender ?? new FileMessageSender(config.dataDir);
  const clients = new ClientRegistry(store);
  const accounts = new AccountRegistry(store);
  const launches = new Launches(store);
  const publicJwks = { keys: secrets.signingKeys.map(publicJwk) };
  const endpoints = endpointsOf(issuer);

  const provider = createProvider({ config, store, log, issuer, fhirBase, authPath, secrets, clients, accounts, launches });
  const verify = tokenVerifier({ issuer, fhirBase, publicJwks, clients, grantExists: async (gid) => Boolean(await provider.Grant.find(gid)) });

  // the order matters: the provider's own endpoints take whatever the routes before them leave
  const router = express.Router();
  interactionRoutes(router, { config, store, log, provider, clients, accounts, launches, sender, secrets, issuer, authPath });
  launchRoutes(router, { launches, store, verify });
  adminRoutes(router, { clients, verify });
  protocolRoutes(router, { provider, verify });
  router.use(errorAnswers(log));

  const origins = new AppOrigins(clients);
  return {
    issuer,
    trustProxy: config.trustProxy,
    fhirBase,
    provider,
    clients,
    accounts,
    router,
    verify,
    smartConfiguration: () => smartConfiguration(issuer, endpoints),
    allowsOrigin: (origin) => origins.has(origin),
    endpoints,
    publicJwks,
  };
}
