import { MongoClient } from 'mongodb';
import { helloSupportsTransactions } from '../../src/store/mongo';

/**
 * Runs once before the suites: when MONGODB_URI is set and MONGODB_TRANSACTIONS is not, asks that
 * server whether it runs multi-document transactions and says so in MONGODB_TRANSACTIONS (1 or 0),
 * which the workers inherit. A suite then knows while it defines its tests which ones the engine
 * cannot run, and jest reports those as skipped (see Engine.transactions).
 */
export default async function globalSetup(): Promise<void> {
  const uri = process.env.MONGODB_URI;
  if (!uri || process.env.MONGODB_TRANSACTIONS !== undefined) return;
  const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10000 });
  try {
    process.env.MONGODB_TRANSACTIONS = helloSupportsTransactions(await client.db().admin().command({ hello: 1 })) ? '1' : '0';
  } finally {
    await client.close();
  }
}
