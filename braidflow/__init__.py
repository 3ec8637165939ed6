"""braidflow: a workflow engine that lives on Apache Kafka."""

from braidflow.tasks import NodeFailure, TaskContext, task

__all__ = ["NodeFailure", "TaskContext", "task"]
