"""Programs that drive eos from the outside: the ledger demo and the benchmark.

They run processors as child processes (`python -m eos run ...`), as in production. The
command line (`eos demo`, `eos bench`) lives in `eos.cli`; nothing in the library imports
this package.
"""
