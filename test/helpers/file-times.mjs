// A second reporter for `npm test` (test/run.sh adds it when SKIFF_TEST_TIMES names a file): how
// long each test file took, from the start of its process to its end, slowest first, and their
// sum. With files running concurrently the sum is more than the wall time: their ratio is the
// speed-up; on a busy machine compare sums, not wall times.
import process from 'node:process'

export default async function* fileTimes(source) {
  const started = new Map()
  const took = []
  const t0 = Date.now()
  for await (const event of source) {
    const { type, data } = event
    // The file itself is a test named by its path: dequeued when its process starts.
    if (!data?.file || data.name !== data.file || data.nesting !== 0) continue
    if (type === 'test:dequeue') started.set(data.file, Date.now())
    else if (type === 'test:complete' && started.has(data.file)) took.push([data.file, Date.now() - started.get(data.file)])
  }
  took.sort((a, b) => b[1] - a[1])
  const sum = took.reduce((s, [, ms]) => s + ms, 0)
  for (const [file, ms] of took) yield `${(ms / 1000).toFixed(1).padStart(7)} s  ${file.replace(`${process.cwd()}/`, '')}\n`
  yield `${(sum / 1000).toFixed(1).padStart(7)} s  sum of ${took.length} files; wall ${((Date.now() - t0) / 1000).toFixed(1)} s\n`
}
