import { vi } from 'vitest';
import { type CliOptions, main } from '../src/main.js';

/** What one in-process CLI run produced. */
export interface Run {
  /** What `main` returned. */
  readonly code: number;
  /** `process.exitCode` the command set (partial failures), reset after each run. */
  readonly exitCode: number | string | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in this process, capturing stdout and stderr. */
export function cli(...args: string[]): Promise<Run> {
  return cliWith({}, ...args);
}

/** {@link cli} with options (e.g. another model registry). */
export async function cliWith(options: CliOptions, ...args: string[]): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const capture = (sink: string[]) => (chunk: unknown) => {
    sink.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture(stdout) as never);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture(stderr) as never);
  try {
    const code = await main(['node', 'facerec', ...args], options);
    return { code, exitCode: process.exitCode, stdout: stdout.join(''), stderr: stderr.join('') };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = undefined;
  }
}
