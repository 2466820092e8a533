#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx skiff` works from a checkout after `npm ci`.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')
