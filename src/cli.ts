import fs from 'node:fs';
import { Command, Option } from 'commander';
import { loadConfig } from './config';
import { createStore } from './server';
import { AccountRegistry, AUTH_METHODS, CLIENT_KINDS, ClientRegistry, type ClientKind, type ClientAuthMethod } from './auth/registry';
import { pruneKeys, rotateKeys } from './auth/keys';
import { CHANNELS, type Channel } from './messaging';
import type { ResourceStore } from './store/types';

/**
 * The administrator's command line: `npm run cli -- <command>`. It works on the same store as the
 * server (DATA_DIR or MONGODB_URI), and may run while the server runs.
 */
async function withStore<T>(fn: (store: ResourceStore) => Promise<T>): Promise<T> {
  const store = createStore(loadConfig());
  await store.init();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const program = new Command('espace-sante-cli').description('Administration of espace-sante-fhir: clients (apps and systems), patient accounts, signing keys');

const client = program.command('client').description('the client registry (catalogue of apps and systems)');
client
  .command('add')
  .description('register a client')
  .requiredOption('--id <clientId>', 'client id')
  .option('--name <name>', 'name shown to patients on the consent page')
  .addOption(new Option('--kind <kind>', 'patient app from the catalogue, professional software or backend system').choices(CLIENT_KINDS).makeOptionMandatory())
  .requiredOption('--scope <scopes>', 'the scopes the client may receive, space-separated (e.g. "openid fhirUser launch/patient offline_access patient/*.rs")')
  .option('--redirect-uri <uri...>', 'redirect URIs (apps)')
  .addOption(new Option('--auth <method>', 'token endpoint authentication').choices(AUTH_METHODS))
  .option('--jwks <file>', 'file holding the public JWKS (private_key_jwt)')
  .option('--jwks-uri <url>', 'URL of the public JWKS (private_key_jwt)')
  .action(async (o: { id: string; name?: string; kind: ClientKind; scope: string; redirectUri?: string[]; auth?: ClientAuthMethod; jwks?: string; jwksUri?: string }) => {
    const authMethod: ClientAuthMethod = o.auth ?? (o.jwks || o.jwksUri ? 'private_key_jwt' : o.kind === 'backend' ? 'client_secret_basic' : 'none');
    const c = await withStore((s) =>
      new ClientRegistry(s).add({
        clientId: o.id,
        name: o.name ?? o.id,
        kind: o.kind,
        scope: o.scope,
        redirectUris: o.redirectUri ?? [],
        authMethod,
        jwks: o.jwks ? JSON.parse(fs.readFileSync(o.jwks, 'utf8')) : undefined,
        jwksUri: o.jwksUri,
      }),
    );
    process.stdout.write(`client ${c.clientId} registered (${c.kind}, ${c.authMethod})\n`);
    if (c.secret) process.stdout.write(`client secret (shown once): ${c.secret}\n`);
  });
client
  .command('list')
  .description('list the registered clients')
  .action(async () => {
    const list = await withStore((s) => new ClientRegistry(s).list());
    for (const c of list) process.stdout.write(`${c.clientId}\t${c.kind}\t${c.status}\t${c.authMethod}\t${c.scope}\t${c.redirectUris.join(' ')}\n`);
  });
for (const [cmd, status, what] of [
  ['suspend', 'suspended', 'suspend a client: its tokens stop working at once'],
  ['reference', 'referenced', 'reference a suspended client again'],
] as const) {
  client
    .command(`${cmd} <clientId>`)
    .description(what)
    .action(async (id: string) => {
      await withStore((s) => new ClientRegistry(s).setStatus(id, status));
      process.stdout.write(`client ${id} ${status}\n`);
    });
}

const account = program.command('account').description('patients’ local accounts');
account
  .command('add')
  .description('create a patient account linked to its Patient resource')
  .requiredOption('--login <login>', 'identifier the patient signs in with')
  .requiredOption('--patient <id>', 'id of the Patient resource')
  .addOption(new Option('--channel <channel>', 'where one-time codes go').choices(CHANNELS).default('email'))
  .requiredOption('--to <address>', 'e-mail address or mobile number')
  // the password comes from the environment, never the command line (which any user of the machine can list)
  .addHelpText('after', '\nThe password is read from the ACCOUNT_PASSWORD environment variable.')
  .action(async (o: { login: string; patient: string; channel: Channel; to: string }) => {
    const password = process.env.ACCOUNT_PASSWORD;
    if (!password) throw new Error('Give the password in the ACCOUNT_PASSWORD environment variable');
    await withStore(async (s) => {
      const registry = new AccountRegistry(s);
      const patient = await s.read('Patient', o.patient);
      if (!patient || patient.deleted) throw new Error(`There is no Patient/${o.patient} on this server`);
      return registry.add({ login: o.login, password, patientId: o.patient, channel: o.channel, to: o.to });
    });
    process.stdout.write(`account ${o.login} created for Patient/${o.patient}\n`);
  });

const keys = program.command('keys').description('signing keys in DATA_DIR/auth');
keys
  .command('rotate')
  .description('new signing keys (used from the next start); the previous ones still verify tokens in flight')
  .action(async () => {
    process.stdout.write(`new keys: ${(await rotateKeys(loadConfig().dataDir)).join(', ')}\n`);
  });
keys
  .command('prune')
  .description('drop every key but the newest pair (once the tokens they signed have expired)')
  .action(() => {
    process.stdout.write(`${pruneKeys(loadConfig().dataDir)} old keys removed\n`);
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exit(1);
});
