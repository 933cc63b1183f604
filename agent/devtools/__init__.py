"""Development and test tooling, outside the product: the private Asterisk (`asterisk.py`), the
pjsua2 phones (`phones.py`), `make run` (`run.py`), `make demo` (`demo.py`), the demo's and the
tests' CalDAV server (`radicale.py`) and the engine fault injection (`faults.py`). The product never
imports this package; cli.py reaches it for `dev`, `demo` and `STANDARDISTE_FAULTS`, and bench/ (a
measuring tool) uses its Asterisk and phones."""
