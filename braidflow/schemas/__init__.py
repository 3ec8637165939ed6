"""Avro schemas for every record braidflow puts on a topic, and the codecs for them.

The `.avsc` files in `avro/` are the contract with other consumers; the
default framing is Avro single-object encoding, so any Avro library that has
the schema files can read the records. Beside them, the other record formats that
streams and connectors both read: dead letters (JSON, `dead_letters`), the lifecycle
topic's CloudEvents headers (`lifecycle_events`) and the size limit of a record
(`record_limits`).
"""

from braidflow.schemas.codec import (
    STORE,
    Codec,
    decode_await,
    decode_event,
    decode_event_outline,
    decode_state,
    decode_stored,
    decode_stored_reusable,
    decode_task,
    decode_transition,
    encode_await,
    encode_event,
    encode_state,
    encode_stored,
    encode_stored_reusing,
    encode_task,
    encode_transition,
    event_heading,
)
from braidflow.schemas.framing import CodecError, ConfluentFraming, Framing, SingleObjectFraming
from braidflow.schemas.records import (
    EXECUTION_STATE,
    LIFECYCLE_EVENT,
    STORED_EXECUTION,
    TASK_REQUEST,
    TRANSITION,
    OutboxEntry,
    RecordKind,
    StoredExecution,
    ValueRow,
    state_value_of,
    state_value_text,
)
from braidflow.schemas.store import SchemaStore, current_schema, fingerprint
from braidflow.schemas.stored_encoding import StoredEncoding

__all__ = [
    "EXECUTION_STATE",
    "LIFECYCLE_EVENT",
    "STORE",
    "STORED_EXECUTION",
    "TASK_REQUEST",
    "TRANSITION",
    "Codec",
    "CodecError",
    "ConfluentFraming",
    "Framing",
    "OutboxEntry",
    "RecordKind",
    "SchemaStore",
    "SingleObjectFraming",
    "StoredEncoding",
    "StoredExecution",
    "ValueRow",
    "current_schema",
    "decode_await",
    "decode_event",
    "decode_event_outline",
    "decode_state",
    "decode_stored",
    "decode_stored_reusable",
    "decode_task",
    "decode_transition",
    "encode_await",
    "encode_event",
    "encode_state",
    "encode_stored",
    "encode_stored_reusing",
    "encode_task",
    "encode_transition",
    "event_heading",
    "fingerprint",
    "state_value_of",
    "state_value_text",
]
