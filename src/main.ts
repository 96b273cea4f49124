import {execute} from '@oclif/core'

/** The CLI entry, bundled with the commands so oclif and the commands share one copy of @oclif/core. */
export async function run(dir: string): Promise<void> {
  await execute({dir})
}
