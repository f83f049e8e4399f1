/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Type checking is `npm run build`'s job; tests only transpile.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 60000,
  // tells the suites whether the MongoDB of MONGODB_URI runs transactions (MONGODB_TRANSACTIONS)
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  maxWorkers: 2,
};
