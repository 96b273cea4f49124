import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {loadConfig} from '../../src/config/load.js'
import {discoverPlugins} from '../../src/plugins/discover.js'
import {ROOT} from '../helpers/cli.js'

/** Issue 13.18: --help examples name only what exists in examples/ (so they run against `npm start`). */
describe('trust: help examples run against the example config', () => {
  it('every plugin, command, schedule and fact type an example names exists in examples/', () => {
    const config = loadConfig(join(ROOT, 'examples', 'config.yaml'))
    const registry = discoverPlugins(config)
    const plugins = new Set(registry.plugins.keys())
    const commands = new Set([...registry.plugins.values()].flatMap((p) => p.manifest.commands.map((c) => c.name)))
    const schedules = new Set(Object.values(config.plugins).flatMap((p) => p.schedules.map((s) => s.id)))
    const factTypes = new Set([...registry.plugins.values()].flatMap((p) => p.manifest.fact_outputs.map((f) => f.fact_type)))
    const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {
      commands: Record<string, {examples?: string[]; args: Record<string, unknown>; flags: Record<string, {type: string}>}>
    }
    const problems: string[] = []
    for (const [id, cmd] of Object.entries(manifest.commands)) {
      const words = id.split(':')
      for (const example of cmd.examples ?? []) {
        const line = example.split('\n').find((l) => l.includes('<%= config.bin %>')) ?? ''
        const tokens = line.replace(/^.*<%= config\.bin %> /, '').match(/"[^"]*"|'[^']*'|\S+/g) ?? []
        const flag = (name: string) => tokens.flatMap((t, i) => (t === name ? [tokens[i + 1]] : []))
        const takesValue = (t: string) => t.startsWith('--') && cmd.flags[t.slice(2)]?.type === 'option'
        const positional = tokens.slice(words.length).filter((t, i, all) => !t.startsWith('-') && !(i > 0 && takesValue(all[i - 1])))
        const argNames = Object.keys(cmd.args)
        if (argNames[0] === 'plugin' && positional[0] && !plugins.has(positional[0])) problems.push(`${id}: plugin ${positional[0]} in "${line}"`)
        if (argNames[1] === 'schedule' && positional[1] && !schedules.has(positional[1])) problems.push(`${id}: schedule ${positional[1]} in "${line}"`)
        for (const p of flag('--plugin')) if (!plugins.has(p)) problems.push(`${id}: --plugin ${p} in "${line}"`)
        for (const c of flag('--command')) if (!commands.has(c)) problems.push(`${id}: --command ${c} in "${line}"`)
        if (id === 'facts') for (const t of flag('--type')) if (!factTypes.has(t)) problems.push(`${id}: --type ${t} in "${line}"`)
      }
    }
    assert.deepEqual(problems, [])
  })
})
