/**
 * `${VAR}` interpolation, done on the text before YAML parsing. `${VAR:-default}` gives a
 * default. Unresolved names are reported so the loader can say which variable is unset and where.
 */
export interface Interpolated {
  text: string
  unresolved: {name: string; line: number}[]
}

export function interpolateEnv(text: string, env: NodeJS.ProcessEnv): Interpolated {
  const unresolved: {name: string; line: number}[] = []
  const out = text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, name: string, def: string | undefined, offset: number) => {
    const v = env[name]
    if (v !== undefined && v !== '') return v
    if (def !== undefined) return def
    unresolved.push({name, line: text.slice(0, offset).split('\n').length})
    return whole
  })
  return {text: out, unresolved}
}
