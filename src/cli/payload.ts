import {readFileSync} from 'node:fs'

import {errorMessage, usageError} from '../errors.js'

export const MAX_PAYLOAD_BYTES = 1024 * 1024

/** Standard input, read as a stream: a synchronous read of a pipe fails with EAGAIN when no data is there yet. */
async function readStdin(limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer)
    size += (chunk as Buffer).length
    if (size > limit) break
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** A payload from --payload or --payload-file ('-' = stdin): a JSON object of at most 1 MiB. */
export async function readPayload(inline?: string, file?: string): Promise<Record<string, unknown>> {
  if (inline !== undefined && file !== undefined) throw usageError('give --payload or --payload-file, not both')
  let text = '{}'
  let source = '--payload'
  if (file !== undefined) {
    source = `--payload-file ${file}`
    try {
      text = file === '-' ? await readStdin(MAX_PAYLOAD_BYTES + 1) : readFileSync(file, 'utf8')
    } catch (e) {
      throw usageError(`cannot read ${file}: ${errorMessage(e)}`)
    }
  } else if (inline !== undefined) text = inline
  return parsePayloadText(text, source, file === '-')
}

/**
 * A payload's text (a flag, a file, a web form's field): a JSON object of at most 1 MiB, or a usage error
 * naming `source` and what to give instead.
 */
export function parsePayloadText(text: string, source: string, streamed = false): Record<string, unknown> {
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw usageError(
      `${source} is ${streamed ? 'more than 1 MiB' : `${(bytes / 1048576).toFixed(1)} MiB`}; the limit is 1 MiB`,
      'pass a reference (a path or a URL) in the payload instead of the data',
    )
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw usageError(`${source} is not valid JSON: ${errorMessage(e)}`, `example: --payload '{"path": "/tmp/in.csv"}'`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw usageError(
      `${source} must be a JSON object, not ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
      `example: --payload '{"path": "/tmp/in.csv"}'`,
    )
  }
  return value as Record<string, unknown>
}
