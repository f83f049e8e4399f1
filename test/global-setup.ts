import { MongoClient } from 'mongodb';
import { hasMultiDocumentTransactions, type Hello } from '../src/store/mongo/deployment';

/**
 * Once per jest run (jest.config.js globalSetup): whether the MongoDB of MONGODB_URI has
 * multi-document transactions, in MONGODB_TRANSACTIONS (1 or 0), which the suites read to skip
 * what needs them there as skipped tests jest reports (test/helpers/engines.ts transactionTest).
 */
export default async function globalSetup(): Promise<void> {
  const uri = process.env.MONGODB_URI;
  if (!uri) return;
  const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    process.env.MONGODB_TRANSACTIONS = hasMultiDocumentTransactions((await client.db('admin').command({ hello: 1 })) as Hello) ? '1' : '0';
  } finally {
    await client.close();
  }
}
