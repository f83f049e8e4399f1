import mongoose from 'mongoose';
import { ObjectId, type ClientSession, type Collection, type Document, type Filter } from 'mongodb';
import type { Bound, Condition, RangeMatch, SearchPlan } from '../search/plan';
import type { IndexEntries } from '../search/extract';
import { containingBuckets } from '../search/values';
import { WriteContentionError, type HistoryQuery, type Mutator, type Page, type ResourceStore, type StoredVersion, type WriteResult } from './types';

/**
 * One collection per resource type holds the current version of each resource with its index
 * entries; `_history` holds every version of every resource. Index entries live in per-parameter
 * fields so each query condition is a plain condition on one (multikey) field:
 *   k.<param>: token keys     f.<param>: reference keys
 *   s.<param>: normalized strings     se.<param>: strings as written
 *   dl.<param> / dh.<param>: low / high ends of date ranges
 *   de.<param>: keys of the calendar buckets that contain a whole date range (for eq)
 */
interface CurrentDoc {
  _id: ObjectId;
  i: string;
  v: number;
  lu: number;
  d: boolean;
  r?: string;
  [field: string]: unknown;
}
interface HistoryDoc {
  _id: ObjectId;
  t: string;
  i: string;
  v: number;
  lu: number;
  d: boolean;
  r?: string;
}

const historySchema = new mongoose.Schema<HistoryDoc>(
  { t: { type: String, required: true }, i: { type: String, required: true }, v: { type: Number, required: true }, lu: { type: Number, required: true }, d: Boolean, r: String },
  { versionKey: false, autoIndex: false, autoCreate: false },
);
historySchema.index({ t: 1, i: 1, v: 1 }, { unique: true });
historySchema.index({ t: 1, _id: -1 });
historySchema.index({ lu: 1 });

const currentSchema = new mongoose.Schema<CurrentDoc>(
  { i: { type: String, required: true }, v: { type: Number, required: true }, lu: { type: Number, required: true }, d: Boolean, r: String },
  { versionKey: false, strict: false, autoIndex: false, autoCreate: false },
);
currentSchema.index({ i: 1 }, { unique: true });
currentSchema.index({ d: 1, _id: 1 });
currentSchema.index({ lu: 1 });

/** Wildcard indexes cover every parameter field at once (MongoDB 4.2+). */
const WILDCARD_FIELDS = ['k', 'f', 's', 'se', 'dl', 'dh', 'de'];

const isDuplicateKey = (e: unknown) => (e as { code?: number })?.code === 11000;
const pause = (attempt: number) => new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 + attempt * 2)));

function toVersion(type: string, d: { i: string; v: number; lu: number; d: boolean; r?: string }): StoredVersion {
  return { type, id: d.i, versionId: d.v, lastUpdated: d.lu, deleted: !!d.d, json: d.r ?? undefined };
}

function indexFields(index: IndexEntries): Record<string, Record<string, unknown[]>> {
  const out: Record<string, Record<string, unknown[]>> = {};
  const add = (field: string, param: string, value: unknown) => ((out[field] ??= {})[param] ??= []).push(value);
  for (const e of index.tokens) add('k', e.param, e.key);
  for (const e of index.references) add('f', e.param, e.key);
  for (const e of index.strings) {
    add('s', e.param, e.norm);
    add('se', e.param, e.exact);
  }
  for (const e of index.dates) {
    add('dl', e.param, e.low);
    add('dh', e.param, e.high);
    for (const key of containingBuckets(e.low, e.high)) add('de', e.param, key);
  }
  return out;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const OPS: Record<Bound['op'], string> = { '<': '$lt', '<=': '$lte', '>': '$gt', '>=': '$gte' };

/**
 * A range test without $elemMatch (FerretDB v1 lacks it): a single bound is a plain condition on
 * the low or high ends; "inside this calendar bucket" (eq) is one key of `de`. The only test left
 * with two uncorrelated bounds is `ap`, approximate by definition, and exact on single-valued fields.
 */
function rangeFilter(match: RangeMatch, single: (b: Bound) => Filter<Document>, within?: (key: string) => Filter<Document>): Filter<Document> {
  const alternatives = match.map((a) => (a.within && within ? within(a.within) : a.bounds.length === 1 ? single(a.bounds[0]) : { $and: a.bounds.map(single) }));
  return alternatives.length === 1 ? alternatives[0] : { $or: alternatives };
}

function conditionFilter(c: Condition): Filter<Document> {
  switch (c.kind) {
    case 'id':
      return { i: { $in: c.ids } };
    case 'lastUpdated':
      return rangeFilter(c.match, (b) => ({ lu: { [OPS[b.op]]: b.value } }));
    case 'token':
      return { [`k.${c.param}`]: { $in: c.keys } };
    case 'reference':
      return { [`f.${c.param}`]: { $in: c.keys } };
    case 'string': {
      if (c.mode === 'exact') return { [`se.${c.param}`]: { $in: c.values } };
      const field = `s.${c.param}`;
      const alts = c.values.map((v) => ({ [field]: { $regex: c.mode === 'contains' ? escapeRegex(v) : `^${escapeRegex(v)}` } }));
      return alts.length === 1 ? alts[0] : { $or: alts };
    }
    case 'date':
      return rangeFilter(
        c.match,
        (b) => ({ [`${b.on === 'low' ? 'dl' : 'dh'}.${c.param}`]: { [OPS[b.op]]: b.value } }),
        (key) => ({ [`de.${c.param}`]: key }),
      );
    case 'missing': {
      const field = { token: 'k', reference: 'f', string: 's', date: 'dl' }[c.index];
      return { [`${field}.${c.param}`]: { $exists: !c.missing } };
    }
  }
}

function parseOid(position: string): ObjectId | undefined {
  return /^[0-9a-f]{24}$/.test(position) ? new ObjectId(position) : undefined;
}

/** The MongoDB engine (mongoose connection, native collections for the hot paths). */
export class MongoStore implements ResourceStore {
  readonly engine = 'mongodb' as const;
  readonly location: string;
  supportsTransactions = false;
  private conn!: mongoose.Connection;
  private versions!: Collection<HistoryDoc>;
  private readonly ensured = new Map<string, Promise<Collection<CurrentDoc>>>();
  /** Wildcard indexes: on MongoDB yes; FerretDB v1 accepts their creation and then fails every insert. */
  private wildcardIndexes = true;

  constructor(private readonly uri: string) {
    // Never print credentials.
    this.location = uri.replace(/\/\/[^@/]*@/, '//***@').replace(/\?.*$/, '');
  }

  async init(): Promise<void> {
    this.conn = mongoose.createConnection(this.uri, { autoIndex: false, autoCreate: false, maxPoolSize: 20, serverSelectionTimeoutMS: 10000 });
    await this.conn.asPromise();
    const hello = (await this.conn.db!.admin().command({ hello: 1 })) as { setName?: string; msg?: string; logicalSessionTimeoutMinutes?: number };
    this.supportsTransactions = (!!hello.setName || hello.msg === 'isdbgrid') && hello.logicalSessionTimeoutMinutes !== undefined;
    const build = (await this.conn.db!.admin().command({ buildInfo: 1 })) as { ferretdbVersion?: string };
    this.wildcardIndexes = build.ferretdbVersion === undefined;
    const History = this.conn.model<HistoryDoc>('History', historySchema, '_history');
    await History.createIndexes();
    this.versions = History.collection as unknown as Collection<HistoryDoc>;
  }

  async close(): Promise<void> {
    await this.conn?.close();
  }

  /** The collection of a type, with its indexes created on first use. */
  private collection(type: string): Promise<Collection<CurrentDoc>> {
    let p = this.ensured.get(type);
    if (!p) {
      p = (async () => {
        const Model = this.conn.model<CurrentDoc>(`R_${type}`, currentSchema, type);
        await Model.createIndexes();
        if (this.wildcardIndexes) {
          for (const f of WILDCARD_FIELDS) await Model.collection.createIndex({ [`${f}.$**`]: 1 });
        }
        return Model.collection as unknown as Collection<CurrentDoc>;
      })();
      p.catch(() => this.ensured.delete(type));
      this.ensured.set(type, p);
    }
    return p;
  }

  read(type: string, id: string) {
    return this.readIn(type, id);
  }
  private async readIn(type: string, id: string, session?: ClientSession) {
    const doc = await (await this.collection(type)).findOne({ i: id }, { session, projection: { i: 1, v: 1, lu: 1, d: 1, r: 1 } });
    return doc ? toVersion(type, doc) : undefined;
  }

  vread(type: string, id: string, versionId: number) {
    return this.vreadIn(type, id, versionId);
  }
  private async vreadIn(type: string, id: string, versionId: number, session?: ClientSession) {
    const doc = await this.versions.findOne({ t: type, i: id, v: versionId }, { session });
    return doc ? toVersion(type, doc) : undefined;
  }

  write(type: string, id: string, mutate: Mutator) {
    return this.serialized(`${type}/${id}`, () => this.writeIn(type, id, mutate));
  }

  /** Writes to one resource from this process run one after the other (see writeIn). */
  private readonly writing = new Map<string, Promise<unknown>>();
  private async serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.writing.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.writing.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.writing.get(key) === tail) this.writing.delete(key);
    }
  }

  /**
   * Compare-and-set on the current document: the version read is the version replaced, or the
   * write starts again from the newer version. No version is lost and none is written twice.
   * MongoDB applies the conditional replace atomically, which protects writers in other processes;
   * FerretDB v1 does not (it reads and writes in two steps), so writers in this process also queue
   * per resource, and the unique (type, id, version) index of `_history` refuses a duplicate version.
   */
  private async writeIn(type: string, id: string, mutate: Mutator, session?: ClientSession): Promise<WriteResult> {
    const col = await this.collection(type);
    for (let attempt = 0; attempt < 200; attempt++) {
      const doc = await col.findOne({ i: id }, { session, projection: { i: 1, v: 1, lu: 1, d: 1, r: 1 } });
      const previous = doc ? toVersion(type, doc) : undefined;
      const versionId = (doc?.v ?? 0) + 1;
      const lastUpdated = Math.max(Date.now(), (doc?.lu ?? 0) + 1);
      const input = mutate(previous, { versionId, lastUpdated });
      if (!input) return { version: previous!, previous, unchanged: true };
      const json = input.resource ? JSON.stringify(input.resource) : undefined;
      const deleted = !input.resource;
      const next: Omit<CurrentDoc, '_id'> = { i: id, v: versionId, lu: lastUpdated, d: deleted, ...(json ? { r: json } : {}), ...(deleted ? {} : indexFields(input.index)) };
      if (doc) {
        const res = await col.replaceOne({ _id: doc._id, v: doc.v }, next, { session });
        if (res.matchedCount === 0) {
          await pause(attempt);
          continue;
        }
      } else {
        try {
          await col.insertOne(next as CurrentDoc, { session });
        } catch (e) {
          if (isDuplicateKey(e) && !session) {
            await pause(attempt);
            continue;
          }
          throw e;
        }
      }
      await this.versions.insertOne({ t: type, i: id, v: versionId, lu: lastUpdated, d: deleted, ...(json ? { r: json } : {}) } as HistoryDoc, { session });
      return { version: { type, id, versionId, lastUpdated, deleted, json }, previous, unchanged: false };
    }
    throw new WriteContentionError(`${type}: too many concurrent writers`);
  }

  /** Keyset paging on _id, as in the SQLite engine. */
  private async page<T extends { _id: ObjectId }>(
    col: Collection<T>,
    filter: Filter<T>,
    count: number,
    cursor: SearchPlan['cursor'],
    descending: boolean,
    session?: ClientSession,
  ): Promise<{ docs: T[]; next?: string; prev?: string }> {
    const backwards = cursor?.direction === 'prev';
    let f = filter;
    if (cursor) {
      const oid = parseOid(cursor.position);
      if (!oid) return { docs: [] };
      const after = backwards === descending ? '$gt' : '$lt';
      f = { $and: [filter, { _id: { [after]: oid } }] } as Filter<T>;
    }
    const dir = backwards !== descending ? -1 : 1;
    const docs = (await col.find(f, { session }).sort({ _id: dir }).limit(count + 1).toArray()) as T[];
    const more = docs.length > count;
    if (more) docs.pop();
    if (backwards) docs.reverse();
    const out: { docs: T[]; next?: string; prev?: string } = { docs };
    if (docs.length > 0) {
      if (backwards || more) out.next = docs[docs.length - 1]._id.toHexString();
      if (backwards ? more : cursor !== undefined) out.prev = docs[0]._id.toHexString();
    }
    return out;
  }

  history(q: HistoryQuery) {
    return this.historyIn(q);
  }
  private async historyIn(q: HistoryQuery, session?: ClientSession): Promise<Page<StoredVersion>> {
    const filter: Filter<HistoryDoc> = {};
    if (q.type) filter.t = q.type;
    if (q.id) filter.i = q.id;
    if (q.since !== undefined) filter.lu = { $gte: q.since };
    const total = await this.versions.countDocuments(filter, { session });
    const { docs, next, prev } = await this.page(this.versions, filter, q.count, q.cursor, true, session);
    return { items: docs.map((d) => toVersion(d.t, d)), total, next, prev };
  }

  search(plan: SearchPlan) {
    return this.searchIn(plan);
  }
  private async searchIn(plan: SearchPlan, session?: ClientSession): Promise<Page<StoredVersion>> {
    const col = await this.collection(plan.type);
    const conditions = plan.conditions.map(conditionFilter);
    const filter = (conditions.length ? { $and: [{ d: false }, ...conditions] } : { d: false }) as Filter<CurrentDoc>;
    const total = plan.total === 'accurate' ? await col.countDocuments(filter, { session }) : undefined;
    if (plan.count === 0) return { items: [], total };
    const { docs, next, prev } = await this.page(col, filter, plan.count, plan.cursor, false, session);
    return { items: docs.map((d) => toVersion(plan.type, d)), total, next, prev };
  }

  async transaction<T>(fn: (tx: ResourceStore) => Promise<T>): Promise<T> {
    if (!this.supportsTransactions) throw new Error('This MongoDB deployment does not support multi-document transactions');
    const session = this.conn.getClient().startSession();
    try {
      let result!: T;
      await session.withTransaction(async () => {
        result = await fn(this.bound(session));
      });
      return result;
    } finally {
      await session.endSession();
    }
  }

  private bound(session: ClientSession): ResourceStore {
    return {
      engine: this.engine,
      location: this.location,
      supportsTransactions: true,
      init: async () => undefined,
      close: async () => undefined,
      read: (t, i) => this.readIn(t, i, session),
      vread: (t, i, v) => this.vreadIn(t, i, v, session),
      write: (t, i, m) => this.writeIn(t, i, m, session),
      history: (q) => this.historyIn(q, session),
      search: (p) => this.searchIn(p, session),
      transaction: (f) => f(this.bound(session)),
    };
  }
}
