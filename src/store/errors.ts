/**
 * What a store reports about a request it cannot serve, in its own terms; the FHIR layer maps each
 * to an HTTP status and an OperationOutcome (src/fhir/errors.ts). A store never speaks HTTP.
 */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Concurrent writers kept winning the race for the same resource. */
export class WriteContentionError extends StoreError {}

/** The query would cost more than a request may: a step of it matches too many resources. */
export class QueryTooCostlyError extends StoreError {}

/** The request ran out of its time budget before the store could answer it (the statement was stopped). */
export class TimeBudgetError extends StoreError {}

/** A paging position that this store did not issue (tampered with, or from another query shape). */
export class InvalidCursorError extends StoreError {}

/** The disk (or the database's quota) is full: nothing was written; writes work again once there is room. */
export class StorageFullError extends StoreError {}

/** A write would give a unique key (an INS) to a second live resource of its type: nothing was written. */
export class UniqueKeyError extends StoreError {
  constructor(
    readonly type: string,
    readonly param: string,
    readonly key: string,
  ) {
    super(`Another ${type} already holds ${param} ${key}`);
  }
}
