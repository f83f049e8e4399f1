import type { ResourceStore } from '../types';

/** Server-owned state is never part of a transaction: a transaction's view passes it through. */
type StateOperation = 'getState' | 'setState' | 'claimState' | 'releaseState' | 'listState' | 'deleteStateGroup' | 'purgeExpiredState';

/** What an engine binds to a transaction: its resource operations. */
export type TransactionOperations = Omit<ResourceStore, 'engine' | 'location' | 'supportsTransactions' | 'init' | 'close' | StateOperation>;

/** The store a transaction works through: the engine's own operations bound to the transaction. */
export function transactionView(store: ResourceStore, ops: TransactionOperations): ResourceStore {
  const state: Pick<ResourceStore, StateOperation> = {
    getState: (k) => store.getState(k),
    setState: (k, v, o) => store.setState(k, v, o),
    claimState: (k, v, o) => store.claimState(k, v, o),
    releaseState: (k, v) => store.releaseState(k, v),
    listState: (p) => store.listState(p),
    deleteStateGroup: (g) => store.deleteStateGroup(g),
    purgeExpiredState: () => store.purgeExpiredState(),
  };
  return { engine: store.engine, location: store.location, supportsTransactions: true, inTransaction: true, init: async () => undefined, close: async () => undefined, ...state, ...ops };
}
