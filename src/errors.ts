// One error type per boundary (style-anchors §D5). Every error carries a stable `code` so logs, metrics and the
// CNI error `details` can name the failure without parsing messages. The plugin converts to CNI error JSON in
// exactly one place (src/cni/dispatch.ts); the agent logs and exits or retries.

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CNI_PROTOCOL'
  | 'KUBECONFIG_INVALID'
  | 'KUBE_API'
  | 'ANNOTATION_INVALID'
  | 'RULES_INVALID'
  | 'EXEC_FAILED'
  | 'BINARY_MISSING'
  | 'NETNS'
  | 'CONFLIST_INVALID'
  | 'INSTALL_FAILED'
  | 'WATCH_FAILED'
  | 'REPAIR_FAILED';

export class AppError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Invalid agent settings (flags/env) or plugin netconf fields. */
export class ConfigError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
  }
}

/** A host command (iptables-restore, nft, ip, nsenter) failed or is missing. */
export class ExecError extends AppError {
  readonly exitCode: number | undefined;
  readonly stderr: string;
  /** The command was killed at its timeout: it ran, and may have done part of its work. */
  readonly timedOut: boolean;
  constructor(
    code: 'EXEC_FAILED' | 'BINARY_MISSING' | 'NETNS',
    message: string,
    details: { exitCode?: number; stderr?: string; timedOut?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.exitCode = details.exitCode;
    this.stderr = details.stderr ?? '';
    this.timedOut = details.timedOut ?? false;
  }
}

/** Talking to the Kubernetes API failed. `retryable` tells whether trying again later may help (CNI code 11). */
export class KubeError extends AppError {
  readonly status: number | undefined;
  readonly retryable: boolean;
  /** The server's `Retry-After` (429 / 5xx), ms: the earliest a retry is worth making. */
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    details: { status?: number; retryable: boolean; retryAfterMs?: number | undefined; cause?: unknown },
  ) {
    super('KUBE_API', message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
    this.retryable = details.retryable;
    this.retryAfterMs = details.retryAfterMs;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A system error's message without the path Node appends (`EPERM: operation not permitted, open '<path>'`), for a
 * message that names the file itself (and for temp files, whose random names would make every retry's text new). */
export function errorReason(error: unknown): string {
  return errorMessage(error).replace(/, \w+ '[^']*'(?: -> '[^']*')?$/, '');
}

/** Log fields for an error: its message, and its stable code when it has one (or the errno code of a system
 * error), so a log search can find every occurrence of one failure whatever its message says. */
export function errorFields(error: unknown): { err: string; code?: string } {
  const code =
    error instanceof AppError
      ? error.code
      : typeof (error as { code?: unknown } | undefined)?.code === 'string'
        ? (error as { code: string }).code
        : undefined;
  return code === undefined ? { err: errorMessage(error) } : { err: errorMessage(error), code };
}

/** A value cut to `max` characters for an error message: an annotation can hold 256 KiB, and the message ends up
 * in the runtime's log and the pod's events. */
export function bounded(value: string, max = 100): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

/** `bounded`, double-quoted as Go's %q / JSON would. */
export function quoted(value: string, max = 100): string {
  return JSON.stringify(bounded(value, max));
}
