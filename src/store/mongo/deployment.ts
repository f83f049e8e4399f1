import type mongoose from 'mongoose';
import type { ClientSession } from 'mongodb';
import { budgetExceeded, remainingMs } from '../budget';
import { StorageFullError } from '../errors';

/** What a deployment's `hello` says of its topology. */
export interface Hello {
  setName?: string;
  msg?: string;
  logicalSessionTimeoutMinutes?: number;
}

/** Multi-document transactions need a replica set or a sharded cluster, with sessions (FerretDB v1 has neither). */
export const hasMultiDocumentTransactions = (hello: Hello): boolean => (!!hello.setName || hello.msg === 'isdbgrid') && hello.logicalSessionTimeoutMinutes !== undefined;

/** What the deployment behind a connection offers: transactions, and whether it is FerretDB (`buildInfo.ferretdbVersion`). */
export async function inspectDeployment(conn: mongoose.Connection): Promise<{ transactions: boolean; ferret: boolean }> {
  const admin = conn.db!.admin();
  const transactions = hasMultiDocumentTransactions((await admin.command({ hello: 1 })) as Hello);
  const build = (await admin.command({ buildInfo: 1 })) as { ferretdbVersion?: string };
  return { transactions, ferret: build.ferretdbVersion !== undefined };
}

/** Options of a read made for a request: its session, and no more time than the request has left. */
export function reading(session?: ClientSession): { session?: ClientSession; maxTimeMS?: number } {
  const ms = remainingMs();
  return ms === undefined ? { session } : { session, maxTimeMS: Math.ceil(ms) };
}

export const isDuplicateKey = (e: unknown) => (e as { code?: number })?.code === 11000;

/** MongoDB's errors that mean something to the caller, as store errors; the others as they are. */
export function storeError(e: unknown): unknown {
  const code = (e as { code?: number })?.code;
  if (code === 50) return budgetExceeded(); // MaxTimeMSExpired
  if (code === 14031) return new StorageFullError('The database has no room left to write (disk full)'); // OutOfDiskSpace
  return e;
}

export const mapped = <T>(p: Promise<T>): Promise<T> =>
  p.catch((e: unknown) => {
    throw storeError(e);
  });
