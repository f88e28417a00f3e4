import { InvalidOptionsError } from './errors.js';

/**
 * Imports an optional package by name (a provider, a gallery store), which the user installs only when used.
 * When it cannot be loaded for a missing package, the error says which one to install: the package itself, or,
 * when that is installed but a package it imports is not (a peer dependency left out by `--legacy-peer-deps`,
 * yarn classic or pnpm), that one. Telling the user to install a package they have would send them in circles.
 *
 * @param load `(name) => import(name)`, written in the caller's module: a bare name resolves from the module that
 *   imports it, and only the caller declares the package (an optional peer dependency; pnpm, for one, would not
 *   find it from here).
 * @param component For the error: what is configured (`provider`, `gallery store`).
 * @param purpose For the error: what needs the package (`provider "tfjs"`, `the s3:// store`).
 * @param installWith Packages to install with it when it is missing, and why (a provider's wasm backend).
 * @throws InvalidOptionsError naming the package to install; any other import failure unchanged.
 */
export async function importOptionalPackage<T>(
  packageName: string,
  load: (name: string) => Promise<unknown>,
  component: string,
  purpose: string,
  installWith?: { readonly packages: readonly string[]; readonly why: string },
): Promise<T> {
  try {
    return (await load(packageName)) as T;
  } catch (cause) {
    if ((cause as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw cause;
    // Node's message: "Cannot find package '<name>' imported from <file>".
    const missing = /Cannot find package '([^']+)'/.exec((cause as Error).message)?.[1];
    if (missing === undefined || missing === packageName) {
      throw new InvalidOptionsError(
        component,
        installWith
          ? `${purpose} needs ${packageName}; install it with ${installWith.why}: npm install ${[packageName, ...installWith.packages].join(' ')}`
          : `${purpose} needs ${packageName}; install it (npm install ${packageName})`,
        { cause },
      );
    }
    throw new InvalidOptionsError(
      component,
      `${purpose} needs ${missing}, which ${packageName} imports and which is not installed (a peer dependency): ` +
        `install it (npm install ${missing})`,
      { cause },
    );
  }
}
