// Runs one handler of a Lambda task tree the way the AWS Lambda Node.js runtime does, for
// lambda-tree.test.ts. Plain JavaScript that imports nothing from the repository, so everything the handler
// loads comes from the tree under LAMBDA_TASK_ROOT.
//
//   LAMBDA_TASK_ROOT=<tree> _HANDLER=packages/lambda-runtime/dist/lambda/detection.handler \
//   FACEREC_INVOKE_EVENT=<event.json> FACEREC_INVOKE_RESULT=<result.json> node lambda-invoke.mjs
//
// As the runtime does: resolves `<module>.<function>` against the task root (trying .js, .mjs, .cjs),
// imports the module (ESM: package.json "type": "module"), which runs the init phase (top-level await),
// then calls the function with the event and a context object. The test starts Node with the permission
// model so that only the temporary folder is writable, as on Lambda; this file adds the network rule: any
// connection to a host other than the loopback (where the test's SQS endpoint listens) is refused and
// recorded.
import dns from 'node:dns';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const refused = [];
const refuse = (host) => {
  refused.push(String(host));
  return Object.assign(new Error(`network access to ${host} refused (the handler must not need it)`), {
    code: 'ECONNREFUSED',
  });
};
const originalLookup = dns.lookup;
dns.lookup = function lookup(hostname, ...rest) {
  if (!LOOPBACK.has(hostname)) {
    const callback = rest.at(-1);
    process.nextTick(() => callback(refuse(hostname)));
    return {};
  }
  return originalLookup.call(this, hostname, ...rest);
};
const originalLookupPromise = dns.promises.lookup;
dns.promises.lookup = async (hostname, ...rest) => {
  if (!LOOPBACK.has(hostname)) throw refuse(hostname);
  return originalLookupPromise(hostname, ...rest);
};
const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connect(...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const options = typeof first === 'object' && first !== null ? first : {};
  const host = options.path
    ? undefined
    : (options.host ?? (typeof args[1] === 'string' ? args[1] : 'localhost'));
  if (host !== undefined && net.isIP(host) !== 0 && !LOOPBACK.has(host)) throw refuse(host);
  return originalConnect.apply(this, args);
};

const taskRoot = process.env.LAMBDA_TASK_ROOT;
const handlerSpec = process.env._HANDLER;
const dot = handlerSpec.lastIndexOf('.');
const modulePath = path.resolve(taskRoot, handlerSpec.slice(0, dot));
const functionName = handlerSpec.slice(dot + 1);
const file = ['.js', '.mjs', '.cjs']
  .map((ext) => modulePath + ext)
  .find((candidate) => existsSync(candidate));
if (!file) throw new Error(`Runtime.ImportModuleError: cannot find module ${handlerSpec} under ${taskRoot}`);

// performance.now() counts from process start: the init time includes Node's own start, as Lambda's does.
const module = await import(pathToFileURL(file).href);
const initMs = performance.now();
const handler = module[functionName];
if (typeof handler !== 'function')
  throw new Error(`Runtime.HandlerNotFound: ${handlerSpec} is not a function`);

const event = JSON.parse(readFileSync(process.env.FACEREC_INVOKE_EVENT, 'utf8'));
const context = {
  functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  getRemainingTimeInMillis: () => 60_000,
};
const started = performance.now();
const result = await handler(event, context);
const invokeMs = performance.now() - started;
writeFileSync(
  process.env.FACEREC_INVOKE_RESULT,
  JSON.stringify({
    initMs,
    invokeMs,
    result,
    refused,
    rssBytes: process.memoryUsage().rss,
    node: process.version,
  }),
);
process.exit(0);
