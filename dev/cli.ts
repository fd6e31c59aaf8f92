// The conventions every `npm run` command follows (dev, receiver, listen, bench, screenshot,
// client:generate, bridge):
//
//   --help or -h anywhere   the usage on stdout, exit 0, nothing else done
//   a wrong command line    what is wrong, then the usage, on stderr; exit 2 before anything starts
//                           (an unknown option, a stray argument, a missing or bad value)
//
// Options are parsed by node:util's parseArgs, strict and without positionals: a typo is an
// error, never an option silently ignored.

import { type ParseArgsOptionsConfig, parseArgs } from "node:util";

/** A command line the command cannot run with; its message is printed above the usage. */
export class UsageError extends Error {}

/** parseArgs, strict, no positional arguments; what it refuses becomes a UsageError. */
export function parseOptions<const O extends ParseArgsOptionsConfig>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    // parseArgs throws TypeErrors with codes ERR_PARSE_ARGS_UNKNOWN_OPTION, ..._INVALID_OPTION_VALUE
    // and ..._UNEXPECTED_POSITIONAL: all about the command line, none a bug.
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_")) {
      throw new UsageError((error as Error).message);
    }
    throw error;
  }
}

/** True when `argv` asks for the usage, wherever the flag is. */
export const asksForHelp = (argv: string[]) => argv.includes("--help") || argv.includes("-h");

/**
 * Reads a command's arguments with `parse`: on --help prints `usage` and exits 0; on a
 * UsageError prints `<name>: <message>` and the usage to stderr and exits 2. Anything else
 * `parse` throws is a bug and is thrown on.
 */
export function commandLine<T>(
  name: string,
  usage: string,
  parse: (argv: string[]) => T,
  argv: string[] = process.argv.slice(2),
): T {
  if (asksForHelp(argv)) {
    process.stdout.write(`${usage.trimEnd()}\n`);
    process.exit(0);
  }
  try {
    return parse(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${name}: ${error.message}\n\n${usage.trimEnd()}\n`);
    process.exit(2);
  }
}

/** A whole number within [min, max], from an option's text; a UsageError naming the option. */
export function integerOption(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${flag} must be a whole number ${range}, got "${text}"`);
  }
  return value;
}

/** A positive number (fractions allowed), from an option's text. */
export function positiveOption(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value <= 0) {
    throw new UsageError(`--${flag} must be a number above 0, got "${text}"`);
  }
  return value;
}
