import { ProxyError, type ErrorCode } from '@ccproxy/core';

/**
 * Bedrock exceptions → our error model, by exception name (the status alone misleads:
 * `ServiceQuotaExceededException` is a 400 that means "slow down"). Context-window overflow
 * keeps Anthropic's wording, "prompt is too long", because Claude Code compacts on it.
 */
const byName: Readonly<Record<string, ErrorCode>> = {
  ValidationException: 'PRX_BEDROCK_INVALID_REQUEST',
  ConflictException: 'PRX_BEDROCK_INVALID_REQUEST',
  ServiceQuotaExceededException: 'PRX_BEDROCK_RATE_LIMITED',
  ThrottlingException: 'PRX_BEDROCK_RATE_LIMITED',
  ModelNotReadyException: 'PRX_BEDROCK_OVERLOADED',
  ServiceUnavailableException: 'PRX_BEDROCK_OVERLOADED',
  ModelTimeoutException: 'PRX_BEDROCK_TIMEOUT',
  InternalServerException: 'PRX_BEDROCK_ERROR',
  ModelErrorException: 'PRX_BEDROCK_ERROR',
  ModelStreamErrorException: 'PRX_BEDROCK_ERROR',
  AccessDeniedException: 'PRX_BEDROCK_MISCONFIGURED',
  UnrecognizedClientException: 'PRX_BEDROCK_MISCONFIGURED',
  // SigV4 refusals (AwsIdentity keys): the proxy's AWS credentials or clock, never the client's key.
  InvalidSignatureException: 'PRX_BEDROCK_MISCONFIGURED',
  IncompleteSignatureException: 'PRX_BEDROCK_MISCONFIGURED',
  MissingAuthenticationTokenException: 'PRX_BEDROCK_MISCONFIGURED',
  ExpiredTokenException: 'PRX_BEDROCK_MISCONFIGURED',
  ResourceNotFoundException: 'PRX_BEDROCK_NOT_FOUND',
};

const byStatus = (status: number): ErrorCode =>
  status === 429
    ? 'PRX_BEDROCK_RATE_LIMITED'
    : status === 503
      ? 'PRX_BEDROCK_OVERLOADED'
      : status === 408 || status === 504
        ? 'PRX_BEDROCK_TIMEOUT'
        : status === 401 || status === 403
          ? 'PRX_BEDROCK_MISCONFIGURED'
          : status >= 400 && status < 500
            ? 'PRX_BEDROCK_INVALID_REQUEST'
            : 'PRX_BEDROCK_ERROR';

const tooLong = /input is too long|prompt is too long|too many input tokens|context (window|length)/i;
const modelPrefix = /^The model returned the following errors:\s*/;

export interface BedrockFailure {
  /** Exception name, e.g. `ThrottlingException` (from `x-amzn-errortype` or `:exception-type`). */
  name: string | undefined;
  status?: number;
  message?: string;
  /** `ModelErrorException` / `ModelStreamErrorException` carry the model's own status. */
  originalStatusCode?: number;
}

export function fromBedrockFailure(failure: BedrockFailure): ProxyError {
  const name = normalizeName(failure.name);
  let code: ErrorCode = (name === undefined ? undefined : byName[name]) ?? byStatus(failure.status ?? 500);
  if (failure.originalStatusCode === 529 || failure.originalStatusCode === 503) code = 'PRX_BEDROCK_OVERLOADED';
  else if (failure.originalStatusCode === 429) code = 'PRX_BEDROCK_RATE_LIMITED';
  const detail = (failure.message ?? '').replace(modelPrefix, '').trim();
  if (code === 'PRX_BEDROCK_INVALID_REQUEST' && tooLong.test(detail)) {
    return new ProxyError(
      code,
      detail.toLowerCase().startsWith('prompt is too long') ? detail : `prompt is too long: ${detail}`,
    );
  }
  // Credential and model-access problems are the operator's to fix; the detail goes to the log, not the client.
  if (code === 'PRX_BEDROCK_MISCONFIGURED')
    return new ProxyError(code, undefined, { cause: new Error(`${name ?? failure.status}: ${detail}`) });
  return new ProxyError(code, detail === '' ? undefined : detail);
}

/** `x-amzn-errortype: ValidationException:http://internal.amazon.com/…` → `ValidationException`; `throttlingException` → `ThrottlingException`. */
function normalizeName(name: string | undefined): string | undefined {
  if (name === undefined || name === '') return undefined;
  const bare = name.split(':', 1)[0] ?? name;
  return bare.charAt(0).toUpperCase() + bare.slice(1);
}
