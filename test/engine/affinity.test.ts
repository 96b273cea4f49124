import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {affinityPlan, formatCpuList, parseCpuList} from '../../src/engine/affinity.js'

describe('cpu_affinity', () => {
  it('reads and writes CPU lists as /proc, taskset and systemd do', () => {
    assert.deepEqual(parseCpuList('0-2,5,7-8\n'), [0, 1, 2, 5, 7, 8])
    assert.equal(formatCpuList([0, 1, 2, 5, 7, 8]), '0-2,5,7-8')
    assert.equal(formatCpuList([3]), '3')
  })

  it('auto: the first max_workers of the allowed CPUs when there are more; never when off or when there are not', () => {
    assert.deepEqual(affinityPlan('auto', 1, [0, 1]), [0])
    assert.deepEqual(affinityPlan('auto', 3, [2, 3, 5, 6, 7]), [2, 3, 5], 'within a set docker or systemd already gave')
    assert.equal(affinityPlan('auto', 2, [0, 1]), null, 'as many workers as CPUs: all of them')
    assert.equal(affinityPlan('auto', 4, [0, 1]), null)
    assert.equal(affinityPlan('off', 1, [0, 1, 2, 3]), null)
    assert.equal(affinityPlan('auto', 1, null), null, 'not Linux: nothing to confine')
  })
})
