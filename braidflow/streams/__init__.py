"""The Faust runtime: topics, tables and agents that move records between Kafka and the engine."""
