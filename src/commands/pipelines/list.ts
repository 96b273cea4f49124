import {BaseCommand} from '../../cli/base.js'
import {loadRuntime} from '../../plugins/runtime.js'

export interface PipelineView {
  name: string
  trigger: string
  from_plugin: string | null
  if: string | null
  max_depth: number
  steps: {id: string; uses: string; command: string; if: string | null; baggage: string[]; with: string[]}[]
  file: string
}

export interface PipelinesListResult {
  pipelines: PipelineView[]
}

export default class PipelinesList extends BaseCommand<typeof PipelinesList> {
  static override usesDbPath = false
  static override summary = 'Pipelines with their triggers and steps'
  static override examples = ['<%= config.bin %> pipelines list --config /etc/ductile', '<%= config.bin %> pipelines list --json']

  async run(): Promise<PipelinesListResult> {
    const {pipelines} = loadRuntime(this.flags.config)
    const views: PipelineView[] = pipelines.map((p) => ({
      name: p.name,
      trigger: p.on !== undefined ? `on ${p.on}` : `on-hook ${p.onHook}`,
      from_plugin: p.fromPlugin ?? null,
      if: p.if?.source ?? null,
      max_depth: p.maxDepth,
      steps: p.steps.map((s) => ({
        id: s.id,
        uses: s.uses,
        command: s.command,
        if: s.if?.source ?? null,
        baggage: s.baggage.map((b) => `${b.namespace ?? b.path} ← ${b.from}`),
        with: Object.keys(s.with),
      })),
      file: p.file,
    }))
    if (this.human()) {
      if (views.length === 0) this.log('No pipelines configured.')
      for (const v of views) {
        this.log(`${v.name}  (${v.trigger}${v.from_plugin ? ` from ${v.from_plugin}` : ''}${v.if ? ` if ${v.if}` : ''})`)
        for (const [i, s] of v.steps.entries()) {
          this.log(`  ${i + 1}. ${s.id}: ${s.uses} ${s.command}${s.if ? `  if ${s.if}` : ''}${s.baggage.length ? `  baggage ${s.baggage.join(', ')}` : ''}`)
        }
      }
    }
    return {pipelines: views}
  }
}
