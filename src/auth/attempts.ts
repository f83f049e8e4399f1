import { createHash, randomUUID } from 'node:crypto';
import type { ResourceStore } from '../store/types';

/**
 * Limits the tries at a secret (a password, a one-time code) per subject within a time window,
 * also against tries sent in parallel: each try is recorded as a value of its own before the secret
 * is checked, and only a try that finds itself among the first `max` live ones may be checked. No
 * read-modify-write of a counter, so concurrent tries (from one server or several on one store)
 * cannot all read the same count; each try expires after the window.
 */
export class Attempts {
  constructor(
    private readonly store: ResourceStore,
    private readonly prefix: string,
    readonly max: number,
    private readonly windowMs: number,
  ) {}

  /** by a digest of the subject: any text (a mistyped login) makes a key of fixed size that never prefixes another */
  private group(subject: string) {
    return `${this.prefix}${createHash('sha256').update(subject).digest('base64url')}`;
  }

  /**
   * Records a try. `tries` counts the live tries, this one included; the k-th recorded try counts
   * at least k, so at most `max` tries in a window are ever `allowed` (to have the secret checked).
   * The try is forgotten after the window.
   */
  async take(subject: string): Promise<{ tries: number; allowed: boolean }> {
    const group = this.group(subject);
    await this.store.setState(`${group}:${randomUUID()}`, 1, { group, expiresAt: Date.now() + this.windowMs });
    const tries = (await this.store.listState(`${group}:`)).length;
    return { tries, allowed: tries <= this.max };
  }

  /** Forgets the tries (after a success). */
  async clear(subject: string): Promise<void> {
    await this.store.deleteStateGroup(this.group(subject));
  }
}
