// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {waitTerminal} from '../helpers/engine.js'
import {TOKENS, call, ingressYaml, startHttpEnv} from '../helpers/http.js'
import {insertJob} from '../helpers/fixtures.js'

/** The engine's API listener serves the web Overwatch under /ui/ when api.ui is true, and only then. */

describe('the engine serves the Overwatch under /ui/', () => {
  it('api.ui: true: the pages and their assets under /ui/; an action signed in with a token runs on the engine', async () => {
    const h = await startHttpEnv(`${ingressYaml({api: '  ui: true\n'})}plugins:\n  echo-sh: {}\n`)
    try {
      const overview = await fetch(`${h.api}/ui/`)
      assert.equal(overview.status, 200)
      const page = await overview.text()
      assert.match(page, /<h1>Overview<\/h1>/)
      assert.match(page, /href="\/ui\/jobs"/, 'links stay under /ui/')
      // The engine serving it is on the overview, alive, with its PID and heartbeat.
      assert.match(page, new RegExp(`engine PID ${process.pid} running`))
      assert.match(page, new RegExp(`<td>${process.pid}</td><td>\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ`), 'its row: PID and heartbeat')
      assert.equal((await fetch(`${h.api}/ui/assets/web.js`)).status, 200)
      // The API itself is unchanged beside it.
      assert.equal((await call(`${h.api}/healthz`)).status, 200)

      const failed = insertJob(h.env.db, {plugin: 'echo-sh', status: 'failed', completed_at: '2026-12-01 00:00:00.000'})
      const login = await fetch(`${h.api}/ui/login`, {
        method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        body: `token=${TOKENS.all}`,
        redirect: 'manual',
      })
      assert.equal(login.status, 303)
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? ''
      assert.match(login.headers.get('set-cookie') ?? '', /Path=\/ui/)
      const jobPage = await (await fetch(`${h.api}/ui/jobs/${failed.id}`, {headers: {cookie}})).text()
      const csrf = /name="_csrf" value="([^"]+)"/.exec(jobPage)?.[1] ?? ''
      assert.ok(csrf, 'the job page carries the CSRF token')
      const retry = await fetch(`${h.api}/ui/jobs/${failed.id}/retry`, {
        method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded', cookie},
        body: `_csrf=${encodeURIComponent(csrf)}`,
        redirect: 'manual',
      })
      assert.equal(retry.status, 303)
      const id = /\/ui\/jobs\/([^/?]+)$/.exec(retry.headers.get('location') ?? '')?.[1] ?? ''
      assert.ok(id, `redirected to the new job (${retry.headers.get('location')})`)
      // The engine beside the listener runs it.
      assert.equal((await waitTerminal(h.env, id)).status, 'succeeded')
    } finally {
      await h.close()
    }
  })

  it('without api.ui, /ui/ is not there', async () => {
    const h = await startHttpEnv(`${ingressYaml()}plugins:\n  echo-sh: {}\n`)
    try {
      const r = await call(`${h.api}/ui/`)
      assert.equal(r.status, 404)
      assert.equal(r.body.error.code, 'not_found')
    } finally {
      await h.close()
    }
  })
})
