// Damages real SQLite shard files on purpose, the way a bad disk or a stray write would:
// by overwriting bytes of a page, chosen by what the page holds.
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';

const TABLE_LEAF = 0x0d;

export interface Page {
  /** 1-based, as SQLite numbers pages. */
  readonly number: number;
  readonly offset: number;
  readonly size: number;
  /** Cells on the page (rows, on a table leaf). */
  readonly cells: number;
}

/** `length` bytes of the file from `offset`. */
export function readBytes(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const bytes = Buffer.alloc(length);
    readSync(fd, bytes, 0, length, offset);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/** The file's page size, from its header. */
export function pageSize(file: string): number {
  const size = readBytes(file, 16, 2).readUInt16BE(0);
  return size === 1 ? 65_536 : size;
}

/**
 * The table leaf pages of a checkpointed (cleanly closed) shard file, in file order. In a
 * shard file only the messages table is a rowid table besides the schema on page 1, so
 * every one past page 1 holds messages.
 */
export function tableLeafPages(file: string): Page[] {
  const size = pageSize(file);
  const pages = Math.floor(statSync(file).size / size);
  const out: Page[] = [];
  for (let number = 2; number <= pages; number++) {
    const header = readBytes(file, (number - 1) * size, 8);
    if (header[0] === TABLE_LEAF) out.push({ number, offset: (number - 1) * size, size, cells: header.readUInt16BE(3) });
  }
  return out;
}

/** The first table leaf at or past the middle of the file. */
export function middleTableLeaf(file: string): Page {
  const pages = tableLeafPages(file);
  const middle = statSync(file).size / 2;
  const page = pages.find((candidate) => candidate.offset >= middle) ?? pages.at(-1);
  if (page === undefined) throw new Error(`${file} has no table leaf page`);
  return page;
}

/** Writes `bytes` over the file at `offset`. */
export function overwrite(file: string, offset: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}
