import { main } from './main.js';

const code = await main(process.argv);
if (code !== 0 || process.exitCode === undefined) process.exitCode = code;
