/**
 * The CLI's exit codes, documented in README.md ("The CLI"). A CI step branches on them, so they never change
 * meaning: add new ones at the end.
 */
export const EXIT = {
  ok: 0,
  /** Anything unexpected: a 5xx, a response the CLI does not understand. */
  error: 1,
  /** Bad input: wrong arguments, a 4xx from the server (invalid request, not found), an invalid dataset. */
  badInput: 2,
  /** `jobs create --wait` / `jobs wait`: the job ended failed or cancelled. */
  jobFailed: 3,
  /** A promotion gate refused an alias move (the eval did not beat the baseline). */
  gateNotMet: 4,
  /** The server could not be reached (refused, DNS, timeout). */
  unreachable: 5,
  /** The API key is missing, wrong or lacks the scope. */
  unauthorized: 6,
} as const;

export class CliError extends Error {
  constructor(message: string, readonly exitCode: number, readonly body?: unknown) {
    super(message);
    this.name = 'CliError';
  }
}
