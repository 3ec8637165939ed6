"""braidflow: a workflow engine that lives on Apache Kafka."""

from braidflow.compiled import choose

# Before any compiled module is imported: they run compiled all together or not at all.
choose()

from braidflow.custom_kinds import CustomKind  # noqa: E402
from braidflow.tasks import NodeFailure, TaskContext, task  # noqa: E402

__all__ = ["CustomKind", "NodeFailure", "TaskContext", "task"]
