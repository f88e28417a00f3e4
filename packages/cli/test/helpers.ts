import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedPath } from '@facerec/framework/testing';
import { expect, vi } from 'vitest';
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

/** One of the bbt face shots in ../shared: `bbt('amy', 3)` is amy3.png. */
export const bbt = (name: string, n: number): string =>
  sharedPath('faces', 'face-api.js', 'bbt', name, `${name}${n}.png`);

/** Adds each person, from their first two bbt shots, to a faceapi-resnet gallery file at threshold 0.4. */
export async function addBbtPeople(gallery: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const add = await cli(
      'gallery',
      'add',
      gallery,
      name,
      bbt(name, 1),
      bbt(name, 2),
      '--embedder',
      'faceapi-resnet',
      '--threshold',
      '0.4',
    );
    expect(add.code, add.stderr).toBe(0);
  }
}

/**
 * Sends `file` as one frame to a local runtime at `url` and resolves to the first answer's result (who the face
 * was recognised as), waiting up to 20 s for it.
 */
export async function recogniseOver(
  url: string,
  file: string,
  requestId: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const content = (await readFile(file)).toString('base64');
  const sent = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ content, request_id: requestId, filename: path.basename(file) }),
  });
  expect(sent.status).toBe(200);
  const answer = (await (
    await fetch(`${url}/responses?prefix=${requestId}&wait=20`, { headers })
  ).json()) as {
    messages: { result: string }[];
  };
  return answer.messages[0]!.result;
}

/**
 * `facerec <args>` of the checkout as a child process, its stdout and stderr piped, for tests that signal it
 * (`cli` runs in this process). Its environment is this process's (the tests' stubbed cache and mirror).
 */
export function cliChild(...args: string[]) {
  return spawn(process.execPath, ['--import', 'tsx', 'packages/cli/src/bin.ts', ...args], {
    cwd: fileURLToPath(new URL('../../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * `facerec <args>` (a `--jsonl` run over `total` images) as a child process, interrupted (SIGINT, as Ctrl-C) once
 * its first row is out: what it printed, each line parsed, and how many images it said were done. Checks that
 * the signal ended it and that the rows printed are those of the images it says were done, each complete.
 */
export async function interruptedJsonLines<Row>(total: number, ...args: string[]): Promise<Row[]> {
  const child = cliChild(...args);
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    // Once a row is out: interrupted early, long before the end of the run.
    if (stdout.includes('\n') && !child.killed) child.kill('SIGINT');
  });
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  expect([code, signal]).toEqual([null, 'SIGINT']);
  const pattern = new RegExp(
    `(?:^|\\n)interrupted after (\\d+) of ${total} images: their rows are out, on stdout\\n$`,
  );
  const done = Number(pattern.exec(stderr)?.[1]);
  expect(done, stderr).toBeGreaterThan(0);
  expect(done).toBeLessThan(total);
  // One complete row per image done, each a JSON object of its own (the last line ends too).
  expect(stdout.endsWith('\n')).toBe(true);
  const rows = stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Row);
  expect(rows).toHaveLength(done);
  return rows;
}

/**
 * A free loopback port, nothing listening on it (a server the test starts there later, or a client refused
 * there). One fetch connects to: port 9, say, is among those it never does.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
