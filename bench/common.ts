/** What the benchmark scripts share: settings from the environment, output, the server's environment. */

/** A whole number from the environment, at least `min`. */
export function intEnv(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

export const log = (line = '') => process.stdout.write(`${line}\n`);
export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The line the server prints once it listens. */
export const SERVER_READY = /FHIR R4 at (http:\/\/\S+?)\/fhir\b/;

/**
 * The environment of a server under measurement: any free loopback port, warnings only, a data
 * directory of its own (unless `extra` names one), tokens that outlive the run; MongoDB only when
 * `extra` asks for it.
 */
export function serverEnv(dataDir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ACCESS_TOKEN_TTL: '86400', DATA_DIR: dataDir, ...extra };
  if (!extra.MONGODB_URI) delete env.MONGODB_URI;
  return env;
}

/** The URI with another database name (credentials keep authenticating against their own database). */
export function withDatabase(uri: string, db: string): string {
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(?:\/([^?]*))?(\?.*)?$/.exec(uri);
  if (!m) throw new Error('MONGODB_URI is not a mongodb:// or mongodb+srv:// URI');
  let query = m[3] ?? '';
  if (m[1].includes('@') && !/[?&]authSource=/.test(query)) query += `${query ? '&' : '?'}authSource=${m[2] || 'admin'}`;
  return `${m[1]}/${db}${query}`;
}
