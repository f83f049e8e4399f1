import type Database from 'better-sqlite3';
import { prefixEnd } from '../common/keys';
import type { StateOptions } from '../types';
import { storageError, type Sql } from './connection';

/**
 * Server state (see ResourceStore.getState): `server_state (key, value, expires_at, grp)`, values
 * as JSON text. An expired value stays until purged, and no reader sees it. Synchronous: the store
 * calls these once no transaction holds the connection.
 */
export class SqliteState {
  constructor(
    private readonly db: Database.Database,
    private readonly sql: Sql,
  ) {}

  get<T>(key: string): T | undefined {
    const row = this.sql('SELECT value FROM server_state WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)').get(key, Date.now()) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  set(key: string, value: unknown, options: StateOptions = {}): void {
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
      throw storageError(e);
    }
  }

  claim(key: string, value: unknown, options: StateOptions = {}): boolean {
    const now = Date.now();
    try {
      return this.db.transaction(() => {
        this.sql('DELETE FROM server_state WHERE key = ? AND expires_at <= ?').run(key, now);
        return this.sql('INSERT OR IGNORE INTO server_state (key, value, expires_at, grp) VALUES (?, ?, ?, ?)').run(key, JSON.stringify(value), options.expiresAt ?? null, options.group ?? null).changes === 1;
      })();
    } catch (e) {
      throw storageError(e);
    }
  }

  release(key: string, value: unknown): boolean {
    return this.sql('DELETE FROM server_state WHERE key = ? AND value = ?').run(key, JSON.stringify(value)).changes === 1;
  }

  list<T>(prefix: string): { key: string; value: T }[] {
    const rows = this.sql('SELECT key, value FROM server_state WHERE key >= ? AND key < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key').all(prefix, prefixEnd(prefix), Date.now()) as { key: string; value: string }[];
    return rows.map((r) => ({ key: r.key, value: JSON.parse(r.value) as T }));
  }

  deleteGroup(group: string): number {
    return this.sql('DELETE FROM server_state WHERE grp = ?').run(group).changes;
  }

  purgeExpired(): number {
    return this.sql('DELETE FROM server_state WHERE expires_at <= ?').run(Date.now()).changes;
  }
}
