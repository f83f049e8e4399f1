import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { loadConfig, type Config } from '../../src/config';
import { createServices } from '../../src/server';
import { SqliteStore } from '../../src/store/sqlite/store';
import { MongoStore } from '../../src/store/mongo/store';
import type { ResourceStore } from '../../src/store/types';
import type { AppServices } from '../../src/server';

export interface Engine {
  name: 'sqlite' | 'mongodb';
  /** whether its stores have multi-document transactions (SQLite: always; MongoDB: a replica set or a sharded cluster) */
  transactions: boolean;
  /** a fresh, empty store */
  create(): ResourceStore;
  /** removes what create() made */
  cleanup(): Promise<void>;
}

const mongoUri = process.env.MONGODB_URI;
let warned = false;

/** A database of its own for each store a test makes, on the server of MONGODB_URI. */
function mongoDbUri(base: string, name: string): string {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Whether MONGODB_URI's deployment has transactions, as test/global-setup.ts found once for the run. */
function mongoTransactions(): boolean {
  const found = process.env.MONGODB_TRANSACTIONS;
  if (found !== '1' && found !== '0') throw new Error('MONGODB_TRANSACTIONS is not set: run jest with jest.config.js, whose globalSetup asks the MongoDB of MONGODB_URI');
  return found === '1';
}

/** The engines the suites run on: SQLite always, MongoDB whenever MONGODB_URI is set. */
export function engines(): Engine[] {
  const list: Engine[] = [];
  const dirs: string[] = [];
  list.push({
    name: 'sqlite',
    transactions: true,
    create() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-test-'));
      dirs.push(dir);
      return new SqliteStore(path.join(dir, 'test.sqlite'));
    },
    async cleanup() {
      for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    },
  });
  if (mongoUri) {
    const dbs: string[] = [];
    list.push({
      name: 'mongodb',
      transactions: mongoTransactions(),
      create() {
        const name = `esf_test_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
        dbs.push(name);
        return new MongoStore(mongoDbUri(mongoUri, name));
      },
      async cleanup() {
        const client = await MongoClient.connect(mongoUri);
        try {
          for (const name of dbs.splice(0)) await client.db(name).dropDatabase();
        } finally {
          await client.close();
        }
      },
    });
  } else if (!warned) {
    warned = true;
    // Visible in every run without MongoDB, so nobody mistakes a SQLite-only run for a full one.
    console.warn('MONGODB_URI is not set: the MongoDB engine is SKIPPED; only the SQLite engine is tested.');
  }
  return list;
}

/**
 * The suites run as users get the server: writes must meet the French profile required for their type
 * (REQUIRED_PROFILES=fr, the default), so their data is French (test/helpers/french.ts).
 * TEST_REQUIRED_PROFILES=none runs them on base R4 and meta.profile only.
 */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({ REQUIRED_PROFILES: process.env.TEST_REQUIRED_PROFILES ?? 'fr' }), logLevel: 'silent', baseUrl: 'http://fhir.test/fhir', accessTokenTtl: 3600, ...overrides };
}

export async function servicesFor(engine: Engine, overrides: Partial<Config> = {}): Promise<AppServices> {
  return createServices(testConfig(overrides), engine.create());
}

/** `test`, or, when `run` is false, a test jest reports as skipped with `reason` in its name. */
function testIf(run: boolean, reason: string) {
  return (name: string, fn: jest.ProvidesCallback, timeout?: number) => (run ? test(name, fn, timeout) : test.skip(`${name} [SKIPPED: ${reason}]`, fn, timeout));
}

/** A test of what needs multi-document transactions: skipped, and reported so, on a MongoDB without them (FerretDB, a standalone mongod). */
export const withTransactions = (engine: Engine) => testIf(engine.transactions, `no multi-document transactions on this ${engine.name} deployment`);

/** A test of what a deployment without multi-document transactions does instead: skipped where there are transactions. */
export const withoutTransactions = (engine: Engine) => testIf(!engine.transactions, `the ${engine.name} engine has multi-document transactions here`);
