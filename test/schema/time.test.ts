import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {formatDuration, formatTs, normalizeTs, parseDuration, parseTs, tsAgo} from '../../src/schema/time.js'

describe('timestamps', () => {
  it('formats UTC in SQLite layout with milliseconds', () => {
    assert.equal(formatTs(new Date(Date.UTC(2026, 10, 27, 20, 41, 7, 123))), '2026-11-27 20:41:07.123')
    assert.equal(formatTs(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6))), '2026-01-02 03:04:05.006')
  })

  it('parses our layout, SQLite without fraction, and RFC 3339 with 0-9 digits and offsets', () => {
    const ms = Date.UTC(2026, 10, 27, 20, 41, 7, 123)
    assert.equal(parseTs('2026-11-27 20:41:07.123')?.getTime(), ms)
    assert.equal(parseTs('2026-11-27T20:41:07.123456789Z')?.getTime(), ms)
    assert.equal(parseTs('2026-11-27T20:41:07Z')?.getTime(), ms - 123)
    assert.equal(parseTs('2026-11-27 20:41:07')?.getTime(), ms - 123)
    assert.equal(parseTs('2026-11-27T22:41:07.123+02:00')?.getTime(), ms)
    assert.equal(parseTs('2026-11-27')?.getTime(), Date.UTC(2026, 10, 27))
    assert.equal(parseTs('yesterday'), null)
    assert.equal(parseTs('2026-02-31'), null)
  })

  it('normalises the original layout to ours and keeps lexical order equal to time order', () => {
    assert.equal(normalizeTs('2026-11-27T20:41:07.5Z'), '2026-11-27 20:41:07.500')
    assert.equal(normalizeTs('2026-11-27T20:41:07Z'), '2026-11-27 20:41:07.000')
    assert.equal(normalizeTs(null), null)
    const a = normalizeTs('2026-11-27T20:41:07Z')!
    const b = normalizeTs('2026-11-27T20:41:07.5Z')!
    assert.ok(a < b, 'the original layout mis-orders these two; ours does not')
  })

  it('cutoffs compare correctly against datetime() text', () => {
    const base = new Date(Date.UTC(2026, 10, 27, 12, 0, 0))
    assert.equal(
      tsAgo(3_600_000, () => base),
      '2026-11-27 11:00:00.000',
    )
  })
})

describe('durations', () => {
  it('accepts units, combinations and schedule words', () => {
    assert.equal(parseDuration('90s'), 90_000)
    assert.equal(parseDuration('1h30m'), 5_400_000)
    assert.equal(parseDuration('30d'), 30 * 86_400_000)
    assert.equal(parseDuration('2w'), 14 * 86_400_000)
    assert.equal(parseDuration('250ms'), 250)
    assert.equal(parseDuration('daily'), 86_400_000)
    assert.equal(parseDuration('monthly'), 30 * 86_400_000)
  })

  it('rejects what it cannot read, naming the accepted forms', () => {
    for (const bad of ['', '5', '3x', 'h', '1h 30m', '-5m']) {
      assert.throws(() => parseDuration(bad), /invalid duration.*ms, s, m, h, d, w/)
    }
  })

  it('formats for humans', () => {
    assert.equal(formatDuration(850), '850ms')
    assert.equal(formatDuration(12_300), '12.3s')
    assert.equal(formatDuration(245_000), '4m05s')
    assert.equal(formatDuration(7_800_000), '2h10m')
    assert.equal(formatDuration(null), '-')
  })
})
