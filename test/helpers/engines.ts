import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { loadConfig, type Config } from '../../src/config';
import { createServices } from '../../src/server';
import { SqliteStore } from '../../src/store/sqlite';
import { MongoStore } from '../../src/store/mongo';
import type { ResourceStore } from '../../src/store/types';
import type { AppServices } from '../../src/server';

export interface Engine {
  name: 'sqlite' | 'mongodb';
  /**
   * Whether its stores run multi-document transactions, known when the suite defines its tests (the
   * global setup asks the MongoDB of MONGODB_URI): a test the engine cannot run is then defined
   * with it.skip, and reported as skipped, instead of passing without doing anything.
   */
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
      get transactions(): boolean {
        const said = process.env.MONGODB_TRANSACTIONS;
        if (said !== '1' && said !== '0') throw new Error('MONGODB_TRANSACTIONS is neither 1 nor 0: jest runs test/helpers/global-setup.ts to set it (or set it yourself)');
        return said === '1';
      },
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
 * The generic REST suites post minimal resources (plain Patients, Observations with a code text):
 * they run with REQUIRED_PROFILES=none (base R4 validation stays on); test/validation enforces `fr`.
 */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({ REQUIRED_PROFILES: 'none' }), logLevel: 'silent', baseUrl: 'http://fhir.test/fhir', accessTokenTtl: 3600, ...overrides };
}

export async function servicesFor(engine: Engine, overrides: Partial<Config> = {}): Promise<AppServices> {
  return createServices(testConfig(overrides), engine.create());
}

/**
 * `test` where the engine runs multi-document transactions; elsewhere the test is defined skipped,
 * its title saying why, so that jest reports it skipped rather than passed.
 */
export function testWithTransactions(engine: Engine): (title: string, fn: jest.ProvidesCallback, timeout?: number) => void {
  if (engine.transactions) return test;
  return (title, fn, timeout) => test.skip(`${title} (skipped: this MongoDB has no multi-document transactions)`, fn, timeout);
}

/**
 * Whether the store has multi-document transactions; when it has none (FerretDB, a standalone
 * mongod), says which test, or part of one, is skipped for that reason.
 */
export function hasTransactions(store: ResourceStore, engine: string, skipped: string): boolean {
  if (!store.supportsTransactions) console.warn(`[${engine}] this server has no multi-document transactions: ${skipped} SKIPPED`);
  return store.supportsTransactions;
}
