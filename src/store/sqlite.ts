import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { privateDatabaseFile } from '../private-files';
import { ESTIMATE_LIMIT, type Bound, type Condition, type IndexKind, type RangeMatch, type SearchPlan, type SortKey } from '../search/plan';
import type { IndexEntries } from '../search/extract';
import { normalizeString } from '../search/values';
import { budgetExceeded, deadline } from './budget';
import { StorageFullError, TimeBudgetError, UniqueKeyError } from './errors';
import { decodeCursor, encodeCursor } from './cursor';
import { containerOf } from './types';
import { prefixEnd, transactionView, uniqueKeysOf, type UniqueKeys, type HistoryQuery, type StateOptions, type Mutator, type Page, type ResourceStore, type StoredVersion, type WriteResult } from './types';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS history (
  seq INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  content TEXT,
  UNIQUE (type, id, version)
);
CREATE INDEX IF NOT EXISTS history_type_seq ON history (type, seq);
CREATE TABLE IF NOT EXISTS resources (
  pk INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  hseq INTEGER NOT NULL,
  container INTEGER,
  content TEXT,
  UNIQUE (type, id)
);
CREATE INDEX IF NOT EXISTS resources_type_updated ON resources (type, last_updated);
CREATE TABLE IF NOT EXISTS idx_key (pk INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (type, param, key, pk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_key_pk ON idx_key (pk, param, key);
CREATE TABLE IF NOT EXISTS idx_string (pk INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL, PRIMARY KEY (type, param, norm, exact, pk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_string_pk ON idx_string (pk, param, norm);
CREATE TABLE IF NOT EXISTS idx_range (pk INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, low REAL NOT NULL, high REAL NOT NULL, PRIMARY KEY (type, param, low, high, pk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_range_high ON idx_range (type, param, high, low, pk);
CREATE INDEX IF NOT EXISTS idx_range_pk ON idx_range (pk, param, low, high);
CREATE TABLE IF NOT EXISTS server_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER, grp TEXT);
CREATE TABLE IF NOT EXISTS unique_key (type TEXT NOT NULL, key TEXT NOT NULL, pk INTEGER NOT NULL, PRIMARY KEY (type, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS unique_key_pk ON unique_key (pk);
`;

const INDEX_TABLES: Record<IndexKind, string> = { key: 'idx_key', string: 'idx_string', range: 'idx_range' };
/** How often the checkpoint thread copies the write-ahead log back into the database file. */
const CHECKPOINT_EVERY_MS = 1000;
/** The checkpoint thread (see SqliteStore.startCheckpoints): PASSIVE checkpoints never wait for the writer. */
const CHECKPOINTER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
const run = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* busy or gone: the next round */ } };
const timer = setInterval(run, workerData.everyMs);
parentPort.on('message', () => { clearInterval(timer); run(); db.close(); process.exit(0); });
`;

/** Index rows per INSERT statement (SQLite allows 32,766 bound values per statement). */
const ROWS_PER_INSERT = 50;

/**
 * A SQL function called for every row a search examines (scopes and driving index lookups): every
 * 256 calls it checks the request's deadline and aborts the statement when it has passed, so that
 * no query holds the event loop beyond the request's time budget (better-sqlite3 is synchronous).
 */
const BUDGET = 'esf_budget';

/** SQLite's answer when the disk, or max_page_count, leaves no room: nothing was written. */
function storeError(e: unknown): unknown {
  const code = (e as { code?: string })?.code;
  if (code === 'SQLITE_FULL') return new StorageFullError('The database has no room left to write (disk full)');
  return e;
}

interface CurrentRow {
  pk: number;
  type: string;
  id: string;
  version: number;
  last_updated: number;
  deleted: number;
  content: string | null;
}
type HistoryRow = Omit<CurrentRow, 'pk'> & { seq: number };

const toVersion = (r: { type: string; id: string; version: number; last_updated: number; deleted: number; content: string | null }): StoredVersion => {
  const v: StoredVersion = { type: r.type, id: r.id, versionId: r.version, lastUpdated: r.last_updated, deleted: r.deleted === 1, json: r.content ?? undefined };
  const container = containerOf(r.id);
  if (container) v.container = container;
  return v;
};

const marks = (values: unknown[]) => values.map(() => '?').join(', ');

/** Upper bound of the strings that start with `prefix`, in SQLite's binary order. */
type Mode = 'drive' | 'probe';

/** How well a condition narrows the rows when it drives (lower is better); undefined: it cannot drive. */
function driveRank(c: Condition): number | undefined {
  switch (c.kind) {
    case 'id':
      return c.not ? undefined : 0;
    case 'key':
      if (c.not) return undefined;
      return c.param === 'identifier' || c.keys.every((k) => /^[A-Z][A-Za-z]+\/[^/]+$/.test(k)) ? 1 : 3;
    case 'has':
      return 2;
    case 'string':
      return c.mode === 'contains' ? 9 : 4;
    case 'chain':
      return 5;
    case 'range':
      return 6;
    case 'keyPrefix':
      return c.not ? undefined : 7;
    case 'any':
    case 'all': {
      const ranks = c.conditions.map(driveRank);
      return ranks.length && ranks.every((r) => r !== undefined) ? 8 : undefined;
    }
    default:
      return undefined;
  }
}

function pickDriver(conditions: Condition[]): Condition | undefined {
  let best: Condition | undefined;
  let bestRank = Infinity;
  for (const c of conditions) {
    const r = driveRank(c);
    if (r !== undefined && r < bestRank) {
      best = c;
      bestRank = r;
    }
  }
  return best;
}

/** The sort value of a resource that lacks the parameter: below every value (first ascending, last descending), as in MongoDB. */
const MISSING = { key: '', string: '', range: -1e308 };

/** Translates plan conditions into SQL over the index tables; `alias` names the resources row. */
class SqlBuilder {
  private aliases = 0;

  private bounds(match: RangeMatch, low: string, high: string, args: unknown[]): string {
    const alt = (bounds: Bound[]) =>
      bounds
        .map((b) => {
          args.push(b.value);
          return `${b.on === 'low' ? low : high} ${b.op} ?`;
        })
        .join(' AND ');
    return match.map((a) => `(${alt(a.bounds)})`).join(' OR ');
  }

  /**
   * The resources of one type that meet every condition. One condition drives the query (its index
   * lookup yields the candidate rows); every other one is probed per candidate through the
   * `(pk, param, ...)` indexes, so a broad condition (a date bound, a frequent code) never gets
   * built in full.
   */
  scope(alias: string, type: string, conditions: Condition[], args: unknown[]): string {
    const driver = pickDriver(conditions);
    // `+type`: not through the type index when an index lookup drives; the id index serves `_id`
    args.push(type);
    const parts = [`${BUDGET}(${alias}.pk)`, `${driver && driver.kind !== 'id' ? '+' : ''}${alias}.type = ?`];
    for (const c of conditions) parts.push(this.condition(alias, type, c, args, c === driver ? 'drive' : 'probe'));
    return parts.join(' AND ');
  }

  private inIndex(alias: string, table: string, type: string, param: string, test: string, args: unknown[], testArgs: unknown[], mode: Mode, not = false): string {
    if (mode === 'drive') {
      args.push(type, param, ...testArgs);
      return `${alias}.pk ${not ? 'NOT ' : ''}IN (SELECT pk FROM ${table} WHERE ${BUDGET}(pk) AND type = ? AND param = ? AND (${test}))`;
    }
    args.push(param, ...testArgs);
    return `${not ? 'NOT ' : ''}EXISTS (SELECT 1 FROM ${table} WHERE pk = ${alias}.pk AND param = ? AND (${test}))`;
  }

  condition(alias: string, type: string, c: Condition, args: unknown[], mode: Mode): string {
    switch (c.kind) {
      case 'id':
        if (c.ids.length === 0) return c.not ? '1' : '0';
        args.push(...c.ids);
        return `${alias}.id ${c.not ? 'NOT ' : ''}IN (${marks(c.ids)})`;
      case 'lastUpdated':
        return `(${this.bounds(c.match, `${alias}.last_updated`, `${alias}.last_updated`, args)})`;
      case 'key':
        if (c.keys.length === 0) return c.not ? '1' : '0';
        return this.inIndex(alias, 'idx_key', type, c.param, `key IN (${marks(c.keys)})`, args, c.keys, mode, c.not);
      case 'keyPrefix': {
        const testArgs: unknown[] = [];
        const test = c.prefixes.map((p) => (testArgs.push(p, prefixEnd(p)), '(key >= ? AND key < ?)')).join(' OR ');
        return this.inIndex(alias, 'idx_key', type, c.param, test, args, testArgs, mode, c.not);
      }
      case 'string': {
        const testArgs: unknown[] = [];
        const tests = c.values.map((v) => {
          if (c.mode === 'exact') return testArgs.push(normalizeString(v), v), '(norm = ? AND exact = ?)';
          if (c.mode === 'contains') return testArgs.push(`%${v.replace(/[\\%_]/g, '\\$&')}%`), `norm LIKE ? ESCAPE '\\'`;
          if (v === '') return '1';
          return testArgs.push(v, prefixEnd(v)), '(norm >= ? AND norm < ?)';
        });
        return this.inIndex(alias, 'idx_string', type, c.param, tests.join(' OR '), args, testArgs, mode);
      }
      case 'range': {
        const testArgs: unknown[] = [];
        const test = this.bounds(c.match, 'low', 'high', testArgs);
        return this.inIndex(alias, 'idx_range', type, c.param, test, args, testArgs, mode);
      }
      case 'missing':
        args.push(c.param);
        return `${c.missing ? 'NOT ' : ''}EXISTS (SELECT 1 FROM ${INDEX_TABLES[c.index]} WHERE pk = ${alias}.pk AND param = ?)`;
      case 'any':
        return `(${c.conditions.map((x) => this.condition(alias, type, x, args, mode)).join(' OR ') || '0'})`;
      case 'all':
        return `(${c.conditions.map((x) => this.condition(alias, type, x, args, mode)).join(' AND ') || '1'})`;
      case 'chain': {
        // the references to the target resources that meet the inner conditions
        const t = `t${++this.aliases}`;
        const head = mode === 'drive' ? `${alias}.pk IN (SELECT k.pk FROM idx_key k WHERE k.type = ? AND k.param = ?` : `EXISTS (SELECT 1 FROM idx_key k WHERE k.pk = ${alias}.pk AND k.param = ?`;
        if (mode === 'drive') args.push(type);
        args.push(c.param);
        const inner = this.scope(t, c.targetTypes[0], c.conditions, args);
        return `${head} AND k.key IN (SELECT ${t}.type || '/' || ${t}.id FROM resources ${t} WHERE ${inner} AND ${t}.deleted = 0 AND +${t}.container IS NULL))`;
      }
      case 'has': {
        // the ids this type has in the references of the source resources that meet the inner conditions
        const src = `s${++this.aliases}`;
        args.push(c.param, `${type}/*`);
        const inner = this.scope(src, c.sourceType, c.conditions, args);
        return `${alias}.id IN (SELECT substr(k.key, ${type.length + 2}) FROM resources ${src} JOIN idx_key k ON k.pk = ${src}.pk AND k.param = ? AND k.key GLOB ? WHERE ${inner} AND ${src}.deleted = 0 AND +${src}.container IS NULL)`;
      }
    }
  }

  /** The value a resource sorts by: its smallest value ascending, its largest descending. */
  sortValue(alias: string, k: SortKey, args: unknown[]): string {
    if (k.index === 'id') return `${alias}.id`;
    if (k.index === 'lastUpdated') return `${alias}.last_updated`;
    const agg = k.descending ? 'max' : 'min';
    const column = k.index === 'key' ? 'key' : k.index === 'string' ? 'norm' : k.descending ? 'high' : 'low';
    const missing = MISSING[k.index];
    args.push(k.param, missing);
    return `coalesce((SELECT ${agg}(${column}) FROM ${INDEX_TABLES[k.index]} WHERE pk = ${alias}.pk AND param = ?), ?)`;
  }
}

/** The embedded engine: one SQLite file, WAL, real transactions. better-sqlite3 is synchronous. */
export class SqliteStore implements ResourceStore {
  readonly engine = 'sqlite' as const;
  readonly supportsTransactions = true;
  readonly location: string;
  private db!: Database.Database;
  private stmts!: ReturnType<SqliteStore['prepare']>;
  /** Set while a transaction holds the connection: every other caller waits for it. */
  private gate: Promise<void> | null = null;
  /** Writes waiting for the next group commit. */
  private pending: { type: string; id: string; mutate: Mutator; resolve: (r: WriteResult) => void; reject: (e: unknown) => void }[] = [];
  private flushScheduled = false;
  /** Prepared statements of generated SQL, by text (searches repeat the same shapes). */
  private readonly statements = new Map<string, Database.Statement>();

  private sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      if (this.statements.size >= 500) this.statements.delete(this.statements.keys().next().value!);
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  /** The keys kept unique (init's option). */
  private unique: readonly UniqueKeys[] = [];
  /** The thread that checkpoints the write-ahead log. */
  private checkpointer?: Worker;
  /** When the statement running now must stop (see BUDGET): the request's deadline, or sooner the limit of one statement. */
  private statementDeadline = Infinity;
  private readonly queryTimeLimitMs: number;

  constructor(file: string, options: { queryTimeLimitMs?: number } = {}) {
    this.location = file;
    this.queryTimeLimitMs = options.queryTimeLimitMs ?? 1000;
  }

  /** Runs a read statement under the time limits: it holds the event loop for at most queryTimeLimitMs. */
  private timed<T>(run: () => T): T {
    this.statementDeadline = Math.min(deadline(), Date.now() + this.queryTimeLimitMs);
    try {
      return run();
    } finally {
      this.statementDeadline = Infinity;
    }
  }

  private statementOverrun(): TimeBudgetError {
    if (this.statementDeadline < deadline()) return new TimeBudgetError(`The query ran longer than one query may (${this.queryTimeLimitMs} ms, QUERY_TIME_LIMIT)`);
    return budgetExceeded();
  }

  async init(options: { unique?: readonly UniqueKeys[] } = {}): Promise<void> {
    this.unique = options.unique ?? [];
    if (this.location !== ':memory:') privateDatabaseFile(this.location);
    this.db = new Database(this.location);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.startCheckpoints();
    this.db.exec(SCHEMA);
    // data files from before contained resources were indexed
    const columns = (this.db.pragma('table_info(resources)') as { name: string }[]).map((c) => c.name);
    if (!columns.includes('container')) this.db.exec('ALTER TABLE resources ADD COLUMN container INTEGER; ALTER TABLE resources ADD COLUMN content TEXT;');
    // contained resources only (every other row has none): a full index cost every write a B-tree insert
    const containerIndex = this.db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'resources_container'").get() as { sql: string } | undefined;
    if (containerIndex && !/WHERE/i.test(containerIndex.sql)) this.db.exec('DROP INDEX resources_container');
    this.db.exec('CREATE INDEX IF NOT EXISTS resources_container ON resources (container) WHERE container IS NOT NULL');
    // data files from before server state could expire or be grouped
    const stateColumns = (this.db.pragma('table_info(server_state)') as { name: string }[]).map((c) => c.name);
    if (!stateColumns.includes('grp')) this.db.exec('ALTER TABLE server_state ADD COLUMN expires_at INTEGER; ALTER TABLE server_state ADD COLUMN grp TEXT;');
    this.db.exec('CREATE INDEX IF NOT EXISTS server_state_expiry ON server_state (expires_at) WHERE expires_at IS NOT NULL');
    this.db.exec('CREATE INDEX IF NOT EXISTS server_state_group ON server_state (grp) WHERE grp IS NOT NULL');
    let ticks = 0;
    this.db.function(BUDGET, { deterministic: false }, (_row: unknown) => {
      if ((++ticks & 255) === 0 && Date.now() > this.statementDeadline) throw this.statementOverrun();
      return 1;
    });
    this.stmts = this.prepare();
    this.holdUniqueKeys();
  }

  private prepare() {
    const db = this.db;
    return {
      current: db.prepare<[string, string], CurrentRow>(
        `SELECT r.pk, r.type, r.id, r.version, r.last_updated, r.deleted, h.content FROM resources r JOIN history h ON h.seq = r.hseq WHERE r.type = ? AND r.id = ?`,
      ),
      version: db.prepare<[string, string, number], HistoryRow>(`SELECT * FROM history WHERE type = ? AND id = ? AND version = ?`),
      insertHistory: db.prepare(`INSERT INTO history (type, id, version, last_updated, deleted, content) VALUES (?, ?, ?, ?, ?, ?)`),
      insertCurrent: db.prepare(`INSERT INTO resources (type, id, version, last_updated, deleted, hseq) VALUES (?, ?, ?, ?, ?, ?)`),
      updateCurrent: db.prepare(`UPDATE resources SET version = ?, last_updated = ?, deleted = ?, hseq = ? WHERE pk = ?`),
      clear: Object.values(INDEX_TABLES).map((t) => db.prepare(`DELETE FROM ${t} WHERE pk = ?`)),
      containedOf: db.prepare<[number], { pk: number }>(`SELECT pk FROM resources WHERE container = ?`),
      deleteRow: db.prepare(`DELETE FROM resources WHERE pk = ?`),
      insertContained: db.prepare(`INSERT INTO resources (type, id, version, last_updated, deleted, hseq, container, content) VALUES (?, ?, ?, ?, 0, ?, ?, ?)`),
      addKey: db.prepare(`INSERT INTO idx_key (pk, type, param, key) VALUES (?, ?, ?, ?)`),
      addString: db.prepare(`INSERT INTO idx_string (pk, type, param, norm, exact) VALUES (?, ?, ?, ?, ?)`),
      addRange: db.prepare(`INSERT INTO idx_range (pk, type, param, low, high) VALUES (?, ?, ?, ?, ?)`),
      clearUnique: db.prepare(`DELETE FROM unique_key WHERE pk = ?`),
      addUnique: db.prepare(`INSERT INTO unique_key (type, key, pk) VALUES (?, ?, ?)`),
    };
  }

  async close(): Promise<void> {
    while (this.gate || this.pending.length) {
      await this.ready();
      await this.flush();
    }
    await this.stopCheckpoints();
    if (this.db?.open) this.db.close();
  }

  /**
   * WAL checkpoints (copying the log back into the database file, and syncing it: hundreds of
   * milliseconds when the log is large) run in a worker thread on a connection of its own, every
   * CHECKPOINT_EVERY_MS, so that they never hold the event loop; the write connection then never
   * checkpoints by itself. An in-memory database, or a thread that cannot start, checkpoints as
   * SQLite does by default.
   */
  private startCheckpoints() {
    if (this.location === ':memory:') return;
    try {
      this.checkpointer = new Worker(CHECKPOINTER, { eval: true, workerData: { module: require.resolve('better-sqlite3'), file: this.location, everyMs: CHECKPOINT_EVERY_MS } });
      this.checkpointer.unref();
      this.checkpointer.on('error', () => {
        this.checkpointer = undefined;
        if (this.db?.open) this.db.pragma('wal_autocheckpoint = 1000');
      });
      this.db.pragma('wal_autocheckpoint = 0');
    } catch {
      this.checkpointer = undefined;
    }
  }

  private async stopCheckpoints(): Promise<void> {
    const worker = this.checkpointer;
    this.checkpointer = undefined;
    if (!worker) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => void worker.terminate().then(() => resolve()), 5000);
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      worker.postMessage('stop');
    });
  }

  private async ready(): Promise<void> {
    while (this.gate) await this.gate;
  }

  async read(type: string, id: string) {
    await this.ready();
    return this.readNow(type, id);
  }
  private readNow(type: string, id: string): StoredVersion | undefined {
    const row = this.stmts.current.get(type, id);
    return row ? toVersion(row) : undefined;
  }

  async vread(type: string, id: string, versionId: number) {
    await this.ready();
    return this.vreadNow(type, id, versionId);
  }
  private vreadNow(type: string, id: string, versionId: number) {
    const row = this.stmts.version.get(type, id, versionId);
    return row ? toVersion(row) : undefined;
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
            results.push({ ok: true, value: this.writeNow(w.type, w.id, w.mutate) });
          } catch (error) {
            results.push({ ok: false, error });
          }
        }
      })();
    } catch (error) {
      for (const w of batch) w.reject(storeError(error));
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i];
      if (r.ok) w.resolve(r.value);
      else w.reject(storeError(r.error));
    });
  }

  private writeNow(type: string, id: string, mutate: Mutator): WriteResult {
    return this.db.transaction((): WriteResult => {
      const row = this.stmts.current.get(type, id);
      const previous = row ? toVersion(row) : undefined;
      const versionId = (row?.version ?? 0) + 1;
      const lastUpdated = Math.max(Date.now(), (row?.last_updated ?? 0) + 1);
      const input = mutate(previous, { versionId, lastUpdated });
      if (!input) return { version: previous!, previous, unchanged: true };
      const json = input.resource ? JSON.stringify(input.resource) : null;
      const deleted = input.resource ? 0 : 1;
      const seq = Number(this.stmts.insertHistory.run(type, id, versionId, lastUpdated, deleted, json).lastInsertRowid);
      let pk: number;
      if (row) {
        pk = row.pk;
        this.stmts.updateCurrent.run(versionId, lastUpdated, deleted, seq, pk);
        for (const s of this.stmts.clear) s.run(pk);
      } else {
        pk = Number(this.stmts.insertCurrent.run(type, id, versionId, lastUpdated, deleted, seq).lastInsertRowid);
      }
      if (input.resource) this.addIndex(pk, type, input.index);
      if (row || input.resource) this.replaceUniqueKeys(pk, type, input.resource ? input.index : undefined, true);
      this.replaceContained(pk, type, id, versionId, lastUpdated, seq, input.resource ? input.index.contained : undefined);
      return { version: { type, id, versionId, lastUpdated, deleted: deleted === 1, json: json ?? undefined }, previous, unchanged: false };
    })();
  }

  /** The container's contained resources, as rows of their own (searchable with `_contained`), replaced. */
  private replaceContained(pk: number, type: string, id: string, versionId: number, lastUpdated: number, hseq: number, contained: IndexEntries['contained']) {
    for (const { pk: cpk } of this.stmts.containedOf.all(pk)) {
      for (const st of this.stmts.clear) st.run(cpk);
      this.stmts.deleteRow.run(cpk);
    }
    for (const c of contained ?? []) {
      const cpk = Number(this.stmts.insertContained.run(c.type, `${type}/${id}#${c.cid}`, versionId, lastUpdated, hseq, pk, c.json).lastInsertRowid);
      this.addIndex(cpk, c.type, c.index);
    }
  }

  /**
   * The unique keys a resource holds, replaced inside its write's transaction: the table's primary
   * key refuses a key another live resource holds (UniqueKeyError, and the write rolls back), so
   * writes sent at the same time cannot both get it. `strict` false (reindex): a clash is left as it is.
   */
  private replaceUniqueKeys(pk: number, type: string, index: IndexEntries | undefined, strict: boolean) {
    if (this.unique.length === 0) return;
    this.stmts.clearUnique.run(pk);
    for (const u of uniqueKeysOf(this.unique, type, index)) {
      try {
        this.stmts.addUnique.run(type, `${u.param}\u0000${u.key}`, pk);
      } catch (e) {
        if ((e as { code?: string }).code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw e;
        if (strict) throw new UniqueKeyError(type, u.param, u.key);
      }
    }
  }

  /** The unique keys of what the store already holds (written before they were declared), taken from the index. */
  private holdUniqueKeys() {
    for (const spec of this.unique) {
      for (const prefix of spec.prefixes) {
        this.sql(
          `INSERT OR IGNORE INTO unique_key (type, key, pk) SELECT k.type, k.param || char(0) || k.key, k.pk FROM idx_key k JOIN resources r ON r.pk = k.pk WHERE k.type = ? AND k.param = ? AND k.key >= ? AND k.key < ? AND r.deleted = 0 AND r.container IS NULL`,
        ).run(spec.type, spec.param, prefix, prefixEnd(prefix));
      }
    }
  }

  /** The index rows of a resource, a few statements of up to ROWS_PER_INSERT rows each rather than one per row. */
  private addIndex(pk: number, type: string, index: IndexEntries) {
    this.insertRows('idx_key (pk, type, param, key)', 4, index.keys, (e, out) => out.push(pk, type, e.param, e.key));
    this.insertRows('idx_string (pk, type, param, norm, exact)', 5, index.strings, (e, out) => out.push(pk, type, e.param, e.norm, e.exact));
    this.insertRows('idx_range (pk, type, param, low, high)', 5, index.ranges, (e, out) => out.push(pk, type, e.param, e.low, e.high));
  }

  private insertRows<T>(into: string, width: number, rows: T[], values: (row: T, out: unknown[]) => void) {
    for (let at = 0; at < rows.length; at += ROWS_PER_INSERT) {
      const chunk = rows.slice(at, at + ROWS_PER_INSERT);
      const args: unknown[] = [];
      for (const r of chunk) values(r, args);
      const tuple = `(${Array.from({ length: width }, () => '?').join(', ')})`;
      this.sql(`INSERT INTO ${into} VALUES ${Array.from({ length: chunk.length }, () => tuple).join(', ')}`).run(...args);
    }
  }

  async history(q: HistoryQuery): Promise<Page<StoredVersion>> {
    await this.ready();
    return this.timed(() => this.historyNow(q));
  }

  private historyNow(q: HistoryQuery): Page<StoredVersion> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      where.push(sql);
      args.push(value);
    };
    if (q.type) add('type = ?', q.type);
    if (q.id) add('id = ?', q.id);
    if (q.since !== undefined) add('last_updated >= ?', q.since);
    const filter = where.length ? where.join(' AND ') : '1';
    return this.page(`SELECT *, seq AS k0 FROM history WHERE ${BUDGET}(seq) AND ${filter}`, args, [true], q.count, q.cursor);
  }

  /**
   * Keyset paging: the query's rows carry their sort values as k0, k1, ... (the last one unique),
   * and a page is the `count` rows after (or before) the position of the previous page's edge,
   * so rows written or deleted meanwhile never shift or repeat a page.
   */
  private page(select: string, args: unknown[], descending: boolean[], count: number, cursor: SearchPlan['cursor']): Page<StoredVersion> {
    const backwards = cursor?.direction === 'prev';
    const n = descending.length;
    const cols = descending.map((_, i) => `k${i}`);
    let keyset = '';
    const keyArgs: unknown[] = [];
    if (cursor) {
      const position = decodeCursor(cursor.position, n);
      // (k0, k1, ...) after the position in the requested direction, one column deciding at a time
      const alternatives: string[] = [];
      for (let i = 0; i < n; i++) {
        const after = descending[i] !== backwards ? '<' : '>';
        const eqs = cols.slice(0, i).map((c) => `${c} = ?`);
        alternatives.push([...eqs, `${cols[i]} ${after} ?`].join(' AND '));
        keyArgs.push(...position.slice(0, i + 1));
      }
      keyset = ` WHERE ${alternatives.map((a) => `(${a})`).join(' OR ')}`;
    }
    const order = cols.map((c, i) => `${c} ${descending[i] !== backwards ? 'DESC' : 'ASC'}`).join(', ');
    const rows = this.sql(`SELECT * FROM (${select})${keyset} ORDER BY ${order} LIMIT ?`).all(...args, ...keyArgs, count + 1) as (HistoryRow & Record<string, unknown>)[];
    const more = rows.length > count;
    if (more) rows.pop();
    if (backwards) rows.reverse();
    const positionOf = (r: Record<string, unknown>) => encodeCursor(cols.map((c) => r[c]));
    const page: Page<StoredVersion> = { items: rows.map(toVersion) };
    if (rows.length > 0) {
      if (backwards || more) page.next = positionOf(rows[rows.length - 1]);
      if (backwards ? more : cursor !== undefined) page.prev = positionOf(rows[0]);
    }
    return page;
  }

  async search(plan: SearchPlan): Promise<Page<StoredVersion>> {
    await this.ready();
    return this.timed(() => this.searchNow(plan));
  }

  private searchNow(plan: SearchPlan): Page<StoredVersion> {
    const args: unknown[] = [];
    const sql = new SqlBuilder();
    const scopes = plan.scopes.map((s) => `(${sql.scope('r', s.type, s.conditions, args)})`);
    // `+`: "not contained" is nearly every row, never a reason to walk the container index
    const contained = plan.contained === 'true' ? 'r.container IS NOT NULL' : plan.contained === 'both' ? '1' : '+r.container IS NULL';
    const filter = `r.deleted = 0 AND ${contained} AND (${scopes.join(' OR ') || '0'})`;
    const total = this.count(filter, args, plan.total);
    if (plan.count === 0) return { items: [], total };
    const sortArgs: unknown[] = [];
    const sortCols = plan.sort.map((k, i) => `${sql.sortValue('r', k, sortArgs)} AS k${i}`);
    const select = `SELECT r.pk, r.type, r.id, r.version, r.last_updated, r.deleted, coalesce(r.content, h.content) AS content, ${[...sortCols, `r.pk AS k${plan.sort.length}`].join(', ')} FROM resources r JOIN history h ON h.seq = r.hseq WHERE ${filter}`;
    return { ...this.page(select, [...sortArgs, ...args], [...plan.sort.map((k) => k.descending), false], plan.count, plan.cursor), total };
  }

  /** The matches' count the plan asks for: all of them, at most ESTIMATE_LIMIT of them (none beyond), or none. */
  private count(filter: string, args: unknown[], total: SearchPlan['total']): number | undefined {
    if (total === 'none') return undefined;
    if (total === 'accurate') return (this.sql(`SELECT count(*) AS n FROM resources r WHERE ${filter}`).get(...args) as { n: number }).n;
    const n = (this.sql(`SELECT count(*) AS n FROM (SELECT 1 FROM resources r WHERE ${filter} LIMIT ?)`).get(...args, ESTIMATE_LIMIT + 1) as { n: number }).n;
    return n <= ESTIMATE_LIMIT ? n : undefined;
  }

  async readMany(refs: { type: string; id: string }[]): Promise<StoredVersion[]> {
    await this.ready();
    return this.readManyNow(refs);
  }
  private readManyNow(refs: { type: string; id: string }[]): StoredVersion[] {
    return refs.map((r) => this.readNow(r.type, r.id)).filter((v): v is StoredVersion => !!v && !v.deleted);
  }

  async referencesOf(type: string, ids: string[], params: string[]): Promise<string[]> {
    await this.ready();
    return this.referencesOfNow(type, ids, params);
  }
  private referencesOfNow(type: string, ids: string[], params: string[]): string[] {
    if (ids.length === 0 || params.length === 0) return [];
    const rows = this
      .sql(
        `SELECT DISTINCT k.key FROM resources r JOIN idx_key k ON k.pk = r.pk WHERE r.type = ? AND r.id IN (${marks(ids)}) AND k.param IN (${marks(params)}) AND k.key GLOB '[A-Z]*/*'`,
      )
      .all(type, ...ids, ...params) as { key: string }[];
    return rows.map((r) => r.key);
  }

  async referencing(sources: { type: string; params: string[] }[], targets: string[], limit: number): Promise<StoredVersion[]> {
    await this.ready();
    return this.referencingNow(sources, targets, limit);
  }
  private referencingNow(sources: { type: string; params: string[] }[], targets: string[], limit: number): StoredVersion[] {
    const used = sources.filter((s) => s.params.length > 0);
    if (targets.length === 0 || used.length === 0) return [];
    const args: unknown[] = [...targets];
    const bySource = used.map((s) => (args.push(s.type, ...s.params), `(k.type = ? AND k.param IN (${marks(s.params)}))`)).join(' OR ');
    const rows = this
      .sql(
        `SELECT r.pk, r.type, r.id, r.version, r.last_updated, r.deleted, h.content FROM resources r JOIN history h ON h.seq = r.hseq WHERE r.deleted = 0 AND +r.container IS NULL AND r.pk IN (SELECT k.pk FROM idx_key k WHERE k.key IN (${marks(targets)}) AND (${bySource})) ORDER BY r.pk LIMIT ?`,
      )
      .all(...args, limit) as CurrentRow[];
    return rows.map(toVersion);
  }

  async reindex(type: string, id: string, versionId: number, index: IndexEntries): Promise<boolean> {
    await this.ready();
    return this.db.transaction(() => {
      const row = this.sql('SELECT pk, version, deleted, last_updated, hseq FROM resources WHERE type = ? AND id = ?').get(type, id) as
        | { pk: number; version: number; deleted: number; last_updated: number; hseq: number }
        | undefined;
      if (!row || row.version !== versionId || row.deleted) return false;
      for (const st of this.stmts.clear) st.run(row.pk);
      this.addIndex(row.pk, type, index);
      this.replaceUniqueKeys(row.pk, type, index, false);
      this.replaceContained(row.pk, type, id, versionId, row.last_updated, row.hseq, index.contained);
      return true;
    })();
  }

  async getState<T>(key: string): Promise<T | undefined> {
    await this.ready();
    const row = this.sql('SELECT value FROM server_state WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)').get(key, Date.now()) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  async setState(key: string, value: unknown, options: StateOptions = {}): Promise<void> {
    await this.ready();
    if (value === null || value === undefined) {
      this.sql('DELETE FROM server_state WHERE key = ?').run(key);
      return;
    }
    try {
      this.sql('INSERT INTO server_state (key, value, expires_at, grp) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, grp = excluded.grp').run(
        key,
        JSON.stringify(value),
        options.expiresAt ?? null,
        options.group ?? null,
      );
    } catch (e) {
      throw storeError(e);
    }
  }

  async claimState(key: string, value: unknown, options: StateOptions = {}): Promise<boolean> {
    await this.ready();
    const now = Date.now();
    try {
      return this.db.transaction(() => {
        this.sql('DELETE FROM server_state WHERE key = ? AND expires_at <= ?').run(key, now);
        return this.sql('INSERT OR IGNORE INTO server_state (key, value, expires_at, grp) VALUES (?, ?, ?, ?)').run(key, JSON.stringify(value), options.expiresAt ?? null, options.group ?? null).changes === 1;
      })();
    } catch (e) {
      throw storeError(e);
    }
  }

  async releaseState(key: string, value: unknown): Promise<boolean> {
    await this.ready();
    return this.sql('DELETE FROM server_state WHERE key = ? AND value = ?').run(key, JSON.stringify(value)).changes === 1;
  }

  async listState<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    await this.ready();
    const rows = this.sql('SELECT key, value FROM server_state WHERE key >= ? AND key < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key').all(prefix, prefixEnd(prefix), Date.now()) as { key: string; value: string }[];
    return rows.map((r) => ({ key: r.key, value: JSON.parse(r.value) as T }));
  }

  async deleteStateGroup(group: string): Promise<number> {
    await this.ready();
    return this.sql('DELETE FROM server_state WHERE grp = ?').run(group).changes;
  }

  async purgeExpiredState(): Promise<number> {
    await this.ready();
    return this.sql('DELETE FROM server_state WHERE expires_at <= ?').run(Date.now()).changes;
  }

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
      throw storeError(err);
    } finally {
      this.gate = null;
      release();
    }
  }

  /** The view a transaction works through: the same engine without waiting on its own gate. */
  private ungated(): ResourceStore {
    return transactionView(this, {
      read: async (t, i) => this.readNow(t, i),
      vread: async (t, i, v) => this.vreadNow(t, i, v),
      write: async (t, i, m) => this.writeNow(t, i, m),
      history: async (q) => this.timed(() => this.historyNow(q)),
      search: async (p) => this.timed(() => this.searchNow(p)),
      readMany: async (refs) => this.readManyNow(refs),
      referencesOf: async (t, ids, p) => this.referencesOfNow(t, ids, p),
      referencing: async (sources, targets, limit) => this.referencingNow(sources, targets, limit),
      reindex: (...a) => this.reindex(...a),
      transaction: async (f) => f(this.ungated()),
    });
  }
}
