"""braidflow: a workflow engine that lives on Apache Kafka."""
