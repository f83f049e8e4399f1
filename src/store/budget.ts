import { AsyncLocalStorage } from 'node:async_hooks';
import { TimeBudgetError } from './errors';

/**
 * The time budget of the request a piece of work belongs to: set once where a request starts, read
 * by the stores (SQLite checks it while a statement runs, MongoDB passes it as maxTimeMS) and by
 * loops over many steps (Bundle entries, include rounds), so that no request holds the server.
 */
const current = new AsyncLocalStorage<{ deadline: number; limitMs: number }>();

export function withTimeBudget<T>(limitMs: number, fn: () => Promise<T>): Promise<T> {
  return current.run({ deadline: Date.now() + limitMs, limitMs }, fn);
}

/** Epoch ms by which the current request must be done; Infinity outside a request. */
export function deadline(): number {
  return current.getStore()?.deadline ?? Infinity;
}

/** Milliseconds left to the current request, at least 1; undefined outside a request. */
export function remainingMs(): number | undefined {
  const b = current.getStore();
  return b ? Math.max(1, b.deadline - Date.now()) : undefined;
}

export function budgetExceeded(): TimeBudgetError {
  const limit = current.getStore()?.limitMs;
  return new TimeBudgetError(`The request used up its time budget${limit ? ` of ${limit / 1000} s` : ''}`);
}

/** Throws TimeBudgetError once the current request is past its deadline. */
export function checkBudget(): void {
  if (Date.now() > deadline()) throw budgetExceeded();
}
