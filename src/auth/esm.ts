import Module from 'node:module';

/**
 * Loads an ES-module-only package (oidc-provider) with Node's own `require`, which loads ES modules
 * since Node 20.19. Going through `module.createRequire` keeps the load native under test runners
 * that replace `require` with a CommonJS-only loader (jest).
 */
export function loadEsm<T>(id: string): T {
  const builtin = (process as unknown as { getBuiltinModule?: (id: string) => typeof Module }).getBuiltinModule?.('node:module') ?? Module;
  const nativeRequire = builtin.createRequire(__filename);
  // oidc-provider warns on every Node release older than 22 although it runs on 20.19+: keep that one line quiet
  // (the console of the main realm, which the natively loaded module uses)
  const mainConsole = vmModule().runInThisContext('console') as Console;
  const warn = mainConsole.warn;
  mainConsole.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider WARNING: Unsupported runtime')) return;
    warn.apply(mainConsole, args);
  };
  try {
    return nativeRequire(id) as T;
  } finally {
    mainConsole.warn = warn;
  }
}

/*
 * The natively loaded packages live in Node's main realm. Under jest, the code that calls them runs
 * in another realm (a vm context), whose plain objects fail their `a.constructor === Object` checks.
 * `native()` copies plain objects and arrays into the main realm (functions and class instances are
 * kept); outside jest it is a shallow copy of the same realm's objects. Applied where our values
 * cross into oidc-provider or express-openid-connect.
 */
function vmModule(): typeof import('node:vm') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (process as unknown as { getBuiltinModule?: (id: string) => typeof import('node:vm') }).getBuiltinModule?.('node:vm') ?? require('node:vm');
}
const vm = vmModule();
const MainObject = vm.runInThisContext('Object') as ObjectConstructor;
const MainArray = vm.runInThisContext('Array') as ArrayConstructor;
const MainJSON = vm.runInThisContext('JSON') as JSON;

export function native<T>(v: T): T {
  if (Array.isArray(v)) return MainArray.from(v, (x) => native(x)) as T;
  if (v && typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto === null || proto.constructor?.name === 'Object') {
      const o = new MainObject() as Record<string, unknown>;
      for (const [k, x] of Object.entries(v)) o[k] = native(x);
      return o as T;
    }
  }
  return v;
}

/** A JSON value parsed in the main realm. */
export function nativeJson<T>(v: T): T {
  return v === undefined ? v : (MainJSON.parse(JSON.stringify(v)) as T);
}
