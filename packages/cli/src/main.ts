import { Command, CommanderError } from 'commander';
import { registerDetectCommand } from './commands/detect.js';
import { registerEmbedCommand } from './commands/embed.js';
import { registerGalleryCommands } from './commands/gallery.js';
import { registerModelsCommands } from './commands/models.js';
import { registerPipelineCommands } from './commands/pipeline.js';
import { reportError } from './output.js';

/** Builds the `facerec` command tree. */
export function createProgram(): Command {
  const program = new Command('facerec')
    .description('facerec — face detection and recognition, locally or as a serverless pipeline')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerModelsCommands(program);
  registerDetectCommand(program);
  registerEmbedCommand(program);
  registerGalleryCommands(program);
  registerPipelineCommands(program);
  return program;
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    return reportError(error);
  }
}
