import type { ClientSession, Db } from 'mongodb';
import { uniqueKeysOf } from '../common/keys';
import type { IndexEntries } from '../../search/extract';
import { UniqueKeyError } from '../errors';
import type { UniqueKeys } from '../types';
import { isDuplicateKey } from './deployment';
import { field } from './fields';
import { CLAIMS, type AnyDoc, type ClaimDoc } from './schema';

/** A claim on a unique key younger than this is a write under way; older, and its holder no longer holds the key, it is void. */
const UNIQUE_UNDER_WAY_MS = 30_000;

/**
 * The keys kept unique (an INS): a write claims each key it will hold by inserting a document keyed
 * by the key into `_unique` before it writes (atomic by `_id`, between servers too), and gives back
 * the claims of keys it no longer holds after.
 */
export class UniqueClaims {
  constructor(
    private readonly db: Db,
    /** the keys kept unique (init's option) */
    private readonly unique: readonly UniqueKeys[],
  ) {}

  private get claims() {
    return this.db.collection<ClaimDoc>(CLAIMS);
  }

  /** Whether resources of the type hold keys kept unique. */
  declares(type: string): boolean {
    return this.unique.some((u) => u.type === type);
  }

  /** The unique keys a version of type holds (none for a deletion). */
  keysOf(type: string, index: IndexEntries | undefined): { param: string; key: string }[] {
    return uniqueKeysOf(this.unique, type, index);
  }

  /**
   * Claims the unique keys a write of type/id will hold (UniqueKeyError when another live resource
   * holds one, or another write under way claimed it); returns the claims newly taken, to give back
   * if the write does not happen. A claim whose holder no longer holds the key, older than a write
   * may take, is void.
   */
  async claim(type: string, id: string, keys: { param: string; key: string }[], session?: ClientSession): Promise<string[]> {
    const col = this.db.collection<AnyDoc>(type);
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
      await this.release(taken, id, session);
      throw e;
    }
    return taken;
  }

  /** Gives back claims taken for a write that did not happen. */
  async release(ids: string[], id: string, session?: ClientSession): Promise<void> {
    for (const _id of ids) await this.claims.deleteOne({ _id, id }, { session });
  }

  /** After a write of type/id: its claims on keys it no longer holds are given back. */
  async releaseDropped(type: string, id: string, keys: { param: string; key: string }[], session?: ClientSession): Promise<void> {
    const kept = new Set(keys.map((u) => `${type}\u0000${u.param}\u0000${u.key}`));
    for (const c of await this.claims.find({ t: type, id }, { session }).toArray()) if (!kept.has(c._id)) await this.claims.deleteOne({ _id: c._id, id }, { session });
  }
}
