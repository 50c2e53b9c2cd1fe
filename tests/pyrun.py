"""pyrun: run Python test files (unittest) and print one count line the runner can add up.

    python3 tests/pyrun.py FILE...
prints every test's outcome, then "pyrun: passed=N failed=N skipped=N".  A skipped test is
reported as such; tests/run-all.sh counts skips as failures in CI (CI=true).
"""
import importlib.util
import os
import sys
import time
import unittest


class Result(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def _took(self):
        return f" ({time.monotonic() - self._t0:.1f}s)"

    def addSuccess(self, test):
        super().addSuccess(test)
        self.stream.write(f"  PASS {test.id()}{self._took()}\n")
        self.stream.flush()


def load(path):
    name = "t_" + os.path.splitext(os.path.basename(path))[0]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return unittest.defaultTestLoader.loadTestsFromModule(mod)


def main():
    suite = unittest.TestSuite()
    broken = 0
    for path in sys.argv[1:]:
        try:
            suite.addTests(load(path))
        except Exception as e:  # an import error is a failed test, not a silent skip
            print(f"  FAIL {path}: cannot load: {e!r}")
            broken += 1
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=1, resultclass=Result)
    r = runner.run(suite)
    # A test with several failing subTests is one failed test (a subTest failure names its
    # test case in test_case).
    bad = {getattr(t, "test_case", t).id() for t, _ in r.failures + r.errors}
    bad |= {t.id() for t in r.unexpectedSuccesses}
    failed = len(bad) + broken
    # A setUpClass error fails no test that ran (testsRun does not count it).
    ran_bad = {getattr(t, "test_case", t).id() for t, _ in r.failures + r.errors
               if isinstance(getattr(t, "test_case", t), unittest.TestCase)}
    ran_bad |= {t.id() for t in r.unexpectedSuccesses}
    passed = r.testsRun - len(ran_bad) - len(r.skipped)
    print(f"pyrun: passed={passed} failed={failed} skipped={len(r.skipped)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
