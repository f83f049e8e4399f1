import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Bound, Condition, RangeMatch, SearchPlan } from '../search/plan';
import type { IndexEntries } from '../search/extract';
import type { HistoryQuery, Mutator, Page, ResourceStore, StoredVersion, WriteResult } from './types';

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
  UNIQUE (type, id)
);
CREATE INDEX IF NOT EXISTS resources_type_updated ON resources (type, last_updated);
CREATE TABLE IF NOT EXISTS idx_token (pk INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_token_key ON idx_token (type, param, key, pk);
CREATE INDEX IF NOT EXISTS idx_token_pk ON idx_token (pk, param);
CREATE TABLE IF NOT EXISTS idx_reference (pk INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_reference_key ON idx_reference (type, param, key, pk);
CREATE INDEX IF NOT EXISTS idx_reference_pk ON idx_reference (pk, param);
CREATE TABLE IF NOT EXISTS idx_string (pk INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_string_norm ON idx_string (type, param, norm, pk);
CREATE INDEX IF NOT EXISTS idx_string_exact ON idx_string (type, param, exact, pk);
CREATE INDEX IF NOT EXISTS idx_string_pk ON idx_string (pk, param);
CREATE TABLE IF NOT EXISTS idx_date (pk INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, low INTEGER NOT NULL, high INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS idx_date_low ON idx_date (type, param, low, high, pk);
CREATE INDEX IF NOT EXISTS idx_date_high ON idx_date (type, param, high, low, pk);
CREATE INDEX IF NOT EXISTS idx_date_pk ON idx_date (pk, param);
`;

const INDEX_TABLES = { token: 'idx_token', reference: 'idx_reference', string: 'idx_string', date: 'idx_date' } as const;

interface CurrentRow {
  pk: number;
  type: string;
  id: string;
  version: number;
  last_updated: number;
  deleted: number;
  content: string | null;
}
interface HistoryRow {
  seq: number;
  type: string;
  id: string;
  version: number;
  last_updated: number;
  deleted: number;
  content: string | null;
}

const toVersion = (r: { type: string; id: string; version: number; last_updated: number; deleted: number; content: string | null }): StoredVersion => ({
  type: r.type,
  id: r.id,
  versionId: r.version,
  lastUpdated: r.last_updated,
  deleted: r.deleted === 1,
  json: r.content ?? undefined,
});

/** Upper bound of the strings that start with `prefix`, in SQLite's binary order. */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

function boundsSql(match: RangeMatch, low: string, high: string, args: unknown[]): string {
  const alt = (bounds: Bound[]) =>
    bounds
      .map((b) => {
        args.push(b.value);
        return `${b.on === 'low' ? low : high} ${b.op} ?`;
      })
      .join(' AND ');
  return match.map((a) => `(${alt(a.bounds)})`).join(' OR ');
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

  constructor(file: string) {
    this.location = file;
  }

  async init(): Promise<void> {
    if (this.location !== ':memory:') fs.mkdirSync(path.dirname(this.location), { recursive: true });
    this.db = new Database(this.location);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.stmts = this.prepare();
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
      addToken: db.prepare(`INSERT INTO idx_token (pk, type, param, key) VALUES (?, ?, ?, ?)`),
      addReference: db.prepare(`INSERT INTO idx_reference (pk, type, param, key) VALUES (?, ?, ?, ?)`),
      addString: db.prepare(`INSERT INTO idx_string (pk, type, param, norm, exact) VALUES (?, ?, ?, ?, ?)`),
      addDate: db.prepare(`INSERT INTO idx_date (pk, type, param, low, high) VALUES (?, ?, ?, ?, ?)`),
    };
  }

  async close(): Promise<void> {
    while (this.gate) await this.gate;
    if (this.db?.open) this.db.close();
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

  async write(type: string, id: string, mutate: Mutator): Promise<WriteResult> {
    await this.ready();
    return this.writeNow(type, id, mutate);
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
      return { version: { type, id, versionId, lastUpdated, deleted: deleted === 1, json: json ?? undefined }, previous, unchanged: false };
    })();
  }

  private addIndex(pk: number, type: string, index: IndexEntries) {
    for (const e of index.tokens) this.stmts.addToken.run(pk, type, e.param, e.key);
    for (const e of index.references) this.stmts.addReference.run(pk, type, e.param, e.key);
    for (const e of index.strings) this.stmts.addString.run(pk, type, e.param, e.norm, e.exact);
    for (const e of index.dates) this.stmts.addDate.run(pk, type, e.param, e.low, e.high);
  }

  async history(q: HistoryQuery): Promise<Page<StoredVersion>> {
    await this.ready();
    return this.historyNow(q);
  }

  private historyNow(q: HistoryQuery): Page<StoredVersion> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.type) where.push('type = ?') && args.push(q.type);
    if (q.id) where.push('id = ?') && args.push(q.id);
    if (q.since !== undefined) where.push('last_updated >= ?') && args.push(q.since);
    const filter = where.length ? where.join(' AND ') : '1';
    const total = (this.db.prepare(`SELECT count(*) AS n FROM history WHERE ${filter}`).get(...args) as { n: number }).n;
    return { ...this.pageBy('seq', `SELECT * FROM history WHERE ${filter}`, args, q.count, q.cursor, true), total };
  }

  /**
   * Keyset paging on an integer key: a page is the `count` rows after (or before) a position,
   * so rows written or deleted meanwhile never shift the pages.
   */
  private pageBy(key: string, sql: string, args: unknown[], count: number, cursor: HistoryQuery['cursor'], descending: boolean): Page<StoredVersion> {
    const backwards = cursor?.direction === 'prev';
    const forwardOp = descending ? '<' : '>';
    const op = backwards ? (descending ? '>' : '<') : forwardOp;
    const order = backwards !== descending ? 'DESC' : 'ASC';
    const pos = cursor ? Number(cursor.position) : undefined;
    if (cursor && !Number.isInteger(pos)) return { items: [] };
    const rows = this.db
      .prepare(`${sql}${cursor ? ` AND ${key} ${op} ?` : ''} ORDER BY ${key} ${order} LIMIT ?`)
      .all(...args, ...(cursor ? [pos] : []), count + 1) as (HistoryRow & Record<string, unknown>)[];
    const more = rows.length > count;
    if (more) rows.pop();
    if (backwards) rows.reverse();
    const field = key.replace(/^\w+\./, '');
    const keyOf = (r: Record<string, unknown>) => String(r[field]);
    const page: Page<StoredVersion> = { items: rows.map(toVersion) };
    if (rows.length > 0) {
      const hasNext = backwards ? true : more;
      const hasPrev = backwards ? more : cursor !== undefined;
      if (hasNext) page.next = keyOf(rows[rows.length - 1]);
      if (hasPrev) page.prev = keyOf(rows[0]);
    }
    return page;
  }

  async search(plan: SearchPlan): Promise<Page<StoredVersion>> {
    await this.ready();
    return this.searchNow(plan);
  }

  private searchNow(plan: SearchPlan): Page<StoredVersion> {
    const args: unknown[] = [plan.type];
    const where = ['r.type = ?', 'r.deleted = 0', ...plan.conditions.map((c) => this.conditionSql(plan.type, c, args))];
    const filter = where.join(' AND ');
    const total =
      plan.total === 'accurate' ? (this.db.prepare(`SELECT count(*) AS n FROM resources r WHERE ${filter}`).get(...args) as { n: number }).n : undefined;
    if (plan.count === 0) return { items: [], total };
    const sql = `SELECT r.pk, r.type, r.id, r.version, r.last_updated, r.deleted, h.content FROM resources r JOIN history h ON h.seq = r.hseq WHERE ${filter}`;
    return { ...this.pageBy('r.pk', sql, args, plan.count, plan.cursor, false), total };
  }

  private conditionSql(type: string, c: Condition, args: unknown[]): string {
    const sub = (table: string, param: string, test: string) => {
      return `r.pk IN (SELECT pk FROM ${table} WHERE type = ? AND param = ? AND (${test}))`;
    };
    switch (c.kind) {
      case 'id':
        args.push(...c.ids);
        return `r.id IN (${c.ids.map(() => '?').join(', ')})`;
      case 'lastUpdated':
        return `(${boundsSql(c.match, 'r.last_updated', 'r.last_updated', args)})`;
      case 'token':
      case 'reference': {
        if (c.keys.length === 0) return '0';
        args.push(type, c.param, ...c.keys);
        return sub(INDEX_TABLES[c.kind], c.param, `key IN (${c.keys.map(() => '?').join(', ')})`);
      }
      case 'string': {
        args.push(type, c.param);
        const tests = c.values.map((v) => {
          if (c.mode === 'exact') {
            args.push(v);
            return 'exact = ?';
          }
          if (c.mode === 'contains') {
            args.push(`%${v.replace(/[\\%_]/g, '\\$&')}%`);
            return `norm LIKE ? ESCAPE '\\'`;
          }
          if (v === '') return '1';
          args.push(v, prefixEnd(v));
          return '(norm >= ? AND norm < ?)';
        });
        return sub('idx_string', c.param, tests.join(' OR '));
      }
      case 'date': {
        args.push(type, c.param);
        const test = boundsSql(c.match, 'low', 'high', args);
        return sub('idx_date', c.param, test);
      }
      case 'missing': {
        args.push(c.param);
        return `${c.missing ? 'NOT ' : ''}EXISTS (SELECT 1 FROM ${INDEX_TABLES[c.index]} WHERE pk = r.pk AND param = ?)`;
      }
    }
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
      throw err;
    } finally {
      this.gate = null;
      release();
    }
  }

  /** The view a transaction works through: the same engine without waiting on its own gate. */
  private ungated(): ResourceStore {
    return {
      engine: this.engine,
      location: this.location,
      supportsTransactions: true,
      init: async () => undefined,
      close: async () => undefined,
      read: async (t, i) => this.readNow(t, i),
      vread: async (t, i, v) => this.vreadNow(t, i, v),
      write: async (t, i, m) => this.writeNow(t, i, m),
      history: async (q) => this.historyNow(q),
      search: async (p) => this.searchNow(p),
      transaction: async (f) => f(this.ungated()),
    };
  }
}
