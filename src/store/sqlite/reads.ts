import { ESTIMATE_LIMIT, type SearchPlan } from '../../search/plan';
import { decodeCursor, encodeCursor, keysetPage } from '../common/paging';
import type { HistoryQuery, Page, StoredVersion } from '../types';
import { marks, rowVersion, type CurrentRow, type HistoryRow, type Sql, type Statements } from './connection';
import { SqlBuilder } from './query';
import { BUDGET, type StatementTimeLimit } from './time-limit';

/**
 * What the engine reads: resources by id, history and searches (keyset pages under the statement
 * time limit), and the references that includes and `$everything` follow. Synchronous: the store
 * calls these once no transaction holds the connection, a transaction's view calls them directly.
 */
export class SqliteReads {
  constructor(
    private readonly sql: Sql,
    private readonly stmts: Statements,
    private readonly limit: StatementTimeLimit,
  ) {}

  read(type: string, id: string): StoredVersion | undefined {
    const row = this.stmts.current.get(type, id);
    return row ? rowVersion(row) : undefined;
  }

  vread(type: string, id: string, versionId: number): StoredVersion | undefined {
    const row = this.stmts.version.get(type, id, versionId);
    return row ? rowVersion(row) : undefined;
  }

  readMany(refs: { type: string; id: string }[]): StoredVersion[] {
    return refs.map((r) => this.read(r.type, r.id)).filter((v): v is StoredVersion => !!v && !v.deleted);
  }

  history(q: HistoryQuery): Page<StoredVersion> {
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
    return this.limit.timed(() => this.page(`SELECT *, seq AS k0 FROM history WHERE ${BUDGET}(seq) AND ${filter}`, args, [true], q.count, q.cursor));
  }

  search(plan: SearchPlan): Page<StoredVersion> {
    return this.limit.timed(() => {
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
    });
  }

  /**
   * Keyset paging (see common/paging.ts): the query's rows carry their sort values as k0, k1, ...
   * (the last one unique); the rows after the position are those that one column decides at a time.
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
    const scanned = this.sql(`SELECT * FROM (${select})${keyset} ORDER BY ${order} LIMIT ?`).all(...args, ...keyArgs, count + 1) as (HistoryRow & Record<string, unknown>)[];
    const { rows, next, prev } = keysetPage(scanned, count, cursor, (r) => encodeCursor(cols.map((c) => r[c])));
    const page: Page<StoredVersion> = { items: rows.map(rowVersion) };
    if (next !== undefined) page.next = next;
    if (prev !== undefined) page.prev = prev;
    return page;
  }

  /** The matches' count the plan asks for: all of them, at most ESTIMATE_LIMIT of them (none beyond), or none. */
  private count(filter: string, args: unknown[], total: SearchPlan['total']): number | undefined {
    if (total === 'none') return undefined;
    if (total === 'accurate') return (this.sql(`SELECT count(*) AS n FROM resources r WHERE ${filter}`).get(...args) as { n: number }).n;
    const n = (this.sql(`SELECT count(*) AS n FROM (SELECT 1 FROM resources r WHERE ${filter} LIMIT ?)`).get(...args, ESTIMATE_LIMIT + 1) as { n: number }).n;
    return n <= ESTIMATE_LIMIT ? n : undefined;
  }

  referencesOf(type: string, ids: string[], params: string[]): string[] {
    if (ids.length === 0 || params.length === 0) return [];
    const rows = this
      .sql(
        `SELECT DISTINCT k.key FROM resources r JOIN idx_key k ON k.pk = r.pk WHERE r.type = ? AND r.id IN (${marks(ids)}) AND k.param IN (${marks(params)}) AND k.key GLOB '[A-Z]*/*'`,
      )
      .all(type, ...ids, ...params) as { key: string }[];
    return rows.map((r) => r.key);
  }

  referencing(sources: { type: string; params: string[] }[], targets: string[], limit: number): StoredVersion[] {
    const used = sources.filter((s) => s.params.length > 0);
    if (targets.length === 0 || used.length === 0) return [];
    const args: unknown[] = [...targets];
    const bySource = used.map((s) => (args.push(s.type, ...s.params), `(k.type = ? AND k.param IN (${marks(s.params)}))`)).join(' OR ');
    const rows = this
      .sql(
        `SELECT r.pk, r.type, r.id, r.version, r.last_updated, r.deleted, h.content FROM resources r JOIN history h ON h.seq = r.hseq WHERE r.deleted = 0 AND +r.container IS NULL AND r.pk IN (SELECT k.pk FROM idx_key k WHERE k.key IN (${marks(targets)}) AND (${bySource})) ORDER BY r.pk LIMIT ?`,
      )
      .all(...args, limit) as CurrentRow[];
    return rows.map(rowVersion);
  }
}
