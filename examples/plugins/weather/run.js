#!/usr/bin/env node
// A protocol v2 plugin: one JSON request on stdin, one JSON response on stdout.
let input = ''
process.stdin.on('data', (d) => (input += d))
process.stdin.on('end', () => {
  const req = JSON.parse(input)
  const previous = req.state.celsius ?? 18
  const celsius = Math.round((previous + (Math.random() - 0.5) * 2) * 10) / 10
  const readings = (req.state.readings ?? 0) + 1
  const events = Math.abs(celsius - previous) >= 0.8 ? [{type: 'weather.changed', payload: {city: req.config.city, celsius, previous}}] : []
  process.stdout.write(
    JSON.stringify({
      status: 'ok',
      result: `${req.config.city}: ${celsius} °C`,
      state_updates: {city: req.config.city, celsius, readings, at: new Date().toISOString()},
      events,
    }) + '\n',
  )
})
