export { type ServeOptions, serveLocally } from './commands/pipeline.js';
export { createProgram, main } from './main.js';
