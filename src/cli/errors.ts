// An error the CLI reports as one line and a non-zero exit status (no stack trace).

/** Printed as "error: message"; the command exits with exitCode (1, or 2 for bad usage). */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
