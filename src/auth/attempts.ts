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

/**
 * Growing delays between failed tries at a secret, per subject, rather than a lock: `free` tries,
 * then each further try is checked only if it comes at least 1 s, 2 s, 4 s... (at most `maxDelayMs`)
 * after the previous failed one. Parallel-safe as Attempts is: each try is recorded before the
 * decision, and a try that is refused (not checked) withdraws its record, so only checked failures
 * count and slow down the next tries; they are forgotten after `windowMs`, or at a success.
 */
export class Throttle {
  constructor(
    private readonly store: ResourceStore,
    private readonly prefix: string,
    readonly free: number,
    private readonly maxDelayMs: number,
    private readonly windowMs: number,
  ) {}

  private group(subject: string) {
    return `${this.prefix}${createHash('sha256').update(subject).digest('base64url')}`;
  }

  /** The delay owed before the next check after `failures` failed ones. */
  delayAfter(failures: number): number {
    return failures < this.free ? 0 : Math.min(this.maxDelayMs, 1000 * 2 ** (failures - this.free));
  }

  /**
   * Records a try and says whether it may be checked now; `failures` counts the failed checks
   * before it. A refused try is withdrawn at once; `retryAfterMs` says when the next one may come;
   * `withdraw` takes back an allowed try that was not checked after all.
   */
  async take(subject: string): Promise<{ allowed: boolean; failures: number; retryAfterMs: number; withdraw: () => Promise<void> }> {
    const group = this.group(subject);
    const key = `${group}:${randomUUID()}`;
    const now = Date.now();
    await this.store.setState(key, now, { group, expiresAt: now + this.windowMs });
    const others = (await this.store.listState<number>(`${group}:`)).filter((r) => r.key !== key).map((r) => r.value);
    const wait = others.length ? Math.max(...others) + this.delayAfter(others.length) - now : 0;
    const withdraw = () => this.store.setState(key, null);
    if (wait > 0) {
      await withdraw();
      return { allowed: false, failures: others.length, retryAfterMs: wait, withdraw };
    }
    return { allowed: true, failures: others.length, retryAfterMs: 0, withdraw };
  }

  /** Forgets the failures (after a success). */
  async clear(subject: string): Promise<void> {
    await this.store.deleteStateGroup(this.group(subject));
  }
}
