// dynalite ships no types; this is the part of its API the tests use (it returns a node:http Server).
declare module 'dynalite' {
  import type { Server } from 'node:http';

  interface DynaliteOptions {
    readonly path?: string;
    readonly createTableMs?: number;
    readonly deleteTableMs?: number;
    readonly updateTableMs?: number;
  }
  export default function dynalite(options?: DynaliteOptions): Server;
}
