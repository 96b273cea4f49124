import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {getPath, parseExpr} from '../../src/config/expr.js'

/** The `if:` expressions of pipelines and steps, parsed and evaluated in process. */

const scope = {payload: {n: 3, name: 'kitchen', on: true, nested: {deep: 'x'}}, context: {region: 'eu'}}
const yes = (src: string) => assert.equal(parseExpr(src).eval(scope), true, src)
const no = (src: string) => assert.equal(parseExpr(src).eval(scope), false, src)

describe('pipeline expressions', () => {
  it('compares numbers, strings and booleans from payload and context', () => {
    yes('payload.n == 3')
    yes('payload.n >= 3 && payload.n < 4')
    yes("payload.name == 'kitchen'")
    yes('payload.name != "hall"')
    yes('context.region == "eu"')
    yes('payload.on == true')
    no('payload.n > 3')
  })

  it('honours !, ||, && and parentheses', () => {
    yes('!(payload.n == 4)')
    yes('payload.n == 4 || payload.on == true')
    no('payload.n == 4 || (payload.on == true && context.region == "us")')
  })

  it('exists() tells a missing path from a present one; a missing path compares as absent', () => {
    yes('exists(payload.nested.deep)')
    no('exists(payload.nested.missing)')
    no('payload.missing == 1')
  })

  it('refuses what it cannot parse, saying where', () => {
    assert.throws(() => parseExpr('payload.n =='), /unexpected end of expression/)
    assert.throws(() => parseExpr('(payload.n == 1'), /expected "\)" but found the end/)
    assert.throws(() => parseExpr('secrets.x == 1'), /unknown name "secrets.x": paths start with payload. or context./)
    assert.throws(() => parseExpr('payload.n == 1 # 2'), /unexpected "#" at position 16/)
  })

  it('getPath walks maps only', () => {
    assert.equal(getPath(scope, ['payload', 'nested', 'deep']), 'x')
    assert.equal(getPath(scope, ['payload', 'name', 'length']), undefined)
  })
})
