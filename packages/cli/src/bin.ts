import { main } from './main.js';

// `facerec ... | head` closes stdout early; that is the reader's choice, not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const code = await main(process.argv);
if (code !== 0 || process.exitCode === undefined) process.exitCode = code;
