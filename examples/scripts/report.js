// A long-running command: prints a line per step and reports progress with the `::progress` protocol.
const steps = Number(process.argv[2] ?? 10);
const delay = Number(process.argv[3] ?? 100);
let step = 0;
const timer = setInterval(() => {
  step++;
  console.log(`step ${step}/${steps}: processed ${step * 1000} rows`);
  console.log(`::progress ${step}/${steps}`);
  if (step === steps) {
    clearInterval(timer);
    console.log(`::result ${JSON.stringify({ rows: steps * 1000 })}`);
  }
}, delay);
process.on('SIGTERM', () => {
  console.error('report: stopping on SIGTERM');
  process.exit(143);
});
