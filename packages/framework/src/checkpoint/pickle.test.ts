import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../errors.js';
import { PickleWriter } from './__fixtures__/pickle-builder.js';
import { describePyValue, PickleGlobal, unpickle } from './pickle.js';

const none = { globals: new Map() };
const load = (w: PickleWriter) => unpickle(w.bytes(), none).value;

describe('unpickle: values', () => {
  it('maps scalars to JavaScript values', () => {
    expect(load(new PickleWriter().proto(2).none().stop())).toBeNull();
    expect(load(new PickleWriter().proto(2).bool(true).stop())).toBe(true);
    expect(load(new PickleWriter().proto(2).int(-7).stop())).toBe(-7);
    expect(load(new PickleWriter().proto(2).int(70000).stop())).toBe(70000);
    expect(load(new PickleWriter().proto(2).float(-0.1).stop())).toBe(-0.1);
    expect(load(new PickleWriter().proto(2).str('héllo').stop())).toBe('héllo');
  });

  it('reads LONG1 as number when safe, bigint otherwise, with two’s complement sign', () => {
    expect(load(new PickleWriter().proto(2).long1([]).stop())).toBe(0);
    expect(load(new PickleWriter().proto(2).long1([0xff]).stop())).toBe(-1);
    expect(load(new PickleWriter().proto(2).long1([0x00, 0x80]).stop())).toBe(-32768);
    expect(load(new PickleWriter().proto(2).long1([0xff, 0x00]).stop())).toBe(255);
    expect(
      load(
        new PickleWriter()
          .proto(2)
          .long1([0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19])
          .stop(),
      ),
    ).toBe(0x1950a86a20f9469cfc6cn);
  });

  it('builds tuples (frozen), lists, dicts and bytes', () => {
    const value = load(
      new PickleWriter()
        .proto(2)
        .emptyDict()
        .str('t')
        .ints([1, 2, 3])
        .setItem()
        .str('l')
        .emptyList()
        .mark()
        .int(4)
        .int(5)
        .appends()
        .setItem()
        .str('b')
        .raw(0x43, 2, 0xde, 0xad)
        .setItem()
        .stop(),
    ) as Map<string, unknown>;
    expect(value).toBeInstanceOf(Map);
    expect(value.get('t')).toEqual([1, 2, 3]);
    expect(Object.isFrozen(value.get('t'))).toBe(true);
    expect(value.get('l')).toEqual([4, 5]);
    expect(Object.isFrozen(value.get('l'))).toBe(false);
    expect(value.get('b')).toEqual(new Uint8Array([0xde, 0xad]));
    expect(describePyValue(value)).toBe('dict');
  });

  it('shares memoized objects (BINPUT/BINGET) by identity', () => {
    const value = load(
      new PickleWriter()
        .proto(2)
        .emptyList()
        .binput(0)
        .mark()
        .emptyDict()
        .binput(1)
        .binget(1)
        .appends()
        .stop(),
    ) as unknown[];
    expect(value).toHaveLength(2);
    expect(value[0]).toBe(value[1]);
  });

  it('supports the protocol-0 text opcodes state dicts may contain', () => {
    const text = (s: string) => [...new TextEncoder().encode(s)];
    expect(load(new PickleWriter().raw(0x49, ...text('01\n')).stop())).toBe(true);
    expect(load(new PickleWriter().raw(0x49, ...text('-12\n')).stop())).toBe(-12);
    expect(load(new PickleWriter().raw(0x4c, ...text('123456789012345678901L\n')).stop())).toBe(
      123456789012345678901n,
    );
    expect(load(new PickleWriter().raw(0x46, ...text('2.5\n')).stop())).toBe(2.5);
  });

  it('returns the offset after STOP so pickle sequences can be read back to back', () => {
    const first = new PickleWriter().proto(2).int(1).stop().bytes();
    const both = new Uint8Array([...first, ...new PickleWriter().proto(2).int(2).stop().bytes()]);
    const a = unpickle(both, none);
    expect(a).toEqual({ value: 1, end: first.length });
    expect(unpickle(both, { ...none, start: a.end }).value).toBe(2);
  });
});

describe('unpickle: globals and calls', () => {
  it('resolves only allow-listed globals, to PickleGlobal markers', () => {
    const value = unpickle(new PickleWriter().proto(2).global('torch', 'FloatStorage').stop().bytes(), {
      globals: new Map([['torch.FloatStorage', { value: 'marker' }]]),
    }).value;
    expect(value).toBeInstanceOf(PickleGlobal);
    expect((value as PickleGlobal).qualifiedName).toBe('torch.FloatStorage');
    expect((value as PickleGlobal).binding.value).toBe('marker');
  });

  it('calls an allow-listed binding with the REDUCE argument tuple', () => {
    const value = unpickle(
      new PickleWriter().proto(2).global('m', 'f').int(1).str('a').tuple2().reduce().stop().bytes(),
      { globals: new Map([['m.f', { call: (args: readonly unknown[]) => ({ args }) }]]) },
    ).value;
    expect(value).toEqual({ args: [1, 'a'] });
  });

  it('refuses globals, persistent ids and BUILD unless the caller enables them', () => {
    const refuse = (w: PickleWriter) => () => unpickle(w.bytes(), { ...none, label: 'test' });
    expect(refuse(new PickleWriter().proto(2).global('os', 'system').stop())).toThrow(
      /refusing to load global "os.system": it is not on the allow-list \(test offset 2\)/,
    );
    expect(refuse(new PickleWriter().proto(2).str('x').binpersid().stop())).toThrow(
      /refusing a persistent id/,
    );
    expect(refuse(new PickleWriter().proto(2).emptyDict().emptyDict().build().stop())).toThrow(
      /refusing BUILD on dict/,
    );
  });
});

describe('unpickle: malformed input', () => {
  const bad = (bytes: number[]) => () => unpickle(Uint8Array.from(bytes), none);

  it('throws CheckpointError, never RangeError, on truncation at every position', () => {
    const full = new PickleWriter()
      .proto(2)
      .emptyDict()
      .str('key')
      .float(1.5)
      .setItem()
      .long1([1, 2, 3])
      .stop()
      .bytes();
    for (let n = 0; n < full.length; n++) {
      expect(() => unpickle(full.subarray(0, n), none), `length ${n}`).toThrow(CheckpointError);
    }
  });

  it('reports lengths beyond the data as truncation', () => {
    expect(bad([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x2e])).toThrow(
      /truncated pickle: needs 2147483647 more bytes/,
    );
    expect(bad([0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).toThrow(/truncated pickle/);
  });

  it('stays fast on hostile sizes: a 1 MB LONG4 and a 200k-item APPENDS', () => {
    const n = 1 << 20;
    const long4 = new Uint8Array(6 + n);
    long4.set([0x8b, 0x00, 0x00, 0x10, 0x00]);
    long4[5 + n - 1] = 0x01;
    long4[5 + n] = 0x2e;
    const started = performance.now();
    expect(typeof unpickle(long4, none).value).toBe('bigint');
    const appends = new Uint8Array(3 + 200_000 * 2 + 2);
    appends.set([0x5d, 0x28]);
    for (let i = 0; i < 200_000; i++) appends.set([0x4b, i & 0xff], 2 + i * 2);
    appends.set([0x65, 0x2e], 2 + 200_000 * 2);
    expect(unpickle(appends.subarray(0, appends.length - 1), none).value).toHaveLength(200_000);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('rejects integer literals longer than CPython accepts', () => {
    const digits = new TextEncoder().encode(`I${'9'.repeat(5000)}\n.`);
    expect(() => unpickle(digits, none)).toThrow(/malformed integer literal/);
  });

  it('rejects unknown opcodes, an unsupported protocol, invalid UTF-8 and bad memo references', () => {
    expect(bad([0x80, 2, 0x00])).toThrow(/unknown or unsupported pickle opcode 0x00 \(pickle offset 2\)/);
    expect(bad([0x80, 9, 0x2e])).toThrow(/unsupported pickle protocol 9/);
    expect(bad([0x8c, 1, 0xff, 0x2e])).toThrow(/not valid UTF-8/);
    expect(bad([0x68, 5, 0x2e])).toThrow(/memo has no entry 5/);
  });

  it('rejects structural misuse: items without MARK, popping past a MARK, wrong container types', () => {
    expect(bad([0x74, 0x2e])).toThrow(/without a MARK/);
    expect(bad([0x4b, 1, 0x28, 0x85, 0x2e])).toThrow(/underflow/);
    expect(bad([0x29, 0x4b, 1, 0x61, 0x2e])).toThrow(/APPEND\(S\) target is tuple, not a list/);
    expect(bad([0x5d, 0x4b, 1, 0x4b, 2, 0x73, 0x2e])).toThrow(/SETITEM\(S\) target is list, not a dict/);
  });
});
