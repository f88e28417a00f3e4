import { describe, expect, it } from 'vitest';
import { shownDistance } from '../src/output.js';
import { cli } from './helpers.js';

describe('shownDistance', () => {
  it('rounds to 4 decimals when that keeps the distance on its side of the threshold', () => {
    expect(shownDistance(0.2043456, 0.448)).toBe(0.2043);
    expect(shownDistance(0.4, 0.4)).toBe(0.4);
    expect(shownDistance(0.39996, 0.4)).toBe(0.4); // at or below the threshold either way: a match
    expect(shownDistance(0.2043456)).toBe(0.2043);
  });
  it('shows more decimals where 4 would put a distance above the threshold at or below it', () => {
    expect(shownDistance(0.40003, 0.4)).toBe(0.40003);
    expect(shownDistance(0.4000000004, 0.4)).toBe(0.4000000004); // 9 decimals cannot tell it apart: shown as it is
    expect(shownDistance(0.409015, 0.409012)).toBe(0.40902);
    expect(shownDistance(0.1234567891, 0.5, 6)).toBe(0.123457);
  });
});

describe('usage errors', () => {
  it('are one line and a pointer to --help, exit 2', async () => {
    const missing = await cli('enroll', 'faces');
    expect([missing.code, missing.stderr]).toEqual([
      2,
      "error: required option '--out <file>' not specified\n(see --help)\n",
    ]);
    const unknown = await cli('recognize', 'a.jpg', '--gallery', 'g.json', '--bogus');
    expect([unknown.code, unknown.stderr]).toEqual([2, "error: unknown option '--bogus'\n(see --help)\n"]);
    // A misspelt required option: the unknown one is reported with the likely flag, not the missing one.
    const misspelt = await cli('recognize', 'a.jpg', '--galery', 'g.json');
    expect([misspelt.code, misspelt.stderr]).toEqual([
      2,
      "error: unknown option '--galery'\n(Did you mean --gallery?)\n(see --help)\n",
    ]);
  });
});
