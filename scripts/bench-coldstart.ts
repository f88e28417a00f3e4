// Lambda cold start (`npm run bench -- coldstart`): prints figures, asserts nothing. For each entry
// (detection, recognition) it starts fresh Node processes on the Lambda task tree the way the Lambda
// Node.js runtime does (packages/lambda-runtime/test/lambda-invoke.mjs: import the handler module, whose
// top-level await loads the models and warms the detector up, then one invocation) and reports the time from
// process start to the end of init (Lambda's "Init Duration") and to the first answer.
//
// The tree is $FACEREC_LAMBDA_TREE when set, else one built here with `npm run lambda-tree` (scripts/
// lambda-tree.ts: needs `npm run build` and the npm registry or cache) for a two-person faceapi-resnet gallery.
// The detection entry gets a one-face frame; its face messages go to a local SQS endpoint that records them,
// and become the recognition entry's SQS event, so both first answers are real ones.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envInteger, ms, quantile, sharedDir } from './bench-common.js';
import {
  buildTestTree,
  functionUrlEvent,
  type Invocation,
  invokeFromTree,
  REQUEST_QUEUE_URL,
  RESPONSE_QUEUE_URL,
  sqsEvent,
  startSqsRecorder,
} from './lambda-harness.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const starts = envInteger('FACEREC_BENCH_ROUNDS', 3);
const bbt = path.join(sharedDir, 'faces', 'face-api.js', 'bbt');

async function main(): Promise<void> {
  console.log(`## Lambda cold start (fresh process per start, ${starts} starts per entry)`);
  if (!existsSync(path.join(root, 'packages', 'lambda-runtime', 'dist'))) {
    console.log('skipped: the Lambda task tree needs a built workspace; run `npm run build` first');
    return;
  }
  const work = mkdtempSync(path.join(tmpdir(), 'facerec-bench-coldstart-'));
  const sqs = await startSqsRecorder();
  try {
    const t = performance.now();
    process.env.FACEREC_MODELS_MIRROR ??= path.join(sharedDir, 'models', 'upstream');
    const tree = process.env.FACEREC_LAMBDA_TREE ?? buildTestTree(work, bbt);
    console.log(
      process.env.FACEREC_LAMBDA_TREE
        ? `tree: ${tree}`
        : `tree: built with scripts/lambda-tree.ts in ${ms(performance.now() - t)} (not part of any figure)`,
    );
    const frame = readFileSync(path.join(bbt, 'sheldon', 'sheldon1.png'));
    const figures = { detection: [] as Invocation[], recognition: [] as Invocation[] };
    for (let s = 0; s < starts; s++) {
      sqs.sent.length = 0;
      const detection = await invokeFromTree(
        { tree, work, sqs },
        'detection',
        functionUrlEvent(frame, `cold-${s}`, 'sheldon1.png'),
      );
      const faces = sqs.sent.filter((m) => m.queueUrl === REQUEST_QUEUE_URL);
      if ((detection.result as { statusCode?: number }).statusCode !== 200 || faces.length === 0)
        throw new Error(`detection did not answer 200 with faces: ${JSON.stringify(detection.result)}`);
      const recognition = await invokeFromTree({ tree, work, sqs }, 'recognition', sqsEvent(faces));
      if (!sqs.sent.some((m) => m.queueUrl === RESPONSE_QUEUE_URL))
        throw new Error(`recognition published no answer: ${JSON.stringify(recognition.result)}`);
      figures.detection.push(detection);
      figures.recognition.push(recognition);
    }
    for (const [entry, runs] of Object.entries(figures)) {
      const init = runs.map((r) => r.initMs);
      const first = runs.map((r) => r.initMs + r.invokeMs);
      console.log(
        `${entry.padEnd(11)} init (process start → models loaded, warmed up) median ${ms(quantile(init, 0.5))} ` +
          `(${init.map((v) => v.toFixed(0)).join(', ')}); process start → first answer median ` +
          `${ms(quantile(first, 0.5))} (${first.map((v) => v.toFixed(0)).join(', ')}); RSS after ` +
          `${(Math.max(...runs.map((r) => r.rssBytes)) / 2 ** 20).toFixed(0)} MiB`,
      );
    }
  } finally {
    await sqs.close();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
