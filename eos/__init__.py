"""eos: exactly-once consume-transform-produce on Apache Kafka.

What an application needs: a transform from `InputRecord` to `OutputRecord`s, the
`AvroContract`s of its topics, optionally `StateStore`s, all in an `App`; `run(app)`
processes it until SIGTERM. A transform raises `PermanentError` for a record that goes
to the dead-letter topic and `TransientError` for one to retry later.
"""

from eos.engine.api import InputRecord, OutputRecord
from eos.engine.app import App
from eos.engine.runner import run
from eos.engine.state import StateStore
from eos.errors import EosError, PermanentError, TransientError
from eos.serde.avro import AvroContract

__all__ = [
    "App",
    "AvroContract",
    "EosError",
    "InputRecord",
    "OutputRecord",
    "PermanentError",
    "StateStore",
    "TransientError",
    "run",
]
