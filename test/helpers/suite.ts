// Lets one test file's tests run again from another file, over another store: the file
// declares its tests with `suiteTest` instead of ava's `test`, and the re-running file
// sets the store (adjustServerOptions) or, when that store is missing here, skips them.
import test, { type TestFn } from 'ava';

let skipReason: string | null = null;

/** Every test later declared through suiteTest in this process is skipped, with this reason. */
export function skipSuite(reason: string): void {
  skipReason = reason;
}

/** ava's test, or test.skip once skipSuite() was called; hooks pass through unchanged. */
export const suiteTest: TestFn = new Proxy(test, {
  apply(target, thisArg, args: Parameters<TestFn>) {
    if (skipReason === null) return Reflect.apply(target, thisArg, args);
    const [title, ...rest] = args as unknown as [string, ...unknown[]];
    return Reflect.apply(target.skip, thisArg, [`${title} (skipped: ${skipReason})`, ...rest]);
  },
});
