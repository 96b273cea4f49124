// @ts-nocheck — browser code, checked by the browser tests (test/web), not by tsc (no DOM types here).
// The web Overwatch's only script: live redraws from one server-sent event stream, the payload editor's JSON
// check, and a confirmation before a destructive action. Everything works without it, just not live.
;(() => {
  const base = document.body.dataset.base || ''
  const live = document.getElementById('live')
  const main = document.getElementById('main')

  // A redraw never takes the page from under someone typing or reading an open attempt.
  const busy = () => {
    const a = document.activeElement
    return a && a !== document.body && a !== main && ['INPUT', 'SELECT', 'TEXTAREA'].includes(a.tagName)
  }
  let pending = false
  async function redraw() {
    if (pending) return
    if (busy()) return
    pending = true
    try {
      const open = [...main.querySelectorAll('details[open] summary')].map((s) => s.textContent)
      const r = await fetch(location.href, {headers: {'x-ductile-partial': '1'}, credentials: 'same-origin'})
      if (r.ok && !busy()) {
        // What the last action said stays until the next page: a redraw does not take it away.
        const said = main.querySelector(':scope > .flash')
        main.innerHTML = await r.text()
        if (said && !main.querySelector(':scope > .flash')) main.prepend(said)
        for (const s of main.querySelectorAll('details summary')) if (open.includes(s.textContent)) s.parentElement.open = true
        wire()
        document.dispatchEvent(new CustomEvent('ductile:redrawn'))
      }
    } finally {
      pending = false
    }
  }

  if (window.EventSource) {
    const es = new EventSource(`${base}/events`)
    es.addEventListener('open', () => live?.classList.add('on'))
    es.addEventListener('error', () => live?.classList.remove('on'))
    es.addEventListener('change', () => void redraw())
  }

  function wire() {
    for (const f of document.querySelectorAll('form[data-confirm]')) {
      if (f.dataset.wired) continue
      f.dataset.wired = '1'
      f.addEventListener('submit', (e) => {
        if (!confirm(f.dataset.confirm)) e.preventDefault()
      })
    }
    for (const t of document.querySelectorAll('textarea[data-json]')) {
      if (t.dataset.wired) continue
      t.dataset.wired = '1'
      const form = t.closest('form')
      const out = form.querySelector('.json-error')
      const button = form.querySelector('button[type=submit]')
      const check = () => {
        let msg = ''
        try {
          const v = JSON.parse(t.value.trim() || '{}')
          if (!v || typeof v !== 'object' || Array.isArray(v)) msg = 'the payload must be a JSON object ({…})'
        } catch (err) {
          msg = `not JSON: ${err.message}`
        }
        t.setAttribute('aria-invalid', msg ? 'true' : 'false')
        out.textContent = msg
        button.disabled = Boolean(msg)
      }
      t.addEventListener('input', check)
      check()
    }
  }
  wire()
})()
