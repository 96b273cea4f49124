import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {diffConfigs} from '../../src/cli/config-diff.js'

describe('config diff: what changed between two snapshots', () => {
  it('added, removed and changed keys by path, in path order, arrays by index', () => {
    const a = {service: {max_workers: 2, name: 'main'}, plugins: {weather: {schedules: [{every: '5m'}]}, old: {enabled: true}}}
    const b = {service: {max_workers: 1, name: 'main', tick_interval: '30s'}, plugins: {weather: {schedules: [{every: '10m'}, {cron: '0 * * * *'}]}}}
    assert.deepEqual(diffConfigs(a, b), [
      {path: 'plugins.old.enabled', change: 'removed', before: true},
      {path: 'plugins.weather.schedules[0].every', change: 'changed', before: '5m', after: '10m'},
      {path: 'plugins.weather.schedules[1].cron', change: 'added', after: '0 * * * *'},
      {path: 'service.max_workers', change: 'changed', before: 2, after: 1},
      {path: 'service.tick_interval', change: 'added', after: '30s'},
    ])
  })

  it('secrets stay masked, even in a row stored unmasked', () => {
    const changes = diffConfigs(
      {plugins: {notify: {config: {api_token: 'old-secret-1'}}}},
      {plugins: {notify: {config: {api_token: 'new-secret-2', url: 'https://u:pw@host'}}}},
    )
    assert.doesNotMatch(JSON.stringify(changes), /secret-1|secret-2|:pw@/)
    assert.deepEqual(changes, [{path: 'plugins.notify.config.url', change: 'added', after: 'https://u:***@host'}])
  })
})
