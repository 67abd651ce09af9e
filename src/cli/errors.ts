// An error the CLI reports as one line and a non-zero exit status (no stack trace).

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
