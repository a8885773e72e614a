import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { TlsError, errorMessage } from '../errors.js';

/** PEM text as node:tls takes it. */
export type Pem = string | Buffer;

export function isPem(value: unknown): value is Pem {
  return (typeof value === 'string' && value.length > 0) || Buffer.isBuffer(value);
}

/** A CA option's value: PEM text, or a non-empty list of it. */
export function isPemOrList(value: unknown): boolean {
  return Array.isArray(value) ? value.length > 0 && value.every(isPem) : isPem(value);
}

/** What a file holds, for messages: 'certificate', 'key', 'CA'. */
export type TlsPart = 'certificate' | 'key' | 'CA';

function unreadable(path: string, part: TlsPart, cause: unknown): TlsError {
  return new TlsError('PH_ERR_TLS_FILE_UNREADABLE', `cannot read the TLS ${part} file ${path}: ${errorMessage(cause)}`, { cause });
}

/** A certificate, key or CA file's bytes, or a TlsError naming the file. */
export function readTlsFileSync(path: string, part: TlsPart): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw unreadable(path, part, err);
  }
}

/** readTlsFileSync without blocking: for reloads while connections are being served. */
export async function readTlsFile(path: string, part: TlsPart): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw unreadable(path, part, err);
  }
}
