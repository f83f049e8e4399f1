import type Database from 'better-sqlite3';
import { privateDatabaseFile } from '../../private-files';
import type { IndexEntries } from '../../search/extract';
import type { SearchPlan } from '../../search/plan';
import { transactionView } from '../common/transaction-view';
import type { HistoryQuery, Mutator, Page, ResourceStore, StateOptions, StoredVersion, UniqueKeys, WriteResult } from '../types';
import { Checkpoints } from './checkpoints';
import { openDatabase, prepareStatements, statementCache, storageError } from './connection';
import { SqliteReads } from './reads';
import { migrate } from './schema';
import { SqliteState } from './state';
import { StatementTimeLimit } from './time-limit';
import { SqliteWrites } from './writes';

/**
 * The embedded engine: one SQLite file, WAL, real transactions. better-sqlite3 is synchronous: the
 * reads, writes and state of this folder run on the one connection, and this class decides when:
 * writes arriving together share one commit, and a transaction holds every other caller off.
 */
export class SqliteStore implements ResourceStore {
  readonly engine = 'sqlite' as const;
  readonly supportsTransactions = true;
  readonly location: string;
  private db!: Database.Database;
  private reads!: SqliteReads;
  private writes!: SqliteWrites;
  private state!: SqliteState;
  private checkpoints?: Checkpoints;
  private readonly limit: StatementTimeLimit;
  /** Set while a transaction holds the connection: every other caller waits for it. */
  private gate: Promise<void> | null = null;
  /** Writes waiting for the next group commit. */
  private pending: { type: string; id: string; mutate: Mutator; resolve: (r: WriteResult) => void; reject: (e: unknown) => void }[] = [];
  private flushScheduled = false;

  constructor(file: string, options: { queryTimeLimitMs?: number } = {}) {
    this.location = file;
    this.limit = new StatementTimeLimit(options.queryTimeLimitMs ?? 1000);
  }

  /** Opens the file, brings its schema to the last migration (schema.ts) and holds the unique keys of what it stores. */
  async init(options: { unique?: readonly UniqueKeys[] } = {}): Promise<void> {
    if (this.location !== ':memory:') privateDatabaseFile(this.location);
    this.db = openDatabase(this.location);
    this.checkpoints = new Checkpoints(this.db, this.location);
    migrate(this.db);
    this.limit.install(this.db);
    const sql = statementCache(this.db);
    const stmts = prepareStatements(this.db);
    this.reads = new SqliteReads(sql, stmts, this.limit);
    this.writes = new SqliteWrites(this.db, sql, stmts, options.unique ?? []);
    this.state = new SqliteState(this.db, sql);
    this.writes.holdUniqueKeys();
  }

  async close(): Promise<void> {
    while (this.gate || this.pending.length) {
      await this.ready();
      await this.flush();
    }
    await this.checkpoints?.stop();
    if (this.db?.open) this.db.close();
  }

  private async ready(): Promise<void> {
    while (this.gate) await this.gate;
  }

  async read(type: string, id: string) {
    await this.ready();
    return this.reads.read(type, id);
  }

  async vread(type: string, id: string, versionId: number) {
    await this.ready();
    return this.reads.vread(type, id, versionId);
  }

  /**
   * Writes arriving together share one commit (group commit): each runs in its own savepoint, so
   * one that fails rolls back alone, and each caller is answered only once the commit is done.
   */
  write(type: string, id: string, mutate: Mutator): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ type, id, mutate, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    await this.ready();
    const batch = this.pending.splice(0);
    if (batch.length === 0) return;
    const results: ({ ok: true; value: WriteResult } | { ok: false; error: unknown })[] = [];
    try {
      this.db.transaction(() => {
        for (const w of batch) {
          try {
            results.push({ ok: true, value: this.writes.write(w.type, w.id, w.mutate) });
          } catch (error) {
            results.push({ ok: false, error });
          }
        }
      })();
    } catch (error) {
      for (const w of batch) w.reject(storageError(error));
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i];
      if (r.ok) w.resolve(r.value);
      else w.reject(storageError(r.error));
    });
  }

  async history(q: HistoryQuery): Promise<Page<StoredVersion>> {
    await this.ready();
    return this.reads.history(q);
  }

  async search(plan: SearchPlan): Promise<Page<StoredVersion>> {
    await this.ready();
    return this.reads.search(plan);
  }

  async readMany(refs: { type: string; id: string }[]): Promise<StoredVersion[]> {
    await this.ready();
    return this.reads.readMany(refs);
  }

  async referencesOf(type: string, ids: string[], params: string[]): Promise<string[]> {
    await this.ready();
    return this.reads.referencesOf(type, ids, params);
  }

  async referencing(sources: { type: string; params: string[] }[], targets: string[], limit: number): Promise<StoredVersion[]> {
    await this.ready();
    return this.reads.referencing(sources, targets, limit);
  }

  async reindex(type: string, id: string, versionId: number, index: IndexEntries): Promise<boolean> {
    await this.ready();
    return this.writes.reindex(type, id, versionId, index);
  }

  async getState<T>(key: string): Promise<T | undefined> {
    await this.ready();
    return this.state.get<T>(key);
  }

  async setState(key: string, value: unknown, options?: StateOptions): Promise<void> {
    await this.ready();
    this.state.set(key, value, options);
  }

  async claimState(key: string, value: unknown, options?: StateOptions): Promise<boolean> {
    await this.ready();
    return this.state.claim(key, value, options);
  }

  async releaseState(key: string, value: unknown): Promise<boolean> {
    await this.ready();
    return this.state.release(key, value);
  }

  async listState<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    await this.ready();
    return this.state.list<T>(prefix);
  }

  async deleteStateGroup(group: string): Promise<number> {
    await this.ready();
    return this.state.deleteGroup(group);
  }

  async purgeExpiredState(): Promise<number> {
    await this.ready();
    return this.state.purgeExpired();
  }

  /** A transaction Bundle is one SQL transaction; while it runs, every other caller waits for it. */
  async transaction<T>(fn: (tx: ResourceStore) => Promise<T>): Promise<T> {
    await this.ready();
    let release!: () => void;
    this.gate = new Promise<void>((resolve) => (release = resolve));
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = await fn(this.ungated());
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw storageError(err);
    } finally {
      this.gate = null;
      release();
    }
  }

  /** The view a transaction works through: the same engine without waiting on its own gate. */
  private ungated(): ResourceStore {
    return transactionView(this, {
      read: async (t, i) => this.reads.read(t, i),
      vread: async (t, i, v) => this.reads.vread(t, i, v),
      write: async (t, i, m) => this.writes.write(t, i, m),
      history: async (q) => this.reads.history(q),
      search: async (p) => this.reads.search(p),
      readMany: async (refs) => this.reads.readMany(refs),
      referencesOf: async (t, ids, p) => this.reads.referencesOf(t, ids, p),
      referencing: async (sources, targets, limit) => this.reads.referencing(sources, targets, limit),
      reindex: async (t, i, v, index) => this.writes.reindex(t, i, v, index),
      transaction: async (f) => f(this.ungated()),
    });
  }
}
