import { FhirError } from '../outcome';
import { InvalidCursorError, QueryTooCostlyError, StorageFullError, TimeBudgetError, WriteContentionError } from '../store/errors';

/**
 * What the client is told when a store could not serve its request: the store's errors as FHIR
 * errors (status and OperationOutcome). Undefined for anything else, which is the server's fault.
 */
export function storeFhirError(err: unknown): FhirError | undefined {
  if (err instanceof WriteContentionError) return new FhirError(409, 'conflict', 'Too many concurrent writes to this resource; try again');
  if (err instanceof QueryTooCostlyError) return new FhirError(400, 'too-costly', err.message);
  if (err instanceof TimeBudgetError) return new FhirError(503, 'too-costly', `${err.message} (REQUEST_TIME_LIMIT): nothing more was done; narrow the search, or send fewer entries at once`);
  if (err instanceof InvalidCursorError) return new FhirError(400, 'invalid', `_cursor: ${err.message}; follow the links of the Bundle as they are`, '_cursor');
  if (err instanceof StorageFullError) return new FhirError(507, 'no-store', `${err.message}; nothing was stored, try again later`);
  return undefined;
}

/** A FHIR error for what a client can be told, or the error as it is (a fault of the server: 500). */
export function asFhirError(err: unknown): unknown {
  return err instanceof FhirError ? err : (storeFhirError(err) ?? err);
}
