import assert from 'node:assert/strict'
import {execFileSync, spawn} from 'node:child_process'
import {symlinkSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {affinityPlan, allowedCpus, confineProcess, cpusBeside, formatCpuList, parseCpuList, threadCpus} from '../../src/engine/affinity.js'
import {findOnPath} from '../../src/lib/which.js'
import {tempDir} from '../helpers/db.js'
import {startedEngine, waitFor} from '../helpers/engine.js'
import {TOKEN_VARS, httpTestEnv, ingressYaml} from '../helpers/http.js'

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

  it('the HTTP listeners run beside a confined engine: on the CPUs it left free, else on all it was given', () => {
    assert.deepEqual(cpusBeside([0, 1], [0]), [1])
    assert.deepEqual(cpusBeside([0, 1, 2, 3], [1, 2]), [0, 3])
    assert.deepEqual(cpusBeside([0], [0]), [0])
    assert.equal(cpusBeside(null, [0]), null)
  })

  it('an engine confined to one CPU puts its listeners thread on the others', async (t) => {
    const allowed = allowedCpus()
    if (allowed?.length !== 2) return t.skip('needs a process allowed on exactly 2 CPUs (max_workers 1 then confines)')
    const env = httpTestEnv(`${ingressYaml()}plugins:\n  echo-sh: {}\n`, {service: '  max_workers: 1\n'})
    const e = await startedEngine(env.configPath, [], {env: {...TOKEN_VARS}})
    try {
      await waitFor('the API to listen', () => e.err().includes('api listening'))
      const threads = threadCpus(e.child.pid!)
      const main = threads.get(e.child.pid!)
      assert.equal(main, String(allowed[0]), 'the engine keeps to its worker CPU')
      const beside = [...threads.values()].filter((l) => l === String(allowed[1]))
      assert.equal(beside.length, 1, `one thread (the listeners) on the other CPU: ${JSON.stringify([...threads])}`)
    } finally {
      e.child.kill('SIGTERM')
      await e.exited
      env.db.close()
    }
  })

  it('other engines on the machine: the CPUs the fewest of them keep to, lowest first', () => {
    assert.deepEqual(affinityPlan('auto', 1, [0, 1, 2, 3], [0]), [1])
    assert.deepEqual(affinityPlan('auto', 2, [0, 1, 2, 3], [0, 1, 0]), [2, 3])
    assert.deepEqual(affinityPlan('auto', 2, [0, 1, 2, 3], [0, 1, 2, 3, 0, 3]), [1, 2], 'one that uses every CPU counts on each')
    assert.deepEqual(affinityPlan('auto', 1, [0, 1], [0, 1]), [0])
  })

  it('confines through taskset, else python3, else says why neither could', async (t) => {
    const allowed = allowedCpus()
    if (!allowed || allowed.length < 2) return t.skip('needs a process allowed on 2 CPUs or more')
    const onlyPython = tempDir('ductile-path-')
    // The interpreter itself, not a shim (pyenv's is a bash script that needs more on the PATH).
    const real = execFileSync(findOnPath('python3')!, ['-c', 'import sys; print(sys.executable)'], {encoding: 'utf8'}).trim()
    symlinkSync(real, join(onlyPython, 'python3'))
    const path = process.env.PATH
    const child = spawn('sleep', ['30'], {stdio: 'ignore'})
    try {
      assert.equal(confineProcess(child.pid!, [allowed[1]]), 'taskset')
      assert.deepEqual(allowedCpus(child.pid!), [allowed[1]])
      process.env.PATH = onlyPython
      assert.equal(confineProcess(child.pid!, [allowed[0]]), 'python3')
      assert.deepEqual(allowedCpus(child.pid!), [allowed[0]])
      process.env.PATH = tempDir('ductile-path-')
      assert.throws(() => confineProcess(child.pid!, [allowed[0]]), /taskset is not on the PATH; python3 is not on the PATH/)
    } finally {
      process.env.PATH = path
      child.kill('SIGKILL')
    }
  })
})
