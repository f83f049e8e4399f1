import type Database from 'better-sqlite3';
import type { IndexEntries } from '../../search/extract';
import { prefixEnd, uniqueKeysOf } from '../common/keys';
import { nextVersion } from '../common/versions';
import { UniqueKeyError } from '../errors';
import type { Mutator, UniqueKeys, WriteResult } from '../types';
import { rowVersion, type Sql, type Statements } from './connection';

/** Index rows per INSERT statement (SQLite allows 32,766 bound values per statement). */
const ROWS_PER_INSERT = 50;

/**
 * What the engine writes, each in a transaction of its own (a savepoint inside the group commit or a
 * transaction Bundle): a version with its history row, index rows, contained resources and unique
 * keys; and index entries replaced by $reindex.
 */
export class SqliteWrites {
  constructor(
    private readonly db: Database.Database,
    private readonly sql: Sql,
    private readonly stmts: Statements,
    /** the keys kept unique (init's option) */
    private readonly unique: readonly UniqueKeys[],
  ) {}

  /** The next version of a resource, from the mutator and the current version. */
  write(type: string, id: string, mutate: Mutator): WriteResult {
    return this.db.transaction((): WriteResult => {
      const row = this.stmts.current.get(type, id);
      const previous = row ? rowVersion(row) : undefined;
      const { versionId, lastUpdated } = nextVersion(previous);
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

  /** Replaces the index entries of a resource if `versionId` is still its current version (true), without a new version. */
  reindex(type: string, id: string, versionId: number, index: IndexEntries): boolean {
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

  /** The unique keys of what the store already holds (written before they were declared), taken from the index. */
  holdUniqueKeys(): void {
    for (const spec of this.unique) {
      for (const prefix of spec.prefixes) {
        this.sql(
          `INSERT OR IGNORE INTO unique_key (type, key, pk) SELECT k.type, k.param || char(0) || k.key, k.pk FROM idx_key k JOIN resources r ON r.pk = k.pk WHERE k.type = ? AND k.param = ? AND k.key >= ? AND k.key < ? AND r.deleted = 0 AND r.container IS NULL`,
        ).run(spec.type, spec.param, prefix, prefixEnd(prefix));
      }
    }
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
}
