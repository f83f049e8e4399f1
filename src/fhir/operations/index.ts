import { everythingOperation } from './everything';
import type { Operation } from './operation';
import { reindexOperation } from './reindex';
import { validateOperation } from './validate';

export type { Operation, OperationLevel, OperationTarget } from './operation';

/** Every operation the server implements: the route table calls them, the CapabilityStatement lists them. A new operation is a file here, added to this list. */
export const OPERATIONS: readonly Operation[] = [validateOperation, everythingOperation, reindexOperation];
