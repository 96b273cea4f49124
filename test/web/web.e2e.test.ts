// stores: sqlite, postgres
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import type {Browser, Page} from 'playwright-core'

import {loadRuntime} from '../../src/plugins/runtime.js'
import type {Db} from '../../src/schema/db.js'
import {assertSchemaCurrent} from '../../src/schema/migrations.js'
import {openStore} from '../../src/schema/open.js'
import {startWeb} from '../../src/web/server.js'
import {launch, openPage, screenshot} from '../helpers/browser.js'
import {type TestEnv, enqueue, rows} from '../helpers/engine.js'
import {
  HOUR,
  MIN,
  ago,
  insertBreaker,
  insertBreakerTransition,
  insertContext,
  insertFact,
  insertJob,
  insertLog,
  insertSchedule,
  insertState,
} from '../helpers/fixtures.js'
import {TOKENS, TOKEN_VARS, httpTestEnv, ingressYaml} from '../helpers/http.js'

/**
 * The web Overwatch in a real headless Chromium against a fixture database: every page, what it shows,
 * every action and what it wrote, escaping of plugin text, scopes, CSRF, read-only, live updates, themes,
 * narrow screens and the keyboard. Screenshots of each page go to test-output/web/.
 */

const PLUGINS = 'plugins:\n  echo-sh: {}\n  behave: {}\n'
// Plugin output an attacker controls: markup, script, a terminal escape, a bidi override.
const EVIL_STDERR = '<script>window.__pwned = 1</script>\u001b[2J boom \u202egnp.exe'
const EVIL_RESULT = '{"status":"error","error":"<img src=x onerror=\\"window.__pwned=2\\">"}'

interface Fixture {
  failed: string
  queued: string
  parent: string
  child: string
}

function seed(env: TestEnv): Fixture {
  const db = env.db
  const ctx = insertContext(db, {pipeline_name: 'flow', accumulated_json: '{"region":"eu","ductile":{"route_depth":0}}'})
  const parent = insertJob(db, {plugin: 'echo-sh', status: 'succeeded', created_at: ago(30 * MIN), started_at: ago(29 * MIN), completed_at: ago(28 * MIN)})
  const child = insertJob(db, {
    plugin: 'behave',
    status: 'succeeded',
    parent_job_id: parent.id,
    event_context_id: ctx.id,
    created_at: ago(27 * MIN),
    started_at: ago(27 * MIN),
    completed_at: ago(26 * MIN),
  })
  const failed = insertJob(db, {
    plugin: 'behave',
    status: 'failed',
    attempt: 1,
    max_attempts: 1,
    payload: '{"mode":"error","note":"<b>bold?</b>"}',
    last_error: 'upstream said <no>',
    created_at: ago(20 * MIN),
    started_at: ago(20 * MIN),
    completed_at: ago(19 * MIN),
  })
  insertLog(db, {
    job_id: failed.id,
    plugin: 'behave',
    status: 'failed',
    stderr: EVIL_STDERR,
    result: EVIL_RESULT,
    last_error: 'upstream said <no>',
    completed_at: ago(19 * MIN),
    started_at: ago(20 * MIN),
  })
  insertLog(db, {job_id: parent.id, plugin: 'echo-sh', status: 'succeeded', completed_at: ago(28 * MIN), started_at: ago(29 * MIN)})
  for (let i = 0; i < 5; i++) insertLog(db, {plugin: 'echo-sh', status: 'succeeded', completed_at: ago((2 + i) * HOUR), started_at: ago((2 + i) * HOUR + 1500)})
  const queued = insertJob(db, {plugin: 'echo-sh', status: 'queued', created_at: ago(MIN)})
  // Overdue: past its next run by more than its interval and one tick (the test config's tick_interval is 1h).
  insertSchedule(db, {plugin: 'echo-sh', schedule_id: 'hourly', status: 'active', next_run_at: ago(3 * HOUR), interval_ms: 15 * MIN})
  insertBreaker(db, {plugin: 'behave', command: 'poll', state: 'open', last_job_id: failed.id})
  insertBreakerTransition(db, {plugin: 'behave', command: 'poll', from_state: 'closed', to_state: 'open', job_id: failed.id})
  insertFact(db, {plugin_name: 'echo-sh', seq: 1, fact_type: 'echo.snapshot', fact_json: '{"n":1}'})
  insertFact(db, {plugin_name: 'echo-sh', seq: 2, fact_type: 'echo.snapshot', fact_json: '{"n":2}'})
  insertState(db, {plugin_name: 'echo-sh', state: '{"n":2}'})
  return {failed: failed.id, queued: queued.id, parent: parent.id, child: child.id}
}

async function serve(env: TestEnv, o: {readOnly?: boolean; host?: string} = {}) {
  Object.assign(process.env, TOKEN_VARS)
  const {config, registry} = loadRuntime(env.configPath)
  const db = openStore(env.dbPath, {mode: 'read', check: assertSchemaCurrent})
  let writer: Db | undefined
  const web = await startWeb({
    listen: {host: o.host ?? '127.0.0.1', port: 0, text: 'test'},
    deps: {
      db,
      writer: o.readOnly ? null : () => (writer ??= openStore(env.dbPath, {mode: 'write', check: assertSchemaCurrent})),
      config,
      registry,
      tokens: config.api.tokens,
      openRead: o.host === undefined,
      wake: () => {},
      pollMs: 100,
    },
  })
  return {
    url: web.url.replace(/\/$/, ''),
    close: async () => {
      await web.close()
      db.close()
      writer?.close()
    },
  }
}

type Served = Awaited<ReturnType<typeof serve>>

/** A browser, a seeded database and the Overwatch serving it. */
async function setup() {
  const env = httpTestEnv(`${ingressYaml()}${PLUGINS}`)
  const f = seed(env)
  return {browser: await launch(), env, f, server: await serve(env)}
}

async function signIn(page: Page, url: string, token: string) {
  await page.goto(`${url}/login`)
  await page.fill('input[name=token]', token)
  await page.getByRole('button', {name: 'Sign in'}).click()
  await page.waitForURL(`${url}/`)
}

const text = async (page: Page) => (await page.locator('main').textContent()) ?? ''

/** The flash an action leaves, which must say it went as asked. */
async function flashed(page: Page, expected: RegExp) {
  // The redirect's page carries it (a click's navigation may still be under way when this starts).
  await page.waitForSelector('.flash').catch(async () => assert.fail(`no flash after the action; the page says: ${await text(page)}`))
  const said = (await page.locator('.flash').textContent()) ?? ''
  assert.match(said, expected)
  assert.equal(await page.locator('.flash.ok').count(), 1, said)
}

describe('web Overwatch: pages', () => {
  let browser: Browser
  let env: TestEnv
  let f: Fixture
  let server: Served
  before(async () => {
    ;({browser, env, f, server} = await setup())
  })
  after(() => Promise.all([server?.close(), browser?.close()]))

  it('shows every page with what it names, without a console error, and takes its screenshot', async () => {
    const {page, errors, close} = await openPage(browser)
    try {
      await page.goto(`${server.url}/`)
      const overview = await text(page)
      for (const s of ['Overview', 'Throughput, last hour', 'Throughput, last day', 'Engines', 'Health', 'Next scheduled runs', 'Breakers not closed'])
        assert.ok(overview.includes(s), `overview shows ${s}`)
      assert.match(overview, /overdue/, 'the schedule whose next run has passed is marked overdue')
      assert.match(overview, /doctor:/)
      assert.match(overview, /database \d+(\.\d)? (B|KiB|MiB)/, 'the database size')
      assert.equal(await page.locator('figure.chart svg').count(), 2)
      await screenshot(page, 'overview')

      await page.goto(`${server.url}/jobs`)
      const jobs = await text(page)
      assert.match(jobs, /In the queue \(1\)/)
      assert.match(jobs, /upstream said <no>/, 'errors shown as text')
      await screenshot(page, 'jobs')
      await page.goto(`${server.url}/jobs?status=failed&plugin=behave`)
      assert.equal(await page.locator('main table tbody tr').count(), 1)
      await page.goto(`${server.url}/jobs?from=yesterday`)
      assert.match(await text(page), /from: yesterday is not a time/)
      await page.goto(`${server.url}/jobs?q=${encodeURIComponent('boom')}`)
      assert.equal(await page.locator('section', {hasText: 'Attempts'}).locator('tbody tr').count(), 1, 'free text over stderr')

      await page.goto(`${server.url}/jobs/${f.child}`)
      const job = await text(page)
      assert.match(job, /Pipeline lineage/)
      assert.equal(await page.locator('ul.tree li').count(), 2, 'the parent and this job')
      assert.match(job, /"region": "eu"/, 'the event_context baggage')
      await screenshot(page, 'job')

      await page.goto(`${server.url}/plugins`)
      assert.match(await text(page), /echo-sh/)
      await screenshot(page, 'plugins')
      await page.goto(`${server.url}/plugins/echo-sh`)
      const plugin = await text(page)
      assert.match(plugin, /Duration trend/)
      assert.ok(plugin.indexOf('"n": 2') < plugin.indexOf('"n": 1'), 'facts newest seq first')
      await screenshot(page, 'plugin')

      await page.goto(`${server.url}/breakers`)
      assert.match(await text(page), /failure_threshold/)
      await screenshot(page, 'breakers')
      await page.goto(`${server.url}/schedules`)
      assert.match(await text(page), /hourly/)
      await screenshot(page, 'schedules')

      assert.deepEqual(errors, [])
      assert.equal((await fetch(`${server.url}/jobs/no-such-job`)).status, 404)
    } finally {
      await close()
    }
  })

  it('shows plugin output as text: markup, script and control characters never act', async () => {
    const {page, errors, close} = await openPage(browser)
    try {
      await page.goto(`${server.url}/jobs/${f.failed}`)
      const body = await text(page)
      assert.ok(body.includes('<script>window.__pwned = 1</script>'), 'the script tag is shown as text')
      assert.ok(body.includes('\\x1b[2J'), 'the escape character is shown escaped')
      assert.ok(body.includes('\\u202e'), 'the bidi override is shown escaped')
      assert.ok(body.includes('<img src=x'), 'the img tag is shown as text')
      assert.equal(await page.evaluate(() => (window as unknown as {__pwned?: number}).__pwned), undefined)
      assert.equal(await page.locator('main script, main img').count(), 0)
      assert.deepEqual(errors, [])
    } finally {
      await close()
    }
  })

  it('updates live: a job enqueued by another process appears without a reload', async () => {
    const {page, close} = await openPage(browser)
    try {
      await page.goto(`${server.url}/`)
      await page.waitForSelector('#live.on')
      const before = Number(await page.locator('.card', {hasText: 'queued'}).locator('strong').textContent())
      enqueue(env, 'echo-sh')
      await page.waitForFunction((n) => {
        const card = [...document.querySelectorAll('.card')].find((c) => c.textContent?.includes('queued'))
        return Number(card?.querySelector('strong')?.textContent) === n
      }, before + 1)
    } finally {
      await close()
    }
  })

  it('works at 360 px wide and on a wide screen, in the dark and the light theme, and from the keyboard', async () => {
    const {page, errors, close} = await openPage(browser, {viewport: {width: 360, height: 740}, colorScheme: 'dark'})
    try {
      for (const path of ['/', '/jobs', `/jobs/${f.failed}`, '/plugins', '/plugins/echo-sh', '/breakers', '/schedules']) {
        await page.goto(`${server.url}${path}`)
        const wide = await page.evaluate(() => document.documentElement.scrollWidth)
        assert.ok(wide <= 360, `${path} fits 360 px (scrollWidth ${wide})`)
      }
      await page.goto(`${server.url}/`)
      await screenshot(page, 'overview-360-dark')
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor)
      const [r = 255, g = 255, b = 255] = (bg.match(/\d+/g) ?? []).map(Number)
      assert.ok(r + g + b < 150, `a dark background in the dark theme (${bg})`)
      // The first Tab reaches the skip link, the next ones the pages; Enter follows one.
      await page.keyboard.press('Tab')
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content')
      await page.keyboard.press('Tab')
      await page.keyboard.press('Tab')
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Jobs')
      await page.keyboard.press('Enter')
      await page.waitForURL(`${server.url}/jobs`)
      assert.deepEqual(errors, [])
    } finally {
      await close()
    }
    const light = await openPage(browser, {colorScheme: 'light', viewport: {width: 2560, height: 1200}})
    try {
      await light.page.goto(`${server.url}/`)
      // A wide screen: the content keeps a readable width, centred, and nothing overflows.
      const main = await light.page.evaluate(() => document.getElementById('main')?.getBoundingClientRect().width ?? 0)
      assert.ok(main <= 1400 && main > 1000, `main is ${main} px wide on a 2560 px screen`)
      assert.ok((await light.page.evaluate(() => document.documentElement.scrollWidth)) <= 2560)
      await screenshot(light.page, 'overview-wide-light')
      const bg = await light.page.evaluate(() => getComputedStyle(document.body).backgroundColor)
      const [r = 0, g = 0, b = 0] = (bg.match(/\d+/g) ?? []).map(Number)
      assert.ok(r + g + b > 600, `a light background in the light theme (${bg})`)
    } finally {
      await light.close()
    }
  })
})

describe('web Overwatch: actions', () => {
  let browser: Browser
  let env: TestEnv
  let f: Fixture
  let server: Served
  before(async () => {
    ;({browser, env, f, server} = await setup())
  })
  after(() => Promise.all([server?.close(), browser?.close()]))

  it('offers no action without a session; signed in with *, each action writes what it says', async () => {
    const {page, errors, close} = await openPage(browser)
    try {
      await page.goto(`${server.url}/jobs/${f.failed}`)
      assert.equal(await page.getByRole('button', {name: 'Retry'}).count(), 0, 'no action before signing in')
      await signIn(page, server.url, TOKENS.all)

      // Retry: a new job, child of the failed one; the page goes to it.
      await page.goto(`${server.url}/jobs/${f.failed}`)
      await page.getByRole('button', {name: 'Retry'}).click()
      await page.waitForURL(/\/jobs\/(?!.*failed)/)
      const retried = rows(env.db, 'SELECT id, status, submitted_by FROM job_queue WHERE parent_job_id = ?', f.failed)
      assert.deepEqual(
        retried.map((r) => [r.status, r.submitted_by]),
        [['queued', 'web']],
      )
      assert.match(await text(page), /Retried as job/)

      // Cancel the queued job (after the confirm dialog).
      await page.goto(`${server.url}/jobs/${f.queued}`)
      await page.getByRole('button', {name: 'Cancel'}).click()
      await flashed(page, /Cancelled/)
      assert.equal(rows(env.db, 'SELECT status FROM job_queue WHERE id = ?', f.queued)[0]?.status, 'dead')

      // Enqueue with the payload editor: bad JSON disables the button; a good object enqueues.
      await page.goto(`${server.url}/plugins/echo-sh`)
      await page.fill('textarea[name=payload]', '{"city": ')
      assert.equal(await page.getByRole('button', {name: 'Enqueue'}).isDisabled(), true)
      assert.match((await page.locator('.json-error').textContent()) ?? '', /not JSON/)
      await page.fill('textarea[name=payload]', '{"city": "Oslo"}')
      await page.getByRole('button', {name: 'Enqueue'}).click()
      await flashed(page, /Enqueued job/)
      const made = rows(env.db, `SELECT payload, submitted_by FROM job_queue WHERE plugin = 'echo-sh' AND submitted_by = 'web'`)
      assert.deepEqual(
        made.map((r) => [JSON.parse(r.payload), r.submitted_by]),
        [[{city: 'Oslo'}, 'web']],
      )

      // Pause and resume a schedule.
      await page.goto(`${server.url}/schedules`)
      await page.getByRole('button', {name: 'Pause'}).click()
      await flashed(page, /Paused echo-sh\/hourly/)
      assert.equal(rows(env.db, `SELECT status FROM schedule_entries WHERE schedule_id = 'hourly'`)[0]?.status, 'paused_manual')
      await page.getByRole('button', {name: 'Resume'}).click()
      await flashed(page, /Resumed echo-sh\/hourly/)
      assert.equal(rows(env.db, `SELECT status FROM schedule_entries WHERE schedule_id = 'hourly'`)[0]?.status, 'active')

      // Reset the open breaker: closed, with its manual_reset transition.
      await page.goto(`${server.url}/breakers`)
      await page.getByRole('button', {name: 'Reset'}).click()
      await flashed(page, /open → closed/)
      assert.equal(rows(env.db, `SELECT state FROM circuit_breakers WHERE plugin = 'behave'`)[0]?.state, 'closed')
      assert.equal(rows(env.db, `SELECT COUNT(*) AS n FROM circuit_breaker_transitions WHERE plugin = 'behave' AND to_state = 'closed'`)[0]?.n, 1)
      await screenshot(page, 'breakers-after-reset')
      assert.deepEqual(errors, [])
    } finally {
      await close()
    }
  })

  it('a token without the scope sees no action, and a forged or stale form changes nothing', async () => {
    const {page, close} = await openPage(browser)
    try {
      await signIn(page, server.url, TOKENS.jobsRo)
      await page.goto(`${server.url}/jobs/${f.parent}`)
      assert.equal(await page.getByRole('button', {name: 'Retry'}).count(), 0, 'jobs:ro cannot retry')
      const csrf = await page.locator('input[name=_csrf]').first().inputValue()
      const count = () => rows(env.db, 'SELECT COUNT(*) AS n FROM job_queue')[0]?.n
      const n = count()
      const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
        page.evaluate(
          async ({path, form, headers}) => {
            const r = await fetch(path, {
              method: 'POST',
              headers: {'content-type': 'application/x-www-form-urlencoded', ...headers},
              body: new URLSearchParams(form),
              redirect: 'manual',
            })
            return r.status
          },
          {path, form, headers},
        )
      assert.equal(await post(`/jobs/${f.parent}/retry`, {_csrf: csrf}), 403, 'the scope is missing')
      await signIn(page, server.url, TOKENS.all)
      await page.goto(`${server.url}/jobs/${f.parent}`)
      const good = await page.locator('input[name=_csrf]').first().inputValue()
      assert.equal(await post(`/jobs/${f.parent}/retry`, {_csrf: 'forged'}), 403, 'a wrong CSRF token')
      assert.equal(await post(`/jobs/${f.parent}/retry`, {}), 403, 'no CSRF token')
      assert.equal(count(), n, 'nothing was enqueued')
      // A form posted from another site: its Origin is not this host (the request is made outside the page).
      const r = await fetch(`${server.url}/jobs/${f.parent}/retry`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          origin: 'http://evil.example',
          cookie: (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; '),
        },
        body: new URLSearchParams({_csrf: good}),
        redirect: 'manual',
      })
      assert.equal(r.status, 403, 'another Origin')
      assert.equal(count(), n, 'still nothing enqueued')
      // A wrong token does not sign in.
      await page.goto(`${server.url}/login`)
      await page.fill('input[name=token]', 'not-a-token-at-all-xxxxxxxx')
      await page.getByRole('button', {name: 'Sign in'}).click()
      assert.match(await text(page), /not one of api.auth.tokens/)
    } finally {
      await close()
    }
  })
})

describe('web Overwatch: read-only, and beyond loopback', () => {
  it('--read-only offers no action and refuses every POST of one', async () => {
    const env = httpTestEnv(`${ingressYaml()}${PLUGINS}`)
    const f = seed(env)
    const server = await serve(env, {readOnly: true})
    const browser = await launch()
    try {
      const {page, close} = await openPage(browser)
      await page.goto(`${server.url}/jobs/${f.failed}`)
      assert.match((await page.locator('header').textContent()) ?? '', /read-only/)
      assert.equal(await page.locator('main form[method=post]').count(), 0)
      await close()
      const r = await fetch(`${server.url}/jobs/${f.failed}/retry`, {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}, body: ''})
      assert.equal(r.status, 404)
      assert.equal(rows(env.db, 'SELECT COUNT(*) AS n FROM job_queue WHERE parent_job_id = ?', f.failed)[0]?.n, 0)
    } finally {
      await browser.close()
      await server.close()
    }
  })

  it('a listener beyond loopback asks for a token before it shows a page', async () => {
    const env = httpTestEnv(`${ingressYaml()}${PLUGINS}`)
    seed(env)
    // Still bound to 127.0.0.1 here; openRead is what the address decides.
    const server = await serve(env, {host: '127.0.0.1'})
    try {
      const page = await fetch(`${server.url}/jobs`, {redirect: 'manual'})
      assert.equal(page.status, 303)
      assert.equal(page.headers.get('location'), '/login')
      assert.equal((await fetch(`${server.url}/events`)).status, 401)
      const login = await fetch(`${server.url}/login`, {
        method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        body: `token=${TOKENS.jobsRo}`,
        redirect: 'manual',
      })
      assert.equal(login.status, 303)
      const cookie = login.headers.get('set-cookie') ?? ''
      assert.match(cookie, /HttpOnly; SameSite=Strict/)
      assert.doesNotMatch(cookie, /Secure/, 'plain HTTP: a Secure cookie would never come back')
      const proxied = await fetch(`${server.url}/login`, {
        method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'https'},
        body: `token=${TOKENS.jobsRo}`,
        redirect: 'manual',
      })
      assert.match(proxied.headers.get('set-cookie') ?? '', /; Secure$/, 'behind a TLS proxy the cookie is Secure')
      const after = await fetch(`${server.url}/jobs`, {headers: {cookie: cookie.split(';')[0] ?? ''}})
      assert.equal(after.status, 200)
      assert.match(after.headers.get('content-security-policy') ?? '', /script-src 'self'/)
      // Sign-ins are limited per address: ten a minute (two above, eight more), then 429 with Retry-After.
      const tries: number[] = []
      for (let i = 0; i < 11; i++)
        tries.push(
          (
            await fetch(`${server.url}/login`, {
              method: 'POST',
              headers: {'content-type': 'application/x-www-form-urlencoded'},
              body: 'token=wrong-wrong-wrong-wrong',
            })
          ).status,
        )
      assert.deepEqual(tries, [...Array(8).fill(401), 429, 429, 429])
      const limited = await fetch(`${server.url}/login`, {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'token=x'})
      assert.match(limited.headers.get('retry-after') ?? '', /^\d+$/)
    } finally {
      await server.close()
    }
  })
})
