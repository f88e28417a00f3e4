import { InvalidOptionsError, MODELS, type ModelRegistry } from '@facerec/framework';
import { Command, CommanderError, type Option } from 'commander';
import { registerDetectCommand } from './commands/detect.js';
import { registerEmbedCommand } from './commands/embed.js';
import { registerGalleryCommands } from './commands/gallery.js';
import { registerModelsCommands } from './commands/models.js';
import { registerPipelineCommands } from './commands/pipeline.js';
import { registerVerifyCommand } from './commands/verify.js';
import { reportError } from './output.js';
import type { CliContext } from './providers.js';

/** What the CLI can be given instead of its defaults (an embedding application, tests). */
export interface CliOptions {
  /** The models `--provider` / `--embedder` choose from. Default: the built-in registry. */
  readonly registry?: ModelRegistry;
}

/** Builds the `facerec` command tree. */
export function createProgram(options: CliOptions = {}): Command {
  const context: CliContext = { registry: options.registry ?? MODELS };
  const program = new Command('facerec')
    .description('facerec — face detection and recognition, locally or as a serverless pipeline')
    .version('0.1.0')
    // A usage error is its one line and a pointer to the help, not the whole help text after it.
    .showHelpAfterError('(see facerec --help)')
    .exitOverride();
  registerModelsCommands(program, context);
  registerDetectCommand(program, context);
  registerEmbedCommand(program, context);
  registerVerifyCommand(program, context);
  registerGalleryCommands(program, context);
  registerPipelineCommands(program, context);
  checkRequiredOptionsAfterUnknownOnes(program);
  refuseInt8OffOnnx(program);
  tailorUsageErrors(program);
  return program;
}

/**
 * Per command: a usage error points to that command's own help (`(see facerec gallery add --help)`), and an
 * unknown option that begins a single option of the command is suggested as that option (commander suggests
 * within a few edits only: `--min-face` got no "Did you mean --min-face-size?"). Help text wraps at the
 * terminal's width even beside long command names (commander leaves a description unwrapped when less than 40
 * columns are left for it, so `facerec gallery --help` ran to 200 columns).
 */
function tailorUsageErrors(program: Command): void {
  const walk = (command: Command, path: string[]) => {
    command.configureHelp({ minWidthToWrap: 24 });
    if (path.length) {
      command.showHelpAfterError(`(see facerec ${path.join(' ')} --help)`);
      command.configureOutput({
        outputError: (message, write) => write(withPrefixSuggestion(command, message)),
      });
    }
    for (const sub of command.commands) walk(sub, [...path, sub.name()]);
  };
  walk(program, []);
}

/**
 * `message`, an unknown option's, suggesting the options of `command` (and its parents) that begin with what was
 * given: "(Did you mean --min-face-size?)" for one, "(Did you mean one of --port, --precision, --provider?)" for
 * several, in place of commander's guess by edit distance (`--wor` got `--port`, not `--workers`). Where no
 * option begins so, commander's guess stays.
 */
function withPrefixSuggestion(command: Command, message: string): string {
  const parsed = /^error: unknown option '(--[^'=]+)[^']*'(\n\(Did you mean [^\n]*\))?\n$/.exec(message);
  if (!parsed) return message;
  const [, unknown, guess = ''] = parsed;
  const longs = new Set<string>();
  for (let c: Command | null = command; c; c = c.parent) {
    for (const o of c.options) if (o.long && !o.hidden) longs.add(o.long);
  }
  // commander's own --help is no option of the command's list.
  longs.add('--help');
  const matches = [...longs].filter((long) => long.startsWith(unknown!)).sort();
  if (matches.length === 0) return message;
  const suggestion =
    matches.length === 1 ? `(Did you mean ${matches[0]}?)` : `(Did you mean one of ${matches.join(', ')}?)`;
  return `${message.slice(0, message.length - guess.length - 1)}\n${suggestion}\n`;
}

/**
 * `--precision int8` runs on the onnx provider's int8 graphs only. Every command taking both flags refuses it
 * with another provider here, before it pulls a model, opens a queue file or starts a worker (the tfjs
 * provider would refuse it too, but only once its embedder is asked for).
 */
function refuseInt8OffOnnx(program: Command): void {
  program.hook('preAction', (_program, action) => {
    const { precision, provider } = action.opts<{ precision?: string; provider?: string }>();
    if (precision !== 'int8' || provider === undefined || provider === 'onnx') return;
    const path: string[] = [];
    for (let c: Command | null = action; c && c !== program; c = c.parent) path.unshift(c.name());
    throw new InvalidOptionsError(
      path.join(' '),
      `--precision int8 runs on the onnx provider only (--provider onnx), not ${provider}`,
    );
  });
}

/**
 * Commander reports a missing required option before an unknown one, so `--galery g.json` said "required option
 * '--gallery <file>' not specified" without its "Did you mean --gallery?". Required options are checked here
 * instead, before the action and after commander's unknown-option check, with commander's own message.
 */
function checkRequiredOptionsAfterUnknownOnes(program: Command): void {
  const required = new Map<Command, Option[]>();
  const walk = (command: Command) => {
    const mandatory = command.options.filter((o) => o.mandatory);
    for (const o of mandatory) o.mandatory = false;
    if (mandatory.length) required.set(command, mandatory);
    command.commands.forEach(walk);
  };
  walk(program);
  program.hook('preAction', (_program, action) => {
    for (const option of required.get(action) ?? []) {
      if (action.getOptionValue(option.attributeName()) === undefined) {
        action.error(`error: required option '${option.flags}' not specified`, {
          code: 'commander.missingMandatoryOptionValue',
        });
      }
    }
  });
}

/**
 * Runs the CLI; returns the process exit code. `argv` is the whole of `process.argv` (`['node', 'facerec',
 * …arguments]`): its first two entries are skipped, as commander does.
 *
 * @example
 * process.exitCode = await main(process.argv, { registry: MODELS.with(myEmbedder) });
 */
export async function main(argv: readonly string[], options: CliOptions = {}): Promise<number> {
  try {
    await createProgram(options).parseAsync([...argv]);
    return 0;
  } catch (error) {
    // Usage errors (unknown option, bad choice, missing argument) exit 2 like every other bad input; help and
    // --version exit 0.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    return reportError(error);
  }
}
