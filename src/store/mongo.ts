import mongoose from 'mongoose';
import { ObjectId, type ClientSession, type Collection, type Document, type Filter } from 'mongodb';
import { ESTIMATE_LIMIT, type Bound, type Condition, type RangeMatch, type SearchPlan, type SortKey } from '../search/plan';
import type { IndexEntries } from '../search/extract';
import { containingBuckets, numberBuckets, SUB } from '../search/values';
import { budgetExceeded, remainingMs } from './budget';
import { decodeCursor, encodeCursor } from './cursor';
import { InvalidCursorError, QueryTooCostlyError, StorageFullError, UniqueKeyError, WriteContentionError } from './errors';
import { containerOf, prefixEnd, transactionView, uniqueKeysOf, type UniqueKeys, type HistoryQuery, type StateOptions, type Mutator, type Page, type ResourceStore, type StoredVersion, type WriteResult } from './types';

/**
 * One collection per resource type holds the current version of each resource with its index
 * entries; `_history` holds every version of every resource. Index entries live in per-parameter
 * fields so each query condition is a plain condition on one (multikey) field:
 *   k.<param>: exact keys (tokens, references, uris)
 *   s.<param>: normalized strings     se.<param>: strings as written
 *   dl.<param> / dh.<param>: low / high ends of ranges (dates, numbers, quantities)
 *   w.<param>: buckets that wholly contain a range (calendar buckets of dates, roundings of numbers), for eq
 *   oa.<param> / od.<param>: the value the resource sorts by, ascending (smallest) and descending (largest)
 * Parameter names are encoded (`.` and `$` cannot appear in field names).
 */
interface CurrentDoc {
  /** the resource id */
  _id: string;
  i: string;
  v: number;
  lu: number;
  d: boolean;
  r?: string;
  [field: string]: unknown;
}
/** A document of any of our collections: string ids everywhere. */
type AnyDoc = Document & { _id: string };

/** A value of server-owned state: JSON text, expiry (epoch ms), group. */
interface StateDoc {
  _id: string;
  value: string;
  e?: number;
  g?: string;
}
const live = (d: StateDoc) => d.e === undefined || d.e > Date.now();
const stateDoc = (key: string, value: unknown, options: StateOptions): StateDoc => ({
  _id: key,
  value: JSON.stringify(value),
  ...(options.expiresAt !== undefined ? { e: options.expiresAt } : {}),
  ...(options.group !== undefined ? { g: options.group } : {}),
});

interface HistoryDoc {
  /** `Type/id/version` */
  _id: string;
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
historySchema.index({ t: 1, i: 1, v: 1 });
historySchema.index({ t: 1, lu: -1, _id: -1 });
historySchema.index({ lu: -1, _id: -1 });

const currentSchema = new mongoose.Schema<CurrentDoc>(
  { i: { type: String, required: true }, v: { type: Number, required: true }, lu: { type: Number, required: true }, d: Boolean, r: String },
  { versionKey: false, strict: false, autoIndex: false, autoCreate: false },
);
currentSchema.index({ d: 1, c: 1, _id: 1 });
currentSchema.index({ lu: 1 });

/**
 * Compound indexes for the queries every client makes (a patient's measurements or documents,
 * newest first; a practitioner's appointments): one multikey field (an index key array) followed
 * by scalar sort fields, since MongoDB cannot index two arrays of one document together.
 */
const COMPOUND_INDEXES: Record<string, Record<string, 1 | -1>[]> = {
  Observation: [
    { 'k.patient': 1, 'od.date': -1 },
    { 'k.code': 1, 'od.date': -1 },
  ],
  DocumentReference: [{ 'k.patient': 1, 'od.date': -1 }],
  Encounter: [{ 'k.patient': 1, 'od.date': -1 }],
  Appointment: [
    { 'k.actor': 1, 'oa.date': 1 },
    { 'k.patient': 1, 'oa.date': 1 },
  ],
};

/** Wildcard indexes cover every parameter field at once (MongoDB 4.2+). */
const WILDCARD_FIELDS = ['k', 's', 'se', 'dl', 'dh', 'w', 'oa', 'od'];

const isDuplicateKey = (e: unknown) => (e as { code?: number })?.code === 11000;
const pause = (attempt: number) => new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 + attempt * 2)));

function toVersion(type: string, d: { i: string; v: number; lu: number; d: boolean; r?: string }): StoredVersion {
  const v: StoredVersion = { type, id: d.i, versionId: d.v, lastUpdated: d.lu, deleted: !!d.d, json: d.r ?? undefined };
  const container = containerOf(d.i);
  if (container) v.container = container;
  return v;
}

/** Documents of contained resources carry `cn`: their container (`Type/id`); the others have none. */
const CONTAINED_FILTER = { false: { cn: { $exists: false } }, true: { cn: { $exists: true } }, both: {} } as const;

/** A parameter name as a field name: `.` and `$` are not allowed there. */
const field = (prefix: string, param: string) => `${prefix}.${param.replace(/\./g, '\uff0e').replace(/\$/g, '\uff04')}`;

function indexFields(index: IndexEntries): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const enc = (param: string) => param.replace(/\./g, '\uff0e').replace(/\$/g, '\uff04');
  const add = (f: string, param: string, value: unknown) => (((out[f] ??= {})[enc(param)] as unknown[] | undefined) ?? ((out[f][enc(param)] = []) as unknown[])).push(value);
  const sortBy = (param: string, asc: unknown, desc: unknown) => {
    if (param.includes(SUB)) return;
    const p = enc(param);
    const a = (out.oa ??= {});
    const d = (out.od ??= {});
    if (a[p] === undefined || (asc as number) < (a[p] as number)) a[p] = asc;
    if (d[p] === undefined || (desc as number) > (d[p] as number)) d[p] = desc;
  };
  for (const e of index.keys) {
    add('k', e.param, e.key);
    sortBy(e.param, e.key, e.key);
  }
  for (const e of index.strings) {
    add('s', e.param, e.norm);
    add('se', e.param, e.exact);
    sortBy(e.param, e.norm, e.norm);
  }
  for (const e of index.ranges) {
    add('dl', e.param, e.low);
    add('dh', e.param, e.high);
    for (const key of e.kind === 'date' ? containingBuckets(e.low, e.high) : numberBuckets(e.low)) add('w', e.param, key);
    sortBy(e.param, e.low, e.high);
  }
  return out;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const OPS: Record<Bound['op'], string> = { '<': '$lt', '<=': '$lte', '>': '$gt', '>=': '$gte' };

/**
 * A range test without $elemMatch (FerretDB v1 lacks it): a single bound is a plain condition on
 * the low or high ends; "inside this bucket" (eq) is one key of `w`. The only tests left with two
 * uncorrelated bounds are `ap`, and `eq` on a quantity compared in UCUM canonical units: exact
 * for a parameter with one value per resource, approximate when a resource has several.
 */
function rangeFilter(match: RangeMatch, single: (b: Bound) => Filter<AnyDoc>, within?: (key: string) => Filter<AnyDoc>): Filter<AnyDoc> {
  const alternatives = match.map((a) => (a.within && within ? within(a.within) : a.bounds.length === 1 ? single(a.bounds[0]) : { $and: a.bounds.map(single) }));
  return alternatives.length === 1 ? alternatives[0] : { $or: alternatives };
}

/** How many ids a chain or _has may carry from one step to the next before it is refused as too broad. */
const MAX_STEP_IDS = 10000;
/** A claim on a unique key younger than this is a write under way; older, and its holder no longer holds the key, it is void. */
const UNIQUE_UNDER_WAY_MS = 30_000;

/** Options of a read made for a request: its session, and no more time than the request has left. */
function reading(session?: ClientSession): { session?: ClientSession; maxTimeMS?: number } {
  const ms = remainingMs();
  return ms === undefined ? { session } : { session, maxTimeMS: Math.ceil(ms) };
}

/** MongoDB's errors that mean something to the caller, as store errors; the others as they are. */
function storeError(e: unknown): unknown {
  const code = (e as { code?: number })?.code;
  if (code === 50) return budgetExceeded(); // MaxTimeMSExpired
  if (code === 14031) return new StorageFullError('The database has no room left to write (disk full)'); // OutOfDiskSpace
  return e;
}
const mapped = <T>(p: Promise<T>): Promise<T> =>
  p.catch((e: unknown) => {
    throw storeError(e);
  });

const MISSING_FIELD = { key: 'k', string: 's', range: 'dl' } as const;

/** The sort field of a key, and the comparison of positions in MongoDB's order (missing/null lowest). */
function sortField(k: SortKey): string {
  if (k.index === 'id') return '_id';
  if (k.index === 'lastUpdated') return 'lu';
  return field(k.descending ? 'od' : 'oa', k.param);
}
function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return String(a) < String(b) ? -1 : 1;
}
const valueAt = (doc: Record<string, unknown>, path: string): unknown => path.split('.').reduce<unknown>((o, p) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[p] : undefined), doc) ?? null;


/** What a deployment's `hello` says of its topology. */
export interface Hello {
  setName?: string;
  msg?: string;
  logicalSessionTimeoutMinutes?: number;
}

/** Multi-document transactions need a replica set or a sharded cluster, with sessions (FerretDB v1 has neither). */
export const hasMultiDocumentTransactions = (hello: Hello): boolean => (!!hello.setName || hello.msg === 'isdbgrid') && hello.logicalSessionTimeoutMinutes !== undefined;

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
  /** FerretDB: only a filter on `_id` alone uses its primary key, and its conditional replace is not atomic anyway. */
  private ferret = false;

  /** The compare-and-set filter of a write: the version read must still be current (atomic on MongoDB). */
  private casFilter(id: string, version: number): Filter<CurrentDoc> {
    return this.ferret ? { _id: id } : { _id: id, v: version };
  }

  constructor(private readonly uri: string) {
    // Never print credentials.
    this.location = uri.replace(/\/\/[^@/]*@/, '//***@').replace(/\?.*$/, '');
  }

  async init(options: { unique?: readonly UniqueKeys[] } = {}): Promise<void> {
    this.unique = options.unique ?? [];
    this.conn = mongoose.createConnection(this.uri, { autoIndex: false, autoCreate: false, maxPoolSize: 20, serverSelectionTimeoutMS: 10000 });
    await this.conn.asPromise();
    this.supportsTransactions = hasMultiDocumentTransactions((await this.conn.db!.admin().command({ hello: 1 })) as Hello);
    const build = (await this.conn.db!.admin().command({ buildInfo: 1 })) as { ferretdbVersion?: string };
    this.ferret = build.ferretdbVersion !== undefined;
    this.wildcardIndexes = !this.ferret;
    await this.state.createIndex({ g: 1 });
    await this.claims.createIndex({ t: 1, id: 1 });
    await this.state.createIndex({ e: 1 });
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
        for (const spec of COMPOUND_INDEXES[type] ?? []) await Model.collection.createIndex(spec);
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
    const doc = await (await this.collection(type)).findOne({ _id: id }, { session, projection: { i: 1, v: 1, lu: 1, d: 1, r: 1 } });
    return doc ? toVersion(type, doc) : undefined;
  }

  vread(type: string, id: string, versionId: number) {
    return this.vreadIn(type, id, versionId);
  }
  private async vreadIn(type: string, id: string, versionId: number, session?: ClientSession) {
    const doc = await this.versions.findOne({ _id: `${type}/${id}/${versionId}` }, { session });
    return doc ? toVersion(type, doc) : undefined;
  }

  /** The container's contained resources, as documents of their own (searchable with `_contained`), replaced. */
  private async replaceContained(type: string, id: string, previousJson: string | undefined, versionId: number, lastUpdated: number, contained: IndexEntries['contained'], session?: ClientSession): Promise<void> {
    const cn = `${type}/${id}`;
    const before = previousJson ? ((JSON.parse(previousJson) as { contained?: { resourceType?: string }[] }).contained ?? []).map((c) => c.resourceType).filter((t): t is string => typeof t === 'string') : [];
    for (const t of new Set(before)) await this.readable(t).deleteMany({ cn }, { session });
    for (const c of contained ?? []) {
      const col = await this.collection(c.type);
      const doc = { _id: `${cn}#${c.cid}`, i: `${cn}#${c.cid}`, v: versionId, lu: lastUpdated, d: false, r: c.json, cn, c: new ObjectId().toHexString(), ...indexFields(c.index) };
      await col.insertOne(doc as CurrentDoc, { session });
    }
  }

  write(type: string, id: string, mutate: Mutator) {
    return mapped(this.serialized(`${type}/${id}`, () => this.writeIn(type, id, mutate)));
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
      const doc = await col.findOne({ _id: id }, { session, projection: { i: 1, v: 1, lu: 1, d: 1, r: 1, c: 1 } });
      const previous = doc ? toVersion(type, doc) : undefined;
      const versionId = (doc?.v ?? 0) + 1;
      const lastUpdated = Math.max(Date.now(), (doc?.lu ?? 0) + 1);
      const input = mutate(previous, { versionId, lastUpdated });
      if (!input) return { version: previous!, previous, unchanged: true };
      const json = input.resource ? JSON.stringify(input.resource) : undefined;
      const deleted = !input.resource;
      const keys = deleted ? [] : uniqueKeysOf(this.unique, type, input.index);
      const taken = this.unique.some((u) => u.type === type) ? await this.claimUniqueKeys(type, id, keys, session) : [];
      const giveBack = () => this.releaseClaims(taken, id, session);
      // `c`: the order the resource was created in, kept across versions: the default order of searches
      const next: Omit<CurrentDoc, '_id'> = { i: id, v: versionId, lu: lastUpdated, d: deleted, c: (doc?.c as string | undefined) ?? new ObjectId().toHexString(), ...(json ? { r: json } : {}), ...(deleted ? {} : indexFields(input.index)) };
      try {
        if (doc) {
          const res = await col.replaceOne(this.casFilter(id, doc.v), next, { session });
          if (res.matchedCount === 0) {
            await giveBack();
            await pause(attempt);
            continue;
          }
        } else {
          try {
            await col.insertOne({ _id: id, ...next } as CurrentDoc, { session });
          } catch (e) {
            if (isDuplicateKey(e) && !session) {
              await giveBack();
              await pause(attempt);
              continue;
            }
            throw e;
          }
        }
      } catch (e) {
        await giveBack();
        throw e;
      }
      if (this.unique.some((u) => u.type === type)) await this.releaseDropped(type, id, keys, session);
      await this.versions.insertOne({ _id: `${type}/${id}/${versionId}`, t: type, i: id, v: versionId, lu: lastUpdated, d: deleted, ...(json ? { r: json } : {}) } as HistoryDoc, { session });
      await this.replaceContained(type, id, doc?.r as string | undefined, versionId, lastUpdated, input.resource ? input.index.contained : undefined, session);
      return { version: { type, id, versionId, lastUpdated, deleted, json }, previous, unchanged: false };
    }
    throw new WriteContentionError(`${type}: too many concurrent writers`);
  }

  /**
   * Keyset paging as in the SQLite engine: documents sorted by `keys` (then _id), a page is the
   * `count` documents after (or before) the edge of the previous one. Several collections (a
   * system-level search) are each queried from the position and merged.
   */
  private async page(
    sources: { col: Collection<AnyDoc>; filter: Filter<AnyDoc>; type?: string }[],
    keys: { path: string; descending: boolean }[],
    count: number,
    cursor: SearchPlan['cursor'],
    session?: ClientSession,
  ): Promise<{ docs: (Document & { _type?: string })[]; next?: string; prev?: string }> {
    const backwards = cursor?.direction === 'prev';
    // _id breaks ties, in the direction of the last key
    const all = [...keys, { path: '_id', descending: keys.length > 0 && keys[keys.length - 1].descending }];
    let position: unknown[] | undefined;
    if (cursor) {
      position = decodeCursor(cursor.position, all.length);
      if (typeof position[position.length - 1] !== 'string') throw new InvalidCursorError('The paging position is not one this server issued for this search');
    }
    // Documents after `position`: one key deciding at a time; null (missing) is the lowest value.
    const after = (k: { path: string; descending: boolean }, v: unknown): Filter<AnyDoc> => {
      const forward = k.descending === backwards; // ascending order of the scan
      if (v === null) return forward ? { [k.path]: { $ne: null } } : { _id: { $exists: false } };
      return forward ? { [k.path]: { $gt: v } } : { $or: [{ [k.path]: { $lt: v } }, { [k.path]: null }] };
    };
    const equal = (k: { path: string }, v: unknown): Filter<AnyDoc> => ({ [k.path]: v });
    const keyset: Filter<AnyDoc> | undefined = position && {
      $or: all.map((k, i) => ({ $and: [...all.slice(0, i).map((kk, j) => equal(kk, position![j])), after(k, position![i])] })),
    };
    const sort: Record<string, 1 | -1> = {};
    for (const k of all) sort[k.path] = k.descending !== backwards ? -1 : 1;
    const found: (Document & { _type?: string })[] = [];
    for (const src of sources) {
      const f = (keyset ? { $and: [src.filter, keyset] } : src.filter) as Filter<AnyDoc>;
      const docs = await src.col.find(f, reading(session)).sort(sort).limit(count + 1).toArray();
      for (const d of docs) found.push(Object.assign(d, { _type: src.type }));
    }
    const cmp = (a: Document, b: Document) => {
      for (const k of all) {
        const c = compareValues(valueAt(a, k.path), valueAt(b, k.path));
        if (c !== 0) return k.descending !== backwards ? -c : c;
      }
      return 0;
    };
    if (sources.length > 1) found.sort(cmp);
    const more = found.length > count;
    const docs = found.slice(0, count);
    if (backwards) docs.reverse();
    const positionOf = (d: Document) => encodeCursor(all.map((k) => valueAt(d, k.path)));
    const out: { docs: Document[]; next?: string; prev?: string } = { docs };
    if (docs.length > 0) {
      if (backwards || more) out.next = positionOf(docs[docs.length - 1]);
      if (backwards ? more : cursor !== undefined) out.prev = positionOf(docs[0]);
    }
    return out;
  }

  history(q: HistoryQuery) {
    return mapped(this.historyIn(q));
  }
  private async historyIn(q: HistoryQuery, session?: ClientSession): Promise<Page<StoredVersion>> {
    const filter: Filter<HistoryDoc> = {};
    if (q.type) filter.t = q.type;
    if (q.id) filter.i = q.id;
    if (q.since !== undefined) filter.lu = { $gte: q.since };
    const newestFirst = [{ path: 'lu', descending: true }];
    const { docs, next, prev } = await this.page([{ col: this.versions as unknown as Collection<AnyDoc>, filter: filter as Filter<AnyDoc> }], newestFirst, q.count, q.cursor, session);
    return { items: docs.map((d) => toVersion(d.t, d as unknown as HistoryDoc)), next, prev };
  }

  /** The keys kept unique (init's option). */
  private unique: readonly UniqueKeys[] = [];

  /** Claims on unique keys: `_id` type, param and key; held by the resource `id` of type `t` since `at`. */
  private get claims() {
    return this.conn.db!.collection<{ _id: string; t: string; id: string; at: number }>('_unique');
  }

  /**
   * Claims the unique keys a write of type/id will hold (UniqueKeyError when another live resource
   * holds one, or another write under way claimed it); returns the claims newly taken, to give back
   * if the write does not happen. The claim's insert is atomic by `_id`, between servers too; a claim
   * whose holder no longer holds the key, older than a write may take, is void.
   */
  private async claimUniqueKeys(type: string, id: string, keys: { param: string; key: string }[], session?: ClientSession): Promise<string[]> {
    const col = this.readable(type);
    const taken: string[] = [];
    try {
      for (const u of keys) {
        const other = await col.findOne({ [field('k', u.param)]: u.key, _id: { $ne: id }, d: false, cn: { $exists: false } }, { session, projection: { _id: 1 } });
        if (other) throw new UniqueKeyError(type, u.param, u.key);
        const _id = `${type}\u0000${u.param}\u0000${u.key}`;
        for (let attempt = 0; ; attempt++) {
          const holder = await this.claims.findOne({ _id }, { session });
          if (holder?.id === id) break;
          // a claim of a write under way (or, after a void one was cleared, of another that got there first)
          if (holder && (attempt > 0 || session || Date.now() - holder.at < UNIQUE_UNDER_WAY_MS)) throw new UniqueKeyError(type, u.param, u.key);
          if (holder) await this.claims.deleteOne({ _id, id: holder.id, at: holder.at }, { session });
          try {
            await this.claims.insertOne({ _id, t: type, id, at: Date.now() }, { session });
            taken.push(_id);
            break;
          } catch (e) {
            if (!isDuplicateKey(e) || session || attempt > 2) throw isDuplicateKey(e) ? new UniqueKeyError(type, u.param, u.key) : e;
          }
        }
      }
    } catch (e) {
      await this.releaseClaims(taken, id, session);
      throw e;
    }
    return taken;
  }

  private async releaseClaims(ids: string[], id: string, session?: ClientSession): Promise<void> {
    for (const _id of ids) await this.claims.deleteOne({ _id, id }, { session });
  }

  /** After a write of type/id: its claims on keys it no longer holds are given back. */
  private async releaseDropped(type: string, id: string, keys: { param: string; key: string }[], session?: ClientSession): Promise<void> {
    const kept = new Set(keys.map((u) => `${type}\u0000${u.param}\u0000${u.key}`));
    for (const c of await this.claims.find({ t: type, id }, { session }).toArray()) if (!kept.has(c._id)) await this.claims.deleteOne({ _id: c._id, id }, { session });
  }

  /** A collection to read from: no index creation, a missing collection simply finds nothing. */
  private readable(type: string): Collection<AnyDoc> {
    return this.conn.db!.collection<AnyDoc>(type);
  }

  /** The filter of the conditions on resources of `type`; chains and _has run their inner step first. */
  private async filterOf(type: string, conditions: Condition[], session?: ClientSession, contained: SearchPlan['contained'] = 'false'): Promise<Filter<AnyDoc>> {
    const parts = await Promise.all(conditions.map((c) => this.conditionFilter(type, c, session)));
    const base = { d: false, ...CONTAINED_FILTER[contained ?? 'false'] };
    return parts.length ? { $and: [base, ...parts] } : base;
  }

  private async conditionFilter(type: string, c: Condition, session?: ClientSession): Promise<Filter<AnyDoc>> {
    const OPS: Record<Bound['op'], string> = { '<': '$lt', '<=': '$lte', '>': '$gt', '>=': '$gte' };
    switch (c.kind) {
      case 'id':
        return { _id: { [c.not ? '$nin' : '$in']: c.ids } };
      case 'lastUpdated':
        return rangeFilter(c.match, (b) => ({ lu: { [OPS[b.op]]: b.value } }));
      case 'key':
        return { [field('k', c.param)]: { [c.not ? '$nin' : '$in']: c.keys } };
      case 'keyPrefix': {
        const re = `^(?:${c.prefixes.map(escapeRegex).join('|')})`;
        return { [field('k', c.param)]: c.not ? { $not: new RegExp(re) } : { $regex: re } };
      }
      case 'string': {
        if (c.mode === 'exact') return { [field('se', c.param)]: { $in: c.values } };
        const f = field('s', c.param);
        const alts = c.values.map((v) => ({ [f]: { $regex: c.mode === 'contains' ? escapeRegex(v) : `^${escapeRegex(v)}` } }));
        return alts.length === 1 ? alts[0] : { $or: alts };
      }
      case 'range':
        return rangeFilter(
          c.match,
          (b) => ({ [field(b.on === 'low' ? 'dl' : 'dh', c.param)]: { [OPS[b.op]]: b.value } }),
          (key) => ({ [field('w', c.param)]: key }),
        );
      case 'missing':
        return { [field(MISSING_FIELD[c.index], c.param)]: { $exists: !c.missing } };
      case 'any':
        return { $or: await Promise.all(c.conditions.map((x) => this.conditionFilter(type, x, session))) };
      case 'all':
        return { $and: await Promise.all(c.conditions.map((x) => this.conditionFilter(type, x, session))) };
      case 'chain': {
        const targetType = c.targetTypes[0];
        const inner = await this.filterOf(targetType, c.conditions, session);
        const ids = await this.readable(targetType).find(inner, { ...reading(session), projection: { _id: 1 } }).limit(MAX_STEP_IDS + 1).toArray();
        if (ids.length > MAX_STEP_IDS) throw new QueryTooCostlyError(`The chain through ${c.param} matches more than ${MAX_STEP_IDS} ${targetType} resources; narrow it`);
        return { [field('k', c.param)]: { $in: ids.map((d) => `${targetType}/${d._id}`) } };
      }
      case 'has': {
        const inner = await this.filterOf(c.sourceType, c.conditions, session);
        const f = field('k', c.param);
        const docs = await this.readable(c.sourceType).find(inner, { ...reading(session), projection: { [f]: 1 } }).limit(MAX_STEP_IDS + 1).toArray();
        if (docs.length > MAX_STEP_IDS) throw new QueryTooCostlyError(`_has:${c.sourceType}:${c.param} matches more than ${MAX_STEP_IDS} resources; narrow it`);
        const ids = new Set<string>();
        for (const d of docs) for (const k of (valueAt(d, f) as string[] | null) ?? []) if (k.startsWith(`${type}/`)) ids.add(k.slice(type.length + 1));
        return { _id: { $in: [...ids] } };
      }
    }
  }

  search(plan: SearchPlan) {
    return mapped(this.searchIn(plan));
  }
  private async searchIn(plan: SearchPlan, session?: ClientSession): Promise<Page<StoredVersion>> {
    const sources = await Promise.all(
      plan.scopes.map(async (s) => ({ col: this.readable(s.type), filter: await this.filterOf(s.type, s.conditions, session, plan.contained), type: s.type })),
    );
    let total: number | undefined;
    if (plan.total !== 'none') {
      // an estimate counts at most ESTIMATE_LIMIT + 1 matches, and says nothing beyond ESTIMATE_LIMIT
      const limit = plan.total === 'estimate' ? ESTIMATE_LIMIT + 1 : undefined;
      total = 0;
      for (const src of sources) total += await src.col.countDocuments(src.filter, { ...reading(session), ...(limit ? { limit: limit - total } : {}) });
      if (limit && total > ESTIMATE_LIMIT) total = undefined;
    }
    if (plan.count === 0) return { items: [], total };
    // without _sort: creation order, so resources created while a client pages come last
    const keys = plan.sort.length ? plan.sort.map((k) => ({ path: sortField(k), descending: k.descending })) : [{ path: 'c', descending: false }];
    const { docs, next, prev } = await this.page(sources, keys, plan.count, plan.cursor, session);
    return { items: docs.map((d) => toVersion(d._type!, d as unknown as CurrentDoc)), total, next, prev };
  }

  readMany(refs: { type: string; id: string }[]) {
    return this.readManyIn(refs);
  }
  private async readManyIn(refs: { type: string; id: string }[], session?: ClientSession): Promise<StoredVersion[]> {
    const byType = new Map<string, string[]>();
    for (const r of refs) byType.set(r.type, [...(byType.get(r.type) ?? []), r.id]);
    const out: StoredVersion[] = [];
    for (const [type, ids] of byType) {
      const docs = await this.readable(type).find({ _id: { $in: ids }, d: false }, { session, projection: { i: 1, v: 1, lu: 1, d: 1, r: 1 } }).toArray();
      out.push(...docs.map((d) => toVersion(type, d as unknown as CurrentDoc)));
    }
    return out;
  }

  referencesOf(type: string, ids: string[], params: string[]) {
    return this.referencesOfIn(type, ids, params);
  }
  private async referencesOfIn(type: string, ids: string[], params: string[], session?: ClientSession): Promise<string[]> {
    if (ids.length === 0 || params.length === 0) return [];
    const fields = params.map((p) => field('k', p));
    const docs = await this.readable(type).find({ _id: { $in: ids }, d: false }, { session, projection: Object.fromEntries(fields.map((f) => [f, 1])) }).toArray();
    const out = new Set<string>();
    for (const d of docs) for (const f of fields) for (const k of (valueAt(d, f) as string[] | null) ?? []) if (/^[A-Z][A-Za-z]+\/[^/]+$/.test(k)) out.add(k);
    return [...out];
  }

  referencing(sources: { type: string; params: string[] }[], targets: string[], limit: number) {
    return this.referencingIn(sources, targets, limit);
  }
  private async referencingIn(sources: { type: string; params: string[] }[], targets: string[], limit: number, session?: ClientSession): Promise<StoredVersion[]> {
    const out: StoredVersion[] = [];
    if (targets.length === 0) return out;
    for (const s of sources) {
      if (s.params.length === 0 || out.length >= limit) continue;
      const filter = { d: false, cn: { $exists: false }, $or: s.params.map((p) => ({ [field('k', p)]: { $in: targets } })) };
      const docs = await this.readable(s.type).find(filter, { session, projection: { i: 1, v: 1, lu: 1, d: 1, r: 1 } }).sort({ _id: 1 }).limit(limit - out.length).toArray();
      out.push(...docs.map((d) => toVersion(s.type, d as unknown as CurrentDoc)));
    }
    return out;
  }

  async reindex(type: string, id: string, versionId: number, index: IndexEntries): Promise<boolean> {
    return this.serialized(`${type}/${id}`, async () => {
      const col = await this.collection(type);
      const doc = await col.findOne({ _id: id }, { projection: { i: 1, v: 1, lu: 1, d: 1, r: 1, c: 1 } });
      if (!doc || doc.v !== versionId || doc.d) return false;
      const res = await col.replaceOne(this.casFilter(id, versionId), { i: doc.i, v: doc.v, lu: doc.lu, d: false, r: doc.r, c: doc.c, ...indexFields(index) });
      if (res.matchedCount !== 1) return false;
      await this.replaceContained(type, id, doc.r as string | undefined, versionId, doc.lu as number, index.contained);
      return true;
    });
  }

  private get state() {
    return this.conn.db!.collection<StateDoc>('_state');
  }

  async getState<T>(key: string): Promise<T | undefined> {
    const doc = await this.state.findOne({ _id: key });
    return doc && live(doc) ? (JSON.parse(doc.value) as T) : undefined;
  }

  async setState(key: string, value: unknown, options: StateOptions = {}): Promise<void> {
    if (value === null || value === undefined) {
      await this.state.deleteOne({ _id: key });
      return;
    }
    const { _id, ...doc } = stateDoc(key, value, options);
    await mapped(this.state.replaceOne({ _id }, doc, { upsert: true }));
  }

  async claimState(key: string, value: unknown, options: StateOptions = {}): Promise<boolean> {
    // an expired value is no claim: remove it, then insert; the unique _id lets one insert win
    await this.state.deleteOne({ _id: key, e: { $lte: Date.now() } });
    try {
      await this.state.insertOne(stateDoc(key, value, options));
      return true;
    } catch (e) {
      if (isDuplicateKey(e)) return false;
      throw storeError(e);
    }
  }

  async releaseState(key: string, value: unknown): Promise<boolean> {
    return (await this.state.deleteOne({ _id: key, value: JSON.stringify(value) })).deletedCount === 1;
  }

  async listState<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    const docs = await this.state.find({ _id: { $gte: prefix, $lt: prefixEnd(prefix) } }).sort({ _id: 1 }).toArray();
    return docs.filter(live).map((d) => ({ key: d._id, value: JSON.parse(d.value) as T }));
  }

  async deleteStateGroup(group: string): Promise<number> {
    return (await this.state.deleteMany({ g: group })).deletedCount;
  }

  async purgeExpiredState(): Promise<number> {
    return (await this.state.deleteMany({ e: { $lte: Date.now() } })).deletedCount;
  }

  async transaction<T>(fn: (tx: ResourceStore) => Promise<T>): Promise<T> {
    if (!this.supportsTransactions) throw new Error('This MongoDB deployment does not support multi-document transactions');
    const session = this.conn.getClient().startSession();
    try {
      let result!: T;
      await mapped(
        session.withTransaction(async () => {
          result = await fn(this.bound(session));
        }),
      );
      return result;
    } finally {
      await session.endSession();
    }
  }

  private bound(session: ClientSession): ResourceStore {
    return transactionView(this, {
      read: (t, i) => this.readIn(t, i, session),
      vread: (t, i, v) => this.vreadIn(t, i, v, session),
      write: (t, i, m) => this.writeIn(t, i, m, session),
      history: (q) => this.historyIn(q, session),
      search: (p) => this.searchIn(p, session),
      readMany: (refs) => this.readManyIn(refs, session),
      referencesOf: (t, ids, p) => this.referencesOfIn(t, ids, p, session),
      referencing: (sources, targets, limit) => this.referencingIn(sources, targets, limit, session),
      reindex: (...a) => this.reindex(...a),
      transaction: (f) => f(this.bound(session)),
    });
  }
}
