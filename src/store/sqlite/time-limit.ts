import type Database from 'better-sqlite3';
import { budgetExceeded, deadline } from '../budget';
import { TimeBudgetError } from '../errors';

/**
 * The name of a SQL function that every read statement of a search or history calls on the rows it
 * examines (scopes and driving index lookups): every 256 calls it checks the deadline of the
 * statement running and stops the statement once it has passed, so that no query holds the event
 * loop (better-sqlite3 is synchronous) beyond the request's time budget or QUERY_TIME_LIMIT.
 */
export const BUDGET = 'esf_budget';

/** The time limits of the read statements of one connection. */
export class StatementTimeLimit {
  /** When the statement running now must stop: the request's deadline, or sooner the limit of one statement. */
  private statementDeadline = Infinity;

  constructor(private readonly queryTimeLimitMs: number) {}

  /** Defines BUDGET on the connection. */
  install(db: Database.Database): void {
    let ticks = 0;
    db.function(BUDGET, { deterministic: false }, (_row: unknown) => {
      if ((++ticks & 255) === 0 && Date.now() > this.statementDeadline) throw this.overrun();
      return 1;
    });
  }

  /** Runs read statements under the time limits: they hold the event loop for at most queryTimeLimitMs. */
  timed<T>(run: () => T): T {
    this.statementDeadline = Math.min(deadline(), Date.now() + this.queryTimeLimitMs);
    try {
      return run();
    } finally {
      this.statementDeadline = Infinity;
    }
  }

  private overrun(): TimeBudgetError {
    if (this.statementDeadline < deadline()) return new TimeBudgetError(`The query ran longer than one query may (${this.queryTimeLimitMs} ms, QUERY_TIME_LIMIT)`);
    return budgetExceeded();
  }
}
