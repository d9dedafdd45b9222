import {
  argon2 as argon2Callback,
  createHash,
  randomBytes,
  scrypt as scryptCallback,
  timingSafeEqual,
  type Argon2Parameters,
  type ScryptOptions,
} from 'node:crypto';

/**
 * The break-glass admin password is kept only as a hash. New hashes are argon2id in the PHC
 * string form every argon2 tool reads (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), computed by
 * Node's own OpenSSL-backed `crypto.argon2` (no native add-on to keep). The cost is OWASP's
 * Password Storage Cheat Sheet configuration for argon2id (m=19 MiB, t=2, p=1) — not more: each
 * hash holds m of memory, the admin pod's limit is 256 MiB, and at most two hashes run at once
 * (`hashing`), so a burst of logins cannot run it out of memory.
 *
 * Hashes written by earlier versions (`scrypt$N$r$p$salt$hash`, N=2^15: below OWASP's
 * N=2^17) still verify, and `needsUpgrade` says so, so the admin can log it and an operator
 * can replace the hash; the cost parameters travel with every hash.
 */
export const argon2Cost = { memory: 19_456, passes: 2, parallelism: 1 } as const;
/** OWASP's scrypt minimum: a scrypt hash below it (or any scrypt hash, see needsUpgrade) is reported. */
const scryptMinimumN = 2 ** 17;
const keyLength = 32;

interface Argon2Hash {
  kind: 'argon2id';
  memory: number;
  passes: number;
  parallelism: number;
  salt: Buffer;
  key: Buffer;
}
interface ScryptHash {
  kind: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/** At most two memory-hard hashes at once; the rest wait their turn (memory stays bounded). */
const maxConcurrentHashes = 2;
let running = 0;
const waiting: Array<() => void> = [];
async function hashing<T>(work: () => Promise<T>): Promise<T> {
  if (running >= maxConcurrentHashes) await new Promise<void>((resolve) => waiting.push(resolve));
  running += 1;
  try {
    return await work();
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

function argon2(password: string, salt: Buffer, cost: Omit<Argon2Hash, 'kind' | 'salt' | 'key'>, length: number) {
  const parameters: Argon2Parameters = { message: password, nonce: salt, tagLength: length, ...cost };
  return hashing(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        argon2Callback('argon2id', parameters, (error, key) => (error === null ? resolve(key) : reject(error))),
      ),
  );
}

function scrypt(password: string, salt: Buffer, options: ScryptOptions & { N: number; r: number }, length: number) {
  // maxmem must cover 128 * N * r bytes, or node refuses the cost we ask for.
  const maxmem = 256 * options.N * options.r;
  return hashing(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        scryptCallback(password, salt, length, { ...options, maxmem }, (error, key) =>
          error === null ? resolve(key) : reject(error),
        ),
      ),
  );
}

const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await argon2(password, salt, argon2Cost, keyLength);
  const { memory, passes, parallelism } = argon2Cost;
  return `$argon2id$v=19$m=${memory},t=${passes},p=${parallelism}$${b64(salt)}$${b64(key)}`;
}

export function isPasswordHash(text: string): boolean {
  return parse(text) !== undefined;
}

/**
 * True when a hash verifies but is below the current guidance: any scrypt hash (the format is
 * kept for reading only) or an argon2id hash cheaper than `argon2Cost`.
 */
export function needsUpgrade(text: string): boolean {
  const parsed = parse(text);
  if (parsed === undefined) return true;
  if (parsed.kind === 'scrypt') return true;
  return parsed.memory < argon2Cost.memory || parsed.passes < argon2Cost.passes;
}

/** What `needsUpgrade` found, in words for a log line (no salt, no hash). */
export function describeHash(text: string): string {
  const parsed = parse(text);
  if (parsed === undefined) return 'not a password hash';
  if (parsed.kind === 'scrypt')
    return `scrypt N=${parsed.N} r=${parsed.r} p=${parsed.p}${parsed.N < scryptMinimumN ? ' (below OWASP: N=2^17)' : ''}`;
  return `argon2id m=${parsed.memory} KiB t=${parsed.passes} p=${parsed.parallelism}`;
}

// Bounds keep a hostile or mistyped hash from asking for gigabytes or hours per login.
const within = (n: number, low: number, high: number) => Number.isSafeInteger(n) && n >= low && n <= high;

function parse(text: string): Argon2Hash | ScryptHash | undefined {
  return text.startsWith('$argon2id$') ? parseArgon2(text) : parseScrypt(text);
}

function parseArgon2(text: string): Argon2Hash | undefined {
  const match =
    /^\$argon2id\$v=19\$m=(\d{1,8}),t=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]{11,})\$([A-Za-z0-9+/]{22,})$/.exec(text);
  if (match === null) return undefined;
  const [memory, passes, parallelism] = [match[1], match[2], match[3]].map(Number) as [number, number, number];
  if (!within(parallelism, 1, 16) || !within(memory, 8 * parallelism, 1 << 20) || !within(passes, 1, 16))
    return undefined;
  const salt = Buffer.from(match[4] as string, 'base64');
  const key = Buffer.from(match[5] as string, 'base64');
  return salt.length >= 8 && key.length >= 16
    ? { kind: 'argon2id', memory, passes, parallelism, salt, key }
    : undefined;
}

function parseScrypt(text: string): ScryptHash | undefined {
  const parts = text.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((n) => Number.isSafeInteger(n) && n > 0) || N > 2 ** 20 || r > 32 || p > 16) return undefined;
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const key = Buffer.from(parts[5] ?? '', 'base64url');
  return salt.length >= 8 && key.length >= 16 ? { kind: 'scrypt', N, r, p, salt, key } : undefined;
}

/** Constant-time comparison; a malformed hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parse(stored);
  if (parsed === undefined) return false;
  const key =
    parsed.kind === 'argon2id'
      ? await argon2(password, parsed.salt, parsed, parsed.key.length)
      : await scrypt(password, parsed.salt, { N: parsed.N, r: parsed.r, p: parsed.p }, parsed.key.length);
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}

/** A password for local mode, printed once: 18 random bytes, URL-safe. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * What names a plain password (CCPROXY_ADMIN_PASSWORD) across replicas and restarts, whose hash
 * is salted anew at every start: a changed password then ends earlier break-glass sessions
 * (sessions.ts, which stores it only keyed by the session secret).
 */
export function passwordCredentialId(password: string): string {
  return createHash('sha256').update(`ccproxy-admin-break-glass\n${password}`).digest('hex');
}
