import type {Check} from '../cli/doctor.js'
import type {JobInspection} from '../queries/jobs.js'
import type {Completion, Overview} from '../queries/overview.js'
import type {BreakerTransition, CircuitBreaker, Job, PluginFact, ScheduleEntry} from '../schema/types.js'
import {lines, stackedBars} from './chart.js'
import {firstLine, prettyJson} from '../cli/render.js'
import {mib} from '../cli/progress.js'
import {formatDuration} from '../schema/time.js'
import {type Safe, badge, esc, html, query, raw, when} from './html.js'

/**
 * The pages: data in, markup out (no database here; src/web/app.ts reads, this renders). `Ctx` carries what
 * every page needs to link and to offer actions: the path prefix ('' or '/ui'), the session's CSRF token and
 * which actions this operator may take (none in read-only mode or without a session).
 */

export interface Ctx {
  base: string
  csrf: string | null
  can: {jobs: boolean; plugins: boolean}
  readOnly: boolean
  signedIn: string | null
  /** Tokens are configured: signing in is possible. */
  canSignIn: boolean
  flash?: {kind: 'ok' | 'error'; text: string}
}

const NAV = [
  ['', 'Overview'],
  ['/jobs', 'Jobs'],
  ['/plugins', 'Plugins'],
  ['/breakers', 'Breakers'],
  ['/schedules', 'Schedules'],
] as const

export function layout(c: Ctx, title: string, current: string, main: Safe): Safe {
  const who = c.readOnly
    ? html`<span class="muted">read-only</span>`
    : c.signedIn
      ? html`<form method="post" action="${c.base}/logout" class="inline"><input type="hidden" name="_csrf" value="${c.csrf}"><span class="muted">${c.signedIn}</span> <button type="submit" class="link">Sign out</button></form>`
      : c.canSignIn
        ? html`<a href="${c.base}/login">Sign in</a>`
        : html`<span class="muted" title="api.auth.tokens in the config">no tokens configured</span>`
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${title} · Ductile Overwatch</title>
<link rel="stylesheet" href="${c.base}/assets/web.css">
<link rel="icon" href="${c.base}/assets/favicon.svg" type="image/svg+xml">
<script src="${c.base}/assets/web.js" defer></script>
</head>
<body data-base="${c.base}">
<a class="skip" href="#main">Skip to content</a>
<header>
<nav aria-label="Pages"><span class="brand">Ductile Overwatch</span>${NAV.map(
    ([path, label]) => html`<a href="${c.base}${path || '/'}"${raw(current === path ? ' aria-current="page"' : '')}>${label}</a>`,
  )}</nav>
<div class="who"><span id="live" class="live" title="live updates">●</span> ${who}</div>
</header>
<main id="main" tabindex="-1">${flash(c)}${main}</main>
</body>
</html>`
}

function flash(c: Ctx): Safe {
  if (!c.flash) return html``
  return html`<p class="flash ${c.flash.kind}" role="${c.flash.kind === 'error' ? 'alert' : 'status'}">${c.flash.text}</p>`
}

function table(headers: string[], rows: Safe[], empty = 'none'): Safe {
  if (rows.length === 0) return html`<p class="muted">${empty}</p>`
  return html`<div class="scroll"><table><thead><tr>${headers.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead><tbody>${rows}</tbody></table></div>`
}

function jobLink(c: Ctx, id: string | null | undefined): Safe {
  if (!id) return html`-`
  return html`<a class="mono" href="${c.base}/jobs/${encodeURIComponent(id)}" title="${id}">${id.slice(0, 8)}…${id.slice(-4)}</a>`
}

function pluginLink(c: Ctx, name: string): Safe {
  return html`<a href="${c.base}/plugins/${encodeURIComponent(name)}">${name}</a>`
}

/** A POST form with the CSRF token: one button, or more fields. */
function action(c: Ctx, path: string, label: string, o: {confirm?: string; fields?: Safe; cls?: string} = {}): Safe {
  return html`<form method="post" action="${c.base}${path}" class="inline"${raw(o.confirm ? ` data-confirm="${esc(o.confirm)}"` : '')}><input type="hidden" name="_csrf" value="${c.csrf}">${o.fields ?? ''}<button type="submit" class="${o.cls ?? 'btn'}">${label}</button></form>`
}

// ---- Overview ----

export interface OverviewData {
  ov: Overview
  hour: {labels: string[]; ok: number[]; bad: number[]}
  day: {labels: string[]; ok: number[]; bad: number[]}
  overdue: Set<string>
  engines: {host: string; pid: number; heartbeat_at: string; started_at: string; version: string; silent: boolean}[]
  size: {fileBytes: number; walBytes: number; kind: 'sqlite' | 'postgres'}
  doctor: {verdict: 'ok' | 'warn' | 'fail'; checks: Check[]}
}

export function overviewPage(c: Ctx, d: OverviewData): Safe {
  const {ov} = d
  const total = ov.counts.reduce((n, s) => n + s.count, 0)
  const engine =
    ov.engine.state === 'running'
      ? html`<span class="ok">${ov.engine.count > 1 ? `${ov.engine.count} engines running` : `engine PID ${ov.engine.pid} running`}</span>`
      : ov.engine.state === 'stale lock'
        ? html`<span class="bad">engine PID ${ov.engine.pid} gone (stale lock)</span>`
        : ov.engine.state === 'silent'
          ? html`<span class="bad">no engine beating: ${ov.engine.silent} silent past the lease</span>`
          : html`<span class="warn">engine stopped</span>`
  return html`<h1>Overview</h1>
<section class="cards" aria-label="Jobs by status">
${ov.counts.map((s) => html`<a class="card" href="${c.base}/jobs${query({status: s.status})}">${badge(s.status)}<strong>${s.count}</strong></a>`)}
<div class="card"><span class="muted">total</span><strong>${total}</strong></div>
</section>
<div class="grid">
${throughput('Throughput, last hour', 'Completions per minute, last hour', d.hour, 10)}
${throughput('Throughput, last day', 'Completions per hour, last 24 hours', d.day, 4)}
</div>
<div class="grid">
<section><h2>Engines</h2><p>${engine}</p>${table(
    ['host', 'PID', 'heartbeat', 'started', 'version'],
    d.engines.map(
      (e) =>
        html`<tr${raw(e.silent ? ' class="row-bad"' : '')}><td>${e.host}</td><td>${e.pid}</td><td>${when(e.heartbeat_at)}${e.silent ? ' (silent)' : ''}</td><td>${when(e.started_at)}</td><td>${e.version}</td></tr>`,
    ),
    d.size.kind === 'sqlite' ? 'no engine has registered in this database' : 'no engine registered as running',
  )}</section>
<section><h2>Health</h2><p>doctor: ${badge(d.doctor.verdict)} · database ${mib(d.size.fileBytes)}${d.size.kind === 'sqlite' ? html` · WAL ${mib(d.size.walBytes)}` : ''}</p>${table(
    ['check', 'verdict', 'detail'],
    d.doctor.checks
      .filter((k) => k.status !== 'ok')
      .map(
        (k) => html`<tr><td>${k.name}</td><td>${badge(k.status)}</td><td>${k.detail}${k.hint ? html`<br><span class="muted">${k.hint}</span>` : ''}</td></tr>`,
      ),
    'every check passes',
  )}</section>
</div>
<div class="grid">
<section><h2>Running (${ov.running.length})</h2>${table(
    ['job', 'plugin', 'command', 'attempt', 'running for', 'plugin PID'],
    ov.running.map(
      (r) =>
        html`<tr><td>${jobLink(c, r.id)}</td><td>${pluginLink(c, r.plugin)}</td><td>${r.command}</td><td>${r.attempt}</td><td>${formatDuration(r.elapsed_ms)}</td><td>${r.plugin_pid ?? '-'}${r.alive === false ? ' (gone)' : ''}</td></tr>`,
    ),
  )}</section>
<section><h2>Breakers not closed</h2>${table(
    ['plugin', 'command', 'state', 'failures', 'opened'],
    ov.breakers.map(
      (b) =>
        html`<tr><td>${pluginLink(c, b.plugin)}</td><td>${b.command}</td><td>${badge(b.state)}</td><td>${b.failure_count}</td><td>${when(b.opened_at)}</td></tr>`,
    ),
    'every breaker is closed',
  )}</section>
</div>
<section><h2>Next scheduled runs</h2>${table(
    ['plugin', 'schedule', 'command', 'next run', ''],
    ov.schedules.map((s) => {
      const late = d.overdue.has(`${s.plugin}\u0000${s.schedule_id}`)
      return html`<tr${raw(late ? ' class="row-bad"' : '')}><td>${pluginLink(c, s.plugin)}</td><td>${s.schedule_id}</td><td>${s.command}</td><td>${when(s.next_run_at)}</td><td>${late ? html`<span class="badge s-overdue">overdue</span>` : ''}</td></tr>`
    }),
    'no active schedule',
  )}</section>
<section><h2>Latest completions</h2>${logTable(
    c,
    ov.latest.map((l) => ({...l, job_id: l.job_id, error: l.last_error})),
  )}</section>`
}

function throughput(title: string, caption: string, b: {labels: string[]; ok: number[]; bad: number[]}, every: number): Safe {
  const series = [
    {name: 'succeeded', cls: 'c-ok', values: b.ok},
    {name: 'failed', cls: 'c-bad', values: b.bad},
  ]
  return html`<section><h2>${title}</h2>${stackedBars(caption, b.labels, series, {every})}</section>`
}

function logTable(c: Ctx, rows: Completion[]): Safe {
  return table(
    ['completed', 'job', 'plugin', 'command', 'status', 'attempt', 'took', 'error'],
    rows.map(
      (l) =>
        html`<tr><td>${when(l.completed_at)}</td><td>${jobLink(c, l.job_id)}</td><td>${pluginLink(c, l.plugin)}</td><td>${l.command}</td><td>${badge(l.status)}</td><td>${l.attempt}</td><td>${formatDuration(l.duration_ms)}</td><td class="clip">${firstLine(l.last_error, 160)}</td></tr>`,
    ),
  )
}

// ---- Jobs ----

export interface JobsFilter {
  status?: string
  plugin?: string
  command?: string
  from?: string
  to?: string
  q?: string
}

export interface JobsData {
  filter: JobsFilter
  queue: Job[]
  logs: Completion[]
  /** The cursor of the next (older) page, when there is one. */
  older: string | null
  /** Free text stopped looking at this completed_at (a page of fewer matches than it holds): older rows remain. */
  searchedTo: string | null
  /** How many attempts a text search looks at per page. */
  scanned: number
  /** Filters that could not be read (ignored), each with what would do. */
  problems: string[]
  statuses: readonly string[]
  plugins: string[]
}

export function jobsPage(c: Ctx, d: JobsData): Safe {
  const f = d.filter
  const opt = (v: string, cur: string | undefined) => html`<option value="${v}"${raw(v === (cur ?? '') ? ' selected' : '')}>${v || 'any'}</option>`
  return html`<h1>Jobs</h1>
<form method="get" action="${c.base}/jobs" class="filters" role="search">
<label>status <select name="status">${['', ...d.statuses].map((s) => opt(s, f.status))}</select></label>
<label>plugin <input name="plugin" list="plugins" value="${f.plugin ?? ''}" autocomplete="off"></label>
<datalist id="plugins">${d.plugins.map((p) => html`<option value="${p}">`)}</datalist>
<label>command <input name="command" value="${f.command ?? ''}" size="8"></label>
<label>from <input name="from" value="${f.from ?? ''}" placeholder="2026-12-01 00:00" size="16"></label>
<label>to <input name="to" value="${f.to ?? ''}" placeholder="2026-12-01 23:59" size="16"></label>
<label>text <input name="q" value="${f.q ?? ''}" placeholder="in errors, stderr, results"></label>
<button type="submit" class="btn">Filter</button> <a href="${c.base}/jobs">clear</a>
</form>
${d.problems.map((p) => html`<p class="flash error" role="alert">${p}; ignored</p>`)}
${
  d.queue.length
    ? html`<section><h2>In the queue (${d.queue.length})</h2>${table(
        ['created', 'job', 'plugin', 'command', 'status', 'attempt', ''],
        d.queue.map(
          (j) =>
            html`<tr><td>${when(j.created_at)}</td><td>${jobLink(c, j.id)}</td><td>${pluginLink(c, j.plugin)}</td><td>${j.command}</td><td>${badge(j.status)}</td><td>${j.attempt}/${j.max_attempts}</td><td>${
              c.can.jobs && j.status === 'queued'
                ? action(c, `/jobs/${encodeURIComponent(j.id)}/cancel`, 'Cancel', {confirm: 'Cancel this job?', cls: 'btn danger'})
                : ''
            }</td></tr>`,
        ),
      )}</section>`
    : ''
}
<section><h2>Attempts</h2>${logTable(c, d.logs)}
${d.searchedTo ? html`<p class="muted">The text search looked at the newest ${d.scanned.toLocaleString('en')} attempts from here, back to ${when(d.searchedTo)}; older ones remain.</p>` : ''}
${d.older ? html`<p><a class="btn" href="${c.base}/jobs${query({...f, before: d.older})}" rel="next">Older →</a></p>` : ''}</section>`
}

export function jobPage(c: Ctx, r: JobInspection, tree: {job: Job; depth: number}[]): Safe {
  const j = r.job
  const actions: Safe[] = []
  if (c.can.jobs && j.status === 'queued')
    actions.push(action(c, `/jobs/${encodeURIComponent(j.id)}/cancel`, 'Cancel', {confirm: 'Cancel this job?', cls: 'btn danger'}))
  if (c.can.jobs && !['queued', 'running'].includes(j.status)) actions.push(action(c, `/jobs/${encodeURIComponent(j.id)}/retry`, 'Retry'))
  return html`<h1>Job <span class="mono">${j.id}</span></h1>
<p>${badge(j.status)} ${pluginLink(c, j.plugin)} · ${j.command} · attempt ${j.attempt}/${j.max_attempts} · submitted by ${j.submitted_by} ${actions}</p>
${!r.consistent.status || !r.consistent.attempt ? html`<p class="flash error">The cached status or attempt disagrees with the transition and attempt facts.</p>` : ''}
<dl class="facts">
<dt>created</dt><dd>${when(j.created_at)}</dd><dt>started</dt><dd>${when(j.started_at)}</dd><dt>completed</dt><dd>${when(j.completed_at)}</dd>
${j.next_retry_at ? html`<dt>next retry</dt><dd>${when(j.next_retry_at)}</dd>` : ''}
<dt>dedupe key</dt><dd>${j.dedupe_key ?? '-'}</dd>
<dt>parent</dt><dd>${jobLink(c, j.parent_job_id)}</dd>
${r.pipeline ? html`<dt>pipeline</dt><dd>${r.pipeline}${r.step ? ` · step ${r.step}` : ''}</dd>` : ''}
${j.last_error ? html`<dt>last error</dt><dd><pre>${j.last_error}</pre></dd>` : ''}
</dl>
<h2>Payload</h2><pre class="code">${prettyJson(j.payload)}</pre>
<h2>Attempts</h2>
${
  r.logs.length === 0
    ? html`<p class="muted">no attempt finished yet</p>`
    : r.logs.map(
        (
          l,
        ) => html`<details class="attempt"${raw(l.attempt === r.logs[r.logs.length - 1]?.attempt ? ' open' : '')}><summary>attempt ${l.attempt} ${badge(l.status)} ${when(l.completed_at)}</summary>
${l.last_error ? html`<h3>error</h3><pre>${l.last_error}</pre>` : ''}
<h3>result</h3><pre class="code">${prettyJson(l.result)}</pre>
<h3>stderr</h3><pre class="code">${l.stderr || '-'}</pre></details>`,
      )
}
${table(
  ['attempt', 'claimed', 'engine PID', 'plugin PID', 'engine'],
  r.attempts.map(
    (a) =>
      html`<tr><td>${a.attempt}</td><td>${when(a.created_at)}</td><td>${a.engine_pid ?? '-'}</td><td>${a.plugin_pid ?? '-'}</td><td class="mono">${a.engine_id ?? '-'}</td></tr>`,
  ),
)}
<h2>Transitions</h2>${table(
    ['at', 'from', 'to', 'reason'],
    r.transitions.map(
      (t) => html`<tr><td>${when(t.created_at)}</td><td>${badge(t.from_status)}</td><td>${badge(t.to_status)}</td><td>${t.reason ?? ''}</td></tr>`,
    ),
  )}
<h2>Pipeline lineage</h2>${
    tree.length > 1
      ? html`<ul class="tree">${tree.map(
          (t) =>
            html`<li class="d${Math.min(t.depth, 8)}">${t.job.id === j.id ? html`<strong>${jobLink(c, t.job.id)}</strong>` : jobLink(c, t.job.id)} ${t.job.plugin} · ${t.job.command} ${badge(t.job.status)}</li>`,
        )}</ul>`
      : html`<p class="muted">${j.parent_job_id ? 'its parent is no longer in the queue' : 'a job of its own (no parent, no children)'}</p>`
  }
<h2>Children</h2>${table(
    ['job', 'plugin', 'command', 'status', 'by', 'created'],
    r.children.map(
      (k) =>
        html`<tr><td>${jobLink(c, k.id)}</td><td>${pluginLink(c, k.plugin)}</td><td>${k.command}</td><td>${badge(k.status)}</td><td>${k.submitted_by}</td><td>${when(k.created_at)}</td></tr>`,
    ),
  )}
<h2>Event context (baggage)</h2>${
    r.lineage.length
      ? html`<pre class="code">${JSON.stringify(r.baggage, null, 2)}</pre>${table(
          ['step', 'pipeline', 'created'],
          r.lineage.map((e) => html`<tr><td>${e.step_id || '(root)'}</td><td>${e.pipeline_name ?? '-'}</td><td>${when(e.created_at)}</td></tr>`),
        )}`
      : html`<p class="muted">not part of a pipeline</p>`
  }`
}

// ---- Plugins ----

export interface PluginRow {
  name: string
  queued: number
  running: number
  commands: string[]
  breakers: number
  schedules: number
}

export function pluginsPage(c: Ctx, rows: PluginRow[], canEnqueue: boolean): Safe {
  return html`<h1>Plugins</h1>${table(
    ['plugin', 'commands', 'queued', 'running', 'breakers not closed', 'schedules'],
    rows.map(
      (p) =>
        html`<tr><td>${pluginLink(c, p.name)}</td><td>${p.commands.join(', ') || '-'}</td><td>${p.queued}</td><td>${p.running}</td><td>${p.breakers}</td><td>${p.schedules}</td></tr>`,
    ),
    'no plugin is configured or has jobs',
  )}${canEnqueue ? '' : html`<p class="muted">Enqueueing needs the config (its plugins) and a token with plugin:rw.</p>`}`
}

export interface PluginData {
  name: string
  commands: string[]
  runs: {id: string; job_id: string | null; command: string; status: string; completed_at: string; duration_ms: number | null}[]
  trend: {labels: string[]; p50: (number | null)[]; p95: (number | null)[]}
  facts: PluginFact[]
  state: {state: string; updated_at: string | null} | undefined
  schedules: ScheduleEntry[]
  breakers: CircuitBreaker[]
  enqueue: boolean
}

export function pluginPage(c: Ctx, d: PluginData): Safe {
  return html`<h1>Plugin ${d.name}</h1>
${
  d.enqueue
    ? html`<section><h2>Enqueue</h2><form method="post" action="${c.base}/plugins/${encodeURIComponent(d.name)}/enqueue" class="enqueue">
<input type="hidden" name="_csrf" value="${c.csrf}">
<label>command <select name="command">${d.commands.map((k) => html`<option>${k}</option>`)}</select></label>
<label class="wide">payload (a JSON object)<textarea name="payload" rows="4" spellcheck="false" data-json>{}</textarea></label>
<span class="json-error" aria-live="polite"></span>
<button type="submit" class="btn">Enqueue</button></form></section>`
    : ''
}
<section><h2>Duration trend</h2>${
    d.trend.labels.length
      ? lines(
          'Duration p50 and p95 per hour (latest runs)',
          d.trend.labels,
          [
            {name: 'p50', cls: 'c-ok', values: d.trend.p50},
            {name: 'p95', cls: 'c-warn', values: d.trend.p95},
          ],
          {every: Math.max(1, Math.ceil(d.trend.labels.length / 8)), unit: ' ms'},
        )
      : html`<p class="muted">no completed runs</p>`
  }</section>
<section><h2>Recent runs</h2>${table(
    ['completed', 'job', 'command', 'status', 'took'],
    d.runs
      .slice(0, 25)
      .map(
        (r) =>
          html`<tr><td>${when(r.completed_at)}</td><td>${jobLink(c, r.job_id)}</td><td>${r.command}</td><td>${badge(r.status)}</td><td>${formatDuration(r.duration_ms)}</td></tr>`,
      ),
  )}</section>
<section><h2>Latest facts</h2>${table(
    ['seq', 'type', 'job', 'created', 'fact'],
    d.facts.map(
      (f) =>
        html`<tr><td>${f.seq ?? '-'}</td><td>${f.fact_type}</td><td>${jobLink(c, f.job_id)}</td><td>${when(f.created_at)}</td><td><pre class="code">${prettyJson(f.fact_json)}</pre></td></tr>`,
    ),
    'no facts',
  )}</section>
<section><h2>State</h2>${d.state ? html`<p class="muted">updated ${when(d.state.updated_at)}</p><pre class="code">${prettyJson(d.state.state)}</pre>` : html`<p class="muted">no state</p>`}</section>
<section><h2>Schedules</h2>${schedulesTable(c, d.schedules)}</section>
<section><h2>Breakers</h2>${breakersTable(c, d.breakers)}</section>`
}

// ---- Breakers and schedules ----

function breakersTable(c: Ctx, rows: CircuitBreaker[]): Safe {
  return table(
    ['plugin', 'command', 'state', 'failures', 'opened', 'last failure', 'last job', ''],
    rows.map(
      (b) =>
        html`<tr><td>${pluginLink(c, b.plugin)}</td><td>${b.command}</td><td>${badge(b.state)}</td><td>${b.failure_count}</td><td>${when(b.opened_at)}</td><td>${when(b.last_failure_at)}</td><td>${jobLink(c, b.last_job_id)}</td><td>${
          c.can.plugins && b.state !== 'closed'
            ? action(c, `/breakers/${encodeURIComponent(b.plugin)}/${encodeURIComponent(b.command)}/reset`, 'Reset', {
                confirm: `Close the breaker of ${b.plugin} (${b.command})?`,
              })
            : ''
        }</td></tr>`,
    ),
    'no breaker has tripped',
  )
}

export function breakersPage(c: Ctx, rows: CircuitBreaker[], history: BreakerTransition[]): Safe {
  return html`<h1>Breakers</h1>${breakersTable(c, rows)}
<h2>Transitions</h2>${table(
    ['at', 'plugin', 'command', 'from', 'to', 'failures', 'reason', 'job'],
    history.map(
      (t) =>
        html`<tr><td>${when(t.created_at)}</td><td>${pluginLink(c, t.plugin)}</td><td>${t.command}</td><td>${badge(t.from_state)}</td><td>${badge(t.to_state)}</td><td>${t.failure_count}</td><td>${t.reason}</td><td>${jobLink(c, t.job_id)}</td></tr>`,
    ),
  )}`
}

function schedulesTable(c: Ctx, rows: ScheduleEntry[], overdue: Set<string> = new Set()): Safe {
  return table(
    ['plugin', 'schedule', 'command', 'status', 'next run', 'last fired', 'last success', ''],
    rows.map((s) => {
      const late = overdue.has(`${s.plugin}\u0000${s.schedule_id}`)
      const path = `/schedules/${encodeURIComponent(s.plugin)}/${encodeURIComponent(s.schedule_id)}`
      const act = !c.can.plugins
        ? ''
        : s.status === 'active'
          ? action(c, `${path}/pause`, 'Pause', {fields: html`<input type="hidden" name="reason" value="paused from the web Overwatch">`})
          : s.status === 'paused_manual'
            ? action(c, `${path}/resume`, 'Resume')
            : ''
      return html`<tr${raw(late ? ' class="row-bad"' : '')}><td>${pluginLink(c, s.plugin)}</td><td>${s.schedule_id}</td><td>${s.command}</td><td>${badge(s.status)}${s.reason ? html`<br><span class="muted">${s.reason}</span>` : ''}</td><td>${when(s.next_run_at)}${late ? html` <span class="badge s-overdue">overdue</span>` : ''}</td><td>${when(s.last_fired_at)}</td><td>${when(s.last_success_at)}</td><td>${act}</td></tr>`
    }),
    'no schedule',
  )
}

export function schedulesPage(c: Ctx, rows: ScheduleEntry[], overdue: Set<string>): Safe {
  return html`<h1>Schedules</h1>${schedulesTable(c, rows, overdue)}`
}

// ---- Sign in, errors ----

export function loginPage(c: Ctx, error?: string): Safe {
  return html`<h1>Sign in</h1>
<p>Paste an API token (<code>api.auth.tokens</code>). Its scopes decide the actions offered: <code>jobs:rw</code> to retry and cancel,
<code>plugin:rw</code> to enqueue, pause and resume schedules and reset breakers. The token stays on the server's side of the session.</p>
${error ? html`<p class="flash error" role="alert">${error}</p>` : ''}
<form method="post" action="${c.base}/login" class="login"><label>token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit" class="btn">Sign in</button></form>`
}

export function errorPage(status: number, message: string): Safe {
  return html`<h1>${status === 404 ? 'Not found' : status === 403 ? 'Not allowed' : 'Error'}</h1><p>${message}</p>`
}
