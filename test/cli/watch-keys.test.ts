import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {keysOf} from '../../src/cli/watch.js'

describe('watch: keys in one read', () => {
  it('splits a read into keys: letters, Enter, and an escape sequence as one key', () => {
    assert.deepEqual(keysOf('mailer\r'), ['m', 'a', 'i', 'l', 'e', 'r', '\r'])
    assert.deepEqual(keysOf('\x1b[Aq'), ['\x1b[A', 'q'])
    assert.deepEqual(keysOf('\x1b'), ['\x1b'], 'Esc alone')
    assert.deepEqual(keysOf('\x1bOPx'), ['\x1bOP', 'x'], 'an SS3 key (F1)')
    assert.deepEqual(keysOf(''), [])
  })
})
