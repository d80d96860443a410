"""Tools beside the service: training, evaluation helpers and benchmarks. Nothing here is imported
when answering questions."""
