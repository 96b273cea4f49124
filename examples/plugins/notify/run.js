#!/usr/bin/env node
let input = ''
process.stdin.on('data', (d) => (input += d))
process.stdin.on('end', () => {
  const req = JSON.parse(input)
  const message = `${req.config.prefix ?? ''} ${req.event.type}: ${JSON.stringify(req.event.payload)}`.trim()
  process.stderr.write(message + '\n')
  process.stdout.write(JSON.stringify({status: 'ok', result: {delivered: message}}) + '\n')
})
