import { createRuntime, type CreateRuntimeOptions, type Runtime } from '../../src/runtime.ts';

/** Runs `fn` with a memory runtime (maintenance off) made from `options`, and closes it whatever happens. */
export async function withRuntime(options: CreateRuntimeOptions, fn: (rt: Runtime) => Promise<void>): Promise<void> {
  const rt = await createRuntime({ store: 'memory', maintenance: false, ...options });
  try {
    await fn(rt);
  } finally {
    await rt.close({ timeout: 2000 });
  }
}
