"""Tools beside the service: training, evaluation helpers and bench. Nothing here is imported
when answering questions."""
