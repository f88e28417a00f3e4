/**
 * A minimal, safe reader for Python pickles: only the data-building opcodes that PyTorch state dicts use.
 *
 * Python's own unpickler imports whatever module a pickle names and calls whatever it is told to, which is
 * why loading an untrusted `.pt` file with it can run arbitrary code. This reader never resolves a name to
 * code: every `GLOBAL`/`STACK_GLOBAL` is looked up in an allow-list supplied by the caller, and `REDUCE`,
 * `NEWOBJ` and `BUILD` can only reach the plain TypeScript functions that allow-list binds. Opcodes whose
 * only purpose is instantiating arbitrary classes (`INST`, `OBJ`, the extension registry) are refused.
 *
 * Python values map to JavaScript as: `None` → `null`; `bool` → `boolean`; `int` → `number` when it is a
 * safe integer, else `bigint`; `float` → `number`; `str` → `string`; `bytes` → `Uint8Array`;
 * `tuple` → frozen array; `list` → mutable array; `dict` → `Map`; an allow-listed global → {@link PickleGlobal}.
 */

import { CheckpointError } from '../errors.js';

/** What an allow-listed global does when a pickle uses it. */
export interface GlobalBinding {
  /**
   * Builds a value from positional arguments when the pickle calls the global (`REDUCE`, `NEWOBJ`).
   * Without it the global is a marker (a storage class, a dtype) and calling it is refused.
   */
  readonly call?: (args: readonly unknown[]) => unknown;
  /** Data the caller attaches to a marker global, read back through {@link PickleGlobal.binding}. */
  readonly value?: unknown;
}

/** A global the allow-list resolved. Only the unpickler creates these, so a pickle cannot forge one. */
export class PickleGlobal {
  /** Python module, e.g. `torch._utils`. */
  readonly module: string;
  /** Attribute name inside the module, e.g. `_rebuild_tensor_v2`. */
  readonly name: string;
  /** What the allow-list bound to `module.name`. */
  readonly binding: GlobalBinding;

  constructor(module: string, name: string, binding: GlobalBinding) {
    this.module = module;
    this.name = name;
    this.binding = binding;
  }

  /** `module.name`, the key of the allow-list. */
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Options for {@link unpickle}. */
export interface UnpickleOptions {
  /** Allow-list: `"module.name"` → binding. Every other global is refused before anything else happens. */
  readonly globals: ReadonlyMap<string, GlobalBinding>;
  /** Explains a refusal: the text after `refusing to load global "x.y": `. */
  readonly refusalReason?: (qualifiedName: string) => string;
  /** Resolves `BINPERSID`/`PERSID` ids; without it persistent ids are refused. */
  readonly persistentLoad?: (pid: unknown) => unknown;
  /** Applies `BUILD` state to an object; without it `BUILD` is refused. */
  readonly build?: (target: unknown, state: unknown) => void;
  /** Names the pickle in error messages, e.g. `archive/data.pkl`. */
  readonly label?: string;
  /** Offset of the first opcode (default 0). */
  readonly start?: number;
}

/** The value a pickle produced and the offset just past its `STOP` opcode. */
export interface UnpickleResult {
  readonly value: unknown;
  readonly end: number;
}

// Opcodes we know but refuse, so the error says why instead of "unknown".
const REFUSED_OPCODES: ReadonlyMap<number, string> = new Map([
  [0x69, 'INST'],
  [0x6f, 'OBJ'],
  [0x82, 'EXT1'],
  [0x83, 'EXT2'],
  [0x84, 'EXT4'],
]);

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/** Human-readable Python type of an unpickled value, for error messages. */
export function describePyValue(value: unknown): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'string') return 'str';
  if (value instanceof Uint8Array) return 'bytes';
  if (Array.isArray(value)) return Object.isFrozen(value) ? 'tuple' : 'list';
  if (value instanceof Map) return 'dict';
  if (value instanceof PickleGlobal) return `global "${value.qualifiedName}"`;
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}

/**
 * Reads one pickle from `bytes` (starting at `options.start`) up to its `STOP` opcode.
 *
 * @throws CheckpointError on truncation, malformed data, an unknown or refused opcode, a global outside the
 *   allow-list, or a call/`BUILD` the allow-list does not permit. Nothing in the pickle is ever executed.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  return new Unpickler(bytes, options).run();
}

class Unpickler {
  private readonly view: DataView;
  private pos: number;
  private opStart = 0;
  private readonly stack: unknown[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly where: string;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = options.start ?? 0;
    this.where = options.label ? `${options.label} ` : 'pickle ';
  }

  private fail(message: string): never {
    throw new CheckpointError(`${message} (${this.where}offset ${this.opStart})`);
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.bytes.length) {
      this.fail(
        `truncated pickle: needs ${n} more bytes at offset ${this.pos}, ${Math.max(0, this.bytes.length - this.pos)} left`,
      );
    }
  }

  private u8(): number {
    this.need(1);
    return this.bytes[this.pos++]!;
  }

  private u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  private u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  private i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  private u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    // Anything past 2^53 cannot fit in memory anyway; `need` then reports truncation.
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }

  private take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A newline-terminated ASCII argument of the text opcodes, without the newline. */
  private line(): string {
    const nl = this.bytes.indexOf(0x0a, this.pos);
    if (nl < 0) this.fail('truncated pickle: unterminated text argument');
    const text = latin1.decode(this.bytes.subarray(this.pos, nl));
    this.pos = nl + 1;
    return text;
  }

  private utf8(raw: Uint8Array): string {
    try {
      return utf8.decode(raw);
    } catch {
      return this.fail('string is not valid UTF-8');
    }
  }

  private push(value: unknown): void {
    this.stack.push(value);
  }

  private pop(): unknown {
    if (this.stack.length === 0 || (this.marks.length > 0 && this.stack.length <= this.marks.at(-1)!)) {
      this.fail('pickle stack underflow');
    }
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length === 0 || (this.marks.length > 0 && this.stack.length <= this.marks.at(-1)!)) {
      this.fail('pickle stack underflow');
    }
    return this.stack[this.stack.length - 1];
  }

  private popMark(): unknown[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.fail('pickle uses items without a MARK');
    return this.stack.splice(mark);
  }

  private memoGet(index: number): unknown {
    if (!this.memo.has(index)) this.fail(`pickle memo has no entry ${index}`);
    return this.memo.get(index);
  }

  private memoPut(index: number): void {
    this.memo.set(index, this.top());
  }

  private resolveGlobal(module: string, name: string): PickleGlobal {
    const qualified = `${module}.${name}`;
    const binding = this.options.globals.get(qualified);
    if (!binding) {
      const reason = this.options.refusalReason?.(qualified) ?? 'it is not on the allow-list';
      this.fail(`refusing to load global "${qualified}": ${reason}`);
    }
    return new PickleGlobal(module, name, binding);
  }

  private call(callable: unknown, args: unknown, opcode: string): unknown {
    if (!(callable instanceof PickleGlobal)) {
      this.fail(
        `refusing ${opcode} on ${describePyValue(callable)}: only allow-listed globals can be called`,
      );
    }
    const fn = callable.binding.call;
    if (!fn) this.fail(`refusing ${opcode} on global "${callable.qualifiedName}": it is not callable`);
    if (!Array.isArray(args)) {
      this.fail(
        `${opcode} of "${callable.qualifiedName}" needs an argument tuple, got ${describePyValue(args)}`,
      );
    }
    try {
      return fn(args);
    } catch (error) {
      if (error instanceof CheckpointError) this.fail(`${callable.qualifiedName}: ${error.message}`);
      throw error;
    }
  }

  private setItems(target: unknown, items: readonly unknown[]): void {
    if (!(target instanceof Map)) this.fail(`SETITEM(S) target is ${describePyValue(target)}, not a dict`);
    if (items.length % 2 !== 0) this.fail('SETITEMS has an odd number of items');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  }

  private appendItems(target: unknown, items: readonly unknown[]): void {
    if (!Array.isArray(target) || Object.isFrozen(target)) {
      this.fail(`APPEND(S) target is ${describePyValue(target)}, not a list`);
    }
    // A loop, not push(...items): spreading a huge APPENDS would overflow the call stack.
    for (const item of items) target.push(item);
  }

  private decodeLong(raw: Uint8Array): number | bigint {
    if (raw.length === 0) return 0;
    // Via hex so a hostile multi-megabyte LONG4 costs linear, not quadratic, time.
    let hexDigits = '';
    for (let i = raw.length - 1; i >= 0; i--) hexDigits += hex(raw[i]!);
    let value = BigInt(`0x${hexDigits}`);
    if (raw[raw.length - 1]! & 0x80) value -= 1n << BigInt(raw.length * 8);
    return narrow(value);
  }

  private parseTextInt(text: string): number | bigint {
    const digits = text.endsWith('L') ? text.slice(0, -1) : text;
    // 4300 digits is CPython's own limit for int(str), for the same denial-of-service reason.
    if (!/^[+-]?\d{1,4300}$/.test(digits)) this.fail(`malformed integer literal "${text.slice(0, 40)}"`);
    return narrow(BigInt(digits));
  }

  run(): UnpickleResult {
    for (;;) {
      this.opStart = this.pos;
      if (this.pos >= this.bytes.length) this.fail('truncated pickle: ended without STOP');
      const op = this.bytes[this.pos++]!;
      switch (op) {
        case 0x80: {
          // PROTO
          const proto = this.u8();
          if (proto > 5) this.fail(`unsupported pickle protocol ${proto}`);
          break;
        }
        case 0x95: // FRAME: framing is only a read-ahead hint; opcodes simply continue.
          this.u64();
          break;
        case 0x2e: {
          // STOP
          const value = this.pop();
          return { value, end: this.pos };
        }

        // Globals and calls.
        case 0x63: {
          // GLOBAL
          const module = this.line();
          const name = this.line();
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') {
            this.fail('STACK_GLOBAL needs two strings');
          }
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const callable = this.pop();
          this.push(this.call(callable, args, 'REDUCE'));
          break;
        }
        case 0x81: {
          // NEWOBJ
          const args = this.pop();
          const cls = this.pop();
          this.push(this.call(cls, args, 'NEWOBJ'));
          break;
        }
        case 0x92: {
          // NEWOBJ_EX
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(kwargs instanceof Map) || kwargs.size > 0)
            this.fail('NEWOBJ_EX with keyword arguments is not supported');
          this.push(this.call(cls, args, 'NEWOBJ_EX'));
          break;
        }
        case 0x62: {
          // BUILD
          const state = this.pop();
          const target = this.top();
          if (!this.options.build) this.fail(`refusing BUILD on ${describePyValue(target)}`);
          try {
            this.options.build(target, state);
          } catch (error) {
            if (error instanceof CheckpointError) this.fail(error.message);
            throw error;
          }
          break;
        }
        case 0x51: {
          // BINPERSID
          const pid = this.pop();
          this.push(this.persistent(pid));
          break;
        }
        case 0x50: // PERSID
          this.push(this.persistent(this.line()));
          break;

        // Memo.
        case 0x71: // BINPUT
          this.memoPut(this.u8());
          break;
        case 0x72: // LONG_BINPUT
          this.memoPut(this.u32());
          break;
        case 0x70: // PUT
          this.memoPut(Number(this.parseTextInt(this.line())));
          break;
        case 0x94: // MEMOIZE
          this.memoPut(this.memo.size);
          break;
        case 0x68: // BINGET
          this.push(this.memoGet(this.u8()));
          break;
        case 0x6a: // LONG_BINGET
          this.push(this.memoGet(this.u32()));
          break;
        case 0x67: // GET
          this.push(this.memoGet(Number(this.parseTextInt(this.line()))));
          break;

        // Stack manipulation.
        case 0x28: // MARK
          this.marks.push(this.stack.length);
          break;
        case 0x30: // POP
          this.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.push(this.top());
          break;

        // Containers.
        case 0x7d: // EMPTY_DICT
          this.push(new Map());
          break;
        case 0x5d: // EMPTY_LIST
          this.push([]);
          break;
        case 0x29: // EMPTY_TUPLE
          this.push(Object.freeze([]));
          break;
        case 0x74: // TUPLE
          this.push(Object.freeze(this.popMark()));
          break;
        case 0x85: // TUPLE1
          this.push(Object.freeze([this.pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const b = this.pop();
          const a = this.pop();
          this.push(Object.freeze([a, b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.push(Object.freeze([a, b, c]));
          break;
        }
        case 0x6c: // LIST
          this.push(this.popMark());
          break;
        case 0x64: {
          // DICT
          const items = this.popMark();
          const dict = new Map();
          this.setItems(dict, items);
          this.push(dict);
          break;
        }
        case 0x73: {
          // SETITEM
          const value = this.pop();
          const key = this.pop();
          this.setItems(this.top(), [key, value]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case 0x61: {
          // APPEND
          const value = this.pop();
          this.appendItems(this.top(), [value]);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = this.popMark();
          this.appendItems(this.top(), items);
          break;
        }

        // Scalars.
        case 0x4e: // NONE
          this.push(null);
          break;
        case 0x88: // NEWTRUE
          this.push(true);
          break;
        case 0x89: // NEWFALSE
          this.push(false);
          break;
        case 0x4a: // BININT
          this.push(this.i32());
          break;
        case 0x4b: // BININT1
          this.push(this.u8());
          break;
        case 0x4d: // BININT2
          this.push(this.u16());
          break;
        case 0x8a: // LONG1
          this.push(this.decodeLong(this.take(this.u8())));
          break;
        case 0x8b: {
          // LONG4
          const n = this.i32();
          if (n < 0) this.fail('LONG4 has a negative length');
          this.push(this.decodeLong(this.take(n)));
          break;
        }
        case 0x49: {
          // INT: protocol 0 spells booleans as I01/I00.
          const text = this.line();
          this.push(text === '01' ? true : text === '00' ? false : this.parseTextInt(text));
          break;
        }
        case 0x4c: // LONG
          this.push(this.parseTextInt(this.line()));
          break;
        case 0x47: {
          // BINFLOAT: the one big-endian field in the format.
          this.need(8);
          this.push(this.view.getFloat64(this.pos, false));
          this.pos += 8;
          break;
        }
        case 0x46: {
          // FLOAT
          const text = this.line().trim();
          if (!/^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan)$/i.test(text)) {
            this.fail(`malformed float literal "${text}"`);
          }
          this.push(Number(text.replace(/inf/i, 'Infinity')));
          break;
        }

        // Strings and bytes.
        case 0x58: // BINUNICODE
          this.push(this.utf8(this.take(this.u32())));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.push(this.utf8(this.take(this.u8())));
          break;
        case 0x8d: // BINUNICODE8
          this.push(this.utf8(this.take(this.u64())));
          break;
        case 0x54: {
          // BINSTRING: a Python 2 `str`, which torch.load decodes as UTF-8 text.
          const n = this.i32();
          if (n < 0) this.fail('BINSTRING has a negative length');
          this.push(this.py2String(this.take(n)));
          break;
        }
        case 0x55: // SHORT_BINSTRING
          this.push(this.py2String(this.take(this.u8())));
          break;
        case 0x42: // BINBYTES
          this.push(this.take(this.u32()).slice());
          break;
        case 0x43: // SHORT_BINBYTES
          this.push(this.take(this.u8()).slice());
          break;
        case 0x8e: // BINBYTES8
          this.push(this.take(this.u64()).slice());
          break;

        default: {
          const name = REFUSED_OPCODES.get(op);
          if (name)
            this.fail(`refusing pickle opcode ${name} (0x${hex(op)}): it instantiates arbitrary classes`);
          this.fail(`unknown or unsupported pickle opcode 0x${hex(op)}`);
        }
      }
    }
  }

  private py2String(raw: Uint8Array): string {
    try {
      return utf8.decode(raw);
    } catch {
      return latin1.decode(raw);
    }
  }

  private persistent(pid: unknown): unknown {
    const load = this.options.persistentLoad;
    if (!load) this.fail('refusing a persistent id: this pickle may not reference external data');
    try {
      return load(pid);
    } catch (error) {
      if (error instanceof CheckpointError) this.fail(error.message);
      throw error;
    }
  }
}

function narrow(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
