// CNI protocol constants and the protocol's own error type (containernetworking/cni v1.3.0 `pkg/types`,
// `pkg/version`). Everything here is data; the dispatcher (dispatch.ts) is the only place that prints errors.

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const CURRENT_VERSION = '1.1.0';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';

/** Spec error codes (CNI spec "Error codes"). */
export const CNI_ERROR = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENVIRONMENT_VARIABLES: 4,
  IO_FAILURE: 5,
  DECODING_FAILURE: 6,
  INVALID_NETWORK_CONFIG: 7,
  INVALID_NETNS: 8,
  TRY_AGAIN_LATER: 11,
  INTERNAL: 999,
} as const;

/** An error already in CNI terms: printed as is (skel's don't-double-wrap rule). */
export class CniError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, msg: string, details = '') {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
}

/** skel's error encoding: `{"code":N,"msg":"…","details":"…"}` indented by 4 spaces, details omitted when empty.
 */
export function encodeCniError(error: CniError): string {
  const body: Record<string, unknown> = {};
  body['code'] = error.code;
  body['msg'] = error.message;
  if (error.details !== '') body['details'] = error.details;
  return goJson(body, 4);
}

/** JSON as Go's encoding/json writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped. */
export function goJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[<>&\u2028\u2029]/g, (char) => {
    return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
