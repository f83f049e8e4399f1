import Database from 'better-sqlite3';
import type { IndexKind } from '../../search/plan';
import { StorageFullError } from '../errors';
import { storedVersion } from '../common/versions';
import type { StoredVersion } from '../types';

/**
 * The write connection and what every part of the engine shares on it: the statements (prepared
 * once, or cached by their text), the rows they read, and SQLite's errors as store errors.
 */
export function openDatabase(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  return db;
}

export const INDEX_TABLES: Record<IndexKind, string> = { key: 'idx_key', string: 'idx_string', range: 'idx_range' };

/** A current row with its content (a contained resource's own, else its version's). */
export interface CurrentRow {
  pk: number;
  type: string;
  id: string;
  version: number;
  last_updated: number;
  deleted: number;
  content: string | null;
}
export type HistoryRow = Omit<CurrentRow, 'pk'> & { seq: number };

export const rowVersion = (r: { type: string; id: string; version: number; last_updated: number; deleted: number; content: string | null }): StoredVersion =>
  storedVersion(r.type, r.id, r.version, r.last_updated, r.deleted === 1, r.content);

/** `?, ?, ...`: one placeholder per value. */
export const marks = (values: unknown[]) => values.map(() => '?').join(', ');

/** SQLite's answer when the disk, or max_page_count, leaves no room: nothing was written. */
export function storageError(e: unknown): unknown {
  const code = (e as { code?: string })?.code;
  if (code === 'SQLITE_FULL') return new StorageFullError('The database has no room left to write (disk full)');
  return e;
}

/** A function that gives the prepared statement of a SQL text: generated SQL repeats the same shapes (searches), so statements are kept by their text. */
export type Sql = (text: string) => Database.Statement;

export function statementCache(db: Database.Database, size = 500): Sql {
  const statements = new Map<string, Database.Statement>();
  return (text) => {
    let st = statements.get(text);
    if (!st) {
      if (statements.size >= size) statements.delete(statements.keys().next().value!);
      st = db.prepare(text);
      statements.set(text, st);
    }
    return st;
  };
}

/** The statements of reads and writes by id, prepared once. */
export function prepareStatements(db: Database.Database) {
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
    clearUnique: db.prepare(`DELETE FROM unique_key WHERE pk = ?`),
    addUnique: db.prepare(`INSERT INTO unique_key (type, key, pk) VALUES (?, ?, ?)`),
  };
}
export type Statements = ReturnType<typeof prepareStatements>;
