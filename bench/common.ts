/** What the benchmark scripts share: settings from the environment, output, the server's environment, a throwaway MongoDB database. */
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { onCleanup } from './child';

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

/** A fresh database on a MongoDB deployment (or FerretDB), and what the deployment says of itself. */
export interface ThrowawayDatabase {
  name: string;
  /** the deployment's URI with this database */
  uri: string;
  build: { version?: string; ferretdbVersion?: string };
  hello: { setName?: string; msg?: string };
}

/**
 * Runs `fn` against a fresh database on the MongoDB at `uri`, dropped afterwards, also when the
 * benchmark is interrupted. A failure is `fn`'s caller's to report.
 */
export async function withThrowawayDatabase<T>(uri: string, prefix: string, fn: (db: ThrowawayDatabase) => Promise<T>): Promise<T> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  let conn: mongoose.Connection | undefined;
  const drop = async () => {
    if (!conn) return;
    const c = conn;
    conn = undefined;
    await c.db!.dropDatabase().catch((e: Error) => log(`  could not drop the database ${name}: ${e.message}`));
    await c.close().catch(() => undefined);
  };
  const unhook = onCleanup(drop);
  try {
    const dbUri = withDatabase(uri, name);
    conn = await mongoose.createConnection(dbUri, { serverSelectionTimeoutMS: 10_000, autoCreate: false, autoIndex: false }).asPromise();
    const build = (await conn.db!.admin().command({ buildInfo: 1 })) as ThrowawayDatabase['build'];
    const hello = (await conn.db!.admin().command({ hello: 1 })) as ThrowawayDatabase['hello'];
    return await fn({ name, uri: dbUri, build, hello });
  } finally {
    await drop();
    unhook();
  }
}
