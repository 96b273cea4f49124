import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {Logger} from '../../src/engine/log.js'

/** Engine log lines: one line per event, whatever a plugin wrote into the message or a value. */

describe('engine log', () => {
  it('text lines show control characters and line breaks of plugin text escaped: no forged line, no terminal escape', () => {
    const lines: string[] = []
    const log = new Logger('text', 'info', (l) => lines.push(l))
    log.info('plugin: done\n2026-11-30 00:00:00.000 ERROR forged \x1b]0;pwned\x07\x1b[2J', {error: 'a\rb\x9bc', plugin: 'x'})
    assert.equal(lines.length, 1)
    const [line] = lines as [string]
    assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f]/, 'no control character, no line break')
    assert.match(line, /plugin: done\\n2026-11-30 00:00:00\.000 ERROR forged \\x1b\]0;pwned\\x07\\x1b\[2J/)
    assert.match(line, /error="?a\\rb\\u009bc/)
  })

  it('json lines stay one JSON object per line', () => {
    const lines: string[] = []
    new Logger('json', 'info', (l) => lines.push(l)).info('plugin: a\nb', {v: '\x1b[2J'})
    assert.equal(lines.length, 1)
    assert.deepEqual(JSON.parse(lines[0]!).msg, 'plugin: a\nb')
  })
})
