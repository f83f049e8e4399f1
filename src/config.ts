import path from 'node:path';
import { repoRoot } from './validation/packages';

/** Every setting the server reads from its environment, with its default. */
export interface Config {
  /** TCP port of the HTTP server (PORT, default 8080). */
  port: number;
  /** Interface to listen on (HOST, default all interfaces). */
  host: string | undefined;
  /** Directory for the embedded store and server-owned files (DATA_DIR, default ./data). */
  dataDir: string;
  /** MongoDB connection string; when set the MongoDB engine is used (MONGODB_URI). */
  mongodbUri: string | undefined;
  /** Public FHIR base URL used in links and Location headers (BASE_URL); derived from the request when unset. */
  baseUrl: string | undefined;
  /** Largest accepted request body in bytes (BODY_LIMIT, default 20 MB). */
  bodyLimit: number;
  /** Default and maximum page sizes of searches and histories (DEFAULT_COUNT 20, MAX_COUNT 1000). */
  defaultCount: number;
  maxCount: number;
  /** Most resources _include/_revinclude add to one page of results (MAX_INCLUDES, default 1000); more is reported, not sent. */
  maxIncludes: number;
  /** Most entries in one batch or transaction Bundle (MAX_BUNDLE_ENTRIES, default 1000; 413 beyond). */
  maxBundleEntries: number;
  /** Largest resource a client may write, in bytes of JSON (MAX_RESOURCE_BYTES, default 2 MB; Binary excepted, bounded by BODY_LIMIT; 413 beyond). */
  maxResourceBytes: number;
  /** Most items in one JSON array of a request body (MAX_ARRAY_ITEMS, default 10000; Bundle.entry excepted, see MAX_BUNDLE_ENTRIES; 413 beyond). */
  maxArrayItems: number;
  /** Time budget of one request in milliseconds (REQUEST_TIME_LIMIT in seconds, default 30): a search or a Bundle still running then is stopped (503). */
  requestTimeLimitMs: number;
  /** Longest a single query of the embedded store may run, in milliseconds (QUERY_TIME_LIMIT, default 1000): SQLite runs on the event loop's thread, so a longer one is stopped (503) rather than let it hold every other request. */
  queryTimeLimitMs: number;
  /** pino log level (LOG_LEVEL, default info; "silent" disables logs). */
  logLevel: string;
  /** Milliseconds SIGTERM waits for in-flight requests before closing (SHUTDOWN_GRACE_MS, default 10000). */
  shutdownGraceMs: number;
  /**
   * Profiles the server requires per resource type on top of meta.profile (REQUIRED_PROFILES):
   * `fr` (default: the French table in src/validation/required-profiles.ts) or `none` (base R4 and
   * meta.profile only, an unknown meta.profile being then a warning, as the HL7 validator reports
   * it, instead of an error). Base R4 validation is always on.
   */
  requiredProfiles: 'fr' | 'none';
  /**
   * Where the compiled validation definitions are cached (VALIDATION_CACHE_DIR), one file per
   * fingerprint of the packages; default node_modules/.cache/espace-sante-fhir, shared by every data
   * directory and filled by `npm install` (the prepare script).
   */
  validationCacheDir: string;
  /** Lifetime of access tokens in seconds (ACCESS_TOKEN_TTL, default 300). */
  accessTokenTtl: number;
  /** Lifetime of offline refresh tokens and of grants in seconds (REFRESH_TOKEN_TTL, default 30 days). */
  refreshTokenTtl: number;
  /** JWT signing keys as a JWKS with private keys (SIGNING_KEYS); default: DATA_DIR/auth/signing-keys.json, created on first start. */
  signingKeys: string | undefined;
  /** Key of the authorization server's cookies and CSRF tokens (AUTH_SECRET); default: DATA_DIR/auth/secret.json, created on first start. */
  authSecret: string | undefined;
  /** How often expired authorization codes, sessions, one-time codes and launches are deleted, in seconds (STATE_PURGE_INTERVAL, default 600). */
  statePurgeInterval: number;
  /**
   * Hosts of client JWKS URLs that may resolve to private or loopback addresses (JWKS_PRIVATE_HOSTS,
   * comma-separated, e.g. a hospital's internal network); every other JWKS URL that does is refused
   * (oidc-provider's protection against server-side request forgery).
   */
  jwksPrivateHosts: string[];
  /** Behind a TLS-terminating proxy: trust X-Forwarded-* (TRUST_PROXY=1). */
  trustProxy: boolean;
  /**
   * Upstream OpenID Connect provider of professionals (Pro Santé Connect): PRO_OIDC_ISSUER,
   * PRO_OIDC_CLIENT_ID, PRO_OIDC_CLIENT_SECRET, PRO_OIDC_SCOPE (default "openid scope_all"),
   * PRO_OIDC_RPPS_CLAIM (default SubjectNameID). Unset: professionals cannot sign in interactively.
   */
  proOidc?: { issuer: string; clientId: string; clientSecret: string; scope: string; rppsClaim: string };
}

function intFrom(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${value}"`);
  return n;
}

/** Sizes like "20mb", "512kb" or a byte count. */
function sizeFrom(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const m = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(value.trim());
  if (!m) throw new Error(`${name} must be a size such as 20mb, got "${value}"`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Number(m[1]) * unit;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const baseUrl = env.BASE_URL?.replace(/\/+$/, '') || undefined;
  const requiredProfiles = env.REQUIRED_PROFILES || 'fr';
  if (requiredProfiles !== 'fr' && requiredProfiles !== 'none') throw new Error(`REQUIRED_PROFILES must be fr or none, got "${requiredProfiles}"`);
  const dataDir = path.resolve(env.DATA_DIR || './data');
  return {
    port: intFrom('PORT', env.PORT, 8080),
    host: env.HOST || undefined,
    dataDir,
    mongodbUri: env.MONGODB_URI || undefined,
    baseUrl,
    bodyLimit: sizeFrom('BODY_LIMIT', env.BODY_LIMIT, 20 * 1024 * 1024),
    defaultCount: intFrom('DEFAULT_COUNT', env.DEFAULT_COUNT, 20),
    maxCount: intFrom('MAX_COUNT', env.MAX_COUNT, 1000),
    maxIncludes: intFrom('MAX_INCLUDES', env.MAX_INCLUDES, 1000),
    maxBundleEntries: intFrom('MAX_BUNDLE_ENTRIES', env.MAX_BUNDLE_ENTRIES, 1000) || 1000,
    maxResourceBytes: sizeFrom('MAX_RESOURCE_BYTES', env.MAX_RESOURCE_BYTES, 2 * 1024 * 1024),
    maxArrayItems: intFrom('MAX_ARRAY_ITEMS', env.MAX_ARRAY_ITEMS, 10000) || 10000,
    requestTimeLimitMs: (intFrom('REQUEST_TIME_LIMIT', env.REQUEST_TIME_LIMIT, 30) || 30) * 1000,
    queryTimeLimitMs: intFrom('QUERY_TIME_LIMIT', env.QUERY_TIME_LIMIT, 1000) || 1000,
    logLevel: env.LOG_LEVEL || 'info',
    shutdownGraceMs: intFrom('SHUTDOWN_GRACE_MS', env.SHUTDOWN_GRACE_MS, 10000),
    requiredProfiles,
    validationCacheDir: path.resolve(env.VALIDATION_CACHE_DIR || path.join(repoRoot(), 'node_modules', '.cache', 'espace-sante-fhir')),
    accessTokenTtl: intFrom('ACCESS_TOKEN_TTL', env.ACCESS_TOKEN_TTL, 300) || 300,
    refreshTokenTtl: intFrom('REFRESH_TOKEN_TTL', env.REFRESH_TOKEN_TTL, 30 * 24 * 3600) || 30 * 24 * 3600,
    signingKeys: env.SIGNING_KEYS || undefined,
    authSecret: env.AUTH_SECRET || undefined,
    statePurgeInterval: intFrom('STATE_PURGE_INTERVAL', env.STATE_PURGE_INTERVAL, 600) || 600,
    jwksPrivateHosts: (env.JWKS_PRIVATE_HOSTS ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean),
    trustProxy: env.TRUST_PROXY === '1' || env.TRUST_PROXY === 'true',
    proOidc: env.PRO_OIDC_ISSUER
      ? {
          issuer: env.PRO_OIDC_ISSUER,
          clientId: env.PRO_OIDC_CLIENT_ID ?? '',
          clientSecret: env.PRO_OIDC_CLIENT_SECRET ?? '',
          scope: env.PRO_OIDC_SCOPE || 'openid scope_all',
          rppsClaim: env.PRO_OIDC_RPPS_CLAIM || 'SubjectNameID',
        }
      : undefined,
  };
}
