#!/usr/bin/env node
// A committed launcher for the compiled CLI: npm links package bins at install time, before the `prepare`
// script has built dist/, so the bin target must exist in the source tree.
await import('../dist/bin.js');
