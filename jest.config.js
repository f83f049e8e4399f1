/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // whether MONGODB_URI's deployment has transactions (MONGODB_TRANSACTIONS), found once per run
  globalSetup: '<rootDir>/test/global-setup.ts',
  // Type checking is `npm run build`'s job; tests only transpile.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 60000,
  maxWorkers: 2,
};
