import { stdoutReaderGone } from './images.js';
import { main } from './main.js';

// `facerec ... | head` closes stdout early; that is the reader's choice, not an error worth a stack trace. An
// image run then ends by itself, after the images in flight (see stdoutReaderGone); anything else ends here.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') {
    if (!stdoutReaderGone()) process.exit(process.exitCode ?? 0);
    return;
  }
  throw error;
});
// A closed stderr (`2> >(head -1)`, `2>&1 | head`) leaves the messages nowhere to go, but the results on stdout
// still have a reader: the work goes on (an unhandled error here ended the run with exit 1, its output cut).
process.stderr.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') return;
  throw error;
});

const code = await main(process.argv);
if (code !== 0 || process.exitCode === undefined) process.exitCode = code;
