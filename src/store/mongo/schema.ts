import mongoose from 'mongoose';
import type { Collection, Document } from 'mongodb';

/**
 * The collections and their indexes. One collection per resource type holds the current version of
 * each resource with its index entries (in per-parameter fields: fields.ts); `_history` holds every
 * version of every resource; `_state` server state; `_unique` the claims on unique keys. Indexes are
 * created idempotently when the store opens (a type's collection: on its first use), never dropped.
 */
export interface CurrentDoc {
  /** the resource id */
  _id: string;
  i: string;
  v: number;
  lu: number;
  d: boolean;
  /** the resource's JSON; absent for a deletion */
  r?: string;
  /** the order the resource was created in (an ObjectId's hex), kept across versions */
  c?: string;
  /** a contained resource's container, `Type/id` */
  cn?: string;
  [field: string]: unknown;
}

/** A document of any of our collections: string ids everywhere. */
export type AnyDoc = Document & { _id: string };

export interface HistoryDoc {
  /** `Type/id/version` */
  _id: string;
  t: string;
  i: string;
  v: number;
  lu: number;
  d: boolean;
  r?: string;
}

/** A value of server-owned state: JSON text, expiry (epoch ms), group. */
export interface StateDoc {
  _id: string;
  value: string;
  e?: number;
  g?: string;
}

/** A claim on a unique key: `_id` type, param and key; held by the resource `id` of type `t` since `at`. */
export interface ClaimDoc {
  _id: string;
  t: string;
  id: string;
  at: number;
}

export const HISTORY = '_history';
export const STATE = '_state';
export const CLAIMS = '_unique';

/** The fields a StoredVersion is read from. */
export const VERSION_FIELDS = { i: 1, v: 1, lu: 1, d: 1, r: 1 } as const;

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

/** The indexes of the collections every store has (state, claims, history); returns the history collection. */
export async function createStoreIndexes(conn: mongoose.Connection): Promise<Collection<HistoryDoc>> {
  const db = conn.db!;
  await db.collection(STATE).createIndex({ g: 1 });
  await db.collection(CLAIMS).createIndex({ t: 1, id: 1 });
  await db.collection(STATE).createIndex({ e: 1 });
  const History = conn.model<HistoryDoc>('History', historySchema, HISTORY);
  await History.createIndexes();
  return History.collection as unknown as Collection<HistoryDoc>;
}

/** The collection of a resource type with its indexes; `wildcard`: whether the deployment can have wildcard indexes. */
export async function createTypeCollection(conn: mongoose.Connection, type: string, wildcard: boolean): Promise<Collection<CurrentDoc>> {
  const Model = conn.model<CurrentDoc>(`R_${type}`, currentSchema, type);
  await Model.createIndexes();
  if (wildcard) {
    for (const f of WILDCARD_FIELDS) await Model.collection.createIndex({ [`${f}.$**`]: 1 });
  }
  for (const spec of COMPOUND_INDEXES[type] ?? []) await Model.collection.createIndex(spec);
  return Model.collection as unknown as Collection<CurrentDoc>;
}
