export { type ServeOptions, serveLocally } from './commands/pipeline.js';
export { type CliOptions, createProgram, main } from './main.js';
export { functionUrlRegion, type SigningCredentials, type SigV4SenderOptions, sigV4Sender } from './sigv4.js';
