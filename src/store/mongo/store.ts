import mongoose from 'mongoose';
import { ObjectId, type ClientSession, type Collection, type Db, type Filter } from 'mongodb';
import { ESTIMATE_LIMIT, type SearchPlan } from '../../search/plan';
import type { IndexEntries } from '../../search/extract';
import { transactionView } from '../common/transaction-view';
import { nextVersion, storedVersion } from '../common/versions';
import { WriteContentionError } from '../errors';
import type { HistoryQuery, Mutator, Page, ResourceStore, StateOptions, StoredVersion, UniqueKeys, WriteResult } from '../types';
import { inspectDeployment, isDuplicateKey, mapped, reading } from './deployment';
import { filterOf } from './filters';
import { field, indexFields, valueAt } from './fields';
import { pageDocs, sortField } from './paging';
import { createStoreIndexes, createTypeCollection, VERSION_FIELDS, type AnyDoc, type CurrentDoc, type HistoryDoc } from './schema';
import { MongoState } from './state';
import { UniqueClaims } from './unique-claims';

const pause = (attempt: number) => new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 + attempt * 2)));

/** A current or history document as a StoredVersion. */
const docVersion = (type: string, d: { i: string; v: number; lu: number; d: boolean; r?: string }): StoredVersion => storedVersion(type, d.i, d.v, d.lu, !!d.d, d.r);

/** The MongoDB engine (mongoose connection, native collections for the hot paths). */
export class MongoStore implements ResourceStore {
  readonly engine = 'mongodb' as const;
  readonly location: string;
  supportsTransactions = false;
  private conn!: mongoose.Connection;
  private db!: Db;
  private versions!: Collection<HistoryDoc>;
  private claims!: UniqueClaims;
  private state!: MongoState;
  private readonly ensured = new Map<string, Promise<Collection<CurrentDoc>>>();
  /** Wildcard indexes: on MongoDB yes; FerretDB v1 accepts their creation and then fails every insert. */
  private wildcardIndexes = true;
  /** FerretDB: only a filter on `_id` alone uses its primary key, and its conditional replace is not atomic anyway. */
  private ferret = false;

  constructor(private readonly uri: string) {
    // Never print credentials.
    this.location = uri.replace(/\/\/[^@/]*@/, '//***@').replace(/\?.*$/, '');
  }

  async init(options: { unique?: readonly UniqueKeys[] } = {}): Promise<void> {
    this.conn = mongoose.createConnection(this.uri, { autoIndex: false, autoCreate: false, maxPoolSize: 20, serverSelectionTimeoutMS: 10000 });
    await this.conn.asPromise();
    this.db = this.conn.db!;
    const deployment = await inspectDeployment(this.conn);
    this.supportsTransactions = deployment.transactions;
    this.ferret = deployment.ferret;
    this.wildcardIndexes = !this.ferret;
    this.claims = new UniqueClaims(this.db, options.unique ?? []);
    this.state = new MongoState(this.db);
    this.versions = await createStoreIndexes(this.conn);
  }

  async close(): Promise<void> {
    await this.conn?.close();
  }

  /** The collection of a type to write to, with its indexes created on first use. */
  private collection(type: string): Promise<Collection<CurrentDoc>> {
    let p = this.ensured.get(type);
    if (!p) {
      p = createTypeCollection(this.conn, type, this.wildcardIndexes);
      p.catch(() => this.ensured.delete(type));
      this.ensured.set(type, p);
    }
    return p;
  }

  /** A collection to read from: no index creation, a missing collection simply finds nothing. */
  private readable(type: string): Collection<AnyDoc> {
    return this.db.collection<AnyDoc>(type);
  }

  /** The compare-and-set filter of a write: the version read must still be current (atomic on MongoDB). */
  private casFilter(id: string, version: number): Filter<CurrentDoc> {
    return this.ferret ? { _id: id } : { _id: id, v: version };
  }

  read(type: string, id: string) {
    return this.readIn(type, id);
  }
  private async readIn(type: string, id: string, session?: ClientSession) {
    const doc = await (await this.collection(type)).findOne({ _id: id }, { session, projection: VERSION_FIELDS });
    return doc ? docVersion(type, doc) : undefined;
  }

  vread(type: string, id: string, versionId: number) {
    return this.vreadIn(type, id, versionId);
  }
  private async vreadIn(type: string, id: string, versionId: number, session?: ClientSession) {
    const doc = await this.versions.findOne({ _id: `${type}/${id}/${versionId}` }, { session });
    return doc ? docVersion(type, doc) : undefined;
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
    const unique = this.claims.declares(type);
    for (let attempt = 0; attempt < 200; attempt++) {
      const doc = await col.findOne({ _id: id }, { session, projection: { ...VERSION_FIELDS, c: 1 } });
      const previous = doc ? docVersion(type, doc) : undefined;
      const { versionId, lastUpdated } = nextVersion(previous);
      const input = mutate(previous, { versionId, lastUpdated });
      if (!input) return { version: previous!, previous, unchanged: true };
      const json = input.resource ? JSON.stringify(input.resource) : undefined;
      const deleted = !input.resource;
      const keys = deleted ? [] : this.claims.keysOf(type, input.index);
      const taken = unique ? await this.claims.claim(type, id, keys, session) : [];
      // `c`: the order the resource was created in, kept across versions: the default order of searches
      const next: Omit<CurrentDoc, '_id'> = { i: id, v: versionId, lu: lastUpdated, d: deleted, c: doc?.c ?? new ObjectId().toHexString(), ...(json ? { r: json } : {}), ...(deleted ? {} : indexFields(input.index)) };
      let stored: boolean;
      try {
        stored = await this.replaceCurrent(col, id, doc?.v, next, session);
      } catch (e) {
        await this.claims.release(taken, id, session);
        throw e;
      }
      if (!stored) {
        await this.claims.release(taken, id, session);
        await pause(attempt);
        continue;
      }
      if (unique) await this.claims.releaseDropped(type, id, keys, session);
      await this.versions.insertOne({ _id: `${type}/${id}/${versionId}`, t: type, i: id, v: versionId, lu: lastUpdated, d: deleted, ...(json ? { r: json } : {}) } as HistoryDoc, { session });
      await this.replaceContained(type, id, doc?.r, versionId, lastUpdated, input.resource ? input.index.contained : undefined, session);
      return { version: { type, id, versionId, lastUpdated, deleted, json }, previous, unchanged: false };
    }
    throw new WriteContentionError(`${type}: too many concurrent writers`);
  }

  /** Stores the next current document if the version read (`version`, undefined: none) is still current; false when another writer got there first. */
  private async replaceCurrent(col: Collection<CurrentDoc>, id: string, version: number | undefined, next: Omit<CurrentDoc, '_id'>, session?: ClientSession): Promise<boolean> {
    if (version !== undefined) return (await col.replaceOne(this.casFilter(id, version), next, { session })).matchedCount > 0;
    try {
      await col.insertOne({ _id: id, ...next } as CurrentDoc, { session });
      return true;
    } catch (e) {
      if (isDuplicateKey(e) && !session) return false;
      throw e;
    }
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

  history(q: HistoryQuery) {
    return mapped(this.historyIn(q));
  }
  private async historyIn(q: HistoryQuery, session?: ClientSession): Promise<Page<StoredVersion>> {
    const filter: Filter<HistoryDoc> = {};
    if (q.type) filter.t = q.type;
    if (q.id) filter.i = q.id;
    if (q.since !== undefined) filter.lu = { $gte: q.since };
    const newestFirst = [{ path: 'lu', descending: true }];
    const { docs, next, prev } = await pageDocs([{ col: this.versions as unknown as Collection<AnyDoc>, filter: filter as Filter<AnyDoc> }], newestFirst, q.count, q.cursor, session);
    return { items: docs.map((d) => docVersion(d.t, d as unknown as HistoryDoc)), next, prev };
  }

  search(plan: SearchPlan) {
    return mapped(this.searchIn(plan));
  }
  private async searchIn(plan: SearchPlan, session?: ClientSession): Promise<Page<StoredVersion>> {
    const sources = await Promise.all(plan.scopes.map(async (s) => ({ col: this.readable(s.type), filter: await filterOf(this.db, s.type, s.conditions, session, plan.contained), type: s.type })));
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
    const { docs, next, prev } = await pageDocs(sources, keys, plan.count, plan.cursor, session);
    return { items: docs.map((d) => docVersion(d._type!, d as unknown as CurrentDoc)), total, next, prev };
  }

  readMany(refs: { type: string; id: string }[]) {
    return this.readManyIn(refs);
  }
  private async readManyIn(refs: { type: string; id: string }[], session?: ClientSession): Promise<StoredVersion[]> {
    const byType = new Map<string, string[]>();
    for (const r of refs) byType.set(r.type, [...(byType.get(r.type) ?? []), r.id]);
    const out: StoredVersion[] = [];
    for (const [type, ids] of byType) {
      const docs = await this.readable(type).find({ _id: { $in: ids }, d: false }, { session, projection: VERSION_FIELDS }).toArray();
      out.push(...docs.map((d) => docVersion(type, d as unknown as CurrentDoc)));
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
      const docs = await this.readable(s.type).find(filter, { session, projection: VERSION_FIELDS }).sort({ _id: 1 }).limit(limit - out.length).toArray();
      out.push(...docs.map((d) => docVersion(s.type, d as unknown as CurrentDoc)));
    }
    return out;
  }

  async reindex(type: string, id: string, versionId: number, index: IndexEntries): Promise<boolean> {
    return this.serialized(`${type}/${id}`, async () => {
      const col = await this.collection(type);
      const doc = await col.findOne({ _id: id }, { projection: { ...VERSION_FIELDS, c: 1 } });
      if (!doc || doc.v !== versionId || doc.d) return false;
      const res = await col.replaceOne(this.casFilter(id, versionId), { i: doc.i, v: doc.v, lu: doc.lu, d: false, r: doc.r, c: doc.c, ...indexFields(index) });
      if (res.matchedCount !== 1) return false;
      await this.replaceContained(type, id, doc.r, versionId, doc.lu, index.contained);
      return true;
    });
  }

  getState<T>(key: string): Promise<T | undefined> {
    return this.state.get<T>(key);
  }
  setState(key: string, value: unknown, options?: StateOptions): Promise<void> {
    return this.state.set(key, value, options);
  }
  claimState(key: string, value: unknown, options?: StateOptions): Promise<boolean> {
    return this.state.claim(key, value, options);
  }
  releaseState(key: string, value: unknown): Promise<boolean> {
    return this.state.release(key, value);
  }
  listState<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    return this.state.list<T>(prefix);
  }
  deleteStateGroup(group: string): Promise<number> {
    return this.state.deleteGroup(group);
  }
  purgeExpiredState(): Promise<number> {
    return this.state.purgeExpired();
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
