import {randomBytes} from 'node:crypto'

/**
 * Time-ordered ids: UUIDv7. Ids minted in the same millisecond by this process stay
 * ordered: the 12-bit rand_a field carries a counter that restarts at a random value each millisecond.
 */
let lastMs = 0
let counter = 0

// Random bytes are drawn from a pool: one getrandom call per 256 ids instead of one per id.
const POOL_SIZE = 4096
let pool = randomBytes(POOL_SIZE)
let poolAt = 0
function random16(): Buffer {
  if (poolAt + 16 > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE)
    poolAt = 0
  }
  const out = Buffer.from(pool.subarray(poolAt, poolAt + 16))
  poolAt += 16
  return out
}

export function uuidv7(now: number = Date.now()): string {
  let ms = now
  if (ms <= lastMs) {
    ms = lastMs
    counter++
    if (counter > 0xfff) {
      // Counter exhausted inside one millisecond: borrow the next millisecond, keeping order.
      ms = lastMs + 1
      counter = random16().readUInt8(0)
    }
  } else {
    counter = random16().readUInt8(0)
  }
  lastMs = ms
  const bytes = random16()
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff
  bytes[2] = (ms >>> 24) & 0xff
  bytes[3] = (ms >>> 16) & 0xff
  bytes[4] = (ms >>> 8) & 0xff
  bytes[5] = ms & 0xff
  bytes[6] = 0x70 | ((counter >>> 8) & 0x0f)
  bytes[7] = counter & 0xff
  bytes[8] = (bytes.readUInt8(8) & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** Config snapshot ids: `cfg_` + a v7 hex without dashes. */
export function configSnapshotId(): string {
  return `cfg_${uuidv7().replaceAll('-', '')}`
}

/** job_log ids stay `<job_id>-<attempt>`: one row per attempt, found without an index, and the original's form. */
export function jobLogId(jobId: string, attempt: number): string {
  return `${jobId}-${attempt}`
}
