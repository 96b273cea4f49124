import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * Files of our own that run in another process or thread (the spawn helpers, the checkpoint thread), found
 * the same way from the sources (under tsx: tests, development) and from the build (dist/). They are plain
 * JavaScript (type-checked through JSDoc) or Python, so no TypeScript loader slows their start.
 */

const here = import.meta.url

function codeRoot(): string {
  // From the sources (tsx): this file is src/assets.ts.
  if (here.endsWith('.ts')) return fileURLToPath(new URL('./', here))
  // Bundled: this code sits somewhere under dist/ (a chunk or a command's file).
  const dist = here.lastIndexOf('/dist/')
  if (dist < 0) throw new Error(`cannot tell where the build is from ${here}`)
  return fileURLToPath(`${here.slice(0, dist)}/dist/`)
}

/**
 * A file of ours that another process or thread loads by path: plain JavaScript (or Python), by its path
 * under src/; the build emits (or copies) it to the same path under dist/.
 */
export function ownFile(rel: string): string {
  return join(codeRoot(), rel)
}

/**
 * A TypeScript module of ours that a thread loads by path (the HTTP listeners): the .ts source under tsx
 * (whose loader the thread inherits), the bundle the build emits beside the same path under dist/.
 */
export function ownModule(rel: string): string {
  return join(codeRoot(), here.endsWith('.ts') ? `${rel}.ts` : `${rel}.js`)
}
