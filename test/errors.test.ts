import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {DuctileError, ERROR_CODES, EXIT_FAILURE, EXIT_USAGE, errorMessage, exitCodeOf} from '../src/errors.js'

describe('errors: one code, one exit status', () => {
  it("the request's own faults exit 2, everything else 1, whoever throws them", () => {
    const usage = ['usage', 'validation', 'unknown_plugin', 'config_invalid', 'config_missing', 'conflict', 'route_failed']
    for (const code of ERROR_CODES) {
      const want = usage.includes(code) ? EXIT_USAGE : EXIT_FAILURE
      assert.equal(exitCodeOf(code), want, code)
      assert.equal(new DuctileError(code, 'x').exitCode, want, code)
    }
  })

  it('errorMessage says what any thrown value was', () => {
    assert.equal(errorMessage(new Error('boom')), 'boom')
    assert.equal(errorMessage('plain'), 'plain')
    assert.equal(errorMessage(42), '42')
    assert.equal(errorMessage(undefined), 'undefined')
  })
})
