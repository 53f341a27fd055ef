// @lowbit/cli: the lowbit command (eval, generate, inspect, …) as a library: runCli(argv, io).
export { runCli, type CliIo } from './main.js';
export { commands } from './commands/index.js';
export {
  type Command, type CommandContext, type CliEvent, type OptionSpec, type OptionDef, type ArgumentDef, type OptionValues,
  UsageError, defineCommand, parseCommandLine, parseNumber, closest, editDistance, helpText, helpMarkdown, usageLine,
} from './command.js';
export { ProgressBar } from './progress.js';
