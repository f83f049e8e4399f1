import type { Bound, Condition, RangeMatch, SortKey } from '../../search/plan';
import { normalizeString } from '../../search/values';
import { prefixEnd } from '../common/keys';
import { INDEX_TABLES, marks } from './connection';
import { BUDGET } from './time-limit';

/**
 * Query translation: the conditions and sort keys of a search plan as SQL over the index tables.
 * One condition of each scope drives (its index lookup yields the candidate rows), the others are
 * probed per candidate row.
 */

/** A condition drives its scope (an index lookup yields the candidates) or is probed per candidate row. */
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
export class SqlBuilder {
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
