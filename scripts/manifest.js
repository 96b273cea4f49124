#!/usr/bin/env node
// Writes oclif.manifest.json for the built tree, so oclif does not import every command at start-up
// (cold start matters: cron and shell loops run ductile often). Uses @oclif/core's own Plugin loader,
// which is what the `oclif manifest` command does, without the oclif CLI's large dependency tree.
import {Plugin} from '@oclif/core'
import {renameSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, isRoot: true})
await plugin.load()
const manifest = plugin.manifest
const count = Object.keys(manifest.commands).length
if (count === 0) throw new Error('manifest: no commands in the COMMANDS export of dist/cli.cjs (did the build run?)')
// Beside it, then renamed over it: a CLI call starting now reads the old manifest or the new one, whole.
const tmp = join(root, `.oclif.manifest.json.${process.pid}`)
writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`)
renameSync(tmp, join(root, 'oclif.manifest.json'))
console.error(`oclif.manifest.json: ${count} commands`)
