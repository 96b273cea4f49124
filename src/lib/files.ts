import {closeSync, lstatSync, openSync, readSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'

import {usageError} from '../errors.js'

/**
 * Files Ductile writes for the operator. Those holding data are created private (0600) before a byte is in
 * them, never chmodded after; a file that already exists is never replaced by surprise.
 */

/** Create `path` empty and private (0600), refusing one that exists (then SQLite fills it: VACUUM INTO, backup). */
export function createPrivateFile(path: string): void {
  let fd: number
  try {
    fd = openSync(path, 'wx', 0o600)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw usageError(`${path} already exists`, 'choose a new file name')
    throw e
  }
  closeSync(fd)
}

const SQLITE_MAGIC = 'SQLite format 3\0'

function startsWithSqliteHeader(path: string): boolean {
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.alloc(SQLITE_MAGIC.length)
    const n = readSync(fd, buf, 0, buf.length, 0)
    return n === buf.length && buf.toString('latin1') === SQLITE_MAGIC
  } finally {
    closeSync(fd)
  }
}

/**
 * A node_exporter textfile target: its name ends in `.prom` (the only files the collector reads), and if it
 * exists it is a regular file (not a symlink, FIFO or device) that is not a SQLite database.
 */
export function assertTextfileTarget(path: string): void {
  if (!path.endsWith('.prom')) {
    throw usageError(`--textfile ${path} does not end in .prom`, "node_exporter's textfile collector reads only *.prom files: name it e.g. ductile.prom")
  }
  let st: ReturnType<typeof lstatSync>
  try {
    st = lstatSync(path)
  } catch {
    return // a new file
  }
  const what = st.isSymbolicLink()
    ? 'a symlink'
    : st.isFIFO()
      ? 'a FIFO'
      : st.isCharacterDevice() || st.isBlockDevice()
        ? 'a device'
        : st.isDirectory()
          ? 'a directory'
          : st.isFile()
            ? null
            : 'not a regular file'
  if (what) throw usageError(`--textfile ${path} is ${what}; only a regular file is replaced`, 'point --textfile at a plain file in the collector directory')
  if (startsWithSqliteHeader(path))
    throw usageError(`--textfile ${path} is a SQLite database; it is never written over`, 'point --textfile at a .prom file in the collector directory')
}

/** Replace `path` whole (a temp file beside it, then rename), so a reader never sees half of it. */
export function writeAtomically(path: string, text: string, mode: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`)
  try {
    writeFileSync(tmp, text, {mode, flag: 'wx'})
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, {force: true})
    throw err
  }
}
