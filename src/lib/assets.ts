import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * Files of our own that run in another process or thread (the spawn helpers, the checkpoint thread), found
 * the same way from the sources (under tsx: tests, development) and from the build (dist/, where the build
 * emits each as its own entry beside a copy of the non-TypeScript ones).
 */

const here = import.meta.url
/** Running from the TypeScript sources. */
const fromSource = here.endsWith('.ts')

function codeRoot(): string {
  if (fromSource) return fileURLToPath(new URL('../', here))
  // Bundled: this code sits somewhere under dist/ (a chunk or a command's file).
  const dist = here.lastIndexOf('/dist/')
  if (dist < 0) throw new Error(`cannot tell where the build is from ${here}`)
  return fileURLToPath(`${here.slice(0, dist)}/dist/`)
}

/** A non-TypeScript file of ours, by its path under src/ (the build copies it to the same path under dist/). */
export function ownFile(rel: string): string {
  return join(codeRoot(), rel)
}

/** A module of ours that runs on its own, by its path under src/ without the extension; `source`: it is TypeScript. */
export function ownModule(rel: string): {path: string; source: boolean} {
  return {path: join(codeRoot(), `${rel}${fromSource ? '.ts' : '.js'}`), source: fromSource}
}
