import { closeSync, openSync, readSync } from 'node:fs';

/**
 * Reads SQLite pages straight from a database file, for salvage: the rows on a damaged
 * page must not be trusted even when SQLite hands them back (their bytes may be the
 * damage), and SQLite's own checks may stop at the first damage they meet. So every
 * table leaf of the file is read here, and one whose cells do not parse as message rows
 * (or that integrity_check names) marks the rowids it shows as untrusted.
 * Format: https://www.sqlite.org/fileformat2.html (b-tree pages, cells, records, varints).
 */
const TABLE_LEAF = 0x0d;
const LEAF_HEADER_BYTES = 8;

/** The page numbers a PRAGMA integrity_check report names ("Tree 2 page 30 cell 4: ...", "... of page 30"). */
export function pagesNamed(report: readonly string[]): Set<number> {
  const pages = new Set<number>();
  for (const line of report) for (const match of line.matchAll(/\bpage (\d+)/gi)) pages.add(Number(match[1]));
  return pages;
}

export interface UntrustedRows {
  /** Rowids of rows on damaged table leaves that still look whole (their bytes may not be). */
  readonly rowids: Set<number>;
  /** Those table leaves' page numbers. */
  readonly pages: number[];
}

/**
 * The table leaves of `file` that are `named` (by integrity_check) or whose cells are not
 * all well-formed message rows ((NULL, TEXT, TEXT, BLOB) records that fit their page,
 * under rowids that rise from cell to cell), and the rowids of the cells on them that do
 * look whole: SQLite may hand those back, and their bytes may be the damage. A cell that
 * does not parse names no rowid (its bytes would name a random one); SQLite cannot find
 * its row by the real one either. Page 1 (the schema) is skipped.
 */
export function untrustedRows(file: string, pageSize: number, named: ReadonlySet<number>): UntrustedRows {
  const rowids = new Set<number>();
  const pages: number[] = [];
  const page = Buffer.alloc(pageSize);
  const fd = openSync(file, 'r');
  try {
    for (let number = 2; readSync(fd, page, 0, pageSize, (number - 1) * pageSize) === pageSize; number++) {
      if (page[0] !== TABLE_LEAF) continue;
      const leaf = readLeaf(page, pageSize);
      if (leaf.wellFormed && !named.has(number)) continue;
      pages.push(number);
      for (const rowid of leaf.wholeRows) rowids.add(rowid);
    }
  } finally {
    closeSync(fd);
  }
  return { rowids, pages };
}

/** A table leaf's rowids of cells that parse as message rows, and whether every cell does. */
function readLeaf(page: Buffer, pageSize: number): { wholeRows: number[]; wellFormed: boolean } {
  const cells = page.readUInt16BE(3);
  const wholeRows: number[] = [];
  let wellFormed = LEAF_HEADER_BYTES + 2 * cells <= pageSize;
  let previous: bigint | null = null;
  for (let i = 0; i < cells; i++) {
    const pointer = LEAF_HEADER_BYTES + 2 * i;
    if (pointer + 2 > pageSize) break;
    const cell = page.readUInt16BE(pointer);
    const payload = varint(page, cell);
    const rowid = payload === null ? null : varint(page, payload.next);
    if (payload === null || rowid === null || !isMessageRecord(page, rowid.next, Number(payload.value), pageSize)) {
      wellFormed = false;
      continue;
    }
    if (previous !== null && rowid.value <= previous) wellFormed = false;
    previous = rowid.value;
    wholeRows.push(Number(rowid.value));
  }
  return { wholeRows, wellFormed };
}

/** Whether the record at `at` (its payload `size` bytes) is (TEXT, TEXT, BLOB) and fits its page. */
function isMessageRecord(page: Buffer, at: number, size: number, pageSize: number): boolean {
  if (at < LEAF_HEADER_BYTES || size < 0) return false;
  const local = localPayload(size, pageSize);
  // The local part, and the overflow page number after it when the row spills over.
  if (at + local + (local < size ? 4 : 0) > pageSize) return false;
  const header = varint(page, at);
  if (header === null) return false;
  const headerSize = Number(header.value);
  if (headerSize < 4 || headerSize > local) return false;
  // seq, the rowid's alias, is kept as NULL (serial type 0); then recipient TEXT (an odd
  // serial type from 13), sender TEXT, body BLOB (an even one from 12): (type - 12) / 2 bytes.
  const nullSeq = varint(page, header.next);
  if (nullSeq === null || nullSeq.value !== 0n) return false;
  let next = nullSeq.next;
  let content = 0;
  for (const wantText of [true, true, false]) {
    const type = varint(page, next);
    if (type === null || type.next > at + headerSize) return false;
    const serial = Number(type.value);
    if (serial < 12 || (serial % 2 === 1) !== wantText) return false;
    content += Math.floor((serial - 12) / 2);
    next = type.next;
  }
  return next === at + headerSize && headerSize + content === size;
}

/** How much of a table leaf cell's payload of `size` bytes is on its page (the rest overflows). */
function localPayload(size: number, pageSize: number): number {
  const usable = pageSize;
  const maxLocal = usable - 35;
  if (size <= maxLocal) return size;
  const minLocal = Math.floor(((usable - 12) * 32) / 255) - 23;
  const local = minLocal + ((size - minLocal) % (usable - 4));
  return local <= maxLocal ? local : minLocal;
}

/** A SQLite varint at `at`: up to 9 bytes, 7 bits each, all 8 bits of a ninth. */
function varint(bytes: Buffer, at: number): { value: bigint; next: number } | null {
  let value = 0n;
  for (let i = 0; i < 9; i++) {
    const byte = bytes[at + i];
    if (byte === undefined) return null;
    if (i === 8) return { value: BigInt.asIntN(64, (value << 8n) | BigInt(byte)), next: at + 9 };
    value = (value << 7n) | BigInt(byte & 0x7f);
    if ((byte & 0x80) === 0) return { value: BigInt.asIntN(64, value), next: at + i + 1 };
  }
  return null;
}
