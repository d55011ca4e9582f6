#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The documentation runner (examples.py) on a made-up tree: a right example passes, a wrong
# output, a wrong exit status and an unmarked command example each fail, a marked one is listed
# with its reason, "…" elides text and lines, a shown file is written before it is used.
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
from checks import check, result  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def run(readme):
    with tempfile.TemporaryDirectory() as src:
        os.makedirs(os.path.join(src, "docs"))
        with open(os.path.join(src, "README.md"), "w") as f:
            f.write(readme)
        env = dict(os.environ, KILT_SOURCE_DIR=src)
        return subprocess.run([sys.executable, os.path.join(HERE, "examples.py")], env=env,
                              capture_output=True, text=True, timeout=120)


GOOD = """# t

<!-- doc-example: file note.txt -->
```
alpha
beta
gamma
```

```console
$ kilt version
kilt …
$ cat note.txt
alpha
…
$ kilt --bogus
kilt: unknown option '--bogus'
Try 'kilt --help'.
[exit 2]
$ echo one; echo two; \\
  echo three
one
two
three
$ true
```

<!-- doc-example: not run: a reason given here -->
```sh
kilt inject template.json
```
"""
p = run(GOOD)
check(p.returncode == 0, f"a right page passes (exit {p.returncode})\n{p.stdout}")
check("5 documented command(s) run and checked" in p.stdout, "every command counted")
check("NOT RUN README.md:" in p.stdout and "a reason given here" in p.stdout,
      "a block not run is listed with its reason")

for name, page, want in [
    ("wrong output", "```console\n$ echo right\nwrong\n```\n", "want:"),
    ("wrong exit status", "```console\n$ false\n```\n", "exit 1, want 0"),
    ("missing line", "```console\n$ printf 'a\\nb\\n'\na\n```\n", "want:"),
    ("unmarked example", "```sh\nkilt inject t.json\n```\n", "a command example that no test runs"),
    ("unmarked prompt", "```\n$ kilt version\n```\n", "a command example that no test runs"),
]:
    p = run(page + "\n```console\n$ true\n$ true\n$ true\n$ true\n$ true\n```\n")
    check(p.returncode == 1 and want in p.stdout, f"{name} fails ({p.returncode}): {p.stdout[-300:]!r}")

sys.exit(result("runner self-test passed"))
