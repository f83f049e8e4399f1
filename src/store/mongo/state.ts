import type { Db } from 'mongodb';
import { prefixEnd } from '../common/keys';
import type { StateOptions } from '../types';
import { isDuplicateKey, mapped, storeError } from './deployment';
import { STATE, type StateDoc } from './schema';

const live = (d: StateDoc) => d.e === undefined || d.e > Date.now();
const stateDoc = (key: string, value: unknown, options: StateOptions): StateDoc => ({
  _id: key,
  value: JSON.stringify(value),
  ...(options.expiresAt !== undefined ? { e: options.expiresAt } : {}),
  ...(options.group !== undefined ? { g: options.group } : {}),
});

/**
 * Server state (see ResourceStore.getState) in `_state`: `_id` the key, the value as JSON text,
 * `e` its expiry, `g` its group. An expired value stays until purged, and no reader sees it.
 */
export class MongoState {
  constructor(private readonly db: Db) {}

  private get state() {
    return this.db.collection<StateDoc>(STATE);
  }

  async get<T>(key: string): Promise<T | undefined> {
    const doc = await this.state.findOne({ _id: key });
    return doc && live(doc) ? (JSON.parse(doc.value) as T) : undefined;
  }

  async set(key: string, value: unknown, options: StateOptions = {}): Promise<void> {
    if (value === null || value === undefined) {
      await this.state.deleteOne({ _id: key });
      return;
    }
    const { _id, ...doc } = stateDoc(key, value, options);
    await mapped(this.state.replaceOne({ _id }, doc, { upsert: true }));
  }

  async claim(key: string, value: unknown, options: StateOptions = {}): Promise<boolean> {
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

  async release(key: string, value: unknown): Promise<boolean> {
    return (await this.state.deleteOne({ _id: key, value: JSON.stringify(value) })).deletedCount === 1;
  }

  async list<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    const docs = await this.state.find({ _id: { $gte: prefix, $lt: prefixEnd(prefix) } }).sort({ _id: 1 }).toArray();
    return docs.filter(live).map((d) => ({ key: d._id, value: JSON.parse(d.value) as T }));
  }

  async deleteGroup(group: string): Promise<number> {
    return (await this.state.deleteMany({ g: group })).deletedCount;
  }

  async purgeExpired(): Promise<number> {
    return (await this.state.deleteMany({ e: { $lte: Date.now() } })).deletedCount;
  }
}
